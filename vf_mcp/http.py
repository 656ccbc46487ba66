"""Streamable HTTP serving: the MCP endpoint at /mcp, an open /healthz, bearer tokens in front,
and the A2A agent beside them (`vf_mcp.a2a`, unless `VF_MCP_A2A=false`).

Tokens (`VF_MCP_AUTH_TOKENS`) are checked by a small ASGI layer before the MCP app sees the request,
so no OAuth metadata is advertised for an issuer that does not exist. DNS-rebinding protection
stays on for every bind address: loopback names are always allowed, real host names only when
listed in `VF_MCP_ALLOWED_HOSTS`.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import re
import socket
import sys
from typing import Any

from mcp.server import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from vf_mcp import __version__
from vf_mcp.callers import namespace_for, set_caller
from vf_mcp.config import ENV_ALLOWED_HOSTS, Settings

MCP_PATH = "/mcp"
HEALTH_PATH = "/healthz"
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")
_log = logging.getLogger(__name__)


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


class NoStandaloneStream:
    """Answer `GET /mcp` with 405, as the spec allows a server that offers no standalone stream.

    The server is stateless: nothing is ever sent on such a stream, yet each one a client opened
    (the TypeScript SDK opens one after `initialize`) stayed open, held a connection and kept a
    stopping worker waiting. Both SDK clients read 405 as "no stream" and go on.
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"] == MCP_PATH:
            response = PlainTextResponse(
                "This server is stateless and offers no standalone event stream; POST requests "
                "to /mcp",
                405,
                headers={"Allow": "POST"},
            )
            await response(scope, receive, send)
            return
        await self._app(scope, receive, send)


async def healthz(_: Request) -> Response:
    """Open to everyone (no token): load balancers and orchestrators poll it."""
    return JSONResponse({"status": "ok", "version": __version__})


def http_app(server: MCPServer[Any], settings: Settings, *, host: str = "127.0.0.1") -> ASGIApp:
    """The ASGI app: stateless streamable HTTP (the conversation handle is `user_id`, not the
    transport session), DNS-rebinding protection, the A2A routes, and the token gate when tokens
    are set."""

    server.custom_route(HEALTH_PATH, methods=["GET"])(healthz)
    public = frozenset({HEALTH_PATH}) | _add_a2a(server, settings)
    app: ASGIApp = server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        stateless_http=True,
        host=host,
        transport_security=transport_security(settings),
    )
    return guarded(NoStandaloneStream(app), settings, public)


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


def _add_a2a(server: MCPServer[Any], settings: Settings) -> frozenset[str]:
    """Serve the A2A agent beside /mcp over the MCP server's own `App`; its public paths."""
    from vf_mcp.server import VfMcpServer

    if not settings.a2a or not isinstance(server, VfMcpServer):
        return frozenset()
    from vf_mcp.a2a.app import A2AFront

    front = A2AFront(settings, server.directory)
    server.companions.append(front.serving)
    for path, methods, endpoint in front.endpoints():
        server.custom_route(path, methods=methods)(endpoint)
    return front.public_paths


def serve_http(
    server: MCPServer[Any],
    settings: Settings,
    *,
    host: str,
    port: int,
    sockets: list[socket.socket] | None = None,
) -> int:
    """Serve until stopped, on `sockets` when the caller bound them (then "serving" is said only
    once the address is ours); the exit code says whether a call had to be abandoned."""

    from vf_mcp.server import VfMcpServer
    from vf_mcp.shutdown import serve_until_stopped

    if not is_loopback(host) and not settings.allowed_hosts:
        _log.warning(
            "Serving on %s, but only loopback Host headers are accepted; set %s to the host "
            "name clients use (DNS-rebinding protection stays on)",
            host,
            ENV_ALLOWED_HOSTS,
        )
    shown = f"[{host}]" if ":" in host else host
    print(f"vf-mcp: serving MCP at http://{shown}:{port}{MCP_PATH}", file=sys.stderr, flush=True)
    if settings.a2a:
        print(
            f"vf-mcp: serving A2A at http://{shown}:{port}/.well-known/agent-card.json",
            file=sys.stderr,
            flush=True,
        )
    app = http_app(server, settings, host=host)
    stopping = server.stopping if isinstance(server, VfMcpServer) else None
    return serve_until_stopped(
        app,
        settings,
        host=host,
        port=port,
        health_path=HEALTH_PATH,
        stopping=stopping,
        sockets=sockets,
    )
