"""Who calls an A2A endpoint: the same namespace as the caller's MCP calls (`vf_mcp.callers`).

The SDK's tasks belong to `ServerCallContext.user.user_name` (its default owner resolver), so the
caller's namespace is that name: another caller's tasks are not found, and the same context id from
two callers names two conversations, upstream and in the store. The call context carries the
headers the SDK reads (`A2A-Version`, ...) but no credentials: the SDK's debug logs print call
contexts, and a token must never be logged.
"""

from __future__ import annotations

from a2a.auth.user import User
from a2a.extensions.common import HTTP_EXTENSION_HEADER, get_requested_extensions
from a2a.server.context import ServerCallContext
from a2a.server.routes import ServerCallContextBuilder
from starlette.requests import Request

from vf_mcp.callers import caller_namespace
from vf_mcp.config import Settings

CREDENTIALS = frozenset({"authorization", "proxy-authorization", "cookie"})
NO_NAMESPACE = "-"
"""The owner of every task when callers are not told apart (loopback without tokens)."""


class Caller(User):
    def __init__(self, namespace: str | None) -> None:
        self.namespace = namespace

    @property
    def is_authenticated(self) -> bool:
        return self.namespace is not None

    @property
    def user_name(self) -> str:
        return self.namespace or NO_NAMESPACE


def request_namespace(request: Request, settings: Settings) -> str | None:
    """The caller the HTTP gates verified, as every front end finds it (`vf_mcp.callers`)."""
    return caller_namespace(request.scope, tokens=bool(settings.auth_tokens), oauth=settings.oauth)


def namespace_of(context: ServerCallContext) -> str | None:
    user = context.user
    return user.namespace if isinstance(user, Caller) else None


class CallerContextBuilder(ServerCallContextBuilder):
    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def build(self, request: Request) -> ServerCallContext:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in CREDENTIALS}
        return ServerCallContext(
            user=Caller(request_namespace(request, self._settings)),
            state={"headers": headers},
            requested_extensions=get_requested_extensions(
                request.headers.getlist(HTTP_EXTENSION_HEADER)
            ),
        )
