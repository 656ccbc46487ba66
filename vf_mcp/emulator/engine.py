"""Runs an agent for one turn: (state, action) -> traces + new state. No HTTP, no sleeping.

Traces are produced lazily by :meth:`Turn.emissions`, interleaved with :class:`Pause` markers,
so a streaming caller can pace delivery and each trace's ``time`` is taken when it is produced.

State follows Voiceflow's shape (``stack``/``storage``/``variables``/``turn``). Each stack frame
points at a node and, in ``storage.step``, at the waiting step inside it. Custom events push a
frame, so when their flow ends the conversation returns silently to where it was waiting.
"""

from __future__ import annotations

import base64
import copy
import enum
import re
import secrets
import string
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .agent import (
    ActionPath,
    AgentDefinition,
    Branch,
    CaptureStep,
    ChoiceStep,
    ConditionStep,
    CustomActionStep,
    EndStep,
    GotoStep,
    HandoffStep,
    IntentRoute,
    KnowledgeStep,
    NoReplyStep,
    RawStep,
    SetStep,
    SpeakStep,
    Step,
    TextStep,
    WaitingStep,
)
from .knowledge import best_entry, chunk_text
from .templating import render, render_value, strip_ssml

Trace = dict[str, Any]
State = dict[str, Any]

# Voiceflow ends a turn that loops ("turn timeout"); these bounds play that role.
MAX_STEPS_PER_TURN = 500
MAX_STACK_DEPTH = 16


@dataclass(frozen=True)
class Pause:
    """Ask a streaming caller to wait before producing the next trace."""

    ms: int


Emission = Trace | Pause


@dataclass(frozen=True)
class TurnOptions:
    user_id: str
    completion_events: bool = False
    audio_events: bool = False
    audio_encoding: str = "audio/mp3"
    stop_all: bool = False
    stop_types: frozenset[str] = frozenset()
    strip_ssml: bool = True
    platform: str = "api"
    locale: str = "en-US"
    # Merged (deeply) into the stored variables before the turn runs.
    variables: Mapping[str, Any] = field(default_factory=dict)


# -- how a waiting step resumes ---------------------------------------------------------------


@dataclass(frozen=True)
class _Jump:
    node: str


@dataclass(frozen=True)
class _Push:
    node: str


class _Resume(enum.Enum):
    ADVANCE = "advance"  # carry on after the waiting step
    STAY = "stay"  # keep waiting at the same step


_Target = _Jump | _Push | _Resume


class _Flow(enum.Enum):
    NEXT = "next"
    WAIT = "wait"
    STOP = "stop"


_StepResult = _Flow | _Jump


def new_id(length: int = 25) -> str:
    """A cuid-looking id, like the ones Voiceflow puts in slate/message ids."""
    alphabet = string.ascii_lowercase + string.digits
    return "c" + "".join(secrets.choice(alphabet) for _ in range(length - 1))


def deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            deep_merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def fresh_state(agent: AgentDefinition, user_id: str, options: TurnOptions | None = None) -> State:
    variables: dict[str, Any] = {
        "sessions": 0,
        "user_id": user_id,
        "timestamp": 0,
        "platform": options.platform if options else "api",
        "locale": options.locale if options else "en-US",
        "last_utterance": "",
        "last_response": "",
    }
    variables.update(copy.deepcopy(agent.variables))
    return {"stack": [], "storage": {}, "variables": variables, "turn": {}}


def _normalise_state(agent: AgentDefinition, state: State | None, options: TurnOptions) -> State:
    """Deep-copy a stored state and repair anything a PUT may have left out."""
    base = fresh_state(agent, options.user_id, options)
    if not state:
        return base
    result = copy.deepcopy(state)
    for key in ("stack",):
        if not isinstance(result.get(key), list):
            result[key] = []
    for key in ("storage", "variables", "turn"):
        if not isinstance(result.get(key), dict):
            result[key] = {}
    result["variables"] = {**base["variables"], **result["variables"]}
    return result


def _action_type(action: Mapping[str, Any] | None) -> str | None:
    if action is None:
        return None
    kind = action.get("type")
    return kind if isinstance(kind, str) else None


def _payload(action: Mapping[str, Any] | None) -> Any:
    return None if action is None else action.get("payload")


