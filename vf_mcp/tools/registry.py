"""Every tool the server can offer, as specs chosen before registration.

A deployment's allow-list (`VF_MCP_TOOLS`) and read-only mode (`VF_MCP_READ_ONLY`) pick from the
specs; only the chosen ones are ever registered, so nothing is offered and then taken back. A new
front-end feature (run handles, view tools, A2A skills) adds specs here and obeys the same rules.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.tools import Tool
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import ValidationError

from vf_mcp.config import ENV_TOOLS, Settings
from vf_mcp.errors import ConfigurationError
from vf_mcp.tools.arguments import argument_problem
from vf_mcp.tools.errors import answers_errors, error_result
from vf_mcp.tools.schemas import published_schemas, untitled

ToolFunction = Callable[..., Awaitable[CallToolResult]]


@dataclass(frozen=True)
class ToolSpec:
    name: str
    function: ToolFunction
    annotations: ToolAnnotations
    needs_agents: bool = False
    """Offered only when the server reaches several agents (a handoff needs somewhere to go)."""
    view: str | None = None
    """The `ui://` view (MCP Apps) hosts show with this tool's results (`vf_mcp.view`)."""
    app_only: bool = False
    """Called by the view only (visibility `app`): hosts never give it to the model."""
    large: bool = False
    """Its results may be large (whole test runs, whole transcripts): it declares the size a
    result may reach, so hosts keep it inline rather than filing it away (`MAX_RESULT_CHARS`)."""

    @property
    def read_only(self) -> bool:
        return bool(self.annotations.read_only_hint)

    @property
    def description(self) -> str:
        return inspect.cleandoc(self.function.__doc__ or "")


def choose(
    specs: Sequence[ToolSpec], settings: Settings, *, several_agents: bool
) -> list[ToolSpec]:
    """The specs this deployment offers, in order; an unknown name in the allow-list is an error."""
    available = [spec for spec in specs if several_agents or not spec.needs_agents]
    names = {spec.name for spec in available}
    if settings.tools is not None and (unknown := settings.tools - names):
        raise ConfigurationError(
            f"{ENV_TOOLS} names unknown tools ({', '.join(sorted(unknown))}); "
            f"choose from {', '.join(sorted(names))}"
        )
    return [
        spec
        for spec in available
        if (settings.tools is None or spec.name in settings.tools)
        and (spec.read_only or not settings.read_only)
    ]


class CheckedTool(Tool):
    """A tool whose arguments are checked as the SDK checks them, but refused in one line that
    names the argument (`vf_mcp.tools.arguments`), never as pydantic's multi-line dump, and
    whose unknown arguments are refused, never silently dropped.

    Valid arguments are validated once, by the SDK: only a refusal (the SDK's `ToolError` from
    pydantic's `ValidationError`; the tools raise no `ToolError` of their own) is checked again,
    to be worded."""

    async def run(
        self, arguments: dict[str, Any], context: Context[Any, Any], convert_result: bool = False
    ) -> Any:
        if any(name not in self.parameters["properties"] for name in arguments):
            return self._refusal(arguments)
        try:
            return await super().run(arguments, context, convert_result=convert_result)
        except ToolError as error:
            if isinstance(error.__cause__, ValidationError):
                return self._refusal(arguments)
            raise

    def _refusal(self, arguments: dict[str, Any]) -> CallToolResult:
        problem = argument_problem(self.name, arguments, self.fn_metadata, self.parameters)
        assert problem is not None  # refused by the SDK's check, which it repeats
        return error_result(problem)


def build_tools(specs: Sequence[ToolSpec]) -> list[Tool]:
    """The SDK's tools for `specs`, each answering our errors as readable results, and each
    publishing the compact output schema shipped with the package (`vf_mcp.tools.schemas`).

    The SDK would derive the schema from the result model at every start and re-validate every
    result against the model on the way out; ours are dumps of that very model, so the shipped
    schema is published without the model to check. Input schemas say
    `additionalProperties: false`, so clients that check arguments first refuse a misspelt one.
    """
    schemas = published_schemas()
    tools: list[Tool] = []
    for spec in specs:
        tool = CheckedTool.from_function(
            answers_errors(spec.function),
            name=spec.name,
            description=spec.description,
            annotations=spec.annotations,
            meta=_meta(spec),
            structured_output=False,
        )
        tool.parameters = {**untitled(tool.parameters), "additionalProperties": False}
        tool.fn_metadata.output_schema = schemas[spec.name]
        tools.append(tool)
    return tools


MAX_RESULT_CHARS_KEY = "anthropic/maxResultSizeChars"
MAX_RESULT_CHARS = 500_000
"""Claude Code files a result over 50,000 characters away and shows the model a 2 KB preview,
unless the tool declares a larger size under this key (500,000 at most). The text of these tools
stays within `vf_mcp.transcripts.render.TEXT_BUDGET` a page; their structured content holds the
whole run or transcript."""


def _meta(spec: ToolSpec) -> dict[str, Any] | None:
    meta = {**(_ui_meta(spec) or {})}
    if spec.large:
        meta[MAX_RESULT_CHARS_KEY] = MAX_RESULT_CHARS
    return meta or None


def _ui_meta(spec: ToolSpec) -> dict[str, Any] | None:
    """The MCP Apps `_meta` of a tool bound to a view, as `mcp.server.apps.Apps.tool` writes it,
    plus the flat `ui/resourceUri` that hosts built on the extension's first drafts read."""
    if spec.view is None:
        return None
    ui: dict[str, Any] = {"resourceUri": spec.view}
    if spec.app_only:
        ui["visibility"] = ["app"]
    return {"ui": ui, "ui/resourceUri": spec.view}
