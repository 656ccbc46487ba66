"""One exception hierarchy for everything vf-mcp raises.

Every message is one line that says what happened, why, and what to do next, and never holds a key:
messages are passed through `redact` when the exception is built.
"""

from __future__ import annotations

from vf_mcp.redaction import redact


class VoiceflowError(Exception):
    """Base class of every error raised by vf-mcp."""

    retryable: bool = False

    def __init__(self, message: str) -> None:
        self.message = redact(" ".join(message.split()))
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"

    def add_detail(self, detail: str) -> None:
        """Append a sentence (for example how often the call was retried) to the message."""
        self.message = redact(" ".join(f"{self.message.rstrip('.')}. {detail}".split()))
        self.args = (self.message,)


class ConfigurationError(VoiceflowError):
    """The configuration (environment variables or config file) is missing or invalid."""


class APIError(VoiceflowError):
    """The Voiceflow runtime answered with an HTTP error status."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        upstream_message: str,
        method: str,
        path: str,
        retry_after: float | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.upstream_message = redact(upstream_message)
        self.method = method
        self.path = path
        self.retry_after = retry_after
        self.request_id = request_id


class BadRequestError(APIError):
    """400/422: the runtime refused the request (bad environment, version, body or action)."""


class AuthenticationError(APIError):
    """401/403: the API key is missing, wrong, or has no access to this project."""


class NotFoundError(APIError):
    """404: the project version or environment does not exist (never run or published)."""


class RouteNotFoundError(NotFoundError):
    """404 with a body that is not the runtime's JSON: the runtime has no such route at all
    (an older or private deployment), so the request was not run."""


class RateLimitError(APIError):
    """429: the runtime's rate limit for this key or project was hit."""

    retryable = True


class ServerError(APIError):
    """5xx or 408: the runtime failed or timed out on its side."""


class TransportError(VoiceflowError):
    """The runtime could not be reached or the connection broke before an answer arrived."""


class ConnectError(TransportError):
    """No connection could be opened, so the request certainly did not reach the runtime."""

    retryable = True


class ResponseTimeoutError(TransportError):
    """The runtime did not answer (or went silent mid-stream) within the configured timeout."""


class ResponseError(VoiceflowError):
    """The runtime answered 2xx but the body could not be understood (malformed JSON or SSE)."""


class StreamInterruptedError(ResponseError):
    """A streamed turn ended before the runtime's closing `end` event: the answer is incomplete."""


class InvalidInputError(VoiceflowError):
    """A tool or client argument is invalid; the message lists what would be valid."""


class StoreError(VoiceflowError):
    """The conversation store (Redis) could not be reached or answered with an error."""
