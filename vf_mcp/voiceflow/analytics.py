"""`AnalyticsClient`: Voiceflow's Analytics API (transcripts and their logs, transcript properties,
evaluations), with the runtime client's rules: the same retry loop and policy, the same status
and transport tables (`vf_mcp.http_errors`), answers masked as they are read, one-line errors
that say what to do. It knows nothing of MCP.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ValidationError

from vf_mcp import __version__
from vf_mcp.config import ENV_ANALYTICS_API_KEY, ENV_ANALYTICS_URL, Settings
from vf_mcp.errors import (
    APIError,
    AuthenticationError,
    ConnectError,
    NotFoundError,
    RateLimitError,
    ResponseError,
    ResponseTimeoutError,
    VfMcpError,
)
from vf_mcp.http_errors import api_error_class, transport_error_class
from vf_mcp.redaction import mask_secrets
from vf_mcp.retry import RetryPolicy, parse_retry_after, send_with_retries
from vf_mcp.voiceflow.analytics_models import (
    EvaluationDefinition,
    EvaluationsAnswer,
    PropertiesAnswer,
    PropertyAnswer,
    PropertyDefinition,
    PropertyType,
    PropertyValue,
    PropertyValueAnswer,
    PropertyValuesAnswer,
    SearchAnswer,
    SearchFilters,
    Transcript,
    TranscriptAnswer,
    TranscriptSummary,
)

PAGE_SIZE = 99
"""Transcripts asked for per search page: the docs render the bound as exclusive (`1 < x < 100`)
and voiceflow-cli lowered 100 to 99 after a refusal, so 99 is safe under either reading."""
MAX_SEARCHED = 10_000
"""The most transcripts one search returns, `limit` or not: a bound on a server that pages on."""
MAX_RESPONSE_BYTES = 32 * 1_048_576
_Answer = TypeVar("_Answer", bound=BaseModel)


def _segment(value: str) -> str:
    return quote(value, safe="")


class AnalyticsClient:
    """Async client for the Analytics API (`VOICEFLOW_ANALYTICS_URL`).

    `async with AnalyticsClient(settings) as analytics:` owns one connection pool; pass `http=`
    to share a pool you own (the runtime client's), which is then left open on close.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        http: httpx.AsyncClient | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._key = settings.require_analytics_key()
        self._base_url = settings.analytics_url
        self._timeout = settings.timeout
        self._retry = retry or RetryPolicy(
            max_retries=settings.max_retries, deadline=settings.retry_deadline
        )
        self._owns_http = http is None
        self._http = http or httpx.AsyncClient(
            timeout=httpx.Timeout(settings.timeout, connect=settings.connect_timeout),
            transport=transport,
            headers={"User-Agent": f"vf-mcp/{__version__}"},
        )

    def __repr__(self) -> str:
        return f"AnalyticsClient(analytics_url={self._base_url!r})"

    async def __aenter__(self) -> AnalyticsClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owns_http:
            await self._http.aclose()

    # -- transcripts -------------------------------------------------------------------------------

    async def search_page(
        self,
        project_id: str,
        filters: SearchFilters | None = None,
        *,
        take: int = PAGE_SIZE,
        skip: int = 0,
        order: str = "DESC",
    ) -> list[TranscriptSummary]:
        """One page of `POST /v1/transcript/project/{projectID}` (no total is returned)."""
        params = {"take": str(take), "skip": str(skip), "order": order}
        body = (filters or SearchFilters()).body()
        path = f"/v1/transcript/project/{_segment(project_id)}"
        answer = await self._call(
            "POST", path, SearchAnswer, json_body=body, params=params, read_only=True,
            route="/v1/transcript/project/{projectID}",
        )  # fmt: skip
        return answer.transcripts

    async def search(
        self,
        project_id: str,
        filters: SearchFilters | None = None,
        *,
        limit: int | None = None,
        page_size: int = PAGE_SIZE,
    ) -> list[TranscriptSummary]:
        """Every matching transcript (newest first), up to `limit` (and `MAX_SEARCHED`): pages
        until a short page, since the API says neither how many there are nor where the last
        page is, or until a page brings nothing new (a server that ignores `skip`)."""
        wanted = min(limit, MAX_SEARCHED) if limit is not None else MAX_SEARCHED
        found: dict[str, TranscriptSummary] = {}
        skip = 0
        while len(found) < wanted:
            take = min(page_size, wanted - len(found))
            page = await self.search_page(project_id, filters, take=take, skip=skip)
            # A transcript created while paging shifts the pages by one: kept once.
            new = {t.id: t for t in page if t.id not in found}
            found.update(new)
            if len(page) < take or not new:
                break
            skip += len(page)
        return list(found.values())[:wanted]

    async def get_transcript(self, transcript_id: str, *, unredacted: bool = False) -> Transcript:
        """`GET /v1/transcript/{id}` with its logs, redacted unless `unredacted` is asked for."""
        params = {"unredacted": "true"} if unredacted else None
        answer = await self._call(
            "GET", f"/v1/transcript/{_segment(transcript_id)}", TranscriptAnswer,
            params=params, route="/v1/transcript/{transcriptID}",
        )  # fmt: skip
        return answer.transcript

    # -- properties --------------------------------------------------------------------------------

    async def properties(self, project_id: str) -> list[PropertyDefinition]:
        path = f"/v1/transcript-property/project/{_segment(project_id)}"
        answer = await self._call(
            "GET", path, PropertiesAnswer, route="/v1/transcript-property/project/{projectID}"
        )
        return answer.properties

    async def create_property(
        self, project_id: str, name: str, kind: PropertyType
    ) -> PropertyDefinition:
        body = {"projectID": project_id, "name": name, "type": kind}
        answer = await self._call(
            "POST", "/v1/transcript-property", PropertyAnswer, json_body=body,
            route="/v1/transcript-property",
        )  # fmt: skip
        return answer.property

    async def set_property_value(
        self,
        transcript_id: str,
        property_id: str,
        value: str,
        metadata: Mapping[str, Any] | None = None,
    ) -> PropertyValue:
        """Set one property on one transcript (values are strings, whatever the type)."""
        body = {
            "propertyID": property_id,
            "transcriptID": transcript_id,
            "value": value,
            "metadata": dict(metadata) if metadata is not None else None,
        }
        answer = await self._call(
            "POST", "/v1/transcript-property-value", PropertyValueAnswer, json_body=body,
            route="/v1/transcript-property-value",
        )  # fmt: skip
        return answer.property_value

    async def property_values(self, transcript_id: str) -> list[PropertyValue]:
        path = f"/v1/transcript-property-value/transcript/{_segment(transcript_id)}"
        answer = await self._call(
            "GET", path, PropertyValuesAnswer,
            route="/v1/transcript-property-value/transcript/{transcriptID}",
        )  # fmt: skip
        return answer.property_values

    # -- evaluations -------------------------------------------------------------------------------

    async def evaluations(self, project_id: str) -> list[EvaluationDefinition]:
        path = f"/v1/transcript-evaluation/project/{_segment(project_id)}"
        answer = await self._call(
            "GET", path, EvaluationsAnswer, route="/v1/transcript-evaluation/project/{projectID}"
        )
        return answer.evaluations

    # -- plumbing ----------------------------------------------------------------------------------

    async def _call(
        self,
        method: str,
        path: str,
        answer: type[_Answer],
        *,
        json_body: Any = None,
        params: Mapping[str, str] | None = None,
        read_only: bool = False,
        route: str,
    ) -> _Answer:
        """One call, retried where the policy allows (a search is a read though it is a POST),
        its answer read within the size cap and validated as `answer`."""
        request = self._http.build_request(
            method,
            self._base_url + path,
            json=json_body,
            params=params,
            headers={"authorization": self._key, "accept": "application/json"},
        )

        async def status_error(response: httpx.Response) -> VfMcpError:
            try:
                body = await self._read(response, method, path)
            finally:
                await response.aclose()
            return self._api_error(response, body, method, path)

        response = await send_with_retries(
            self._http,
            request,
            policy=self._retry,
            idempotent=read_only or method == "GET",
            transport_error=lambda exc: self._transport_error(method, path, exc),
            status_error=status_error,
            what=f"{method} {path}",
            route=route,
            maybe_done="the Analytics API may already have applied it",
        )
        try:
            body = await self._read(response, method, path)
        finally:
            await response.aclose()
        try:
            return answer.model_validate_json(mask_secrets(body.decode("utf-8", "replace")))
        except ValidationError as exc:
            first = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ResponseError(
                f"The Analytics API's answer to {method} {path} could not be understood "
                f"({where}: {first['msg']}); check that {ENV_ANALYTICS_URL} points at "
                "Voiceflow's Analytics API"
            ) from None

    async def _read(self, response: httpx.Response, method: str, path: str) -> bytes:
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES:
                    raise ResponseError(
                        f"The Analytics API's answer to {method} {path} is larger than "
                        f"{MAX_RESPONSE_BYTES // 1_048_576} MiB, so it was not read; narrow the "
                        "search (--since, --until, --limit)"
                    )
                chunks.append(chunk)
        except httpx.HTTPError as exc:
            raise self._transport_error(method, path, exc) from None
        return b"".join(chunks)

    def _transport_error(self, method: str, path: str, exc: httpx.HTTPError) -> VfMcpError:
        cls = transport_error_class(exc)
        where = f"{method} {path}"
        if cls is ConnectError:
            return cls(
                f"Could not connect to the Analytics API at {self._base_url} for {where} "
                f"({type(exc).__name__}); nothing was sent. Check {ENV_ANALYTICS_URL} and the "
                "network"
            )
        if cls is ResponseTimeoutError:
            return cls(
                f"The Analytics API did not answer {where} within {self._timeout:g} s; try again, "
                "or narrow the search"
            )
        return cls(
            f"The connection to the Analytics API broke during {where} ({type(exc).__name__}); "
            "try again"
        )

    def _api_error(self, response: httpx.Response, body: bytes, method: str, path: str) -> APIError:
        status = response.status_code
        said, is_json = _error_message(body)
        cls = api_error_class(status, service_body=is_json)
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        upstream = said or response.reason_phrase or "no message"
        return cls(
            f"The Analytics API answered {status} {response.reason_phrase or 'error'} to "
            f"{method} {path}: {upstream.rstrip('.')}. {_hint(cls, retry_after)}",
            status_code=status,
            upstream_message=upstream,
            method=method,
            path=path,
            retry_after=retry_after,
        )


def _error_message(body: bytes) -> tuple[str | None, bool]:
    """The message of an error body, and whether the body was JSON. The shape is undocumented:
    a NestJS-style `{statusCode, message, error}` is read, any other text kept to one line."""
    text = mask_secrets(body.decode("utf-8", errors="replace")).strip()
    try:
        data = json.loads(text) if text else None
    except ValueError:
        return (" ".join(text.split())[:300] or None), False
    if isinstance(data, dict):
        for key in ("message", "error", "data"):
            value = data.get(key)
            if isinstance(value, str) and value.strip():
                return " ".join(value.split())[:300], True
            if isinstance(value, list) and value:
                return " ".join("; ".join(map(str, value)).split())[:300], True
    return None, data is not None


def _hint(cls: type[APIError], retry_after: float | None) -> str:
    if cls is AuthenticationError:
        return (
            f"Check {ENV_ANALYTICS_API_KEY} (or VOICEFLOW_API_KEY): the key must have access to "
            "the Analytics API for this project; some workspaces need a VF.WS. workspace key"
        )
    if issubclass(cls, NotFoundError):
        return (
            "Check the project or transcript ID (Voiceflow > Agent > Settings > Project ID) and "
            f"that {ENV_ANALYTICS_URL} is the Analytics API of the agent's cloud"
        )
    if cls is RateLimitError:
        wait = f"{retry_after:g} s" if retry_after is not None else "a moment"
        return f"Wait {wait} before trying again"
    return "See the API's message"


__all__ = ["MAX_SEARCHED", "PAGE_SIZE", "AnalyticsClient"]
