"""Bounds on what a slow or idle client can hold: headers and bodies arrive within a deadline.

uvicorn times out idle keep-alive connections, but nothing while a request's headers trickle in:
50 connections each sending a header byte now and then were held for as long as they cared. The
protocol here closes a connection whose request headers are not complete within the deadline
(a new connection, or the next request on a kept-alive one). The body is read up front within
the same deadline, and no further than the MCP SDK's size limit, before the app sees the request:
a body that stalls is answered 408, one too large 413. `VF_MCP_HTTP_MAX_CONNECTIONS` caps the
connections a worker holds (uvicorn answers 503 past it).
"""

from __future__ import annotations

import asyncio

import anyio
import h11
from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE
from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol


def header_deadline_protocol(seconds: float) -> type[H11Protocol]:
    """uvicorn's h11 protocol, closing a connection whose request headers take over `seconds`."""

    class HeaderDeadline(H11Protocol):
        _timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)  # type: ignore[arg-type]
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self._arm()  # part of a request's headers came: the rest within the deadline
            else:
                self._disarm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            if self._timer is None:
                self._timer = self.loop.call_later(seconds, self._expired)

        def _disarm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _expired(self) -> None:
            self._timer = None
            if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
                self.transport.close()

    return HeaderDeadline


class BodyDeadline:
    """Pure ASGI: read a request's body within `seconds` and at most `limit` bytes, then hand
    the app the request with its body already there."""

    def __init__(
        self, app: ASGIApp, seconds: float, *, limit: int = DEFAULT_MAX_REQUEST_BODY_SIZE
    ) -> None:
        self.app = app
        self.seconds = seconds
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            await PlainTextResponse("Request body too large", 413)(scope, receive, send)
            return
        body = b""
        with anyio.move_on_after(self.seconds) as timer:
            body = await self._read(receive)
        if timer.cancelled_caught:
            # The rest of the body may still come: close the connection rather than read it as
            # the next request.
            response = PlainTextResponse(
                f"Request body not received within {self.seconds:g} s",
                408,
                headers={"Connection": "close"},
            )
            await response(scope, receive, send)
            return
        if len(body) > self.limit:
            too_large = PlainTextResponse(
                "Request body too large", 413, headers={"Connection": "close"}
            )
            await too_large(scope, receive, send)
            return
        await self.app(scope, replay_body(body, receive), send)

    async def _read(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(chunks)  # the client left; the app will see it too
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit or not message.get("more_body", False):
                return b"".join(chunks)


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
