"""A worker's orderly stop: on SIGTERM let the load balancer move away (the drain), stop taking
calls, let those in flight finish within a deadline, close the clients, and say by the exit code
whether any call had to be abandoned.

uvicorn already stops accepting, waits for open requests (`timeout_graceful_shutdown`) and runs
the lifespan's shutdown (which closes the clients); what it does not know is which requests
were cut, and it re-raises the signal afterwards, so the process always dies "by SIGTERM".
`CallsInFlight` counts what was cut and `OrderlyServer` keeps the exit code ours.

Closing the listening socket at once is not enough behind a balancer: connections it opened a
moment before (still in the kernel's accept queue, or accepted with the request not yet read) are
reset, and their clients cannot tell whether the turn ran. So SIGTERM first fails the health
check (`VF_MCP_SHUTDOWN_DRAIN` seconds, serving as usual), and only then stops taking calls.
The same event tells the app it is stopping (`App.stopping`): it starts no new background run,
since those still going are stopped when the drain ends.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Iterator
from types import FrameType

import anyio
import uvicorn
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vf_mcp.config import Settings

_log = logging.getLogger(__name__)
EXIT_ABANDONED = 1
EXIT_STARTUP_FAILURE = 3  # uvicorn's own code for a server that never started
KEEP_ALIVE_SECONDS = 75
"""How long an idle client connection stays open. Longer than clients' own idle expiry (httpx and
the SDKs built on it: 5 s, Node's undici: 4 s) and than balancers' idle timeouts (60 s is
common), so the client, never the server, closes an idle connection: a server closing it races
the client's next request on it, which then fails with a read error, and a POST is not resent.
uvicorn's default of 5 s is exactly httpx's, so that race is a real one."""


class CallsInFlight:
    """Pure ASGI: counts HTTP requests being answered, and those cut before their answer ended."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.active = 0
        self.abandoned = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        answered = False

        async def watched(message: Message) -> None:
            nonlocal answered
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                answered = True

        self.active += 1
        try:
            await self.app(scope, receive, watched)
        except anyio.get_cancelled_exc_class():
            if not answered:
                self.abandoned += 1
            raise
        finally:
            self.active -= 1


class HealthWhileStopping:
    """Pure ASGI: once the worker is draining, the health path answers 503, everything else as
    usual, so the balancer stops sending new calls here while those it sent are still served."""

    def __init__(
        self, app: ASGIApp, health_path: str, draining: threading.Event | None = None
    ) -> None:
        self.app = app
        self.health_path = health_path
        # Set from the signal handler, read on the loop (and by the app given the same event).
        self.draining = draining or threading.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        stopping = self.draining.is_set() and scope["type"] == "http"
        if not stopping or scope["path"] != self.health_path:
            await self.app(scope, receive, send)
            return
        await JSONResponse({"status": "stopping"}, status_code=503)(scope, receive, send)


class OrderlyServer(uvicorn.Server):
    """uvicorn's server, draining first on SIGTERM and not re-raising the stop signal once it
    has stopped in order."""

    def __init__(
        self,
        config: uvicorn.Config,
        calls: CallsInFlight,
        health: HealthWhileStopping,
        drain: float,
    ) -> None:
        from sse_starlette.sse import AppStatus

        super().__init__(config)
        self._calls = calls
        self._health = health
        self._drain = drain
        # sse-starlette (under the SDK's streamed answers) ends every SSE response as soon as the
        # stop signal comes, cutting the very turns we mean to let finish. No stream here is
        # long-lived (GET /mcp is answered 405: `vf_mcp.http.NoStandaloneStream`), so each
        # answer ends by itself, or at uvicorn's deadline.
        AppStatus.disable_automatic_graceful_drain()  # type: ignore[no-untyped-call]

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        handled = (signal.SIGINT, signal.SIGTERM)
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in handled}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        # Ctrl-C, or a second signal during the drain, stops taking calls at once.
        if sig == signal.SIGTERM and self._drain > 0 and not self._health.draining.is_set():
            self._health.draining.set()
            _log.warning(
                "stopping (SIGTERM): %s answers 503 for %g s so the balancer moves new calls "
                "elsewhere; calls are served as usual meanwhile",
                self._health.health_path,
                self._drain,
            )
            # uvicorn polls should_exit from its loop, so setting it from a timer thread is safe.
            timer = threading.Timer(self._drain, self._stop_taking_calls, args=(sig,))
            timer.daemon = True
            timer.start()
            return
        self._stop_taking_calls(sig)

    def _stop_taking_calls(self, sig: int) -> None:
        self._health.draining.set()  # with no drain too: the app starts nothing new from now
        if not self.should_exit:
            _log.warning(
                "stopping (%s): no new calls; %d call(s) in flight get up to %g s to finish",
                signal.Signals(sig).name,
                self._calls.active,
                self.config.timeout_graceful_shutdown or 0,
            )
        super().handle_exit(sig, None)

    def exit_code(self) -> int:
        """0 after an orderly stop; `EXIT_ABANDONED` when a call was cut at the deadline."""
        if not self.started:
            return EXIT_STARTUP_FAILURE
        if self._calls.abandoned:
            _log.error(
                "stopped with %d call(s) abandoned at the shutdown deadline: their turns may "
                "have run without an answer reaching the client",
                self._calls.abandoned,
            )
            return EXIT_ABANDONED
        return 0


def uvicorn_config(app: ASGIApp, settings: Settings, *, host: str, port: int) -> uvicorn.Config:
    """How every HTTP front is served: our logging, the stop deadline, long idle keep-alive, and
    bounds on slow clients (`vf_mcp.slow_clients`: headers and body within a deadline, a cap on
    connections)."""
    from vf_mcp.slow_clients import BodyDeadline, header_deadline_protocol

    # log_config=None: uvicorn's own handlers would bypass our one-line, key-masking handler.
    return uvicorn.Config(
        BodyDeadline(app, settings.http_read_timeout),
        host=host,
        port=port,
        http=header_deadline_protocol(settings.http_read_timeout),
        limit_concurrency=settings.http_max_connections,
        log_config=None,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=max(1, round(settings.shutdown_deadline)),
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )


def serve_until_stopped(
    app: ASGIApp,
    settings: Settings,
    *,
    host: str,
    port: int,
    health_path: str,
    stopping: threading.Event | None = None,
    sockets: list[socket.socket] | None = None,
) -> int:
    """Serve `app` with uvicorn until a signal stops it in order; the exit code says whether a
    call in flight had to be abandoned. `stopping` is set once the worker begins to stop;
    `sockets`, bound already, are served instead of binding `host:port`."""
    health = HealthWhileStopping(app, health_path, stopping)
    calls = CallsInFlight(health)
    config = uvicorn_config(calls, settings, host=host, port=port)
    runner = OrderlyServer(config, calls, health, settings.shutdown_drain)
    runner.run(sockets=sockets)
    return runner.exit_code()
