"""A worker's orderly stop: on SIGTERM stop taking calls, let those in flight finish within a
deadline, close the clients, and say by the exit code whether any call had to be abandoned.

uvicorn already stops accepting, waits for open requests (`timeout_graceful_shutdown`) and runs
the lifespan's shutdown (which closes the clients); what it does not know is which requests
were cut, and it re-raises the signal afterwards, so the process always dies "by SIGTERM".
`CallsInFlight` counts what was cut and `OrderlyServer` keeps the exit code ours.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from types import FrameType

import anyio
import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vf_mcp.config import Settings

_log = logging.getLogger(__name__)
EXIT_ABANDONED = 1
EXIT_STARTUP_FAILURE = 3  # uvicorn's own code for a server that never started


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


class OrderlyServer(uvicorn.Server):
    """uvicorn's server, minus re-raising the stop signal once it has stopped in order."""

    def __init__(self, config: uvicorn.Config, calls: CallsInFlight) -> None:
        from sse_starlette.sse import AppStatus

        super().__init__(config)
        self._calls = calls
        # sse-starlette (under the SDK's streamed answers) ends every SSE response as soon as the
        # stop signal comes, cutting the very turns we mean to let finish. Stateless MCP has no
        # long-lived streams, so each answer ends by itself, or at uvicorn's deadline.
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
        if not self.should_exit:
            _log.warning(
                "stopping (%s): no new calls; %d call(s) in flight get up to %g s to finish",
                signal.Signals(sig).name,
                self._calls.active,
                self.config.timeout_graceful_shutdown or 0,
            )
        super().handle_exit(sig, frame)

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


def serve_until_stopped(app: ASGIApp, settings: Settings, *, host: str, port: int) -> int:
    """Serve `app` with uvicorn until a signal stops it in order; the exit code says whether a
    call in flight had to be abandoned."""
    calls = CallsInFlight(app)
    # log_config=None: uvicorn's own handlers would bypass our one-line, key-masking handler.
    config = uvicorn.Config(
        calls,
        host=host,
        port=port,
        log_config=None,
        log_level=settings.log_level.lower(),
        timeout_graceful_shutdown=max(1, round(settings.shutdown_deadline)),
    )
    runner = OrderlyServer(config, calls)
    runner.run()
    return runner.exit_code()