def _utterance(action: Mapping[str, Any] | None) -> str | None:
    """What the user 'said' with this request, as Voiceflow stores it in ``last_utterance``."""
    kind, payload = _action_type(action), _payload(action)
    if kind == "text":
        return payload if isinstance(payload, str) else None
    if not isinstance(payload, Mapping):
        return None
    if kind == "message":
        message = payload.get("message")
        return message if isinstance(message, str) else None
    if kind == "intent":
        query = payload.get("query")
        return query if isinstance(query, str) and query else None
    label = payload.get("label")
    return label if isinstance(label, str) and label else None


def _normalise_words(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9']+", text.lower()))


def _same(a: Any, b: Any) -> bool:
    """Equality that lets YAML's ``1001`` match the captured text ``"1001"``."""
    if type(a) is type(b):
        return bool(a == b)
    return str(a).strip().lower() == str(b).strip().lower()


class Turn:
    """One interaction. Iterate :meth:`emissions` to the end, then read :attr:`state`."""

    def __init__(
        self,
        agent: AgentDefinition,
        state: State | None,
        action: Mapping[str, Any] | None,
        options: TurnOptions,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._agent = agent
        self._action = action
        self._options = options
        self._clock = clock
        self._state = _normalise_state(agent, state, options)
        self._finished = False
        self._steps_run = 0

    @property
    def state(self) -> State:
        if not self._finished:
            raise RuntimeError("the turn has not finished; exhaust emissions() first")
        return self._state

    @property
    def finished(self) -> bool:
        return self._finished

    def emissions(self) -> Iterator[Emission]:
        variables = self._vars
        deep_merge(variables, self._options.variables)
        variables["user_id"] = self._options.user_id
        variables["timestamp"] = int(self._clock())
        self._state["turn"] = {}
        utterance = _utterance(self._action)
        if utterance is not None:
            variables["last_utterance"] = utterance
        yield from self._dispatch()
        self._finished = True

    # -- dispatch ---------------------------------------------------------------------------

    @property
    def _vars(self) -> dict[str, Any]:
        variables: dict[str, Any] = self._state["variables"]
        return variables

    @property
    def _stack(self) -> list[dict[str, Any]]:
        stack: list[dict[str, Any]] = self._state["stack"]
        return stack

    def _dispatch(self) -> Iterator[Emission]:
        action, kind = self._action, _action_type(self._action)
        if kind == "launch":
            self._state["stack"], self._state["storage"] = [], {}
            sessions = self._vars.get("sessions")
            self._vars["sessions"] = (sessions if isinstance(sessions, int) else 0) + 1
            self._apply(_Push(self._agent.start))
            yield from self._execute()
            return
        if kind == "end":
            self._end_conversation()
            yield self._trace("end", None)
            return

        # Only the wait right after a no_reply step honours it; any real answer disarms it.
        no_reply = self._state["storage"].get("noReply")
        waiting = self._waiting_step()
        if waiting is not None and kind is None:
            return  # an empty request gives a waiting conversation nothing to act on
        if waiting is None:
            # Fresh, ended or foreign state: Voiceflow starts the flow over for any request.
            self._state["stack"] = []
            self._state["storage"].pop("noReply", None)
            route = self._global_route(action, understand_text=True)
            self._apply(route or _Push(self._agent.start))
            yield from self._execute()
            return

        target: _Target | None = self._match(waiting, action)
        if target is None:
            target = self._global_route(action, understand_text=isinstance(waiting, ChoiceStep))
        if target is None and kind == "no-reply" and isinstance(no_reply, dict):
            goto = no_reply.get("goto")
            if isinstance(goto, str) and goto in self._agent.nodes:
                target = _Jump(goto)
        if target is None:
            target = yield from self._absorb(waiting, action)
        if target is _Resume.STAY:
            return
        self._state["storage"].pop("noReply", None)
        self._apply(target)
        yield from self._execute()

    def _waiting_step(self) -> WaitingStep | None:
        if not self._stack:
            return None
        frame = self._stack[-1]
        node = self._agent.nodes.get(frame.get("nodeID") or "")
        storage = frame.get("storage")
        index = storage.get("step") if isinstance(storage, dict) else None
        if node is None or not isinstance(index, int) or not 0 <= index < len(node.steps):
            return None
        step = node.steps[index]
        if isinstance(step, ChoiceStep | CaptureStep | CustomActionStep | HandoffStep):
            return step
        return None

    def _match(self, step: WaitingStep, action: Mapping[str, Any] | None) -> _Target | None:
        """Requests aimed squarely at the waiting step (a button, an action result)."""
        kind, payload = _action_type(action), _payload(action)
        match step:
            case ChoiceStep():
                for button in step.buttons:
                    if self._button_matches(button.wire_request(), button.label, action):
                        if button.goto:
                            return _Jump(button.goto)
                        return self._global_route(button.wire_request(), understand_text=True)
                return None
            case CustomActionStep():
                path = next((p for p in step.paths if p.event == kind), None)
                return None if path is None else self._follow(path)
            case HandoffStep(mode="custom_action"):
                return self._after_handoff(step) if kind == "done" else None
            case HandoffStep():
                returned = kind == "live-agent-handoff" and (
                    isinstance(payload, Mapping) and payload.get("type") == "return_to_voiceflow"
                )
                return self._after_handoff(step) if returned else None
            case _:
                return None

    def _button_matches(
        self, request: Mapping[str, Any], label: str, action: Mapping[str, Any] | None
    ) -> bool:
        kind, payload = _action_type(action), _payload(action)
        if kind is None:
            return False
        wanted = request.get("type")
        if kind == wanted and kind.startswith("path-"):
            return True
        if kind == "intent" and wanted == "intent":
            return _intent_name(payload) == _intent_name(request.get("payload"))
        said = _utterance(action)
        if said is None:
            return False
        if kind in ("text", "message") and wanted == "text":
            other = request.get("payload")
            if isinstance(other, str) and _normalise_words(other) == _normalise_words(said):
                return True
        if kind in ("text", "message") or kind.startswith("path-"):
            return _normalise_words(said) == _normalise_words(label)
        return False

    def _global_route(
        self, action: Mapping[str, Any] | None, *, understand_text: bool
    ) -> _Target | None:
        """Project-wide handlers: custom events push a flow, intents jump to theirs."""
        kind, payload = _action_type(action), _payload(action)
        if kind == "event" and isinstance(payload, Mapping):
            event = payload.get("event")
            name = event.get("name") if isinstance(event, Mapping) else None
            node = self._agent.events.get(name) if isinstance(name, str) else None
            return _Push(node) if node else None
        if kind == "intent":
            name = _intent_name(payload)
            route = self._agent.intents.get(name) if name else None
            if route is None:
                return None
            entities = payload.get("entities") if isinstance(payload, Mapping) else None
            return self._enter_intent(route, entities if isinstance(entities, list) else [])
        said = _utterance(action)
        if understand_text and kind in ("text", "message") and said:
            heard = f" {_normalise_words(said)} "
            for route in self._agent.intents.values():
                if any(f" {_normalise_words(u)} " in heard for u in route.utterances):
                    return self._enter_intent(route, [])
        return None

    def _enter_intent(self, route: IntentRoute, entities: list[Any]) -> _Target:
        given = {
            e.get("name"): e.get("value")
            for e in entities
            if isinstance(e, Mapping) and isinstance(e.get("name"), str)
        }
        for entity, variable in route.entities.items():
            self._vars[variable] = given.get(entity)
        return _Jump(route.goto)

    def _absorb(
        self, step: WaitingStep, action: Mapping[str, Any] | None
    ) -> Generator[Emission, None, _Target]:
        """What the waiting step does with a request nothing else claimed."""
        match step:
            case ChoiceStep():
                if _action_type(action) == "no-reply":
                    return _Resume.STAY
                yield self._text(render(step.no_match, self._vars))
                yield self._choice(step)
                return _Resume.STAY
            case CaptureStep():
                said = _utterance(action)
                if said is None or _action_type(action) == "event":
                    return _Resume.STAY
                self._vars[step.variable] = _extract(said, step.extract)
                return _Resume.ADVANCE
            case CustomActionStep():
                index = step.default_path
                path = step.paths[index] if 0 <= index < len(step.paths) else None
                return _Resume.ADVANCE if path is None else self._follow(path)
            case HandoffStep(mode="custom_action"):
                return self._after_handoff(step)
            case _:
                return _Resume.STAY

    def _follow(self, path: ActionPath) -> _Target:
        return _Jump(path.goto) if path.goto else _Resume.ADVANCE

    def _after_handoff(self, step: HandoffStep) -> _Target:
        return _Jump(step.on_done) if step.on_done else _Resume.ADVANCE

    def _apply(self, target: _Target) -> None:
        if target is _Resume.ADVANCE:
            self._stack[-1]["storage"]["step"] += 1
        elif isinstance(target, _Push) or (isinstance(target, _Jump) and not self._stack):
            self._stack.append(self._frame(target.node))
            del self._stack[:-MAX_STACK_DEPTH]
        elif isinstance(target, _Jump):
            self._stack[-1] = self._frame(target.node)

    def _frame(self, node_id: str) -> dict[str, Any]:
        node = self._agent.nodes[node_id]
        return {
            "diagramID": self._agent.flow_id,
            "nodeID": node_id,
            "name": node.name or node_id,
            "storage": {"step": 0},
            "variables": {},
            "commands": [],
        }

    def _end_conversation(self) -> None:
        self._state["stack"] = []
        self._state["storage"] = {}

    # -- running steps ----------------------------------------------------------------------

    def _execute(self) -> Iterator[Emission]:
        while self._stack:
            frame = self._stack[-1]
            node = self._agent.nodes[frame["nodeID"]]
            index: int = frame["storage"]["step"]
            if index >= len(node.steps):
                self._stack.pop()
                if self._stack:
                    return  # back to the interrupted flow, which keeps waiting silently
                yield self._trace("end", None)
                return
            self._steps_run += 1
            if self._steps_run > MAX_STEPS_PER_TURN:
                yield self._trace(
                    "debug",
                    {"message": "ERROR: turn timeout - check for infinite loops", "level": "error"},
                )
                self._end_conversation()
                yield self._trace("end", None)
                return
            outcome = yield from self._run_step(node.steps[index])
            if outcome is _Flow.WAIT:
                return
            if outcome is _Flow.STOP:
                self._end_conversation()
                return
            if isinstance(outcome, _Jump):
                self._stack[-1] = self._frame(outcome.node)
            else:
                frame["storage"]["step"] = index + 1

    def _run_step(self, step: Step) -> Generator[Emission, None, _StepResult]:
        options, variables = self._options, self._vars
        match step:
            case TextStep():
                message = render(step.message, variables)
                if options.strip_ssml:
                    message = strip_ssml(message)
                yield from self._say(message, delay=step.delay)
            case SpeakStep():
                message = render(step.message, variables)
                if options.strip_ssml:
                    message = strip_ssml(message)
                payload: dict[str, Any] = {"message": message, "type": "message"}
                if step.src is not None:
                    payload["src"] = render(step.src, variables)
                if step.voice is not None:
                    payload["voice"] = step.voice
                variables["last_response"] = message
                yield self._trace("speak", payload)
            case ChoiceStep():
                yield self._choice(step)
                return _Flow.WAIT
            case CaptureStep():
                return _Flow.WAIT
            case ConditionStep():
                for branch in step.branches:
                    if _branch_holds(branch, variables.get(step.variable)):
                        return _Jump(branch.goto)
                return _Jump(step.default) if step.default else _Flow.NEXT
            case SetStep():
                for name, value in step.variables.items():
                    variables[name] = render_value(value, variables)
            case CustomActionStep():
                yield self._trace(
                    step.name,
                    render_value(step.payload, variables),
                    paths=[_wire_path(p) for p in step.paths],
                    defaultPath=step.default_path,
                )
                if step.stop or options.stop_all or step.name in options.stop_types:
                    return _Flow.WAIT
                index = step.default_path
                path = step.paths[index] if 0 <= index < len(step.paths) else None
                return _Jump(path.goto) if path and path.goto else _Flow.NEXT
            case HandoffStep():
                yield self._handoff_trace(step)
                return _Flow.WAIT
            case KnowledgeStep():
                yield from self._knowledge(step)
            case RawStep():
                for trace in step.traces:
                    raw = copy.deepcopy(trace)
                    raw.setdefault("time", self._now_ms())
                    yield raw
            case GotoStep():
                return _Jump(step.node)
            case NoReplyStep():
                self._state["storage"]["noReply"] = {"goto": step.goto, "timeout": step.timeout}
                yield self._trace("no-reply", {"timeout": step.timeout})
            case EndStep():
                yield self._trace("end", None)
                return _Flow.STOP
        return _Flow.NEXT

    def _knowledge(self, step: KnowledgeStep) -> Iterator[Emission]:
        question = render(step.question, self._vars)
        entry = best_entry(question, self._agent.knowledge_base)
        answer = entry.answer if entry else render(step.fallback, self._vars)
        if not self._options.completion_events:
            yield from self._say(answer, ai=True)
            return
        message_id = new_id()
        yield self._trace("completion", {"state": "start", "messageID": message_id, "ai": True})
        for chunk in chunk_text(answer, step.chunk_words):
            if step.chunk_delay_ms:
                yield Pause(step.chunk_delay_ms)
            yield self._trace("completion", {"state": "content", "content": chunk})
        yield self._trace("completion", {"state": "end"})
        self._vars["last_response"] = answer
        yield from self._audio(answer)

    def _handoff_trace(self, step: HandoffStep) -> Trace:
        if step.mode == "live_agent":
            return self._trace(
                "live-agent-handoff",
                {
                    "conversationID": new_id(),
                    "message": render(step.message, self._vars),
                    "event": "chat_started",
                },
            )
        payload = {"reason": step.reason, **{v: self._vars.get(v) for v in step.variables}}
        return self._trace(
            step.action_name, payload, paths=[{"event": {"type": "done"}}], defaultPath=0
        )

    # -- trace builders ---------------------------------------------------------------------

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _trace(self, kind: str, payload: Any, **extra: Any) -> Trace:
        return {"type": kind, "payload": payload, "time": self._now_ms(), **extra}

    def _text(self, message: str, *, delay: int | None = None, ai: bool = False) -> Trace:
        payload: dict[str, Any] = {
            "slate": {"id": new_id(), "content": [{"children": [{"text": message}]}]},
            "message": message,
        }
        if delay is not None:
            payload["delay"] = delay
        if ai:
            payload["ai"] = True
        self._vars["last_response"] = message
        return self._trace("text", payload)

    def _say(self, message: str, *, delay: int | None = None, ai: bool = False) -> Iterator[Trace]:
        yield self._text(message, delay=delay, ai=ai)
        yield from self._audio(message)

    def _audio(self, message: str) -> Iterator[Trace]:
        """Synthetic TTS output for ``audio_events``: start, one base64 chunk, end."""
        if not self._options.audio_events:
            return
        audio = base64.b64encode(f"EMULATED-TTS:{message}".encode()).decode()
        yield self._trace("audio", {"state": "start", "messageID": new_id()})
        yield self._trace(
            "audio",
            {"state": "content", "content": audio, "encoding": self._options.audio_encoding},
        )
        yield self._trace("audio", {"state": "end"})

    def _choice(self, step: ChoiceStep) -> Trace:
        buttons = [{"name": b.label, "request": b.wire_request()} for b in step.buttons]
        return self._trace("choice", {"buttons": buttons})


def _intent_name(payload: Any) -> str | None:
    if not isinstance(payload, Mapping):
        return None
    intent = payload.get("intent")
    name = intent.get("name") if isinstance(intent, Mapping) else None
    return name if isinstance(name, str) else None


def _wire_path(path: ActionPath) -> dict[str, Any]:
    wire: dict[str, Any] = {"event": {"type": path.event}}
    if path.label is not None:
        wire["label"] = path.label
    return wire


def _branch_holds(branch: Branch, value: Any) -> bool:
    if "exists" in branch.model_fields_set:
        present = value is not None and value != ""
        return present is bool(branch.exists)
    if "in_" in branch.model_fields_set:
        return any(_same(option, value) for option in branch.in_ or [])
    if branch.equals is None:
        return value is None
    return value is not None and _same(branch.equals, value)


def _extract(said: str, pattern: str | None) -> str:
    said = said.strip()
    if pattern is None:
        return said
    found = re.search(pattern, said)
    if found is None:
        return said
    return (found.group(1) if found.re.groups else found.group(0)).strip()


def run_turn(
    agent: AgentDefinition,
    state: State | None,
    action: Mapping[str, Any] | None,
    options: TurnOptions,
) -> tuple[list[Trace], State]:
    """Run a whole turn at once, ignoring pacing: what the non-streaming endpoint needs."""
    turn = Turn(agent, state, action, options)
    traces = [e for e in turn.emissions() if not isinstance(e, Pause)]
    return traces, turn.state
