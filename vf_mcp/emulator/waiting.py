"""The steps that wait: what they show when reached, and what they do with the next request.

Order of precedence on a request, as the runtime has it: a ``no-reply`` goes to the step's
no-reply prompts; then the step's own interactions (``choice:N``); then the jump commands and
global intents of the stack (``jump``), unless the step's scope is ``node``; then the step's
no-match prompts (``reprompt``).
"""

from __future__ import annotations

import re
from collections.abc import Generator, Iterator, Mapping, Sequence
from typing import Any

from .agent import Command, IntentRoute
from .stepping import StepRunner
from .steps import (
    DEFAULT_NO_MATCH,
    ActionPath,
    Button,
    CaptureStep,
    CardButton,
    CardStep,
    CarouselStep,
    ChoiceStep,
    CustomActionStep,
    HandoffStep,
    NoReply,
    WaitingStep,
)
from .templating import render, render_value
from .traces import Trace, entity_filling, new_id
from .turnbase import (
    ARMED_NO_REPLY,
    CALLED_COMMAND,
    MAX_STACK_DEPTH,
    NO_MATCHES,
    NO_REPLIES,
    Emission,
    Flow,
    Jump,
    StepResult,
)

GLOBAL_NO_REPLY_TIMEOUT_S = 10
DM = "dm"
_NUMBER = re.compile(r"^-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")


def elicit_request(intent: str, entity: str) -> dict[str, Any]:
    """The request the runtime's dialog manager waits with while an entity is missing."""
    return {
        "type": "intent",
        "payload": {"intent": {"name": intent}, "query": "", "entities": []},
        "requiredEntities": [entity],
        "ELICIT": True,
    }


def filled_request(intent: str, entity: str, value: str, query: str) -> dict[str, Any]:
    return {
        "type": "intent",
        "payload": {
            "intent": {"name": intent},
            "query": query,
            "entities": [{"name": entity, "value": value}],
        },
        "requiredEntities": [entity],
        "ELICIT": False,
    }


def entity_value(value: Any) -> Any:
    """Entity values become numbers when they read as one (``"2"`` -> ``2``), not ``"007"``."""
    if not isinstance(value, str) or (value.startswith("0") and len(value) > 1):
        return value
    if not _NUMBER.match(value.strip()):
        return value
    number = float(value)
    return int(number) if number.is_integer() else number


def _intent_name(request: Mapping[str, Any] | None) -> str | None:
    if request is None or request.get("type") != "intent":
        return None
    payload = request.get("payload")
    intent = payload.get("intent") if isinstance(payload, Mapping) else None
    name = intent.get("name") if isinstance(intent, Mapping) else None
    return name if isinstance(name, str) and name else None


def _entities(request: Mapping[str, Any] | None) -> dict[str, Any]:
    payload = request.get("payload") if request is not None else None
    found = payload.get("entities") if isinstance(payload, Mapping) else None
    if not isinstance(found, list):
        return {}
    return {
        e["name"]: e.get("value")
        for e in found
        if isinstance(e, Mapping) and isinstance(e.get("name"), str) and e.get("value")
    }


def _event_matches(event: tuple[str, str], request: Mapping[str, Any] | None) -> bool:
    kind, value = event
    if kind == "intent":
        return _intent_name(request) == value
    return request is not None and request.get("type") == value and value != "intent"


def _button_event(button: Button) -> tuple[str, str]:
    wire = button.wire_request()
    if wire.get("type") == "intent":
        return ("intent", _intent_name(wire) or "")
    return ("request", str(wire.get("type")))


def interactions(step: ChoiceStep) -> list[tuple[tuple[str, str], str]]:
    """What the choice listens for, numbered as its `choice:N` paths count them."""
    found = [(_button_event(b), b.goto) for b in step.buttons if b.goto]
    for item in step.interactions:
        event = ("intent", item.intent) if item.intent is not None else ("request", item.request)
        found.append((event, item.goto))  # type: ignore[arg-type]
    return [(event, goto) for event, goto in found if goto]


