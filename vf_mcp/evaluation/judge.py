"""The LLM judge: an OpenAI-compatible chat-completions client and the grading built on it.

Configured by `Settings` (`VF_MCP_JUDGE_URL`, `VF_MCP_JUDGE_MODEL`, `VF_MCP_JUDGE_API_KEY`,
`VF_MCP_JUDGE_TIMEOUT`, `VF_MCP_JUDGE_TRACE_CONTENT`). The key is a `SecretStr`: never logged,
never in an error message. Any model that speaks `POST {url}/chat/completions` works (OpenAI,
Azure-style gateways, vLLM, Ollama, LiteLLM...). Replies are parsed leniently: JSON, fenced JSON,
JSON inside prose, or a bare PASS/FAIL/YES/NO. Each call is a GenAI span (`chat {model}`) with its
token usage; `MeteredChat` sums the usage of one test.
"""

from __future__ import annotations

import json
import re
from typing import Any, Literal, Protocol

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from vf_mcp import __version__, telemetry
from vf_mcp.config import ENV_JUDGE_API_KEY, ENV_JUDGE_MODEL, ENV_JUDGE_URL, Settings
from vf_mcp.domain.transcript import JudgeUsage, JudgeVerdict
from vf_mcp.errors import JudgeError, UpstreamError
from vf_mcp.evaluation import prompts
from vf_mcp.http_errors import api_error_class, transport_error_class
from vf_mcp.retry import RetryPolicy, parse_retry_after, send_with_retries

# The wire is OpenAI's chat completions; the conventions name the provider by the API spoken,
# since gateways (LiteLLM, vLLM, Azure) proxy other providers' models behind it.
PROVIDER = "openai"


class JudgeSettings(BaseModel):
    """The judge's part of `Settings`, as the chat client needs it."""

    model_config = ConfigDict(frozen=True)

    url: str
    model: str = Field(min_length=1)
    api_key: SecretStr | None = None
    timeout: float = Field(default=60.0, gt=0, le=600)
    temperature: float = 0.0
    trace_content: bool = Field(
        default=False,
        description="Record prompts and replies on the judge's spans (they quote the conversation)",
    )

    @property
    def endpoint(self) -> str:
        """The chat-completions URL: the base URL, or the full endpoint if that was given."""
        if self.url.endswith("/chat/completions"):
            return self.url
        return f"{self.url}/chat/completions"

    @classmethod
    def from_settings(cls, settings: Settings) -> JudgeSettings | None:
        """The configured judge, or None when `VF_MCP_JUDGE_URL` is not set (no judge)."""
        if settings.judge_url is None or settings.judge_model is None:
            return None
        return cls(
            url=settings.judge_url,
            model=settings.judge_model,
            api_key=settings.judge_api_key,
            timeout=settings.judge_timeout,
            trace_content=settings.judge_trace_content,
        )


class ChatMessage(BaseModel):
    model_config = ConfigDict(frozen=True)

    role: Literal["system", "user", "assistant"]
    content: str


class ChatReply(BaseModel):
    """A chat completion's text and what the endpoint said about it (`usage`, finish reason)."""

    model_config = ConfigDict(frozen=True)

    content: str
    input_tokens: int | None = Field(default=None, description="`usage.prompt_tokens`")
    output_tokens: int | None = Field(default=None, description="`usage.completion_tokens`")
    response_model: str | None = None
    finish_reason: str | None = None

    @property
    def usage(self) -> JudgeUsage:
        """This one call, as a test's tally counts it."""
        if self.input_tokens is None or self.output_tokens is None:
            return JudgeUsage(calls=1, unreported=1)
        return JudgeUsage(calls=1, input_tokens=self.input_tokens, output_tokens=self.output_tokens)


class ChatModel(Protocol):
    """Anything that answers a chat: the HTTP client, or a recording/replaying stand-in."""

    @property
    def model(self) -> str: ...

    async def complete(self, messages: list[ChatMessage], *, purpose: str) -> ChatReply: ...


class MeteredChat:
    """A chat model that keeps the sum of what its calls spent: one per test (trial), so tests
    sharing the judge concurrently each count their own."""

    def __init__(self, inner: ChatModel) -> None:
        self.inner = inner
        self.usage: JudgeUsage | None = None

    @property
    def model(self) -> str:
        return self.inner.model

    async def complete(self, messages: list[ChatMessage], *, purpose: str) -> ChatReply:
        reply = await self.inner.complete(messages, purpose=purpose)
        self.usage = JudgeUsage.total([self.usage, reply.usage])
        return reply


