"""Which error of `vf_mcp.errors` a failed HTTP exchange with a remote service is: one table for
the status of an answer, one for the httpx exception of a send. The Voiceflow client and the judge
both classify through here, so a status means the same thing whoever met it (and so the same to
`may_have_run` and to the retry policy); each still words its own message, since only it knows
which service failed and what the reader should do next.

tests/test_http_errors.py checks that every status and every exception class httpx defines has
exactly one place here.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import httpx

from vf_mcp.errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConnectError,
    NotFoundError,
    RateLimitError,
    ResponseTimeoutError,
    RouteNotFoundError,
    ServerError,
    TransportError,
)

STATUS_ERRORS: Mapping[int, type[APIError]] = MappingProxyType(
    {
        400: BadRequestError,
        409: BadRequestError,
        413: BadRequestError,
        422: BadRequestError,
        401: AuthenticationError,
        403: AuthenticationError,
        404: NotFoundError,
        # The service stopped waiting. Whether it had read the whole request first cannot be
        # told from outside (proxies and gateways answer 408 too), so, as `may_have_run` says,
        # the call may have run, like after a 5xx: never a refusal that is safe to repeat.
        408: ServerError,
        429: RateLimitError,
    }
)
"""The statuses with a class of their own; any other 5xx (or above) is a `ServerError`, any other
4xx a plain `APIError`."""

TRANSPORT_ERRORS: Mapping[type[httpx.HTTPError], type[TransportError]] = MappingProxyType(
    {
        # No connection was opened, so nothing was sent.
        httpx.ConnectError: ConnectError,
        httpx.ConnectTimeout: ConnectError,
        # Sent, or partly, and then no answer in time.
        httpx.TimeoutException: ResponseTimeoutError,
        httpx.ReadTimeout: ResponseTimeoutError,
        httpx.WriteTimeout: ResponseTimeoutError,
        httpx.PoolTimeout: ResponseTimeoutError,
        # The exchange broke somewhere after it began: the request may have run.
        httpx.HTTPError: TransportError,
        httpx.RequestError: TransportError,
        httpx.TransportError: TransportError,
        httpx.NetworkError: TransportError,
        httpx.ReadError: TransportError,
        httpx.WriteError: TransportError,
        httpx.CloseError: TransportError,
        httpx.ProtocolError: TransportError,
        httpx.LocalProtocolError: TransportError,
        httpx.RemoteProtocolError: TransportError,
        httpx.ProxyError: TransportError,
        httpx.UnsupportedProtocol: TransportError,
        httpx.DecodingError: TransportError,
    }
)
"""Every httpx exception a send or a read can raise, by the class it becomes. The bases are here
too, so a subclass defined elsewhere (a replaying transport's) takes its nearest listed base."""

NEVER_RAISED: Mapping[type[httpx.HTTPError], str] = MappingProxyType(
    {
        httpx.HTTPStatusError: "raised only by raise_for_status, which nothing calls: statuses "
        "are classified by STATUS_ERRORS",
        httpx.TooManyRedirects: "redirects are not followed (httpx's default is kept)",
    }
)
"""httpx exceptions our calls cannot meet, and why (a change that meets one must map it)."""


def api_error_class(status: int, *, service_body: bool = True) -> type[APIError]:
    """The class of an answer with error status `status` (400 or more).

    `service_body` is False when the body is not one of the service's own error shapes (a web
    server's HTML page): a 404 then means the service has no such route at all.
    """
    if status < 400:
        raise ValueError(f"{status} is not an error status")
    if status == 404 and not service_body:
        return RouteNotFoundError
    if status in STATUS_ERRORS:
        return STATUS_ERRORS[status]
    return ServerError if status >= 500 else APIError


def transport_error_class(exc: httpx.HTTPError) -> type[TransportError]:
    """The class of a send or read that raised `exc` instead of answering."""
    # httpx.HTTPError is in the table, so every httpx exception finds a class.
    return next(TRANSPORT_ERRORS[cls] for cls in type(exc).__mro__ if cls in TRANSPORT_ERRORS)
