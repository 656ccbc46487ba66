"""Streamable HTTP serving: the MCP endpoint at /mcp plus an unauthenticated /healthz."""

from __future__ import annotations

from typing import Any

from mcp.server import MCPServer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from vf_mcp import __version__

MCP_PATH = "/mcp"


def http_app(server: MCPServer[Any], *, host: str = "127.0.0.1") -> Starlette:
    """The ASGI app: stateless streamable HTTP (the conversation handle is `user_id`, not the
    transport session), with the SDK's DNS-rebinding protection for loopback hosts."""

    @server.custom_route("/healthz", methods=["GET"])
    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok", "version": __version__})

    return server.streamable_http_app(streamable_http_path=MCP_PATH, stateless_http=True, host=host)


def serve_http(server: MCPServer[Any], *, host: str, port: int, log_level: str) -> None:
    import uvicorn

    # log_config=None: uvicorn's own handlers would bypass our one-line, key-masking handler.
    uvicorn.run(
        http_app(server, host=host),
        host=host,
        port=port,
        log_config=None,
        log_level=log_level.lower(),
    )
