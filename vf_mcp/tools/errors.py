"""The one mapping from vf-mcp's errors to what an MCP client sees.

Every error a tool meets becomes a tool result the model can read and act on (`is_error`, the
one-line message as text), never the SDK's bare "Error executing tool". What a driver reads by
machine (`kind`, `message`, `may_have_run`) rides in the result's `_meta` under `ERROR_META_KEY`,
not in structured content: the TypeScript SDK (Claude Code, Cursor, the MCP Inspector) checks
structured content against the tool's output schema on error results too, and throws when it does
not match, so the person would read a schema complaint instead of the message. `may_have_run` tells
a driver whether repeating a turn could run it twice. The kinds are every front end's
(`vf_mcp.domain.errors`; each class's is in `vf_mcp.error_kinds`).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, Final, ParamSpec

from mcp.server.mcpserver.exceptions import ResourceError, ResourceNotFoundError
from mcp.types import CallToolResult, TextContent
from pydantic import BaseModel, Field

from vf_mcp.domain.errors import ErrorKind
from vf_mcp.error_kinds import kind_of
from vf_mcp.errors import VfMcpError, may_have_run

ERROR_META_KEY: Final = "io.vf-mcp/error"
"""Where an error result carries `ToolErrorMeta` in its `_meta` (namespaced, as MCP asks)."""


class ToolErrorMeta(BaseModel):
    """The machine-readable side of an error result; the text content is the same message."""

    kind: ErrorKind
    message: str = Field(description="The one-line message: what happened, why, what to do next")
    may_have_run: bool = Field(
        description="Whether the failed call may have taken effect upstream: check get_state "
        "before repeating a turn"
    )


def error_result(error: VfMcpError) -> CallToolResult:
    meta = ToolErrorMeta(
        kind=kind_of(error), message=error.message, may_have_run=may_have_run(error)
    )
    return CallToolResult(
        content=[TextContent(type="text", text=error.message)],
        is_error=True,
        _meta={ERROR_META_KEY: meta.model_dump(mode="json")},
    )


def error_meta(result: CallToolResult) -> ToolErrorMeta | None:
    """What `error_result` put in `result`'s `_meta`, if anything (for drivers and tests)."""
    found = (result.meta or {}).get(ERROR_META_KEY)
    return ToolErrorMeta.model_validate(found) if found is not None else None


def resource_error(error: VfMcpError) -> ResourceError:
    """Resources answer protocol errors: a missing one is the SDK's not-found (-32602)."""
    if kind_of(error) == "not_found":
        return ResourceNotFoundError(error.message)
    return ResourceError(error.message)


P = ParamSpec("P")


def answers_errors(
    tool: Callable[P, Awaitable[CallToolResult]],
) -> Callable[P, Awaitable[CallToolResult]]:
    """Wrap a tool so every vf-mcp error reaches the client as a readable error result."""

    @functools.wraps(tool)
    async def wrapped(*args: P.args, **kwargs: P.kwargs) -> CallToolResult:
        try:
            return await tool(*args, **kwargs)
        except VfMcpError as error:
            return error_result(error)

    return wrapped


def result(text: str, model: Any) -> CallToolResult:
    """A successful tool result: the text a model reads and the structured content."""
    return CallToolResult(
        content=[TextContent(type="text", text=text)],
        structured_content=model.model_dump(mode="json", by_alias=True),
    )
