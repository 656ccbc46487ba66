"""Record every runtime response and judge reply of a run; replay them with no runtime and no judge.

Recordings are keyed by suite, test, turn and request (`context.Scope` plus a sequence number), so
tests running in parallel do not disturb each other, and user ids are normalised (`{user_id}`), so
a replay with fresh ids finds its answers. A replayed request is compared with the recorded one:
if the suite changed since recording, the replay fails loudly instead of answering stale data.

Layout: `DIR/meta.json` and `DIR/<suite>/<test>.json` (one `Cassette` per test). Request headers,
and so the API key, are never stored; bodies pass through `redact` before they are written.

A cassette (version 2) also keeps the runtime state after every turn (`states`, read with one
`GET /state/user/{id}` after the turn, which is not itself among the exchanges) and the test as it
was written (`script`), so that any recorded turn can start a new test (`vf-mcp eval fork`,
`from_state`). Version 1 cassettes, which have neither, still replay.

Each turn's latency and each judge reply's token usage are kept too: a replay reports them as
recorded, so its latency and token budgets reach the same verdicts.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import unquote

import httpx
from pydantic import BaseModel, Field, JsonValue, ValidationError, field_validator

from vf_mcp.domain.transcript import upgrade_v1_choice
from vf_mcp.domain.turn import Choice
from vf_mcp.errors import ConfigurationError, JudgeError, ScriptError
from vf_mcp.evaluation.context import Scope, current_scope
from vf_mcp.evaluation.judge import ChatMessage, ChatModel, ChatReply
from vf_mcp.evaluation.script import Suite
from vf_mcp.redaction import redact

USER_TOKEN = "{user_id}"
STATE_ROLE = "state"
"""The scope role of the state read after each recorded turn: kept in `states`, not replayed."""
_Model = TypeVar("_Model", bound=BaseModel)
_USER_IN_PATH = re.compile(r"/user/([^/?]+)")
_KEPT_HEADERS = ("content-type", "retry-after")


class RuntimeExchange(BaseModel):
    scope: str
    seq: int
    method: str
    path: str
    query: str = ""
    request_body: str | None = None
    status: int
    headers: dict[str, str] = Field(default_factory=dict)
    body: str = ""


class JudgeExchange(BaseModel):
    scope: str
    seq: int
    purpose: str
    prompt_sha256: str
    model: str = ""
    reply: str
    input_tokens: int | None = None
    output_tokens: int | None = None
    response_model: str | None = None
    finish_reason: str | None = None


class TurnLatency(BaseModel):
    scope: str
    seq: int
    latency_ms: float


class KeptState(BaseModel):
    """The runtime state after one turn (user id as `{user_id}`, secrets masked), and the buttons
    that turn offered: what a test forked at this turn starts from."""

    turn: int = Field(ge=1)
    state: dict[str, JsonValue]
    choices: list[Choice] = Field(default_factory=list)

    @field_validator("choices", mode="before")
    @classmethod
    def _read_v1(cls, value: Any) -> Any:
        # The buttons are stored as a transcript stores them: one kept before v2 may lack its
        # request.
        return [upgrade_v1_choice(c) for c in value] if isinstance(value, list) else value


class RecordedScript(BaseModel):
    """The test as it was run: its own fields, with the suite's mocks and environment folded in."""

    test: dict[str, JsonValue]


class Cassette(BaseModel):
    version: Literal[1, 2] = 2
    suite: str
    test: str
    runtime: list[RuntimeExchange] = Field(default_factory=list)
    judge: list[JudgeExchange] = Field(default_factory=list)
    latencies: list[TurnLatency] = Field(
        default_factory=list, description="Each turn's latency as measured while recording"
    )
    script: RecordedScript | None = None
    states: list[KeptState] = Field(default_factory=list)

    def state_after(self, turn: int) -> KeptState | None:
        return next((s for s in self.states if s.turn == turn), None)


class RecordingMeta(BaseModel):
    version: Literal[1] = 1
    judge_model: str | None = None


