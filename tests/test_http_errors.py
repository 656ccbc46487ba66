"""The one classification of failed HTTP exchanges (`vf_mcp.http_errors`): complete, in step with
`may_have_run` and the hierarchy's own docstring, and the same for the client and the judge."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from pydantic import SecretStr

from tests.canary import CANARY_KEY
from tests.evaluation_fixtures import FakeJudge, running_judge
from vf_mcp import errors
from vf_mcp.config import Settings
from vf_mcp.emulator import Emulator, FaultPlan
from vf_mcp.errors import (
    APIError,
    ConnectError,
    RouteNotFoundError,
    ServerError,
    UpstreamError,
    may_have_run,
)
from vf_mcp.evaluation.judge import ChatMessage, JudgeSettings, OpenAIChatClient
from vf_mcp.evaluation.recording import ReplayMismatchError
from vf_mcp.http_errors import (
    NEVER_RAISED,
    STATUS_ERRORS,
    TRANSPORT_ERRORS,
    api_error_class,
    transport_error_class,
)
from vf_mcp.retry import RETRYABLE_STATUSES, RetryPolicy
from vf_mcp.voiceflow import VoiceflowClient

ERROR_STATUSES = range(400, 1000)  # h11 and httpx accept any three-digit status


def httpx_exceptions() -> set[type[httpx.HTTPError]]:
    return {
        value
        for value in vars(httpx).values()
        if isinstance(value, type) and issubclass(value, httpx.HTTPError)
    }


def test_every_httpx_exception_has_exactly_one_place() -> None:
    # As httpx checks its own map of httpcore's exceptions: a class a new httpx adds fails here
    # until someone decides what it means.
    listed, excused = set(TRANSPORT_ERRORS), set(NEVER_RAISED)
    assert listed.isdisjoint(excused)
    assert httpx_exceptions() - listed - excused == set(), "map it in vf_mcp/http_errors.py"
    assert len(listed) >= 19


def test_only_an_unopened_connection_says_nothing_was_sent() -> None:
    unsent = {cls for cls, kind in TRANSPORT_ERRORS.items() if kind is ConnectError}
    assert unsent == {httpx.ConnectError, httpx.ConnectTimeout}
    for cls, kind in TRANSPORT_ERRORS.items():
        error = kind("x")
        assert may_have_run(error) is (kind is not ConnectError), cls


def test_an_exception_defined_elsewhere_takes_its_nearest_httpx_base() -> None:
    assert transport_error_class(ReplayMismatchError("no recorded answer")) is errors.TransportError

    class SlowPool(httpx.PoolTimeout):
        pass

    assert transport_error_class(SlowPool("x")) is errors.ResponseTimeoutError


def _error(status: int, *, service_body: bool = True) -> APIError:
    cls = api_error_class(status, service_body=service_body)
    return cls("x", status_code=status, upstream_message="", method="POST", path="/")


def test_every_error_status_says_whether_the_call_may_have_run() -> None:
    # A refusal never ran, a failure on the service's side may have: the class and
    # `may_have_run` agree for every status, which is what settles a 408.
    for status in ERROR_STATUSES:
        error = _error(status)
        assert isinstance(error, APIError)
        assert may_have_run(error) is isinstance(error, ServerError), status
    assert api_error_class(408) is ServerError
    assert {status for status in ERROR_STATUSES if type(_error(status)) is APIError} == (
        set(range(400, 500)) - set(STATUS_ERRORS)
    )


def test_statuses_the_policy_retries_are_never_refusals_to_fix() -> None:
    for status in RETRYABLE_STATUSES:
        assert api_error_class(status) in (errors.RateLimitError, ServerError)


def test_a_404_that_is_not_the_services_own_answer_is_a_missing_route() -> None:
    assert api_error_class(404, service_body=False) is RouteNotFoundError
    assert api_error_class(404) is errors.NotFoundError
    assert api_error_class(400, service_body=False) is errors.BadRequestError
    with pytest.raises(ValueError, match="not an error status"):
        api_error_class(302)


def test_the_hierarchys_docstring_names_the_statuses_the_table_gives() -> None:
    assert errors.__doc__ is not None
    documented = re.findall(r"── (\w+Error) +((?:\d{3}|5xx)(?:, (?:\d{3}|5xx))*)", errors.__doc__)
    assert len(documented) == 6
    for name, statuses in documented:
        cls = getattr(errors, name)
        for status in statuses.split(", "):
            code = 503 if status == "5xx" else int(status)
            assert api_error_class(code, service_body=cls is not RouteNotFoundError) is cls, status


# -- the client and the judge, over loopback HTTP ---------------------------------------------


@pytest.fixture(scope="module")
def judge() -> Iterator[tuple[FakeJudge, str]]:
    fake = FakeJudge([])
    with running_judge(fake) as url:
        yield fake, url


def judge_without_retries(url: str) -> OpenAIChatClient:
    settings = JudgeSettings(url=url, model="m", api_key=SecretStr("k"), timeout=10)
    return OpenAIChatClient(settings, retry=RetryPolicy(max_retries=0))


async def judge_error(url: str) -> UpstreamError:
    async with judge_without_retries(url) as chat:
        with pytest.raises(UpstreamError) as caught:
            await chat.complete([ChatMessage(role="user", content="hi")], purpose="test")
    return caught.value


async def client_error(settings: Settings) -> UpstreamError:
    async with VoiceflowClient(settings) as client:
        with pytest.raises(UpstreamError) as caught:
            await client.get_state("u")
    return caught.value


@pytest.mark.anyio
@pytest.mark.parametrize("status", [400, 401, 404, 405, 408, 409, 429, 500, 503])
async def test_the_client_and_the_judge_class_a_status_alike(
    status: int, emulator: Emulator, settings: Settings, judge: tuple[FakeJudge, str]
) -> None:
    fake, url = judge
    fake.fail_with = status
    emulator.faults.add(FaultPlan(status=status))
    from_client, from_judge = await client_error(settings), await judge_error(url)
    assert type(from_client) is type(from_judge) is api_error_class(status)
    assert isinstance(from_judge, APIError) and from_judge.status_code == status
    # Each still says which service failed, in its own words.
    assert from_client.message.startswith("Voiceflow runtime answered")
    assert from_judge.message.startswith(f"The judge answered {status}")


@pytest.mark.anyio
async def test_the_client_and_the_judge_class_a_refused_connection_alike() -> None:
    # Port 9 (discard) on loopback: nothing listens, so the connection is refused at once.
    nowhere = "http://127.0.0.1:9"
    settings = Settings.validated({"api_key": CANARY_KEY, "runtime_url": nowhere})
    from_client, from_judge = await client_error(settings), await judge_error(nowhere)
    assert type(from_client) is type(from_judge) is ConnectError
    assert "Voiceflow runtime" in from_client.message and "judge" in from_judge.message
