"""The A2A routes: each agent's card and JSON-RPC endpoint, over the server's one `App`.

`vf-mcp --transport http` serves them beside `/mcp` (`vf_mcp.http.build_fronts` hands the front to
the MCP server, whose lifespan opens it over its `App`, and `http_app` mounts its routes);
`vf-mcp a2a` serves them alone (`a2a_app`).

    GET  /.well-known/agent-card.json            the default agent's card (public)
    GET  /.well-known/agent.json                 the same card at its pre-0.3 path (public)
    GET  /a2a/<agent>/.well-known/agent-card.json  agent <agent>'s card (public; also agent.json)
    POST /a2a/<agent>                            its JSON-RPC endpoint, in both dialects

Each endpoint speaks A2A v1.0 (`SendMessage`, ...) and v0.3 (`message/send`, `message/stream`,
`tasks/get`, `tasks/cancel`), through the SDK's own v0.3 compatibility layer over the same request
handler: the same conversations, callers, dedupe and limits whichever a client speaks, and one
conversation can be continued in the other. A request without an `A2A-Version` header is v0.3, as
the SDK and the v0.3 spec read it; the cards carry v0.3's `url` and `protocolVersion` besides
v1.0's `supportedInterfaces`.

The MCP SDK's transport security guards only `/mcp`, so every route here checks the Host and
Origin headers itself, with the same settings (`vf_mcp.web.transport_security`), and the same
request size limit. Bearer tokens are checked in front of everything but the cards by
`vf_mcp.web.BearerTokenGate` (which also names the caller, `vf_mcp.callers`); OAuth tokens by
the MCP SDK's authentication middleware, then here.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Final

from a2a.server.request_handlers.response_helpers import agent_card_to_dict
from a2a.server.routes.jsonrpc_dispatcher import JsonRpcDispatcher
from a2a.utils.constants import AGENT_CARD_WELL_KNOWN_PATH
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.transport_security import (
    DEFAULT_MAX_REQUEST_BODY_SIZE,
    TransportSecurityMiddleware,
)
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from vf_mcp.a2a.caller import CallerContextBuilder
from vf_mcp.a2a.card import agent_card, rpc_path
from vf_mcp.a2a.handler import TurnRequestHandler
from vf_mcp.a2a.parts import MAX_TEXT_CHARS
from vf_mcp.a2a.tasks import ReplyBook, ShelfTaskStore, agent_shelf
from vf_mcp.agents import AgentDirectory
from vf_mcp.app import App
from vf_mcp.config import Settings
from vf_mcp.slow_clients import replay_body
from vf_mcp.web import HEALTH_PATH, guarded, healthz, refusal, transport_security

Endpoint = Callable[[Request], Awaitable[Response]]
_UNSPECIFIED: Final = ("0.0.0.0", "::")  # bound to every address: no one address to name


LEGACY_CARD_PATH: Final = "/.well-known/agent.json"
"""Where A2A clients before v0.3 looked for the card; served as an alias."""
CARD_PATHS: Final = (AGENT_CARD_WELL_KNOWN_PATH, LEGACY_CARD_PATH)
TOO_LARGE: Final = (
    f"The request is over this server's limit of {DEFAULT_MAX_REQUEST_BODY_SIZE} bytes, so it "
    f"was not read: send a shorter message (its text may hold {MAX_TEXT_CHARS} characters)"
)
NOT_SERVING: Final = (
    "This agent is starting or stopping, so it took no request: send it again in a moment"
)


def card_path(agent: str, well_known: str = AGENT_CARD_WELL_KNOWN_PATH) -> str:
    return rpc_path(agent) + well_known


def base_url(request: Request, settings: Settings) -> str:
    """Where clients reach this server: `VF_MCP_PUBLIC_URL`'s origin and path (less the MCP
    endpoint's `/mcp`), else the address the server is bound to."""
    if settings.public_url:
        return settings.public_url.rstrip("/").removesuffix("/mcp")
    server = request.scope.get("server")
    if server and server[0] not in _UNSPECIFIED:
        host, port = str(server[0]), int(server[1])
        shown = f"[{host}]" if _is_v6(host) else host
        return f"http://{shown}:{port}"
    # Bound to every address: the Host header, already checked against the allowed hosts.
    return f"{request.url.scheme}://{request.headers.get('host', 'localhost')}"