class OpenAIChatClient:
    """`POST {url}/chat/completions` with `{model, messages, temperature}`; returns the content.

    Failures are retried by the same policy as runtime calls (`vf_mcp.retry`): a completion has
    no side effect, so timeouts, 429 and 502-504 are retried, honouring `Retry-After`.
    """

    def __init__(
        self,
        settings: JudgeSettings,
        *,
        retry: RetryPolicy | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._settings = settings
        self._retry = retry or RetryPolicy()
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(settings.timeout, connect=10.0),
            transport=transport,
            headers={"User-Agent": f"vf-mcp/{__version__}"},
        )

    def __repr__(self) -> str:
        return f"OpenAIChatClient(url={self._settings.url!r}, model={self.model!r})"

    @property
    def model(self) -> str:
        return self._settings.model

    async def __aenter__(self) -> OpenAIChatClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    @property
    def closed(self) -> bool:
        return self._http.is_closed

    async def complete(self, messages: list[ChatMessage], *, purpose: str) -> ChatReply:
        settings = self._settings
        prompt = [m.model_dump() for m in messages] if settings.trace_content else None
        endpoint = httpx.URL(settings.endpoint)
        with telemetry.current().model_call(
            provider=PROVIDER,
            model=settings.model,
            server_address=endpoint.host,
            server_port=endpoint.port,
            temperature=settings.temperature,
            messages=prompt,
        ) as call:
            reply = await self._complete(messages, purpose)
            call.answered(
                response_model=reply.response_model,
                input_tokens=reply.input_tokens,
                output_tokens=reply.output_tokens,
                finish_reason=reply.finish_reason,
                reply=reply.content if settings.trace_content else None,
            )
        return reply

    async def _complete(self, messages: list[ChatMessage], purpose: str) -> ChatReply:
        body = {
            "model": self._settings.model,
            "temperature": self._settings.temperature,
            "messages": [m.model_dump() for m in messages],
        }
        headers = {"Content-Type": "application/json"}
        if self._settings.api_key is not None:
            headers["Authorization"] = f"Bearer {self._settings.api_key.get_secret_value()}"
        request = self._http.build_request(
            "POST", self._settings.endpoint, json=body, headers=headers
        )
        response = await send_with_retries(
            self._http,
            request,
            policy=self._retry,
            idempotent=True,
            transport_error=lambda exc: self._transport_error(exc, purpose),
            status_error=lambda response: self._status_error(response, purpose),
            what=f"the judge's {purpose}",
            # The configured endpoint's path holds no ids; its query string may hold a key.
            route=request.url.path,
        )
        try:
            await response.aread()
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, purpose) from None
        finally:
            await response.aclose()
        return _content(response, purpose)

    def _transport_error(self, exc: httpx.HTTPError, purpose: str) -> UpstreamError:
        return transport_error_class(exc)(
            f"Could not get the judge's {purpose} from {self._settings.url} "
            f"({type(exc).__name__}); check {ENV_JUDGE_URL} and the network"
        )

    async def _status_error(self, response: httpx.Response, purpose: str) -> UpstreamError:
        try:
            text = (await response.aread()).decode("utf-8", errors="replace")
        except httpx.HTTPError:
            text = ""
        finally:
            await response.aclose()
        status = response.status_code
        cls = api_error_class(status)
        said = " ".join(text.split())[:200] or response.reason_phrase
        hint = (
            "wait, or lower the suite's concurrency"
            if status == 429
            else f"check {ENV_JUDGE_MODEL} and {ENV_JUDGE_API_KEY}"
        )
        return cls(
            f"The judge answered {status} to its {purpose}: {said}; {hint}",
            status_code=status,
            upstream_message=said,
            method="POST",
            path="/chat/completions",
            retry_after=parse_retry_after(response.headers.get("Retry-After")),
        )


def _content(response: httpx.Response, purpose: str) -> ChatReply:
    try:
        data = response.json()
        choice = data["choices"][0]
        content = choice["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise JudgeError(
            f"The judge's answer to {purpose} is not a chat completion: {response.text[:200]}"
        ) from None
    if isinstance(content, list):  # content parts, as some gateways send
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    if not isinstance(content, str):
        raise JudgeError(f"The judge's answer to {purpose} has no text content")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    model, reason = data.get("model"), choice.get("finish_reason")
    return ChatReply(
        content=content,
        input_tokens=_count(usage.get("prompt_tokens")),
        output_tokens=_count(usage.get("completion_tokens")),
        response_model=model if isinstance(model, str) else None,
        finish_reason=reason if isinstance(reason, str) else None,
    )


