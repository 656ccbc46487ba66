"""The things a turn is sent through: bare httpx, the floor server and vf-mcp, on each transport.

Every target sends the same turn (a `launch`: the example agent's welcome text and three buttons)
for its own user id, so each call reads and writes the same amount on the runtime's side.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

import httpx
from mcp import Client
from mcp.shared.dispatcher import ProgressFnT

from benchmarks.floor import STREAM_PARAMS, build_floor
from benchmarks.procs import (
    EXAMPLE_KEY,
    EXAMPLE_PROJECT_ID,
    FLOOR,
    VF_MCP,
    child_pids,
    http_server,
    server_env,
    stdio_params,
)
from vf_mcp.config import Settings
from vf_mcp.server import build_server

Kind = Literal["bare", "floor", "vf-mcp"]
Transport = Literal["httpx", "memory", "stdio", "http"]
TRANSPORTS: tuple[Transport, ...] = ("memory", "stdio", "http")


def vf_settings(runtime_url: str, *, stream: bool, key: str = EXAMPLE_KEY) -> Settings:
    raw: dict[str, Any] = {"api_key": key, "runtime_url": runtime_url, "log_level": "WARNING"}
    if stream:
        raw["project_id"] = EXAMPLE_PROJECT_ID
    return Settings.validated(raw)


@dataclass
class Target:
    kind: Kind
    transport: Transport
    stream: bool
    call: Callable[..., Awaitable[Any]]
    """One turn: the vf-mcp `interact` arguments (floor targets translate them)."""
    pid: int | None = None
    """The server process (stdio and HTTP targets), for its CPU time."""
    calls: int = 0

    @property
    def name(self) -> str:
        return f"{self.kind} {self.transport} {'stream' if self.stream else 'plain'}"

    async def timed(self, arguments: dict[str, Any]) -> float:
        started = time.perf_counter()
        await self.call(arguments)
        self.calls += 1
        return (time.perf_counter() - started) * 1000


def _check(result: Any) -> Any:
    if getattr(result, "is_error", False):
        text = " ".join(getattr(block, "text", "") for block in result.content)
        raise RuntimeError(f"tool call failed: {text[:300]}")
    return result


def vf_call(client: Client) -> Callable[..., Awaitable[Any]]:
    async def call(arguments: dict[str, Any], progress: ProgressFnT | None = None) -> Any:
        return _check(await client.call_tool("interact", arguments, progress_callback=progress))

    return call


def floor_call(client: Client, *, stream: bool) -> Callable[..., Awaitable[Any]]:
    async def call(arguments: dict[str, Any], progress: ProgressFnT | None = None) -> Any:
        floor_arguments = {
            "user_id": arguments["user_id"],
            "action": floor_action(arguments),
            "stream": stream,
        }
        return _check(
            await client.call_tool("interact", floor_arguments, progress_callback=progress)
        )

    return call


def floor_action(arguments: dict[str, Any]) -> dict[str, Any]:
    """The runtime action a vf-mcp `interact` call sends (launch, message or raw action)."""
    if arguments.get("launch"):
        return {"type": "launch"}
    if "message" in arguments:
        return {"type": "text", "payload": arguments["message"]}
    return dict(arguments["action"])


def bare_call(http: httpx.AsyncClient, *, stream: bool) -> Callable[..., Awaitable[Any]]:
    """The same runtime request, straight from httpx (the baseline every overhead is taken from)."""

    async def call(
        arguments: dict[str, Any], on_first_trace: Callable[[], None] | None = None
    ) -> Any:
        user_id, action = arguments["user_id"], floor_action(arguments)
        if not stream:
            response = await http.post(
                f"/state/user/{user_id}/interact",
                params={"verbose": "true"},
                json={"action": action},
                headers={"versionID": "development"},
            )
            response.raise_for_status()
            return response.content
        path = f"/v2/project/{EXAMPLE_PROJECT_ID}/user/{user_id}/interact/stream"
        frames = 0
        async with http.stream("POST", path, params=STREAM_PARAMS, json={"action": action}) as r:
            r.raise_for_status()
            async for line in r.aiter_lines():
                if line.startswith("event: trace") and frames == 0 and on_first_trace:
                    on_first_trace()
                if line.startswith("data:"):
                    frames += 1
        return frames

    return call


def bare_http(runtime_url: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=runtime_url, headers={"Authorization": EXAMPLE_KEY})


@asynccontextmanager
async def open_targets(
    runtime_url: str, transports: tuple[Transport, ...] = TRANSPORTS
) -> AsyncIterator[dict[str, Target]]:
    """Every target, connected and ready, by name (e.g. "vf-mcp stdio plain")."""
    targets: dict[str, Target] = {}

    def add(kind: Kind, transport: Transport, stream: bool, call: Any, pid: int | None) -> None:
        target = Target(kind, transport, stream, call, pid)
        targets[target.name] = target

    async with AsyncExitStack() as stack:
        http = await stack.enter_async_context(bare_http(runtime_url))
        add("bare", "httpx", False, bare_call(http, stream=False), None)
        add("bare", "httpx", True, bare_call(http, stream=True), None)
        for transport in transports:
            for stream in (False, True):
                # One server per target, so each one's CPU time is its own. The floor always
                # knows the project id; its `stream` argument picks the endpoint.
                floor, pid = await stack.enter_async_context(
                    _client(
                        transport,
                        FLOOR,
                        server_env(runtime_url, stream=True),
                        runtime_url,
                        floor=True,
                    )
                )
                add("floor", transport, stream, floor_call(floor, stream=stream), pid)
                env = server_env(runtime_url, stream=stream)
                ours, pid = await stack.enter_async_context(
                    _client(transport, VF_MCP, env, runtime_url, stream=stream)
                )
                add("vf-mcp", transport, stream, vf_call(ours), pid)
        yield targets


def _client(
    transport: Transport,
    module: tuple[str, ...],
    env: dict[str, str],
    runtime_url: str,
    *,
    floor: bool = False,
    stream: bool = False,
) -> AbstractAsyncContextManager[tuple[Client, int | None]]:
    """An async context manager yielding a connected `mcp.Client` and the server's pid."""

    @asynccontextmanager
    async def connect() -> AsyncIterator[tuple[Client, int | None]]:
        if transport == "memory":
            server = (
                build_floor(runtime_url, EXAMPLE_KEY, EXAMPLE_PROJECT_ID)
                if floor
                else build_server(vf_settings(runtime_url, stream=stream))
            )
            async with Client(server) as client:
                yield client, None
        elif transport == "stdio":
            before = child_pids()
            async with Client(stdio_params(module, env)) as client:
                spawned = child_pids() - before
                yield client, spawned.pop() if len(spawned) == 1 else None
        else:
            with http_server(module, env) as (url, pid):
                async with Client(url) as client:
                    yield client, pid

    return connect()
