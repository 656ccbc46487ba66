"""Streamable HTTP serving: the MCP endpoint at /mcp and the A2A agent beside it (`vf_mcp.a2a`,
unless `VF_MCP_A2A=false`), over one `App`, behind the checks every HTTP front shares
(`vf_mcp.web`: the Host and Origin rules, the token gate, the open /healthz).

This is where the two front ends meet, by composition: `build_fronts` builds the A2A front first
and hands it to the MCP server as a companion its lifespan opens over the `App`; `http_app`
mounts both. Neither front end imports the other.
"""

from __future__ import annotations

import logging
import socket
import sys
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from vf_mcp.agents import AgentDirectory, single_agent
from vf_mcp.app import App
from vf_mcp.config import ENV_ALLOWED_HOSTS, Settings
from vf_mcp.server import VfMcpServer, build_server
from vf_mcp.store import Store
from vf_mcp.tools import offered_tools
from vf_mcp.voiceflow.client import VoiceflowClient
from vf_mcp.web import HEALTH_PATH, guarded, healthz, is_loopback, transport_security

MCP_PATH = "/mcp"
_log = logging.getLogger(__name__)
Endpoint = Callable[[Request], Awaitable[Response]]


class Front(Protocol):
    """A front end served beside /mcp: its routes, which of them are public (no token), which
    speak JSON-RPC (a refusal there is a JSON-RPC error), and what it opens over the MCP server's
    `App` for the server's life (`vf_mcp.a2a.app.A2AFront`)."""

    @property
    def public_paths(self) -> frozenset[str]: ...

    @property
    def rpc_paths(self) -> frozenset[str]: ...

    def endpoints(self) -> list[tuple[str, list[str], Endpoint]]: ...

    def serving(self, app: App) -> AbstractAsyncContextManager[None]: ...


@dataclass(frozen=True)
class Fronts:
    """What one HTTP server serves: the MCP server, and the fronts beside it."""

    mcp: VfMcpServer
    beside: Sequence[Front] = ()


def build_fronts(
    settings: Settings,
    *,
    agents: AgentDirectory | None = None,
    client: VoiceflowClient | None = None,
    store: Store | None = None,
    heartbeat_seconds: float | None = None,
) -> Fronts:
    """The MCP server (`build_server`'s arguments) and, unless `VF_MCP_A2A=false`, the A2A
    agent over its `App`."""
    directory = agents or single_agent(settings)
    beside: list[Front] = []
    if settings.a2a:
        # Imported only when served: a stdio start never loads the A2A SDK.
        from vf_mcp.a2a.app import A2AFront

        # The rules that offer the `interact` tool (read-only mode, the allow-list) choose the
        # A2A skill too.
        offered = offered_tools(settings, several_agents=len(directory.agents) > 1)
        beside.append(A2AFront(settings, directory, converses="interact" in offered))
    server = build_server(
        settings,
        agents=directory,
        client=client,
        store=store,
        heartbeat_seconds=heartbeat_seconds,
        companions=[front.serving for front in beside],
    )
    return Fronts(server, beside)


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


def http_app(fronts: Fronts, settings: Settings, *, host: str = "127.0.0.1") -> ASGIApp:
    """The ASGI app: stateless streamable HTTP (the conversation handle is `user_id`, not the
    transport session), DNS-rebinding protection, the fronts beside /mcp, and the token gate when
    tokens are set."""
    server = fronts.mcp
    server.custom_route(HEALTH_PATH, methods=["GET"])(healthz)
    public = frozenset({HEALTH_PATH})
    rpc: frozenset[str] = frozenset()
    for front in fronts.beside:
        for path, methods, endpoint in front.endpoints():
            server.custom_route(path, methods=methods)(endpoint)
        public |= front.public_paths
        rpc |= front.rpc_paths
    app: ASGIApp = server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        stateless_http=True,
        host=host,
        transport_security=transport_security(settings),
    )
    return guarded(NoStandaloneStream(app), settings, public, rpc)


def serve_http(
    fronts: Fronts,
    settings: Settings,
    *,
    host: str,
    port: int,
    sockets: list[socket.socket] | None = None,
) -> int:
    """Serve until stopped, on `sockets` when the caller bound them (then "serving" is said only
    once the address is ours); the exit code says whether a call had to be abandoned."""
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
    if fronts.beside:
        print(
            f"vf-mcp: serving A2A at http://{shown}:{port}/.well-known/agent-card.json",
            file=sys.stderr,
            flush=True,
        )
    app = http_app(fronts, settings, host=host)
    return serve_until_stopped(
        app,
        settings,
        host=host,
        port=port,
        health_path=HEALTH_PATH,
        stopping=fronts.mcp.stopping,
        sockets=sockets,
    )