def _is_v6(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).version == 6
    except ValueError:
        return False


class A2AFront:
    """The cards and endpoints of every agent; the endpoints answer once `serving` opened them.

    `converses`: whether messages run turns here (else the agents are read-only, and their cards
    offer no skill); whoever composes the fronts decides, by the rules that offer `interact`.
    """

    def __init__(self, settings: Settings, directory: AgentDirectory, *, converses: bool) -> None:
        self.settings = settings
        self.directory = directory
        self.converses = converses
        self._guard = TransportSecurityMiddleware(transport_security(settings))
        self._dispatchers: dict[str, JsonRpcDispatcher] = {}

    @property
    def public_paths(self) -> frozenset[str]:
        """The cards: open to everyone, as discovery needs."""
        return frozenset(path for path, methods, _ in self.endpoints() if methods == ["GET"])

    @property
    def rpc_paths(self) -> frozenset[str]:
        """The JSON-RPC endpoints: what refuses a request there answers a JSON-RPC error, whose
        message the A2A SDKs show (`vf_mcp.web.refusal`)."""
        return frozenset(path for path, methods, _ in self.endpoints() if methods == ["POST"])

    def endpoints(self) -> list[tuple[str, list[str], Endpoint]]:
        default = self._card(self.directory.default)
        found: list[tuple[str, list[str], Endpoint]] = [(p, ["GET"], default) for p in CARD_PATHS]
        for name in self.directory.agents:
            card = self._card(name)
            found += [(card_path(name, well_known), ["GET"], card) for well_known in CARD_PATHS]
            found.append((rpc_path(name), ["POST"], self._rpc(name)))
        return found

    def routes(self) -> list[Route]:
        return [Route(p, endpoint=e, methods=m) for p, m, e in self.endpoints()]

    @asynccontextmanager
    async def serving(self, app: App) -> AsyncIterator[None]:
        """Open every agent's handler over `app`; close them (and their tasks) at the end."""
        handlers: list[TurnRequestHandler] = []
        builder = CallerContextBuilder(self.settings)
        patience = self.settings.timeout + self.settings.retry_deadline
        try:
            for name, agent in self.directory.agents.items():
                shelf = agent_shelf(app, name)
                replies = ReplyBook(shelf, patience_seconds=patience)
                card = agent_card(
                    agent, self.directory, self.settings, base="", converses=self.converses
                )
                handler = TurnRequestHandler(
                    app,
                    name,
                    card=card,
                    tasks=ShelfTaskStore(shelf, replies),
                    replies=replies,
                    converses=self.converses,
                )
                handlers.append(handler)
                # v0.3 beside v1.0 on one endpoint: the SDK's adapter turns v0.3 requests into
                # v1.0 ones for the same handler, so every guarantee holds in both dialects.
                self._dispatchers[name] = JsonRpcDispatcher(
                    handler, context_builder=builder, enable_v0_3_compat=True
                )
            yield
        finally:
            self._dispatchers.clear()
            for handler in handlers:
                await handler.aclose()

    def _card(self, name: str) -> Endpoint:
        agent = self.directory.agents[name]

        async def card(request: Request) -> Response:
            refused = await self._guard.validate_request(request)
            if refused is not None:
                return refused
            base = base_url(request, self.settings)
            built = agent_card(
                agent, self.directory, self.settings, base=base, converses=self.converses
            )
            # The SDK's own rendering: v1.0, plus the v0.3 fields (`url`, `protocolVersion`,
            # ...) that its v0.3 interface adds, for v0.3 clients.
            rendered = agent_card_to_dict(built)
            rendered.setdefault("skills", [])  # read-only: say so, not leave it out
            return JSONResponse(rendered)

        return card

    def _rpc(self, name: str) -> Endpoint:
        async def rpc(request: Request) -> Response:
            refused = await self._guard.validate_request(request, is_post=True)
            if refused is None and self.settings.oauth:
                refused = _oauth_refusal(request, self.settings)
            if refused is not None:
                return refused
            body = await _body(request, DEFAULT_MAX_REQUEST_BODY_SIZE)
            if body is None:
                return refusal(413, "too_large", TOO_LARGE, json_rpc=True)
            dispatcher = self._dispatchers.get(name)
            if dispatcher is None:
                return refusal(503, "unavailable", NOT_SERVING, json_rpc=True)
            return await dispatcher.handle_requests(_replayed(request, body))

        return rpc


