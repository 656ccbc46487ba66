"""Bounds on what a slow or idle client can hold: headers and bodies arrive within a deadline.

uvicorn times out idle keep-alive connections, but nothing while a request's headers trickle in:
50 connections each sending a header byte now and then were held for as long as they cared. The
protocol here closes a connection that is not being answered and has not sent a complete request
within the deadline: a new connection, the next request on a kept-alive one, or a body still
trickling in after its answer went out (a 401 or 413 sent before the body was read). When the
worker holds more than half the connections it may (`VF_MCP_HTTP_MAX_CONNECTIONS`, past which
uvicorn answers 503), idle kept-alive connections get the same deadline instead of the long
keep-alive, so idle sockets cannot hold the cap. A body being read by the app must arrive within
the deadline too (`BodyDeadline`: 408, and the connection closes); nothing is buffered for it, so
a request the token gate refuses costs no memory for its body.
"""

from __future__ import annotations

import asyncio

import anyio
import h11
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol


def header_deadline_protocol(seconds: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol, closing a connection that holds the server without a request
    being answered for over `seconds` (see the module's docstring)."""

    class HeaderDeadline(H11Protocol):
        _timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)  # type: ignore[arg-type]
            self._arm()
            if self._crowded():
                # Crowded by this one: every idle connection gets the deadline from now on,
                # those that went idle before the crowd came too.
                for other in list(self.connections):
                    if isinstance(other, HeaderDeadline) and not other._answering():
                        other._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self._answering():
                self._disarm()
            else:
                self._arm()  # the deadline runs from the first byte: a trickle never extends it

        def on_response_complete(self) -> None:
            super().on_response_complete()
            body_still_coming = self.conn.their_state not in (h11.IDLE, h11.DONE)
            if not self._answering() and (body_still_coming or self._crowded()):
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _answering(self) -> bool:
            return self.cycle is not None and not self.cycle.response_complete

        def _crowded(self) -> bool:
            limit = self.limit_concurrency
            return limit is not None and len(self.connections) > limit // 2

        def _arm(self) -> None:
            if self._timer is None and not self.transport.is_closing():
                self._timer = self.loop.call_later(seconds, self._expired)

        def _disarm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _expired(self) -> None:
            self._timer = None
            if not self._answering() and not self.transport.is_closing():
                self.transport.close()

    return HeaderDeadline


class BodyDeadline:
    """Pure ASGI: a request's body must reach the app within `seconds`; past that the client is
    answered 408 (the connection then closes) and the app sees the client gone. Nothing is
    buffered: the app reads as it always does, each read bounded by what is left of the time."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline = anyio.current_time() + self.seconds
        state = {"body_done": False, "started": False, "timed_out": False}

        async def bounded_receive() -> Message:
            if state["body_done"] or state["timed_out"]:
                return await receive()
            with anyio.move_on_after(deadline - anyio.current_time()):
                message = await receive()
                if message["type"] != "http.request" or not message.get("more_body", False):
                    state["body_done"] = True
                return message
            state["timed_out"] = True
            if not state["started"]:
                state["started"] = True
                await _too_slow(self.seconds)(scope, receive, send)
            return {"type": "http.disconnect"}

        async def guarded_send(message: Message) -> None:
            if state["timed_out"]:
                return  # answered 408 already: what the app sends after is for no one
            if message["type"] == "http.response.start":
                state["started"] = True
            await send(message)

        await self.app(scope, bounded_receive, guarded_send)


def _too_slow(seconds: float) -> PlainTextResponse:
    # The rest of the body may still come: close the connection rather than read it as the next
    # request.
    return PlainTextResponse(
        f"Request body not received within {seconds:g} s", 408, headers={"Connection": "close"}
    )


def replay_body(body: bytes, receive: Receive) -> Receive:
    """A `receive` giving `body` once, then what the client does next (its disconnect)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
