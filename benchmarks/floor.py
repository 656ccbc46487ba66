"""The floor: a hello-world `MCPServer` whose one tool makes the same runtime call vf-mcp makes.

It does nothing a real server must do (no parsing, no summary, no structured content): the raw
answer goes back as text. What a turn costs through it, minus the bare HTTP call, is what the MCP
SDK itself costs; vf-mcp's added time is compared with that.

``python -m benchmarks.floor [--transport stdio|http] [--port N]`` serves it like ``vf-mcp``
serves, from the same environment variables (VOICEFLOW_API_KEY, VOICEFLOW_RUNTIME_URL,
VOICEFLOW_PROJECT_ID).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from mcp.server import MCPServer
from mcp.server.mcpserver import Context

STREAM_PARAMS = {"environment": "development", "completion_events": "true", "state": "true"}
"""The query vf-mcp sends on a streamed turn, so the floor streams the same frames."""


def build_floor(runtime_url: str, api_key: str, project_id: str | None = None) -> MCPServer[Any]:
    @asynccontextmanager
    async def lifespan(_: MCPServer[Any]) -> AsyncIterator[httpx.AsyncClient]:
        async with httpx.AsyncClient(
            base_url=runtime_url, headers={"Authorization": api_key}
        ) as http:
            yield http

    mcp: MCPServer[Any] = MCPServer("floor", lifespan=lifespan, log_level="WARNING")

    @mcp.tool(structured_output=False)
    async def interact(
        ctx: Context[Any], user_id: str, action: dict[str, Any], stream: bool = False
    ) -> str:
        """Send one action to the runtime and return its raw answer."""
        http: httpx.AsyncClient = ctx.request_context.lifespan_context
        if not stream:
            response = await http.post(
                f"/state/user/{user_id}/interact",
                params={"verbose": "true"},
                json={"action": action},
                headers={"versionID": "development"},
            )
            response.raise_for_status()
            return response.text
        frames: list[str] = []
        path = f"/v2/project/{project_id}/user/{user_id}/interact/stream"
        async with http.stream(
            "POST", path, params=STREAM_PARAMS, json={"action": action}
        ) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    if not frames:
                        await ctx.report_progress(1, None, "first trace")
                    frames.append(line[5:])
        return "[" + ",".join(frames) + "]"

    return mcp


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.floor")
    parser.add_argument("--transport", choices=("stdio", "http"), default="stdio")
    parser.add_argument("--port", type=int, default=8766)
    args = parser.parse_args()
    server = build_floor(
        os.environ["VOICEFLOW_RUNTIME_URL"],
        os.environ["VOICEFLOW_API_KEY"],
        os.environ.get("VOICEFLOW_PROJECT_ID"),
    )
    if args.transport == "stdio":
        server.run()
        return
    import uvicorn
    from starlette.requests import Request
    from starlette.responses import JSONResponse

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    server.custom_route("/healthz", methods=["GET"])(healthz)

    app = server.streamable_http_app(streamable_http_path="/mcp", stateless_http=True)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_config=None, log_level="warning")


if __name__ == "__main__":
    main()