def _oauth_refusal(request: Request, settings: Settings) -> Response | None:
    """What the MCP SDK's `RequireAuthMiddleware` answers for `/mcp`, for the A2A endpoints."""
    user = request.scope.get("user")
    if not isinstance(user, AuthenticatedUser):
        error, status = ("invalid_token", "Authentication required"), 401
        line = (
            "This request carried no valid OAuth access token: get one from the authorization "
            f"server {settings.oauth_issuer} and send it as 'Authorization: Bearer <token>'"
        )
    elif missing := sorted(settings.oauth_scopes - set(user.scopes)):
        error, status = ("insufficient_scope", f"Required scope: {missing[0]}"), 403
        line = (
            f"This request's OAuth access token lacks the scope {missing[0]}: get one whose "
            f"scope holds '{' '.join(sorted(settings.oauth_scopes))}' and send it instead"
        )
    else:
        return None
    # The challenge in the MCP SDK's words (OAuth clients read it); the line for the A2A SDKs.
    challenge = f'Bearer error="{error[0]}", error_description="{error[1]}"'
    return refusal(status, error[0], line, json_rpc=True, headers={"WWW-Authenticate": challenge})


async def _body(request: Request, limit: int) -> bytes | None:
    """The request body, or None past `limit` bytes (read no further than that)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


def _replayed(request: Request, body: bytes) -> Request:
    """The request again, its body already read; later reads see the client's disconnect."""
    return Request(request.scope, replay_body(body, request.receive))


def announce(host: str, port: int, directory: AgentDirectory) -> None:
    shown = f"[{host}]" if ":" in host else host
    print(
        f"vf-mcp: serving A2A at http://{shown}:{port}{AGENT_CARD_WELL_KNOWN_PATH} "
        f"(agents: {', '.join(sorted(directory.agents))})",
        file=sys.stderr,
        flush=True,
    )


def a2a_app(settings: Settings, directory: AgentDirectory, *, converses: bool) -> ASGIApp:
    """`vf-mcp a2a`: the A2A routes and `/healthz` alone, with the same access control as
    `/mcp` would have: the bearer-token gate, or the OAuth issuer's tokens."""
    from mcp.server.auth.middleware.auth_context import AuthContextMiddleware
    from mcp.server.auth.middleware.bearer_auth import BearerAuthBackend
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.middleware.authentication import AuthenticationMiddleware

    from vf_mcp.app import open_app
    from vf_mcp.oauth import oauth_parts

    front = A2AFront(settings, directory, converses=converses)
    verifier, auth = oauth_parts(settings)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:
            async with open_app(settings, directory) as app, front.serving(app):
                yield
        finally:
            if verifier is not None:
                await verifier.aclose()

    middleware: list[Middleware] = []
    if verifier is not None and auth is not None:
        audience = auth.resource_server_url if auth.validate_token_resource else None
        backend = BearerAuthBackend(verifier, resource_server_url=audience)
        middleware = [
            Middleware(AuthenticationMiddleware, backend=backend),
            Middleware(AuthContextMiddleware),
        ]
    routes = [Route(HEALTH_PATH, endpoint=healthz, methods=["GET"]), *front.routes()]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
    return guarded(app, settings, front.public_paths, front.rpc_paths)


def serve_a2a(
    settings: Settings,
    directory: AgentDirectory,
    *,
    host: str,
    port: int,
    converses: bool,
    sockets: list[socket.socket] | None = None,
) -> int:
    """Serve until stopped, stopping as `vf_mcp.http.serve_http` does (calls in flight finish
    within the deadline), on `sockets` when the caller bound them; the exit code says whether a
    call had to be abandoned."""
    from vf_mcp.shutdown import serve_until_stopped

    announce(host, port, directory)
    app = a2a_app(settings, directory, converses=converses)
    return serve_until_stopped(
        app, settings, host=host, port=port, health_path=HEALTH_PATH, sockets=sockets
    )