def _count(value: Any) -> int | None:
    """A token count as the endpoint gave it; anything else is no count (never a guess)."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


# -- parsing ------------------------------------------------------------------------------------

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)
_WORD = re.compile(r"^\W*(pass|passed|fail|failed|yes|no|true|false)\b", re.IGNORECASE)


def find_json_object(text: str) -> dict[str, Any] | None:
    """The first JSON object in `text`: whole, inside a code fence, or embedded in prose."""
    candidates = [text.strip()] + [m.group(1).strip() for m in _FENCE.finditer(text)]
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    decoder = json.JSONDecoder()
    for start in (i for i, ch in enumerate(text) if ch == "{"):
        try:
            value, _ = decoder.raw_decode(text, start)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _as_pass(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in ("pass", "passed", "yes", "true", "met", "achieved", "success"):
            return True
        if word in ("fail", "failed", "no", "false", "not met", "not achieved", "failure"):
            return False
    return None


def _as_score(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        score = float(value)
    except (TypeError, ValueError):
        return None
    if score != score:  # NaN
        return None
    # Models sometimes grade out of 10 or 100 despite the instructions.
    if 1 < score <= 10:
        score /= 10
    elif 10 < score <= 100:
        score /= 100
    return min(max(score, 0.0), 1.0)


def parse_verdict(text: str, *, model: str = "", pass_score: float | None = None) -> JudgeVerdict:
    """A `JudgeVerdict` from a judge's reply, or `JudgeError` when none can be read."""
    data = find_json_object(text)
    if data is not None:
        lowered = {str(k).lower(): v for k, v in data.items()}
        passed = None
        for key in ("verdict", "pass", "passed", "result", "achieved", "goal_met"):
            if key in lowered and (passed := _as_pass(lowered[key])) is not None:
                break
        score = _as_score(lowered.get("score"))
        if passed is None and score is not None and pass_score is not None:
            passed = score >= pass_score
        reasoning = next(
            (str(lowered[k]) for k in ("reasoning", "reason", "explanation") if k in lowered), ""
        )
        if passed is not None:
            return JudgeVerdict(
                verdict="pass" if passed else "fail",
                score=score,
                reasoning=reasoning.strip(),
                model=model,
            )
    match = _WORD.match(text)
    if match is not None:
        passed = _as_pass(match.group(1))
        assert passed is not None
        rest = text[match.end() :].strip(" \t\n:.-—")
        return JudgeVerdict(verdict="pass" if passed else "fail", reasoning=rest, model=model)
    raise JudgeError(f"The judge's reply has no verdict: {text.strip()[:200]!r}")


class UserReply(BaseModel):
    message: str
    done: bool = False


def parse_user_reply(text: str) -> UserReply:
    """The simulated user's next message; plain text is taken as the message itself."""
    data = find_json_object(text)
    if data is not None and isinstance(data.get("message"), str):
        message = data["message"].strip()
        done = bool(data.get("done")) or prompts.USER_DONE_TOKEN in message
        return UserReply(message=message.replace(prompts.USER_DONE_TOKEN, "").strip(), done=done)
    stripped = text.strip().strip('"').strip()
    if prompts.USER_DONE_TOKEN in stripped:
        return UserReply(message=stripped.replace(prompts.USER_DONE_TOKEN, "").strip(), done=True)
    return UserReply(message=stripped)


# -- grading ------------------------------------------------------------------------------------


async def _ask(
    chat: ChatModel, prompt: str, purpose: str, pass_score: float | None
) -> JudgeVerdict:
    messages = [
        ChatMessage(role="system", content=prompts.JUDGE_SYSTEM),
        ChatMessage(role="user", content=prompt),
    ]
    reply = await chat.complete(messages, purpose=purpose)
    return parse_verdict(reply.content, model=chat.model, pass_score=pass_score)


async def grade_criterion(
    chat: ChatModel, conversation: str, criterion: str, *, focus_turn: int | None = None
) -> JudgeVerdict:
    prompt = prompts.criterion_prompt(conversation, criterion, focus_turn=focus_turn)
    return await _ask(chat, prompt, "criterion", pass_score=0.5)


async def grade_goal(chat: ChatModel, conversation: str, goal: str) -> JudgeVerdict:
    return await _ask(chat, prompts.goal_prompt(conversation, goal), "goal", pass_score=0.5)


async def grade_similarity(chat: ChatModel, message: str, values: list[str]) -> JudgeVerdict:
    verdict = await _ask(chat, prompts.similarity_prompt(message, values), "similarity", 0.5)
    if verdict.score is None:
        raise JudgeError("The judge's similarity reply has no score")
    return verdict


async def grade_grounded(
    chat: ChatModel, conversation: str, turn: int, answer: str, chunks: list[str]
) -> JudgeVerdict:
    prompt = prompts.grounded_prompt(conversation, turn, answer, chunks)
    return await _ask(chat, prompt, "grounding", pass_score=0.5)
