"""When a failed runtime call may be repeated, and how long to wait first.

Reads and idempotent writes (GET, PUT, DELETE, PATCH) are retried on connection errors, timeouts,
429 and 502/503/504. A turn or a session event changes the conversation, so it is retried only
when it certainly did not run: a 429 (the runtime refused it) or a connection that could not be
opened (nothing was sent). After a timeout or a 5xx the runtime may have run it, and a turn must
not happen twice.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from vf_mcp.errors import (
    APIError,
    ConnectError,
    RateLimitError,
    TransportError,
    VoiceflowError,
)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "PATCH"})
RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, bounded by a count and a total deadline."""

    max_retries: int = 3
    base_delay: float = 0.25
    max_delay: float = 8.0
    deadline: float = 30.0

    def may_retry(self, error: VoiceflowError, *, idempotent: bool) -> bool:
        """Whether repeating the call after `error` is safe."""
        if isinstance(error, RateLimitError | ConnectError):
            return True
        if not idempotent:
            return False
        if isinstance(error, APIError):
            return error.status_code in RETRYABLE_STATUSES
        return isinstance(error, TransportError)

    def delay(self, retry: int, error: VoiceflowError) -> float:
        """Seconds to wait before retry number `retry` (1-based); the runtime's Retry-After wins."""
        if isinstance(error, APIError) and error.retry_after is not None:
            return error.retry_after
        return random.uniform(0, min(self.max_delay, self.base_delay * 2 ** (retry - 1)))

    def next_delay(
        self, retry: int, error: VoiceflowError, *, idempotent: bool, elapsed: float
    ) -> float | None:
        """The wait before retry `retry`, or None when the call must not be repeated."""
        if retry > self.max_retries or not self.may_retry(error, idempotent=idempotent):
            return None
        wait = self.delay(retry, error)
        if elapsed + wait > self.deadline:
            return None
        return wait


def _may_have_run(error: VoiceflowError) -> bool:
    """A 4xx answer means the runtime refused the call; a 5xx or a broken exchange may not."""
    if isinstance(error, APIError):
        return error.status_code >= 500 or error.status_code == 408
    return isinstance(error, TransportError) and not isinstance(error, ConnectError)


def explain(error: VoiceflowError, *, retries: int, idempotent: bool, policy: RetryPolicy) -> None:
    """Say in the error's message whether the call was retried, and why not when it was not."""
    if retries:
        error.add_detail(f"Failed again after {retries} retr{'y' if retries == 1 else 'ies'}")
    elif not idempotent and _may_have_run(error):
        error.add_detail("Not retried: the runtime may already have run it")
    elif policy.max_retries == 0 and policy.may_retry(error, idempotent=idempotent):
        error.add_detail("Not retried: retries are off (VOICEFLOW_MAX_RETRIES=0)")
    elif isinstance(error, APIError) and error.retry_after is not None:
        error.add_detail("Not retried: the wait asked for is longer than the retry deadline")
