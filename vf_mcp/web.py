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
from collections.abc import Mapping
from typing import Final

from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from vf_mcp import __version__
from vf_mcp.callers import namespace_for, set_caller
from vf_mcp.config import ENV_AUTH_TOKENS, Settings

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


JSON_RPC_REFUSED: Final = -32000
"""The JSON-RPC error code of a request refused before any method ran (no token, a wrong one, a
body too large): implementation-defined (JSON-RPC's -32000 to -32099) and none of A2A's (-32001
to -32009), so no client takes it for one of those; the HTTP status tells them apart."""


def refusal(
    status: int,
    error: str,
    description: str,
    *,
    json_rpc: bool,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """A refused request's answer: `{"error", "error_description"}` (OAuth's words, as `/mcp`
    has always answered), or for a JSON-RPC endpoint (A2A's) a JSON-RPC error whose message is
    `description`. The A2A SDKs show a JSON-RPC error's message; a body of another shape they
    dump whole ("HTTP error for SendMessage! Status: 401 ..."), or, the JavaScript SDK's
    streaming call, drop for "An unexpected error occurred."."""
    if json_rpc:
        rpc_error = {"code": JSON_RPC_REFUSED, "message": description, "data": {"error": error}}
        body: dict[str, object] = {"jsonrpc": "2.0", "id": None, "error": rpc_error}
    else:
        body = {"error": error, "error_description": description}
    return JSONResponse(body, status_code=status, headers=dict(headers or {}))


async def _refuse(
    scope: Scope, receive: Receive, send: Send, description: str, json_rpc: frozenset[str]
) -> None:
    response = refusal(
        401,
        "unauthorized",
        description,
        json_rpc=scope.get("path") in json_rpc,
        headers={"WWW-Authenticate": 'Bearer realm="vf-mcp"'},
    )
    await response(scope, receive, send)


class SingleAuthorization:
    """Refuse a request carrying more than one Authorization header, before anything reads one.

    Parts that each pick "the" header (the first, the last) can disagree about who is calling; a
    request with exactly one cannot be read two ways. Used in front of OAuth too, whose
    middleware reads the first.
    """

    def __init__(self, app: ASGIApp, *, json_rpc: frozenset[str] = frozenset()) -> None:
        self._app = app
        self._json_rpc = json_rpc

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and len(found := _credentials(scope)) > 1:
            await _refuse(
                scope,
                receive,
                send,
                f"The request carried {len(found)} Authorization headers; send exactly one "
                "('Authorization: Bearer <token>')",
                self._json_rpc,
            )
            return
        await self._app(scope, receive, send)


class BearerTokenGate:
    """Refuse any request but the public paths without one of the configured bearer tokens, and
    put the namespace of the token it verified into the request's scope (`vf_mcp.callers`).
    Serve it behind `SingleAuthorization` (`guarded` does). `json_rpc`: the paths whose refusal
    is a JSON-RPC error (`refusal`)."""

    def __init__(
        self,
        app: ASGIApp,
        tokens: tuple[str, ...],
        *,
        public_paths: frozenset[str] = frozenset({HEALTH_PATH}),
        json_rpc: frozenset[str] = frozenset(),
    ) -> None:
        self._app = app
        self._json_rpc = json_rpc
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
            await _refuse(scope, receive, send, _unknown_caller(headers), self._json_rpc)


def _unknown_caller(headers: list[bytes]) -> str:
    """Why a request was refused, and what to send instead; never a word of what it sent. Some
    clients show this line and not the status (the A2A SDKs), so it says what happened."""
    send = f"send 'Authorization: Bearer <token>' with one of the tokens set in {ENV_AUTH_TOKENS}"
    if not headers:
        return (
            f"This request carried no token, and this server answers only callers with one: {send}"
        )
    scheme, _, token = headers[0].partition(b" ")
    if scheme.lower() != b"bearer" or not token.strip():
        return f"This request's Authorization header is not a bearer token: {send}"
    return (
        f"This request's bearer token is not one this server takes: {send} (the server's "
        "operator gives them out)"
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


def guarded(
    app: ASGIApp,
    settings: Settings,
    public: frozenset[str],
    json_rpc: frozenset[str] = frozenset(),
) -> ASGIApp:
    """`app` behind the checks every HTTP front shares: a strict Host and Origin syntax, one
    Authorization header at most, and the token gate when tokens are configured (OAuth tokens
    are checked by the MCP SDK's middleware inside `app`). A refusal on a `json_rpc` path (the
    A2A endpoints) is a JSON-RPC error (`refusal`)."""
    if settings.auth_tokens and not settings.oauth:
        tokens = tuple(t.get_secret_value() for t in settings.auth_tokens)
        app = BearerTokenGate(app, tokens, public_paths=public, json_rpc=json_rpc)
    if settings.auth_tokens or settings.oauth:
        app = SingleAuthorization(app, json_rpc=json_rpc)
    return StrictAuthority(app)
