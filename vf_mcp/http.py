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
import json
import logging
import sys
from typing import Any

from mcp.server import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from vf_mcp import __version__
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


class BearerTokenGate:
    """Refuse any request but the public paths without one of the configured bearer tokens."""

    def __init__(
        self,
        app: ASGIApp,
        tokens: tuple[str, ...],
        *,
        public_paths: frozenset[str] = frozenset({HEALTH_PATH}),
    ) -> None:
        self._app = app
        self._tokens = tuple(token.encode() for token in tokens)
        # The health check, and the A2A Agent Cards (public by design: discovery needs them).
        self._public = public_paths | {HEALTH_PATH}

    def _accepts(self, header: bytes) -> bool:
        scheme, _, token = header.partition(b" ")
        if scheme.lower() != b"bearer" or not token:
            return False
        # Compare with every token, without stopping early, so timing tells nothing.
        matched = False
        for candidate in self._tokens:
            matched |= hmac.compare_digest(candidate, token.strip())
        return matched

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in self._public:
            await self._app(scope, receive, send)
            return
        header = dict(scope.get("headers") or []).get(b"authorization", b"")
        if self._accepts(header):
            await self._app(scope, receive, send)
            return
        body = json.dumps(
            {
                "error": "unauthorized",
                "error_description": "Send 'Authorization: Bearer <token>' with one of the "
                "tokens configured in VF_MCP_AUTH_TOKENS",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"www-authenticate", b'Bearer realm="vf-mcp"'),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


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
    if settings.auth_tokens and not settings.oauth:
        tokens = tuple(t.get_secret_value() for t in settings.auth_tokens)
        app = BearerTokenGate(app, tokens, public_paths=public)
    return app


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


def serve_http(server: MCPServer[Any], settings: Settings, *, host: str, port: int) -> int:
    """Serve until stopped; the exit code says whether a call had to be abandoned."""

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
        app, settings, host=host, port=port, health_path=HEALTH_PATH, stopping=stopping
    )
