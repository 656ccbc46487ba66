"""What every tool needs to know about the call it serves: the server's `App` and the caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mcp.server.mcpserver import Context

from vf_mcp.app import App
from vf_mcp.callers import caller_namespace
from vf_mcp.conversation import ConversationService


@dataclass(frozen=True)
class Call:
    app: App
    namespace: str | None
    """The caller's namespace (one per HTTP token or OAuth subject; None on stdio)."""

    def service(self, agent: str | None) -> ConversationService:
        return self.app.service_for(agent)

    def agent(self, agent: str | None) -> str:
        return self.app.agent_name(agent)


def call_of(ctx: Context[Any]) -> Call:
    """The call a tool (or resource: the SDK gives those an unparametrised Context) serves."""
    app = ctx.request_context.lifespan_context
    assert isinstance(app, App), "the server's lifespan opens an App"
    return Call(app=app, namespace=_namespace(ctx, app))


def _namespace(ctx: Context[Any], app: App) -> str | None:
    """The caller the HTTP gates verified (`vf_mcp.callers`); stdio has no request and one
    caller."""
    request = ctx.request_context.request
    scope = getattr(request, "scope", None)
    if scope is None:
        return None
    settings = app.settings
    return caller_namespace(scope, tokens=bool(settings.auth_tokens), oauth=settings.oauth)
