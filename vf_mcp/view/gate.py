"""Clients that did not negotiate MCP Apps see the server exactly as before the view existed.

SEP-2133 asks an extension to degrade gracefully. Tool results never depend on the extension, so
what remains is the listing. A client tells whether it speaks Apps in its capabilities: clients
of the 2026-07-28 protocol send them with every request, and a stdio connection keeps them from
`initialize`; but over this server's stateless HTTP a legacy (2025-11-25) client declared them in
an `initialize` that no later request carries, so that request cannot tell. Then:

- known to speak Apps: everything is listed.
- unknown (legacy HTTP): `tools/list` leaves out the app-only tools and `resources/list` the
  view's `ui://` resource, so a client without Apps (most of them) sees today's tools. The other
  tools keep their `_meta.ui` (clients without Apps ignore `_meta`), so an Apps host still finds
  the view, reads it by its URI and lets it call the app-only tools, which stay callable.
- known not to speak Apps: the same, and the `ui` keys are dropped too; calling an app-only tool
  anyway is refused by the tool itself (`vf_mcp.tools.view`).

The SDK still advertises the `io.modelcontextprotocol/ui` extension in `initialize` to every
client: that says what the server could serve, and a client that did not ask for it ignores it.
"""

from __future__ import annotations

from typing import Any

from mcp.server.apps import client_supports_apps
from mcp.server.context import CallNext, HandlerResult, ServerMiddleware, ServerRequestContext
from mcp.server.mcpserver import Context
from mcp.types import ListResourcesResult, ListToolsResult, Tool

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


def apps_gate(app_only: frozenset[str], view_uris: frozenset[str]) -> ServerMiddleware[Any]:
    """Middleware listing the tools named in `app_only` and the resources of `view_uris` only to
    clients known to speak MCP Apps, and every tool's `ui` keys to all but those known not to."""

    async def gate(ctx: ServerRequestContext[Any, Any], call_next: CallNext) -> HandlerResult:
        result = await call_next(ctx)
        if result is None or ctx.method not in ("tools/list", "resources/list"):
            return result
        support = apps_support(ctx)
        if support is True:
            return result
        # The handler's answer reaches middleware as the wire dict; read it as the model.
        if ctx.method == "resources/list":
            resources = ListResourcesResult.model_validate(result)
            kept = [r for r in resources.resources if str(r.uri) not in view_uris]
            return resources.model_copy(update={"resources": kept})
        listed = ListToolsResult.model_validate(result)
        tools = [tool for tool in listed.tools if tool.name not in app_only]
        if support is False:
            tools = [_without_ui(tool) for tool in tools]
        return listed.model_copy(update={"tools": tools})

    return gate


def _without_ui(tool: Tool) -> Tool:
    if not tool.meta or not any(key in tool.meta for key in UI_META_KEYS):
        return tool
    meta = {key: value for key, value in tool.meta.items() if key not in UI_META_KEYS}
    return tool.model_copy(update={"meta": meta or None})
