"""When a failed call to a remote service may be repeated, how long to wait, and the one loop that
does it, shared by the Voiceflow client and the judge so no two retry loops ever nest.

Reads and idempotent writes (GET, PUT, DELETE, PATCH, and a judge's chat completion) are retried on
connection errors, timeouts, 429 and 502/503/504. A turn or a session event changes the
conversation, so it is retried only when it certainly did not run: a 429 (the runtime refused it)
or a connection that could not be opened (nothing was sent). After a timeout or a 5xx the runtime
may have run it, and a turn must not happen twice.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
import httpx

from vf_mcp import telemetry
from vf_mcp.errors import (
    APIError,
    ConnectError,
    RateLimitError,
    TransportError,
    VfMcpError,
    may_have_run,
)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "PATCH"})
# A kept-alive connection the server closed as we wrote into it fails this soon after the write.
# Past it, a server may have read the request and died working on it: never resent.
STALE_WINDOW_SECONDS = 0.2
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})

MAYBE_RUN = "the runtime may already have run it"
"""Why a turn that may have reached the runtime is not sent again; other services say their own."""

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded by a count and a total deadline."""

    max_retries: int = 3
    base_delay: float = 0.25
    max_delay: float = 8.0
    deadline: float = 30.0

    def may_retry(self, error: VfMcpError, *, idempotent: bool) -> bool:
        """Whether repeating the call after `error` is safe."""
        if isinstance(error, RateLimitError | ConnectError):
            return True
        if not idempotent:
            return False
        if isinstance(error, APIError):
            return error.status_code in RETRYABLE_STATUSES
        return isinstance(error, TransportError)

    def delay(self, retry: int, error: VfMcpError) -> float:
        """Seconds to wait before retry number `retry` (1-based); the service's Retry-After wins."""
        if isinstance(error, APIError) and error.retry_after is not None:
            return error.retry_after
        return random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (retry - 1)))

    def next_delay(
        self, retry: int, error: VfMcpError, *, idempotent: bool, elapsed: float
    ) -> float | None:
        """The wait before retry `retry`, or None when the call must not be repeated."""
        if retry > self.max_retries or not self.may_retry(error, idempotent=idempotent):
            return None
        wait = self.delay(retry, error)
        if elapsed + wait > self.deadline:
            return None
        return wait


class ConnectionTrace:
    """What httpcore says about one attempt (its `trace` extension): was the connection reused,
    when did the request finish going out, and when did reading the answer fail."""

    def __init__(self) -> None:
        self.new_connection = False
        self.sent_at: float | None = None
        self.failed_at: float | None = None

    async def __call__(self, event: str, info: dict[str, object]) -> None:
        if event.startswith("connection.connect_tcp."):
            self.new_connection = True
        elif event in _SENT_EVENTS and self.sent_at is None:
            self.sent_at = time.monotonic()
        elif event == "http11.receive_response_headers.failed":
            self.failed_at = time.monotonic()

    def stale(self, exc: httpx.HTTPError) -> bool:
        """The pool's stale-connection signature: a reused idle connection that closed before
        one byte of answer, right after the request was written. Nothing ran upstream."""
        if self.new_connection or self.sent_at is None or self.failed_at is None:
            return False
        closed_unanswered = isinstance(exc, httpx.ReadError | httpx.WriteError) or (
            isinstance(exc, httpx.RemoteProtocolError) and "without sending a response" in str(exc)
        )
        return closed_unanswered and self.failed_at - self.sent_at <= STALE_WINDOW_SECONDS


_SENT_EVENTS = frozenset(
    {
        "http11.send_request_body.complete",
        "http11.send_request_body.failed",
        "http11.send_request_headers.failed",
    }
)


@dataclass
class Attempts:
    """How many times one logical call was sent (the first attempt and its retries)."""

    count: int = 0

    @property
    def retries(self) -> int:
        return max(self.count - 1, 0)