class Waiting(StepRunner):
    """The waiting half of a turn: the engine sets ``_request`` (after NLU) before running."""

    _request: dict[str, Any] | None = None
    _from_text: bool = False
    _final_request: Any = None

    # -- reached in the flow -----------------------------------------------------------------

    def _enter_wait(self, step: WaitingStep) -> Generator[Emission, None, StepResult]:
        match step:
            case ChoiceStep():
                shown = self._choice(step.buttons)
                if shown is not None:
                    yield shown
                yield from self._no_reply_timeout(step.no_reply)
            case CaptureStep():
                yield from self._no_reply_timeout(step.no_reply)
                if step.intent is not None and step.entity is not None:
                    yield self._elicit(step.intent, step.entity)
            case CardStep() | CarouselStep():
                shown = self._card(step) if isinstance(step, CardStep) else self._carousel(step)
                if shown is not None:
                    yield shown
                if not step.blocking:
                    return Flow.NEXT
                yield from self._no_reply_timeout(step.no_reply)
            case CustomActionStep():
                yield self._custom_action(step)
                options = self._options
                if step.stop or options.stop_all or step.name in options.stop_types:
                    return Flow.WAIT
                return self._follow(self._default_path(step))
            case HandoffStep():
                yield self._handoff_trace(step)
                return Flow.WAIT
        # A new wait starts with fresh no-match and no-reply counts.
        self._storage.pop(NO_MATCHES, None)
        self._storage.pop(NO_REPLIES, None)
        return Flow.WAIT

    def _elicit(self, intent: str, entity: str) -> Trace:
        request = elicit_request(intent, entity)
        self._storage[DM] = {"intentRequest": request}
        self._final_request = request
        return entity_filling(entity, request, self._now_ms())

    def _no_reply_timeout(
        self, config: NoReply | None, timeout: int | None = None
    ) -> Iterator[Trace]:
        seconds = timeout if timeout is not None else (config.timeout if config else None)
        if seconds:
            yield self._trace("no-reply", {"timeout": seconds})

    def _choice(self, buttons: Sequence[Button | CardButton]) -> Trace | None:
        wire: list[dict[str, Any]] = []
        for button in buttons:
            name = render(button.label, self._vars)
            if name and all(b["name"] != name for b in wire):
                request = render_value(button.wire_request(), self._vars, raw_placeholders=False)
                wire.append({"name": name, "request": request})
        return self._trace("choice", {"buttons": wire}) if wire else None

    def _custom_action(self, step: CustomActionStep) -> Trace:
        paths = [
            {**({"label": p.label} if p.label is not None else {}), "event": {"type": p.event}}
            for p in step.paths
        ]
        return self._trace(
            render(step.name, self._vars),
            render_value(step.payload, self._vars, raw_placeholders=False),
            defaultPath=step.default_path,
            paths=paths,
        )

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
        carried: dict[str, Any] = {v: self._vars.get(v) for v in step.variables}
        return self._trace(
            step.action_name,
            {"reason": step.reason, **carried},
            defaultPath=0,
            paths=[{"event": {"type": "done"}}],
        )

    # -- a request lands on the waiting step -------------------------------------------------

    def _resume(self, step: WaitingStep) -> Generator[Emission, None, StepResult]:
        request = self._request
        kind = request.get("type") if request is not None else None
        match step:
            case HandoffStep():
                return (yield from self._resume_handoff(step, kind))
            case CustomActionStep():
                chosen = next((p for p in step.paths if p.event == kind != "intent"), None)
                if chosen is not None:
                    return self._leave(self._follow(chosen))
                commanded = yield from self._command()
                if commanded is not None:
                    return commanded
                return self._leave(self._follow(self._default_path(step)))
        if kind == "no-reply":
            return (yield from self._no_reply(step))
        match step:
            case ChoiceStep():
                for number, (event, goto) in enumerate(interactions(step), start=1):
                    if _event_matches(event, request):
                        yield self._path(f"choice:{number}")
                        return self._leave(Jump(goto))
                if step.scope == "global":
                    commanded = yield from self._command()
                    if commanded is not None:
                        return commanded
            case CardStep() | CarouselStep():
                commanded = yield from self._command()
                if commanded is not None:
                    return commanded
            case CaptureStep():
                # Text that the NLU turned into an intent has no confidence here, like a
                # low-confidence match: a whole-reply capture takes it instead of a command.
                whole = step.variable is not None
                if step.scope == "global" and not (whole and self._from_text):
                    commanded = yield from self._command()
                    if commanded is not None:
                        return commanded
                captured = self._capture(step, request)
                if captured:
                    yield self._path("capture")
                    return self._leave(Flow.NEXT)
        return (yield from self._no_match(step))

    def _capture(self, step: CaptureStep, request: Mapping[str, Any] | None) -> bool:
        name = _intent_name(request)
        if name is None or request is None:
            return False
        payload = request.get("payload")
        if step.variable is not None:
            query = payload.get("query") if isinstance(payload, Mapping) else None
            self._vars[step.variable] = _extract(
                query if isinstance(query, str) else "", step.extract
            )
            return True
        value = _entities(request).get(step.entity or "")
        if name != step.intent or value is None:
            return False
        self._vars[step.entity or ""] = entity_value(value)
        self._storage.pop(DM, None)
        return True

    def _resume_handoff(
        self, step: HandoffStep, kind: str | None
    ) -> Generator[Emission, None, StepResult]:
        if step.mode == "live_agent":
            payload = self._request.get("payload") if self._request else None
            returned = kind == "live-agent-handoff" and (
                isinstance(payload, Mapping) and payload.get("type") == "return_to_voiceflow"
            )
            # Messages for the live agent are not the flow's business: keep waiting quietly.
            return self._leave(self._after_handoff(step)) if returned else Flow.WAIT
        if kind != "done":
            commanded = yield from self._command()
            if commanded is not None:
                return commanded
        return self._leave(self._after_handoff(step))

    def _no_reply(self, step: WaitingStep) -> Generator[Emission, None, StepResult]:
        config = getattr(step, "no_reply", None) or self._armed_no_reply()
        count = self._counter(NO_REPLIES)
        prompts = config.prompts if config else []
        # The runtime gives the last prompt the global timeout instead of the step's own.
        timeout = (
            GLOBAL_NO_REPLY_TIMEOUT_S
            if count == len(prompts) - 1
            else (config.timeout if config else None)
        )
        if count >= len(prompts):
            self._storage.pop(NO_REPLIES, None)
            yield self._path("choice:noReply")
            goto = config.goto if config else None
            return self._leave(Jump(goto) if goto else Flow.RAN_OUT)
        self._storage[NO_REPLIES] = count + 1
        yield self._path("reprompt")
        yield from self._say(render(prompts[count], self._vars, slate=True))
        shown = self._step_buttons(step)
        if shown is not None:
            yield shown
        yield from self._no_reply_timeout(config, timeout)
        return Flow.WAIT

    def _no_match(self, step: WaitingStep) -> Generator[Emission, None, StepResult]:
        reprompt = getattr(step, "no_match", None)
        prompts = reprompt.prompts if reprompt is not None else []
        count = self._counter(NO_MATCHES)
        if count < len(prompts):
            message = prompts[count]
        elif reprompt is not None and reprompt.goto:
            self._storage.pop(NO_MATCHES, None)
            yield self._path("choice:else")
            return self._leave(Jump(reprompt.goto))
        else:
            message = DEFAULT_NO_MATCH  # the runtime's global no-match, once the prompts run out
        yield self._path("reprompt")
        yield from self._say(render(message, self._vars, slate=True))
        self._storage[NO_MATCHES] = count + 1
        shown = self._step_buttons(step)
        if shown is not None:
            yield shown
        yield from self._no_reply_timeout(getattr(step, "no_reply", None) or self._armed_no_reply())
        if isinstance(step, CaptureStep) and step.intent is not None and step.entity is not None:
            yield self._elicit(step.intent, step.entity)
        return Flow.WAIT

    def _step_buttons(self, step: WaitingStep) -> Trace | None:
        if isinstance(step, ChoiceStep | CardStep):
            return self._choice(step.buttons)
        return None

    # -- commands ----------------------------------------------------------------------------

    def _command(self) -> Generator[Emission, None, StepResult | None]:
        """Event handlers push a flow; jump commands and global intents jump to their node."""
        request = self._request
        if request is not None and request.get("type") == "event":
            payload = request.get("payload")
            event = payload.get("event") if isinstance(payload, Mapping) else None
            name = event.get("name") if isinstance(event, Mapping) else None
            node = self._agent.events.get(name) if isinstance(name, str) else None
            if node is not None:
                return (yield from self._push(node))
        for index in range(len(self._stack) - 1, -1, -1):
            diagram = self._diagram_of(self._stack[index])
            if diagram is None:
                continue
            for command in diagram.commands:
                if _command_matches(command, request):
                    return (yield from self._jump(index, command))
        return None

    def _jump(self, index: int, command: Command) -> Generator[Emission, None, StepResult]:
        if command.intent is not None:
            self._map_entities(self._agent.intents[command.intent])
        yield self._path("jump")
        del self._stack[index + 1 :]
        yield from self._stack_changed()
        top = self._top()
        top["nodeID"] = command.goto
        self._frame_storage(top).pop("step", None)
        yield self._debug("matched command **jump** - jumping to node", "command")
        return self._leave(Flow.FRAME_CHANGED)

    def _push(self, node: str) -> Generator[Emission, None, StepResult]:
        yield self._path("push")
        self._frame_storage(self._top())[CALLED_COMMAND] = True
        yield self._debug("matched command **push** - adding command flow", "command")
        self._stack.append(self._new_frame(self._agent.flow_id, node))
        if len(self._stack) > MAX_STACK_DEPTH:
            del self._stack[1 : len(self._stack) - MAX_STACK_DEPTH + 1]
        yield from self._stack_changed()
        return self._leave(Flow.FRAME_CHANGED)

    def _map_entities(self, route: IntentRoute) -> None:
        given = _entities(self._request)
        for entity, variable in route.entities.items():
            self._vars[variable] = given.get(entity)

    # -- small helpers -----------------------------------------------------------------------

    def _counter(self, key: str) -> int:
        value = self._storage.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    def _armed_no_reply(self) -> NoReply | None:
        armed = self._storage.get(ARMED_NO_REPLY)
        if not isinstance(armed, dict) or not isinstance(armed.get("timeout"), int):
            return None
        goto = armed.get("goto")
        return NoReply(timeout=armed["timeout"], goto=goto if isinstance(goto, str) else None)

    def _leave(self, result: StepResult) -> StepResult:
        """Leaving a wait disarms a `no_reply` step's timeout (it covers one wait only)."""
        self._storage.pop(ARMED_NO_REPLY, None)
        return result

    @staticmethod
    def _default_path(step: CustomActionStep) -> ActionPath | None:
        index = step.default_path
        return step.paths[index] if 0 <= index < len(step.paths) else None

    @staticmethod
    def _follow(path: ActionPath | None) -> StepResult:
        return Jump(path.goto) if path is not None and path.goto else Flow.NEXT

    @staticmethod
    def _after_handoff(step: HandoffStep) -> StepResult:
        return Jump(step.on_done) if step.on_done else Flow.NEXT


def _command_matches(command: Command, request: Mapping[str, Any] | None) -> bool:
    if command.intent is not None:
        return _intent_name(request) == command.intent
    return request is not None and request.get("type") == command.request != "intent"


def _extract(said: str, pattern: str | None) -> str:
    said = said.strip()
    if pattern is None:
        return said
    found = re.search(pattern, said)
    if found is None:
        return said
    return (found.group(1) if found.re.groups else found.group(0)).strip()
