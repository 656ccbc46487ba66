"""What every HTTP front shares: the bind-address check, the Host and Origin rules, the
Authorization checks and the token gate in front of an app, and the open health check.

The MCP endpoint (`vf_mcp.http`) and the A2A routes (`vf_mcp.a2a.app`) are both served behind
`guarded`, so a request is checked the same way whichever it reaches. Tokens
(`VF_MCP_AUTH_TOKENS`) are checked by a small ASGI layer before the app sees the request, so no
OAuth metadata is advertised for an issuer that does not exist. DNS-rebinding protection stays on
for every bind address: loopback names are always allowed, real host names only when listed in
`VF_MCP_ALLOWED_HOSTS`.
"""

from __future__ import annotations

import hmac
import ipaddress
import re

from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from vf_mcp import __version__
from vf_mcp.callers import namespace_for, set_caller
from vf_mcp.config import Settings

HEALTH_PATH = "/healthz"
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def is_loopback(host: str) -> bool:
    """Whether a bind address only this machine can reach (the one answer, for every check)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def transport_security(settings: Settings) -> TransportSecuritySettings:
    hosts = [*_LOOPBACK_HOSTS, *settings.allowed_hosts]
    allowed_hosts = [pattern for host in hosts for pattern in (host, f"{host}:*")]
    allowed_origins = [
        pattern
        for host in hosts
        for scheme in ("http", "https")
        for pattern in (f"{scheme}://{host}", f"{scheme}://{host}:*")
    ]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=allowed_hosts,
        allowed_origins=allowed_origins,
    )


def _credentials(scope: Scope) -> list[bytes]:
    """Every Authorization header of a request (ASGI header names are lower case)."""
    return [value for name, value in scope.get("headers") or [] if name == b"authorization"]


async def _refuse(scope: Scope, receive: Receive, send: Send, description: str) -> None:
    response = JSONResponse(
        {"error": "unauthorized", "error_description": description},
        status_code=401,
        headers={"WWW-Authenticate": 'Bearer realm="vf-mcp"'},
    )
    await response(scope, receive, send)


class SingleAuthorization:
    """Refuse a request carrying more than one Authorization header, before anything reads one.

    Parts that each pick "the" header (the first, the last) can disagree about who is calling; a
    request with exactly one cannot be read two ways. Used in front of OAuth too, whose
    middleware reads the first.
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and len(found := _credentials(scope)) > 1:
            await _refuse(
                scope,
                receive,
                send,
                f"The request carried {len(found)} Authorization headers; send exactly one "
                "('Authorization: Bearer <token>')",
            )
            return
        await self._app(scope, receive, send)


class BearerTokenGate:
    """Refuse any request but the public paths without one of the configured bearer tokens, and
    put the namespace of the token it verified into the request's scope (`vf_mcp.callers`).
    Serve it behind `SingleAuthorization` (`guarded` does)."""

    def __init__(
        self,
        app: ASGIApp,
        tokens: tuple[str, ...],
        *,
        public_paths: frozenset[str] = frozenset({HEALTH_PATH}),
    ) -> None:
        self._app = app
        self._tokens = tuple((token.encode(), namespace_for(token)) for token in tokens)
        # The health check, and the A2A Agent Cards (public by design: discovery needs them).
        self._public = public_paths | {HEALTH_PATH}

    def _namespace(self, header: bytes) -> str | None:
        scheme, _, token = header.partition(b" ")
        if scheme.lower() != b"bearer" or not token.strip():
            return None
        # Compare with every token, without stopping early, so timing tells nothing.
        found: str | None = None
        for candidate, namespace in self._tokens:
            if hmac.compare_digest(candidate, token.strip()):
                found = namespace
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in self._public:
            await self._app(scope, receive, send)
            return
        # One header at most: `guarded` puts `SingleAuthorization` in front of this gate.
        headers = _credentials(scope)
        namespace = self._namespace(headers[0]) if len(headers) == 1 else None
        if namespace is not None:
            set_caller(scope, namespace)
            await self._app(scope, receive, send)
        else:
            await _refuse(
                scope,
                receive,
                send,
                "Send 'Authorization: Bearer <token>' with one of the tokens configured in "
                "VF_MCP_AUTH_TOKENS",
            )


_AUTHORITY = r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~-]+)(?::[0-9]{1,5})?"
_HOST_SYNTAX = re.compile(_AUTHORITY)
_ORIGIN_SYNTAX = re.compile(rf"(?:[A-Za-z][A-Za-z0-9+.-]*://{_AUTHORITY}|null)")


class StrictAuthority:
    """Refuse a Host or Origin header that is not plainly `host[:port]` (`scheme://host[:port]`).

    The allowed-host checks (the MCP SDK's, and the A2A routes' with the same settings) match
    `127.0.0.1:*` by prefix, so `Host: 127.0.0.1:1@evil.com` passed them; with the syntax held
    to digits after the colon, a prefix match means what it says.
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope.get("headers") or []:
                syntax = {b"host": _HOST_SYNTAX, b"origin": _ORIGIN_SYNTAX}.get(name)
                if syntax is not None and not syntax.fullmatch(value.decode("latin-1")):
                    shown = "host[:port]" if name == b"host" else "scheme://host[:port]"
                    response = PlainTextResponse(
                        f"Invalid {name.decode().title()} header: expected {shown}", 400
                    )
                    await response(scope, receive, send)
                    return
        await self._app(scope, receive, send)


async def healthz(_: Request) -> Response:
    """Open to everyone (no token): load balancers and orchestrators poll it."""
    return JSONResponse({"status": "ok", "version": __version__})


def guarded(app: ASGIApp, settings: Settings, public: frozenset[str]) -> ASGIApp:
    """`app` behind the checks every HTTP front shares: a strict Host and Origin syntax, one
    Authorization header at most, and the token gate when tokens are configured (OAuth tokens
    are checked by the MCP SDK's middleware inside `app`)."""
    if settings.auth_tokens and not settings.oauth:
        tokens = tuple(t.get_secret_value() for t in settings.auth_tokens)
        app = BearerTokenGate(app, tokens, public_paths=public)
    if settings.auth_tokens or settings.oauth:
        app = SingleAuthorization(app)
    return StrictAuthority(app)
