"""Clients that did not negotiate MCP Apps see the server exactly as before the view existed.

SEP-2133 asks an extension to degrade gracefully. Tool results never depend on the extension, so
what remains is the listing: for such a client `tools/list` leaves out the app-only tools (they
mean nothing without a view) and the `ui` keys of the others; calling an app-only tool anyway is
refused by the tool itself (`vf_mcp.tools.view`).

A client tells whether it speaks Apps in its capabilities. Clients of the 2026-07-28 protocol
send them with every request, and a stdio connection keeps them from `initialize`; but over this
server's stateless HTTP a legacy (2025-11-25) client declared them in an `initialize` that no
later request carries, so that request cannot tell. Then the view is offered: an Apps host gets
its view, and other clients meet two tools marked for the view only (`visibility: ["app"]`).
"""

from __future__ import annotations

from typing import Any

from mcp.server.apps import client_supports_apps
from mcp.server.context import CallNext, HandlerResult, ServerMiddleware, ServerRequestContext
from mcp.server.mcpserver import Context
from mcp.types import ListToolsResult, Tool

UI_META_KEYS = ("ui", "ui/resourceUri")
"""`ui` is the extension's key; hosts of its first drafts read the flat `ui/resourceUri`."""


def apps_support(ctx: Context[Any] | ServerRequestContext[Any, Any]) -> bool | None:
    """Whether the client negotiated MCP Apps; None when this request carries no capabilities."""
    if isinstance(ctx, Context):
        capabilities = ctx.client_capabilities
    else:
        capabilities = ctx.session.client_capabilities
    if capabilities is None:
        return None
    return client_supports_apps(ctx)


def apps_gate(app_only: frozenset[str]) -> ServerMiddleware[Any]:
    """Middleware hiding the tools named in `app_only` and every tool's `ui` keys from clients
    known not to speak MCP Apps."""

    async def gate(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        result = await call_next(ctx)
        if ctx.method != "tools/list" or result is None or apps_support(ctx) is not False:
            return result
        # The handler's answer reaches middleware as the wire dict; read it as the model.
        listed = ListToolsResult.model_validate(result)
        tools = [_without_ui(tool) for tool in listed.tools if tool.name not in app_only]
        return listed.model_copy(update={"tools": tools})

    return gate


def _without_ui(tool: Tool) -> Tool:
    if not tool.meta or not any(key in tool.meta for key in UI_META_KEYS):
        return tool
    meta = {key: value for key, value in tool.meta.items() if key not in UI_META_KEYS}
    return tool.model_copy(update={"meta": meta or None})
