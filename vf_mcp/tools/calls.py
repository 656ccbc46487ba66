"""What every tool needs to know about the call it serves: the server's `App` and the caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.mcpserver import Context

from vf_mcp.app import App
from vf_mcp.callers import bearer_namespace, oauth_namespace
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
    if app.settings.oauth:
        access = get_access_token()
        return oauth_namespace(access.subject or access.client_id) if access else None
    if not app.settings.auth_tokens:
        return None
    headers = ctx.headers or {}
    authorization = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
    return bearer_namespace(authorization)