async def send_with_retries(
    http: httpx.AsyncClient,
    request: httpx.Request,
    *,
    policy: RetryPolicy,
    idempotent: bool,
    transport_error: Callable[[httpx.HTTPError], VfMcpError],
    status_error: Callable[[httpx.Response], Awaitable[VfMcpError]],
    limiter: anyio.CapacityLimiter | None = None,
    attempts: Attempts | None = None,
    what: str = "",
    route: str,
    runtime: str | None = None,
    maybe_done: str = MAYBE_RUN,
) -> httpx.Response:
    """Send `request` (streamed), repeating it only where `policy` says it is safe.

    A status of 400 or more is turned into an error by `status_error`, which reads and closes the
    response; a response below 400 comes back unread for the caller to read and close. `route`
    is the path's template (no ids, no session key): it names the request's span and metrics.
    `maybe_done` says why a request that may have taken effect was not sent again.
    """
    with telemetry.current().upstream_request(
        request.method, route, request.url.host, runtime
    ) as call:
        return await _send_loop(
            http,
            request,
            policy=policy,
            idempotent=idempotent,
            transport_error=transport_error,
            status_error=status_error,
            limiter=limiter,
            attempts=attempts,
            what=what,
            call=call,
            maybe_done=maybe_done,
        )


async def _send_loop(
    http: httpx.AsyncClient,
    request: httpx.Request,
    *,
    policy: RetryPolicy,
    idempotent: bool,
    transport_error: Callable[[httpx.HTTPError], VfMcpError],
    status_error: Callable[[httpx.Response], Awaitable[VfMcpError]],
    limiter: anyio.CapacityLimiter | None,
    attempts: Attempts | None,
    what: str,
    call: telemetry.UpstreamCall,
    maybe_done: str,
) -> httpx.Response:
    started = time.monotonic()
    retries = 0
    resent_stale = False
    while True:
        if attempts is not None:
            attempts.count += 1
        error: VfMcpError
        trace = ConnectionTrace()
        request.extensions = {**request.extensions, "trace": trace}
        try:
            if limiter is None:
                response = await http.send(request, stream=True)
            else:
                async with limiter:
                    response = await http.send(request, stream=True)
        except httpx.HTTPError as exc:
            if not resent_stale and trace.stale(exc):
                # Once: the failed connection is gone, so the resend takes another or a new one.
                resent_stale = True
                _log.info(
                    "resending %s: the runtime closed a kept-alive connection unanswered", what
                )
                continue
            error = transport_error(exc)
        else:
            call.answered(response.status_code)
            if response.status_code < 400:
                return response
            error = await status_error(response)
        wait = policy.next_delay(
            retries + 1, error, idempotent=idempotent, elapsed=time.monotonic() - started
        )
        if wait is None:
            error.retries = retries
            explain(
                error, retries=retries, idempotent=idempotent, policy=policy, maybe_done=maybe_done
            )
            raise error
        retries += 1
        call.retrying(error)
        _log.info("retrying %s in %.2f s after: %s", what, wait, error.message)
        await anyio.sleep(wait)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header: a number, or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def explain(
    error: VfMcpError,
    *,
    retries: int,
    idempotent: bool,
    policy: RetryPolicy,
    maybe_done: str = MAYBE_RUN,
) -> None:
    """Say in the error's message whether the call was retried, and why not when it was not."""
    if retries:
        error.add_detail(f"Failed again after {retries} retr{'y' if retries == 1 else 'ies'}")
    elif not idempotent and may_have_run(error):
        error.add_detail(f"Not retried: {maybe_done}")
    elif policy.max_retries == 0 and policy.may_retry(error, idempotent=idempotent):
        error.add_detail("Not retried: retries are off (VOICEFLOW_MAX_RETRIES=0)")
    elif isinstance(error, APIError) and error.retry_after is not None:
        error.add_detail("Not retried: the wait asked for is longer than the retry deadline")
