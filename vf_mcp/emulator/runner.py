"""Serving the emulator: uvicorn on loopback in a background thread with its own event loop."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import uvicorn

from .addresses import shown_host
from .agent import AgentDefinition, default_agent, load_agent
from .app import create_app
from .core import EmulatorCore
from .faults import FaultRegistry
from .options import RouteSet, StateSemantics
from .recording import RecordedRequest, RecordedSessionEvent
from .sessions import DEFAULT_SESSION_TTL_S, SessionBinding

STARTUP_TIMEOUT_S = 10.0
SHUTDOWN_TIMEOUT_S = 10.0
_CUT_STREAM_LOG = "ASGI callable returned without completing response."

AgentSource = AgentDefinition | str | Path


class _QuietCutStreams(logging.Filter):
    # A cut-stream fault leaves its response unfinished on purpose; uvicorn reports that as an
    # error, which would be noise in every test run that injects the fault.
    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != _CUT_STREAM_LOG


def _install_log_filter() -> None:
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietCutStreams) for f in logger.filters):
        logger.addFilter(_QuietCutStreams())


class _NotifyingServer(uvicorn.Server):
    """Sets an event once listening (or once startup has failed) so callers need no polling."""

    def __init__(self, config: uvicorn.Config, ready: threading.Event) -> None:
        super().__init__(config)
        self._ready = ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets=sockets)
        finally:
            self._ready.set()


class Emulator:
    """A Voiceflow-compatible runtime serving the given agents (default: the example agent)."""

    def __init__(
        self,
        agents: Sequence[AgentSource] | None = None,
        *,
        session_ttl_seconds: float = DEFAULT_SESSION_TTL_S,
        state_semantics: StateSemantics = "recorded",
        routes: RouteSet = "hosted",
    ) -> None:
        loaded = [a if isinstance(a, AgentDefinition) else load_agent(a) for a in agents or ()]
        self._core = EmulatorCore(
            loaded or [default_agent()],
            session_ttl_seconds=session_ttl_seconds,
            state_semantics=state_semantics,
            routes=routes,
        )
        self.app = create_app(self._core)
        self._core.drop_connection = self._drop_connection
        self._server: _NotifyingServer | None = None
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None
        self._ready = threading.Event()
        self._url: str | None = None

    @property
    def agents(self) -> tuple[AgentDefinition, ...]:
        return self._core.agents

    @property
    def faults(self) -> FaultRegistry:
        return self._core.faults

    @property
    def open_streams(self) -> int:
        """SSE responses still being written (a client that went away brings this back to 0)."""
        return self._core.open_streams

    def wait_for_streams_closed(self, timeout: float = 10.0) -> bool:
        """Wait until every SSE response has finished or seen its client go; False on timeout."""
        return self._core.wait_for_streams_closed(timeout)

    def _drop_connection(self, port: int) -> None:
        """Close the connection from `port` at once (called on the server's own loop)."""
        server = self._server
        for connection in list(server.server_state.connections) if server else ():
            transport = getattr(connection, "transport", None)
            peer = transport.get_extra_info("peername") if transport is not None else None
            if transport is not None and peer and peer[1] == port:
                transport.close()

    @property
    def open_connections(self) -> int:
        """TCP connections the server holds now (idle keep-alives included)."""
        server = self._server
        return len(server.server_state.connections) if server is not None else 0

    def wait_for_connections(self, at_most: int, timeout: float = 10.0) -> bool:
        """Wait until the server holds at most `at_most` connections; False on timeout.

        uvicorn offers no notification when a connection closes, so this polls (every 10 ms).
        """
        deadline = time.monotonic() + timeout
        while self.open_connections > at_most:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    @property
    def requests(self) -> list[RecordedRequest]:
        return self._core.recorder.requests

    def wait_for_requests(self, count: int, path_contains: str = "", timeout: float = 10.0) -> bool:
        """Wait until `count` requests with `path_contains` in their path came; False on timeout."""
        return self._core.recorder.wait_for_requests(count, path_contains, timeout)

    @property
    def session_events(self) -> list[RecordedSessionEvent]:
        return self._core.recorder.session_events

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the emulator is not running; call start() first")
        return self._url

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    @property
    def state_semantics(self) -> StateSemantics:
        """``"recorded"`` (the open-source runtime's state routes) or ``"hosted"``."""
        return self._core.state_semantics

    @property
    def routes(self) -> RouteSet:
        """``"hosted"`` (every route) or ``"open-source"`` (only the open-source runtime's)."""
        return self._core.routes

    @property
    def session_ttl_seconds(self) -> float:
        """How long a v4 session key stays valid after session start."""
        return self._core.sessions.ttl_seconds

    def session_for_key(self, session_key: str) -> SessionBinding | None:
        """What a live v4 session key is bound to (project, user, environment); else None."""
        return self._core.sessions.resolve(session_key)

    def expire_session_keys(self) -> int:
        """Expire every live v4 session key now (tests need no sleeps); returns how many."""
        return self._core.sessions.expire_all()

    def state(self, user_id: str, project_id: str | None = None) -> dict[str, Any] | None:
        """The stored state of a user (of the first agent unless ``project_id`` is given)."""
        return self._core.store.get(project_id or self.agents[0].project_id, user_id)

    def reset(self) -> None:
        """Forget all conversation state, v4 session keys, faults and recordings."""
        self._core.reset()

    def start(self, port: int = 0, host: str = "127.0.0.1") -> Self:
        if self._thread is not None:
            raise RuntimeError("the emulator is already running")
        # Binding here surfaces "address in use" in the caller's thread and tells us port 0's pick.
        # proto must be IPPROTO_TCP: asyncio only sets TCP_NODELAY on accepted sockets whose
        # proto says TCP, and without it every response pays a ~40 ms Nagle/delayed-ACK stall.
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
        _install_log_filter()
        config = uvicorn.Config(
            self.app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=5,
        )
        ready = threading.Event()
        self._server = _NotifyingServer(config, ready)
        self._ready = ready
        self._thread = threading.Thread(
            target=self._serve, args=(sock,), name="vf-emulator", daemon=True
        )
        self._thread.start()
        if not ready.wait(STARTUP_TIMEOUT_S) or not self._server.started:
            self.stop()
            raise RuntimeError("the emulator failed to start") from self._failure
        self._url = f"http://{shown_host(host)}:{sock.getsockname()[1]}"
        return self

    def _serve(self, sock: socket.socket) -> None:
        assert self._server is not None
        try:
            asyncio.run(self._server.serve(sockets=[sock]))
        except BaseException as exc:  # recorded for start(); a thread has nowhere to raise to
            self._failure = exc
        finally:
            sock.close()
            self._ready.set()  # wake start() even when serving failed before startup

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(SHUTDOWN_TIMEOUT_S)
        if thread.is_alive():
            server.force_exit = True
            thread.join(SHUTDOWN_TIMEOUT_S)
        self._server = self._thread = None
        self._url = None

    def __enter__(self) -> Self:
        if self._thread is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


@contextmanager
def running_emulator(
    agents: Sequence[AgentSource] | None = None,
    *,
    port: int = 0,
    host: str = "127.0.0.1",
    session_ttl_seconds: float = DEFAULT_SESSION_TTL_S,
    state_semantics: StateSemantics = "recorded",
    routes: RouteSet = "hosted",
) -> Iterator[Emulator]:
    """Serve ``agents`` on ``host:port`` (0 = any free port) for the duration of the block.

    ``state_semantics`` and ``routes`` choose between the recorded open-source runtime and the
    hosted service where they differ (see :mod:`vf_mcp.emulator.options`).
    """
    emulator = Emulator(
        agents,
        session_ttl_seconds=session_ttl_seconds,
        state_semantics=state_semantics,
        routes=routes,
    )
    emulator.start(port=port, host=host)
    try:
        yield emulator
    finally:
        emulator.stop()


def serve(
    port: int = 0,
    agent_paths: Sequence[str | Path] = (),
    host: str = "127.0.0.1",
    *,
    session_ttl_seconds: float = DEFAULT_SESSION_TTL_S,
    state_semantics: StateSemantics = "recorded",
    routes: RouteSet = "hosted",
) -> None:
    """Serve in the foreground until SIGINT or SIGTERM.

    The first stdout line announces the address, so a parent process can read the chosen port.
    """
    emulator = Emulator(
        list(agent_paths) or None,
        session_ttl_seconds=session_ttl_seconds,
        state_semantics=state_semantics,
        routes=routes,
    )
    stop = threading.Event()
    previous: dict[signal.Signals, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, lambda *_: stop.set())
    try:
        emulator.start(port=port, host=host)
        print(f"Voiceflow emulator listening on {emulator.url}", flush=True)
        stop.wait()
    finally:
        emulator.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
