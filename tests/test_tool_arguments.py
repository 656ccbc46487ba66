"""Bad and unknown tool arguments are refused in one line that names the argument, before anything
reaches the runtime: never pydantic's multi-line dump with its link, never a typo dropped."""

from __future__ import annotations

from typing import Any

import pytest
from mcp import Client
from mcp.types import CallToolResult

from vf_mcp.config import Settings
from vf_mcp.emulator import Emulator
from vf_mcp.server import build_server
from vf_mcp.tools import TOOLS, build_tools
from vf_mcp.tools.errors import error_meta

pytestmark = pytest.mark.anyio

# (tool, arguments, the whole text the caller reads)
ARGUMENT_ERRORS: list[tuple[str, dict[str, Any], str]] = [
    (
        "interact",
        {"launch": True, "verbosity": "loud"},
        'verbosity must be one of minimal, standard, debug (got "loud")',
    ),
    ("interact", {"message": 42}, "message must be a string (got 42)"),
    (
        "interact",
        {"user_id": "a/b", "launch": True},
        "user_id must be letters, digits and _ . : @ + -, starting with a letter or digit "
        '(got "a/b")',
    ),
    (
        "interact",
        {"user_id": "u" * 5000, "launch": True},
        "user_id must be at most 100 characters (got 5000)",
    ),
    ("interact", {"mesage": "hi"}, "unknown argument 'mesage' (did you mean 'message'?)"),
    (
        "interact",
        {"launch": True, "colour": "red"},
        "unknown argument 'colour' (interact takes user_id, message, choice, launch, action, "
        "variables, environment, agent, verbosity)",
    ),
    ("interact", {"choice": {"x": 1}}, 'choice must be a string or an integer (got {"x": 1})'),
    ("interact", {"user_id": "c1", "action": "[1]"}, "action must be an object (got [1])"),
    ("interact", {"launch": "maybe"}, 'launch must be true or false (got "maybe")'),
    (
        "get_state",
        {},
        "user_id is required (Conversation handle returned by a previous interact call)",
    ),
    (
        "get_state",
        {"user_id": "s1", "environment": "no such/env"},
        "environment must be letters, digits and _ . -, starting with a letter or digit "
        '(got "no such/env")',
    ),
    (
        "interact",
        {"mesage": "hi", "verbosity": "loud"},
        "unknown argument 'mesage' (did you mean 'message'?); "
        'verbosity must be one of minimal, standard, debug (got "loud")',
    ),
]


def text_of(result: CallToolResult) -> str:
    return "\n".join(block.text for block in result.content if block.type == "text")


@pytest.mark.parametrize(
    ("tool", "arguments", "expected"),
    ARGUMENT_ERRORS,
    ids=[f"{tool}-{'+'.join(args) or 'none'}" for tool, args, _ in ARGUMENT_ERRORS],
)
async def test_a_bad_argument_is_one_line_naming_it(
    settings: Settings, emulator: Emulator, tool: str, arguments: dict[str, Any], expected: str
) -> None:
    async with Client(build_server(settings)) as client:
        result = await client.call_tool(tool, arguments)
    assert result.is_error
    assert text_of(result) == expected
    assert result.structured_content is None
    meta = error_meta(result)
    assert meta is not None
    assert (meta.kind, meta.message, meta.may_have_run) == ("invalid_input", expected, False)
    assert not emulator.requests  # refused before anything was sent


async def test_every_tool_refuses_an_unknown_argument_and_says_so_in_its_schema(
    settings: Settings, emulator: Emulator
) -> None:
    async with Client(build_server(settings)) as client:
        listed = (await client.list_tools()).tools
        results = {t.name: await client.call_tool(t.name, {"bogus_argument": 1}) for t in listed}
    assert listed
    for tool in listed:
        assert tool.input_schema["additionalProperties"] is False, tool.name
        text = text_of(results[tool.name])
        assert results[tool.name].is_error, tool.name
        assert text.startswith("unknown argument 'bogus_argument' ("), (tool.name, text)
        assert "\n" not in text and "pydantic" not in text, (tool.name, text)
    assert not emulator.requests


def test_the_sdks_own_refusal_is_the_dump_this_replaces() -> None:
    """The check runs before the SDK's: were it gone, the SDK would answer with pydantic's dump."""
    from pydantic import ValidationError

    interact = next(tool for tool in build_tools(TOOLS) if tool.name == "interact")
    with pytest.raises(ValidationError) as raised:
        interact.fn_metadata.validate_arguments({"verbosity": "loud"})
    assert "errors.pydantic.dev" in str(raised.value) and "\n" in str(raised.value)
