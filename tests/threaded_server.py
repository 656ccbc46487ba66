"""Run an ASGI app under uvicorn in a background thread, so a test can look inside its loop."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import uvicorn

from vf_mcp.shutdown import KEEP_ALIVE_SECONDS

T = TypeVar("T")


class _ReadyServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, ready: threading.Event) -> None:
        super().__init__(config)
        self.ready = ready
        self.loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self.loop = asyncio.get_running_loop()
        try:
            await super().startup(sockets=sockets)
        finally:
            self.ready.set()


class ThreadedServer:
    def __init__(self, server: _ReadyServer, url: str) -> None:
        self._server = server
        self.url = url

    @property
    def open_connections(self) -> int:
        """TCP connections the server holds now (idle keep-alives included)."""
        return len(self._server.server_state.connections)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        """Run `coro` on the server's loop and return its result (from the test's thread)."""
        assert self._server.loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._server.loop).result(timeout)


@contextmanager
def serve_in_thread(app: Any) -> Iterator[ThreadedServer]:
    # IPPROTO_TCP so asyncio sets TCP_NODELAY on accepted sockets (no Nagle stalls).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    ready = threading.Event()
    # Idle connections kept as the product keeps them (`vf-mcp --transport http`).
    config = uvicorn.Config(app, log_config=None, log_level="warning", access_log=False,
                            timeout_keep_alive=KEEP_ALIVE_SECONDS)  # fmt: skip
    server = _ReadyServer(config, ready)
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    if not ready.wait(15) or not server.started:
        raise RuntimeError("the server did not start")
    try:
        yield ThreadedServer(server, f"http://127.0.0.1:{port}")
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()
