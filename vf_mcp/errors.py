"""One exception hierarchy for everything vf-mcp raises.

```
VfMcpError                      every error vf-mcp raises
├── ConfigurationError          settings, the agents file: fixed by the operator
├── InvalidInputError           an argument of a tool or a client call
│   └── ScriptError             a test suite that cannot be read or run
├── StoreError                  the conversation store (Redis) failed
└── UpstreamError               a remote service (the Voiceflow runtime, the judge) failed
    ├── APIError                it answered with an HTTP error status
    │   ├── BadRequestError         400, 409, 413, 422: it refused the request
    │   ├── AuthenticationError     401, 403
    │   ├── NotFoundError           404: no such environment or version
    │   │   └── RouteNotFoundError  404 without the runtime's JSON: no such route at all
    │   ├── RateLimitError          429
    │   └── ServerError             5xx, 408
    ├── TransportError          it could not be reached, or the connection broke
    │   ├── ConnectError            no connection: nothing was sent
    │   └── ResponseTimeoutError    no answer in time
    ├── ResponseError           it answered 2xx with something that cannot be understood
    │   └── StreamInterruptedError  a stream ended before its closing event
    └── JudgeError              the judge model's answer is not a usable verdict or reply
```

Every message is one line that says what happened, why, and what to do next, and never holds a key:
messages are passed through `redact` when the exception is built. The front ends map these to their
protocol's errors in one table each (`vf_mcp.tools.errors` for MCP).
"""

from __future__ import annotations

from vf_mcp.redaction import redact


class VfMcpError(Exception):
    """Base class of every error raised by vf-mcp."""

    retries: int = 0
    """How often the failed call was sent again first (set by `vf_mcp.retry`)."""

    def __init__(self, message: str) -> None:
        self.message = redact(" ".join(message.split()))
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"

    def add_detail(self, detail: str) -> None:
        """Append a sentence (for example how often the call was retried) to the message."""
        self.message = redact(" ".join(f"{self.message.rstrip('.')}. {detail}".split()))
        self.args = (self.message,)


class ConfigurationError(VfMcpError):
    """The configuration (environment variables or config file) is missing or invalid."""


class InvalidInputError(VfMcpError):
    """A tool or client argument is invalid; the message lists what would be valid."""


class ScriptError(InvalidInputError):
    """A script or imported file cannot be run; the message names the file and the field."""


class TurnInFlightError(VfMcpError):
    """Another call's turn on this conversation is still running on a live worker; this call sent
    nothing."""


class TurnLostError(VfMcpError):
    """The conversation's last turn was cut off with the worker running it, and is recorded as
    lost in flight now; this call sent nothing."""


class StoreError(VfMcpError):
    """The conversation store (Redis) could not be reached or answered with an error."""


class UpstreamError(VfMcpError):
    """A remote service vf-mcp depends on (the Voiceflow runtime, the judge model) failed."""


class APIError(UpstreamError):
    """The remote service answered with an HTTP error status."""

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
    """429: the rate limit for this key or project was hit; the request did not run."""


class ServerError(APIError):
    """5xx or 408: the remote service failed or timed out on its side."""


class TransportError(UpstreamError):
    """The service could not be reached or the connection broke before an answer arrived."""


class ConnectError(TransportError):
    """No connection could be opened, so the request certainly did not reach the service."""


class ResponseTimeoutError(TransportError):
    """The service did not answer (or went silent mid-stream) within the configured timeout."""


class ResponseError(UpstreamError):
    """The service answered 2xx but the body could not be understood (malformed JSON or SSE)."""


class StreamInterruptedError(ResponseError):
    """A streamed turn ended before the runtime's closing `end` event: the answer is incomplete."""


class JudgeError(UpstreamError):
    """The judge model answered, but with no usable verdict or simulated-user reply."""


def may_have_run(error: VfMcpError) -> bool:
    """Whether the call that failed with `error` may have taken effect upstream.

    A refusal (4xx), a connection never opened or a check before sending means it did not, so it
    may be repeated as it was; a 5xx, a broken or silent exchange, or a 2xx answer we could not
    read means it may have (check the state before repeating a turn).
    """
    if isinstance(error, APIError):
        return error.status_code >= 500 or error.status_code == 408
    if isinstance(error, ResponseError):
        return True
    return isinstance(error, TransportError) and not isinstance(error, ConnectError)


def error_classes() -> list[type[VfMcpError]]:
    """Every class of the hierarchy drawn above, root first (the front ends' mapping tables are
    tested against it); subclasses defined elsewhere are not part of it."""
    found: list[type[VfMcpError]] = [VfMcpError]
    for cls in found:
        found.extend(
            sub for sub in cls.__subclasses__() if sub not in found and sub.__module__ == __name__
        )
    return found
