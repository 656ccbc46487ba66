from __future__ import annotations

import io
import logging

import pytest

from tests.canary import CANARY_KEY, CANARY_SECRET
from vf_mcp.logs import configure_logging
from vf_mcp.redaction import contains_key, redact


@pytest.fixture
def captured() -> io.StringIO:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    configure_logging("INFO", stream=stream)
    yield stream
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])


def test_keys_are_masked_in_messages_arguments_and_tracebacks(captured: io.StringIO) -> None:
    log = logging.getLogger("vf_mcp.test")
    log.warning("upstream said: %s", f"bad key {CANARY_KEY}")
    try:
        raise RuntimeError(f"Authorization: {CANARY_KEY}")
    except RuntimeError:
        log.exception("failed")
    output = captured.getvalue()
    assert CANARY_SECRET not in output
    assert "VF.DM.***" in output
    # One record, one line, even with a traceback: a wrapped line could split a secret.
    assert len(output.splitlines()) == 2


def test_httpx_request_lines_are_not_logged_at_info(captured: io.StringIO) -> None:
    logging.getLogger("httpx").info("HTTP Request: POST http://x/state/user/u/interact")
    assert captured.getvalue() == ""
    logging.getLogger("vf_mcp").info("kept")
    assert "kept" in captured.getvalue()


def test_redact_finds_key_shapes_only() -> None:
    assert redact(f"a {CANARY_KEY} b") == "a VF.DM.*** b"
    assert redact("VF.WS.abc.def") == "VF.DM.***"
    assert redact("no secrets, VF. here") == "no secrets, VF. here"
    assert contains_key(CANARY_KEY) and not contains_key("VF.DM")
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1MSJ9.c2lnbmF0dXJlLXBhcnQ"
    assert redact(f"key={jwt} end") == "key=<session key> end"
