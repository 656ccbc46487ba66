"""The domain layer: pure models, one turn shared by every reader, and v1 transcripts read as v2.

`tests/fixtures/run-v1.json` is a `--json` report in the v1 shape, written by hand: its messages
keep only a `url` (v2 keeps the whole `media`) and one choice was stored without its request.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
import redis.asyncio as aioredis
from pydantic import ValidationError

import vf_mcp.domain
from tests.services import redis_server
from vf_mcp.domain.run import RunRecord
from vf_mcp.domain.transcript import SCHEMA_VERSION, RunResult, Transcript, TranscriptTurn
from vf_mcp.domain.turn import AgentMessage, Choice, Media, TurnResult
from vf_mcp.transcripts.render import render_transcript
from vf_mcp.transcripts.schema import SCHEMA_PATH, SCHEMA_V1_PATH

pytestmark = pytest.mark.anyio

V1_RUN = Path(__file__).parent / "fixtures" / "run-v1.json"


def _imports_of(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module is not None:
            found.add(node.module)
    return found


def test_the_domain_imports_nothing_else_of_vf_mcp() -> None:
    package = Path(vf_mcp.domain.__file__).parent
    ours = {
        f"{path.name}: {name}"
        for path in package.glob("*.py")
        for name in _imports_of(path)
        if name.split(".")[0] == "vf_mcp" and not name.startswith("vf_mcp.domain")
    }
    assert ours == set()
    # The contract above reads real files: the package holds the modules it names.
    assert {p.stem for p in package.glob("*.py")} >= {"turn", "transcript", "run", "conversation"}


def test_a_turn_is_frozen_and_changed_by_copy() -> None:
    turn = TurnResult(user_id="u", status="awaiting_user", warnings=["first"])
    with pytest.raises(ValidationError, match="frozen"):
        turn.status = "ended"  # type: ignore[misc]
    warned = turn.with_warnings("later")
    assert (turn.warnings, warned.warnings) == (["first"], ["first", "later"])
    assert turn.with_warnings("earlier", first=True).warnings == ["earlier", "first"]


def test_a_v1_run_report_is_read_as_v2() -> None:
    v1 = jsonschema.Draft202012Validator(json.loads(SCHEMA_V1_PATH.read_text()))
    for test in json.loads(V1_RUN.read_text())["suites"][0]["tests"]:
        v1.validate(test)  # the fixture is a true v1 transcript, as the shipped v1 schema says
    run = RunResult.model_validate_json(V1_RUN.read_bytes())
    assert run.schema_version == SCHEMA_VERSION
    greets = run.suites[0].tests[0]
    assert greets.schema_version == SCHEMA_VERSION
    reply = greets.turns[0].agent
    assert reply.messages[1:] == [
        AgentMessage(
            kind="image", media=Media(kind="image", url="https://cdn.example.com/acme.png")
        ),
        AgentMessage(
            kind="audio", media=Media(kind="audio", url="https://cdn.example.com/hello.mp3")
        ),
    ]
    assert reply.messages[0].media is None
    assert reply.choices[1] == Choice(number=2, label="Ask a question", request={})
    assert greets.turns[0].variables_changed is not None
    assert greets.turns[0].variables_changed[0].after == "shipped"
    assert "Agent [image]: https://cdn.example.com/acme.png" in render_transcript(greets)
    # Written back, it is a v2 transcript the shipped v2 schema accepts, and reads back the same.
    written = json.loads(run.model_dump_json())
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))
    for test in written["suites"][0]["tests"]:
        validator.validate(test)
    assert written["suites"][0]["tests"][0]["turns"][0]["agent"]["messages"][1]["media"] == {
        "kind": "image",
        "url": "https://cdn.example.com/acme.png",
        "media_type": None,
        "size_bytes": None,
    }
    assert RunResult.model_validate(written) == run


def test_an_unknown_key_in_a_message_is_refused() -> None:
    """A transcript is data we wrote: a key we never write is an error, in v2 as in v1."""
    data = json.loads(V1_RUN.read_text())["suites"][0]["tests"][0]
    data["schema_version"] = SCHEMA_VERSION
    data["turns"][0]["agent"]["messages"][0]["colour"] = "red"
    with pytest.raises(ValidationError, match="colour"):
        Transcript.model_validate(data)


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


async def test_v1_transcripts_and_runs_kept_in_redis_still_load(redis_url: str) -> None:
    """A store written by an older worker: its transcript head, its turns and its run record."""
    from vf_mcp.store.redis import redis_store

    prefix = "vf-mcp-v1-test:"
    v1 = json.loads(V1_RUN.read_text())
    head = {k: v for k, v in v1["suites"][0]["tests"][0].items() if k != "turns"}
    raw = aioredis.from_url(redis_url)
    try:
        await raw.hset(
            f"{prefix}transcript:ns/agent/u1",
            mapping={"head": json.dumps(head), "count": 1, "duration_ms": 12.5},
        )
        await raw.rpush(
            f"{prefix}transcript:ns/agent/u1:turns",
            json.dumps(v1["suites"][0]["tests"][0]["turns"][0]),
        )
        record = {"run_id": "run-1", "agent": "a", "state": "finished", "worker": "w", "result": v1}
        await raw.set(f"{prefix}run:ns/run-1", json.dumps(record))
    finally:
        await raw.aclose()
    store = redis_store(redis_url, ttl_seconds=60, prefix=prefix)
    try:
        transcript = await store.transcripts.load("ns/agent/u1")
        stored = await store.runs.load("ns/run-1")
    finally:
        await store.aclose()
    assert transcript is not None and transcript.schema_version == SCHEMA_VERSION
    media = transcript.turns[0].agent.messages[2].media
    assert media == Media(kind="audio", url="https://cdn.example.com/hello.mp3")
    assert stored is not None and isinstance(stored.record, RunRecord)
    assert stored.record.result is not None
    assert stored.record.result.suites[0].tests[1].outcome == "passed"


def test_turn_records_as_the_stores_keep_them_accept_v1() -> None:
    turn = json.loads(V1_RUN.read_text())["suites"][0]["tests"][1]["turns"][0]
    assert TranscriptTurn.model_validate(turn).agent.text == "Welcome back to Acme."


ARCHITECTURE = Path(__file__).parent.parent / "docs" / "architecture.md"


def test_every_field_the_architecture_page_names_exists() -> None:
    import importlib
    import re

    named = set(re.findall(r"`(vf_mcp\.domain\.\w+\.\w+\.\w+)`", ARCHITECTURE.read_text()))
    missing = []
    for path in sorted(named):
        module, model, field = path.rsplit(".", 2)
        cls = getattr(importlib.import_module(module), model, None)
        if cls is None or field not in cls.model_fields:
            missing.append(path)
    assert missing == []
    # Every field of the turn a person sees is named on the page.
    shown = {p.rsplit(".", 1)[1] for p in named if p.startswith("vf_mcp.domain.turn.TurnResult.")}
    assert shown == set(TurnResult.model_fields)
