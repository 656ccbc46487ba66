"""The streaming response: one SSE frame per trace, written as soon as it is produced."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable, Iterator

from starlette.background import BackgroundTask
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .engine import Emission, Pause, State, Trace, Turn
from .wire import dumps_raw_controls, sse_frame


class TurnStream(Response):
    """Runs a :class:`Turn` while streaming it.

    ``cut_after`` (a fault) closes the connection after that many frames without the final
    ``end`` event and without finishing the chunked body, like a dropped connection. The turn
    is still run to the end and its state saved, as the real runtime finishes a turn whose
    client went away.

    ``end_data`` is the final ``end`` frame's data line: v2 sends none, v4 sends ``{}``.
    """

    def __init__(
        self,
        turn: Turn,
        *,
        save_state: Callable[[State], None],
        on_open: Callable[[int], None] = lambda _: None,
        is_visible: Callable[[Trace], bool],
        include_state: bool = False,
        cut_after: int | None = None,
        frame_delay_ms: int = 0,
        end_data: str | None = None,
        on_traces: Callable[[list[Trace]], None] = lambda _: None,
    ) -> None:
        self.status_code = 200
        self.media_type = None
        self.background: BackgroundTask | None = None
        self.init_headers({"content-type": "text/event-stream", "cache-control": "no-cache"})
        self._turn = turn
        self._emissions: Iterator[Emission] = turn.emissions()
        self._save_state = save_state
        self._is_visible = is_visible
        self._include_state = include_state
        self._cut_after = cut_after
        self._frame_delay = frame_delay_ms / 1000
        self._saved = False
        self._on_open = on_open
        self._end_data = end_data
        self._on_traces = on_traces
        # Every trace the turn emitted, shown or not: what its transcript logs.
        self._emitted: list[Trace] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        frames = self._frames()
        sent = 0
        self._on_open(+1)
        try:
            async for frame, is_end in frames:
                if self._cut_after is not None and (is_end or sent >= self._cut_after):
                    return  # leave the body unfinished: uvicorn drops the connection
                if sent and self._frame_delay:
                    await asyncio.sleep(self._frame_delay)
                await send({"type": "http.response.body", "body": frame, "more_body": True})
                sent += 1
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            return  # the client disconnected
        finally:
            self._on_open(-1)
            await frames.aclose()
            self._finish_turn()

    async def _frames(self) -> AsyncGenerator[tuple[bytes, bool]]:
        event_id = 0
        for emission in self._emissions:
            if isinstance(emission, Pause):
                await asyncio.sleep(emission.ms / 1000)
                continue
            self._emitted.append(emission)
            if not self._is_visible(emission):
                continue
            event_id += 1
            yield sse_frame("trace", event_id, dumps_raw_controls(emission)), False
        self._finish_turn()
        if self._include_state:
            event_id += 1
            yield sse_frame("state", event_id, dumps_raw_controls(self._turn.state)), False
        event_id += 1
        yield sse_frame("end", event_id, self._end_data), True

    def _finish_turn(self) -> None:
        if self._saved:
            return
        self._emitted += [e for e in self._emissions if not isinstance(e, Pause)]
        self._saved = True
        self._save_state(self._turn.state)
        self._on_traces(self._emitted)