class ReplayMismatchError(httpx.TransportError):
    """A replayed request has no recorded answer, or differs from the one recorded."""


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "_"


def _user_of(path: str) -> str | None:
    match = _USER_IN_PATH.search(path)
    return unquote(match.group(1)) if match else None


def _normalise(text: str, user: str | None) -> str:
    if not user:
        return text
    return text.replace(user, USER_TOKEN)


def _prompt_hash(messages: list[ChatMessage]) -> str:
    data = json.dumps([m.model_dump() for m in messages], sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(data.encode()).hexdigest()


def _scope_or_fail() -> Scope:
    scope = current_scope()
    if scope is None:
        raise ReplayMismatchError("a request was made outside any test turn, so it has no key")
    return scope


class _Store:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.cassettes: dict[tuple[str, str], Cassette] = {}
        self.meta = RecordingMeta()

    def folder(self, suite: str) -> Path:
        return self.root / _slug(suite)

    def path(self, suite: str, test: str) -> Path:
        return self.folder(suite) / f"{_slug(test)}.json"

    def cassette(self, suite: str, test: str) -> Cassette:
        key = (suite, test)
        if key not in self.cassettes:
            self.cassettes[key] = Cassette(suite=suite, test=test)
        return self.cassettes[key]


class Recorder(_Store):
    """Wraps the real transport and judge, keeping what they answered; `save()` writes it."""

    def __init__(self, root: Path, suites: Iterable[Suite] = ()) -> None:
        super().__init__(root)
        self._seq: dict[tuple[str, str, str, str], int] = {}
        self._scripts = {(s.name, t.id): _script_of(s, t.id) for s in suites for t in s.tests}

    def keep_state(
        self, scope: Scope, user_id: str, state: dict[str, Any], choices: list[Choice]
    ) -> None:
        """Keep the state after `scope.turn`: the user id normalised, secrets masked."""
        text = redact(_normalise(json.dumps(state, ensure_ascii=False), user_id))
        kept = KeptState(turn=scope.turn, state=json.loads(text), choices=choices)
        cassette = self.cassette(scope.suite, scope.test)
        cassette.states = [s for s in cassette.states if s.turn != scope.turn] + [kept]

    def next_seq(self, scope: Scope, kind: str) -> int:
        key = (scope.suite, scope.test, scope.key, kind)
        self._seq[key] = self._seq.get(key, -1) + 1
        return self._seq[key]

    def transport(self, inner: httpx.AsyncBaseTransport | None = None) -> httpx.AsyncBaseTransport:
        return _RecordingTransport(self, inner or httpx.AsyncHTTPTransport())

    def chat(self, inner: ChatModel) -> ChatModel:
        self.meta.judge_model = inner.model
        return _RecordingChat(self, inner)

    def latency(self, scope: Scope, measured_ms: float) -> float:
        self.cassette(scope.suite, scope.test).latencies.append(
            TurnLatency(
                scope=scope.key, seq=self.next_seq(scope, "latency"), latency_ms=measured_ms
            )
        )
        return measured_ms

    def save(self) -> list[Path]:
        written = []
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "meta.json").write_text(self.meta.model_dump_json(indent=2) + "\n")
        for (suite, test), cassette in sorted(self.cassettes.items()):
            trial_of = test.rsplit("#", 1)[0]  # a trial's key is `<test id>#<trial>`
            cassette.script = self._scripts.get((suite, test)) or self._scripts.get(
                (suite, trial_of)
            )
            path = self.path(suite, test)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(cassette.model_dump_json(indent=2) + "\n", encoding="utf-8")
            written.append(path)
        return written


def _script_of(suite: Suite, test_id: str) -> RecordedScript:
    test = next(t for t in suite.tests if t.id == test_id)
    fields = test.model_dump(mode="json", exclude_unset=True)
    mocks = [
        *fields.get("on_action", []),
        *(m.model_dump(mode="json", exclude_unset=True) for m in suite.on_action),
    ]
    if mocks:
        fields["on_action"] = mocks
    if "environment" not in fields and suite.environment is not None:
        fields["environment"] = suite.environment
    return RecordedScript(test=fields)


def load_cassette(path: Path) -> Cassette:
    """One test's recording, refused in one line (`ScriptError`) when it is not one."""
    try:
        return Cassette.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise ScriptError(f"{path}: cannot be read ({exc.strerror})") from None
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ScriptError(
            f"{path} is not one test's recording ({where + ': ' if where else ''}{first['msg']}); "
            "give a DIR/<suite>/<test>.json file that `vf-mcp eval --record DIR` wrote"
        ) from None


class _RecordingTransport(httpx.AsyncBaseTransport):
    def __init__(self, recorder: Recorder, inner: httpx.AsyncBaseTransport) -> None:
        self.recorder = recorder
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        scope = _scope_or_fail()
        if scope.role == STATE_ROLE:
            return await self.inner.handle_async_request(request)
        # Plain bodies keep the recording readable and replayable byte for byte.
        request.headers["Accept-Encoding"] = "identity"
        response = await self.inner.handle_async_request(request)
        try:
            body = await response.aread()
        finally:
            await response.aclose()
        user = _user_of(request.url.path)
        text = body.decode("utf-8", errors="replace")
        content = request.content.decode("utf-8", errors="replace") if request.content else None
        headers = {k: v for k, v in response.headers.items() if k.lower() in _KEPT_HEADERS}
        self.recorder.cassette(scope.suite, scope.test).runtime.append(
            RuntimeExchange(
                scope=scope.key,
                seq=self.recorder.next_seq(scope, "runtime"),
                method=request.method,
                path=_normalise(request.url.path, user),
                query=request.url.query.decode(),
                request_body=redact(_normalise(content, user)) if content is not None else None,
                status=response.status_code,
                headers=headers,
                body=redact(_normalise(text, user)),
            )
        )
        return httpx.Response(
            response.status_code, headers=response.headers, content=body, request=request
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


class _RecordingChat:
    def __init__(self, recorder: Recorder, inner: ChatModel) -> None:
        self.recorder = recorder
        self.inner = inner

    @property
    def model(self) -> str:
        return self.inner.model

    async def complete(self, messages: list[ChatMessage], *, purpose: str) -> ChatReply:
        scope = current_scope() or Scope(suite="", test="")
        reply = await self.inner.complete(messages, purpose=purpose)
        self.recorder.cassette(scope.suite, scope.test).judge.append(
            JudgeExchange(
                scope=scope.key,
                seq=self.recorder.next_seq(scope, "judge"),
                purpose=purpose,
                prompt_sha256=_prompt_hash(messages),
                model=self.inner.model,
                reply=reply.content,
                input_tokens=reply.input_tokens,
                output_tokens=reply.output_tokens,
                response_model=reply.response_model,
                finish_reason=reply.finish_reason,
            )
        )
        return reply


class Replayer(_Store):
    """Answers from a recording directory: no runtime and no judge are contacted.

    A directory that is not a recording is refused at once, in one line naming the file, with a
    `ConfigurationError`: every test of the run would otherwise fail on the first request.
    """

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        if not root.is_dir():
            raise ConfigurationError(
                f"--replay {root}: no such folder; record one first with --record {root}"
            )
        meta = root / "meta.json"
        if meta.is_file():
            self.meta = _read(meta, RecordingMeta, root)
        for file in sorted(root.glob("*/*.json")):
            cassette = _read(file, Cassette, root)
            self.cassettes[(cassette.suite, cassette.test)] = cassette
        self._used: dict[tuple[str, str, str, str], int] = {}

    def unrecorded(self, suites: Iterable[str]) -> list[str]:
        """The suites, by name, of which the recording holds no test at all."""
        recorded = {suite for suite, _ in self.cassettes}
        return [name for name in suites if name not in recorded]

    def next_seq(self, scope: Scope, kind: str) -> int:
        key = (scope.suite, scope.test, scope.key, kind)
        self._used[key] = self._used.get(key, -1) + 1
        return self._used[key]

    def transport(self) -> httpx.AsyncBaseTransport:
        return _ReplayTransport(self)

    def latency(self, scope: Scope, measured_ms: float) -> float:
        """The recorded latency of the turn; what was measured now, for a recording made before
        latencies were kept."""
        seq = self.next_seq(scope, "latency")
        cassette = self.cassettes.get((scope.suite, scope.test))
        recorded = (
            e
            for e in (cassette.latencies if cassette else [])
            if (e.scope, e.seq) == (scope.key, seq)
        )
        return next((e.latency_ms for e in recorded), measured_ms)

    def chat(self) -> ChatModel | None:
        """The recorded judge, or None when the recording had no judge."""
        has_judge = any(c.judge for c in self.cassettes.values())
        if self.meta.judge_model is None and not has_judge:
            return None
        return _ReplayChat(self)


def _read(file: Path, model: type[_Model], root: Path) -> _Model:
    try:
        return model.model_validate_json(file.read_bytes())
    except OSError as exc:
        raise ConfigurationError(
            f"--replay {root}: {file} cannot be read ({exc.strerror})"
        ) from None
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ConfigurationError(
            f"--replay {root}: {file} is not part of a recording ({where + ': ' if where else ''}"
            f"{first['msg']}); point --replay at a folder that --record wrote"
        ) from None


class _ReplayTransport(httpx.AsyncBaseTransport):
    def __init__(self, replayer: Replayer) -> None:
        self.replayer = replayer

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        scope = _scope_or_fail()
        seq = self.replayer.next_seq(scope, "runtime")
        where = f"{scope.suite} / {scope.test} {scope.key} request {seq}"
        cassette = self.replayer.cassettes.get((scope.suite, scope.test))
        recorded = next(
            (
                e
                for e in (cassette.runtime if cassette else [])
                if e.scope == scope.key and e.seq == seq
            ),
            None,
        )
        if recorded is None:
            raise ReplayMismatchError(f"nothing recorded for {where}", request=request)
        user = _user_of(request.url.path)
        path = _normalise(request.url.path, user)
        content = request.content.decode("utf-8", errors="replace") if request.content else None
        body = redact(_normalise(content, user)) if content is not None else None
        if (request.method, path) != (
            recorded.method,
            recorded.path,
        ) or body != recorded.request_body:
            raise ReplayMismatchError(
                f"{where} differs from the recording ({request.method} {path}); record again",
                request=request,
            )
        answer = recorded.body.replace(USER_TOKEN, user) if user else recorded.body
        return httpx.Response(
            recorded.status, headers=recorded.headers, content=answer.encode(), request=request
        )


class _ReplayChat:
    def __init__(self, replayer: Replayer) -> None:
        self.replayer = replayer

    @property
    def model(self) -> str:
        return self.replayer.meta.judge_model or ""

    async def complete(self, messages: list[ChatMessage], *, purpose: str) -> ChatReply:
        scope = current_scope() or Scope(suite="", test="")
        seq = self.replayer.next_seq(scope, "judge")
        cassette = self.replayer.cassettes.get((scope.suite, scope.test))
        recorded = next(
            (
                e
                for e in (cassette.judge if cassette else [])
                if e.scope == scope.key and e.seq == seq
            ),
            None,
        )
        where = f"{scope.suite} / {scope.test} {scope.key} judge call {seq} ({purpose})"
        if recorded is None:
            raise JudgeError(f"nothing recorded for {where}")
        if recorded.prompt_sha256 != _prompt_hash(messages):
            raise JudgeError(f"{where}: the prompt differs from the recording; record again")
        return ChatReply(
            content=recorded.reply,
            input_tokens=recorded.input_tokens,
            output_tokens=recorded.output_tokens,
            response_model=recorded.response_model,
            finish_reason=recorded.finish_reason,
        )
