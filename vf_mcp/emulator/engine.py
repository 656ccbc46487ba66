"""Runs an agent for one turn: (state, action) -> traces + new state. No HTTP, no sleeping.

Traces are produced lazily by :meth:`Turn.emissions`, interleaved with :class:`Pause` markers,
so a streaming caller can pace delivery and each trace's ``time`` is taken when it is produced.

The turn follows what Voiceflow's runtime does, in its order: the state is prepared (a new
session when the stack is empty, every declared variable at ``0``), text goes through the NLU,
the turn's bookkeeping variables are written, the base frame is put under the stack, and then
frames run top-down. A frame points at a node and, in ``storage.step``, at a step inside it
(absent means the first); a frame without ``nodeID`` starts at its diagram's start block.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Generator, Iterator, Mapping
from typing import Any

from .agent import AgentDefinition, Command, Diagram
from .bookkeeping import LAST_EVENT, defaults, initialise, remember_user, user_input
from .nlu import find_value, none_request, same_words, understand
from .steps import (
    CaptureStep,
    CardStep,
    CarouselStep,
    ChoiceStep,
    CustomActionStep,
    FlowStep,
    GotoStep,
    HandoffStep,
    IfStep,
    WaitingStep,
    waits,
)
from .templating import render, render_value
from .traces import Trace
from .turnbase import (
    CALLED_COMMAND,
    MAX_STEPS_PER_TURN,
    Emission,
    Flow,
    Frame,
    Jump,
    Pause,
    State,
    StepResult,
    TurnOptions,
)
from .waiting import DM, Waiting, filled_request

__all__ = ["Emission", "Pause", "State", "Trace", "Turn", "TurnOptions", "blank_state", "run_turn"]

STACK_OVERFLOW = 60  # frames the runtime will run through in one turn before giving up


def deep_merge(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            deep_merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def blank_state(agent: AgentDefinition, user_id: str) -> State:
    """A state with no conversation yet: what a hosted PATCH on a new user starts from."""
    variables = initialise(agent, {**defaults(agent), "user_id": user_id})
    return {"stack": [], "storage": {}, "variables": variables}


def _wire_command(command: Command, diagram_id: str) -> dict[str, Any]:
    if command.intent is not None:
        event: dict[str, Any] = {"type": "intent", "intent": command.intent, "mappings": []}
    else:
        event = {"type": command.request}
    return {"type": "jump", "event": event, "nextID": command.goto, "diagramID": diagram_id}


def _sanitised(action: Mapping[str, Any]) -> dict[str, Any]:
    request = copy.deepcopy(dict(action))
    payload = request.get("payload")
    if request.get("type") == "intent" and isinstance(payload, dict):
        payload.setdefault("entities", [])
    return request


class Turn(Waiting):
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
        super().__init__(agent, options, clock)
        self._stored = copy.deepcopy(state) if state else None
        self._action = copy.deepcopy(dict(action)) if action is not None else None
        self._finished = False
        self._untouched = False
        self._pending = False

    @property
    def state(self) -> State:
        if not self._finished:
            raise RuntimeError("the turn has not finished; exhaust emissions() first")
        if self._untouched and self._stored is not None:
            return copy.deepcopy(self._stored)
        return self._state

    @property
    def request(self) -> Any:
        """The request as the flow saw it (after the NLU): what ``?verbose=true`` reports."""
        return self._final_request

    @property
    def finished(self) -> bool:
        return self._finished

    def emissions(self) -> Iterator[Emission]:
        self._prepare_state()
        kind = self._action.get("type") if self._action is not None else None
        self._request = self._understand(kind)
        self._final_request = self._request if kind != "launch" else self._action
        yield from self._bookkeeping(kind)
        if kind == "action":
            pass  # the runtime skips action requests: they change nothing but bookkeeping
        elif kind == "end":
            self._state["stack"], self._state["storage"] = [], {}
            self._ended = True
            yield self._trace("end", None)
        else:
            yield from self._inject_base()
            self._pending = self._request is not None
            yield from self._cycle()
        if not self._stack and not self._ended and not self._untouched and kind != "action":
            yield self._trace("end", None)
        self._finished = True

    # -- before the flow runs ----------------------------------------------------------------

    def _prepare_state(self) -> None:
        agent, stored = self._agent, self._stored
        if not stored:
            # A user the runtime has never seen gets a state generated (and saved) first.
            variables: dict[str, Any] = {**defaults(agent), "sessions": 1}
            state: State = {"stack": [self._new_frame(agent.flow_id)], "storage": {}}
            state["variables"] = variables
        else:
            stack, storage = stored.get("stack"), stored.get("storage")
            frames = [f for f in stack if isinstance(f, dict)] if isinstance(stack, list) else []
            kept = stored.get("variables")
            state = {
                "stack": copy.deepcopy(frames),
                "storage": copy.deepcopy(storage) if isinstance(storage, dict) else {},
                "variables": copy.deepcopy(kept) if isinstance(kept, dict) else {},
            }
        self._state = state
        deep_merge(self._vars, self._options.variables)
        if self._action is not None and self._action.get("type") == "launch":
            self._state["stack"], self._state["storage"] = [], {}
        if not self._stack:
            self._new_session()
        self._state["variables"] = initialise(agent, self._vars)
        self._vars["timestamp"] = int(self._clock())

    def _new_session(self) -> None:
        variables = {**defaults(self._agent), **self._vars}
        sessions = variables.get("sessions")
        counted = isinstance(sessions, int | float) and not isinstance(sessions, bool)
        variables["sessions"] = (sessions if counted and sessions is not None else 0) + 1
        variables["user_id"] = self._options.user_id
        self._state["variables"] = variables
        self._state["stack"] = [self._new_frame(self._agent.flow_id)]

    def _waiting_step(self) -> WaitingStep | None:
        if not self._stack:
            return None
        frame = self._top()
        diagram = self._diagram_of(frame)
        node = diagram.nodes.get(frame.get("nodeID") or "") if diagram else None
        if node is None:
            return None
        index = self._frame_storage(frame).get("step", 0)
        if not isinstance(index, int) or not 0 <= index < len(node.steps):
            return None
        step = node.steps[index]
        return step if waits(step) else None  # type: ignore[return-value]

    def _understand(self, kind: str | None) -> dict[str, Any] | None:
        """The request the flow sees: text through the NLU, entities through the dialog manager."""
        action = self._action
        self._storage.pop(DM, None)
        if action is None or kind == "launch":
            return None
        waiting = self._waiting_step()
        if kind in ("text", "message"):
            payload = action.get("payload")
            if kind == "message" and isinstance(payload, Mapping):
                payload = payload.get("message")
            text = payload if isinstance(payload, str) else ""
            clicked = self._typed_button(text, waiting)
            if clicked is not None:
                return clicked
            self._from_text = True
            request = understand(text, self._agent) if text else none_request("")
            return self._fill_entity(request, waiting, text)
        request = _sanitised(action)
        return self._fill_entity(request, waiting, None) if kind == "intent" else request

    def _typed_button(self, text: str, waiting: WaitingStep | None) -> dict[str, Any] | None:
        """Typing a button's label picks that button (an emulator convenience; the runtime
        only ever sees the text). Text buttons are left to the NLU, as a click would be."""
        buttons: list[Any] = []
        if isinstance(waiting, ChoiceStep | CardStep):
            buttons = list(waiting.buttons)
        elif isinstance(waiting, CarouselStep):
            buttons = [b for card in waiting.cards for b in card.buttons]
        for button in buttons:
            if text and same_words(render(button.label, self._vars), text):
                request = render_value(button.wire_request(), self._vars, raw_placeholders=False)
                if isinstance(request, dict) and request.get("type") not in ("text", "message"):
                    return request
        return None

    def _fill_entity(
        self, request: dict[str, Any], waiting: WaitingStep | None, text: str | None
    ) -> dict[str, Any]:
        if not isinstance(waiting, CaptureStep) or waiting.intent is None or not waiting.entity:
            return request
        raw = request.get("payload")
        payload: dict[str, Any] = raw if isinstance(raw, dict) else {}
        asked = payload.get("query")
        query: str = asked if isinstance(asked, str) else (text or "")
        intent = payload.get("intent")
        name = intent.get("name") if isinstance(intent, Mapping) else None
        found = payload.get("entities")
        entities: list[Any] = found if isinstance(found, list) else []
        value: Any = next(
            (
                e.get("value")
                for e in entities
                if isinstance(e, Mapping) and e.get("name") == waiting.entity and e.get("value")
            ),
            None,
        )
        if name != waiting.intent or value is None:
            # The dialog manager also takes the entity's bare value from any sentence.
            value = find_value(text, self._agent.entities[waiting.entity]) if text else None
        if value is None:
            return request if text is None else none_request(query)
        return filled_request(waiting.intent, waiting.entity, value, query)

    def _bookkeeping(self, kind: str | None) -> Iterator[Trace]:
        request, variables = self._request, self._vars
        remember_user(variables, user_input(request))
        payload = request.get("payload") if request is not None else None
        if request is not None and request.get("type") == "intent" and isinstance(payload, dict):
            name = (payload.get("intent") or {}).get("name")
            confidence = payload.get("confidence")
            score = confidence if isinstance(confidence, int | float) else 1
            yield self._debug(
                f"matched intent **{name}** - confidence interval _{score * 100:.2f}%_", "intent"
            )
            variables["intent_confidence"] = _tidy_number(round(score * 100, 2))
            query = payload.get("query")
            if isinstance(query, str) and query:
                variables["last_utterance"] = query
        elif _path_request(request) and isinstance(payload, dict):
            variables["last_utterance"] = payload["label"]
        variables[LAST_EVENT] = copy.deepcopy(request if kind != "launch" else self._action)
        variables["timestamp"] = int(self._clock())
        variables["user_id"] = self._options.user_id

    def _inject_base(self) -> Iterator[Trace]:
        """The base frame (the version's own program) always sits at the bottom of the stack."""
        version = self._agent.version
        if self._stack and self._stack[0].get("diagramID") == version:
            return
        base: Frame = {
            "nodeID": None,
            "diagramID": version,
            "storage": {"isBase": True},
            "commands": [],
            "variables": {},
        }
        self._stack.insert(0, base)
        yield from self._stack_changed()

    # -- running the stack -------------------------------------------------------------------

    def _cycle(self) -> Iterator[Emission]:
        for _ in range(STACK_OVERFLOW + 1):
            if not self._stack:
                return
            top = self._top()
            if top.get("diagramID") == self._agent.version:
                self._stack.clear()  # only the base frame is left: the conversation is over
                return
            diagram = self._diagram_of(top)
            if diagram is None:
                # A frame on a diagram this agent does not have: the runtime fails the turn
                # quietly, answers no traces and the conversation stays where it was.
                self._untouched = True
                return
            top["commands"] = [_wire_command(c, diagram.diagram_id) for c in diagram.commands]
            outcome = yield from self._run_frame(top, diagram)
            if outcome is Flow.WAIT or outcome is Flow.END:
                return
            if outcome is Flow.FRAME_CHANGED:
                continue
            self._stack.pop()
            yield from self._stack_changed()
            if self._stack and self._frame_storage(self._top()).pop(CALLED_COMMAND, None):
                return  # an event's flow is done: back to where the conversation waited
        self._stack.clear()

    def _run_frame(self, frame: Frame, diagram: Diagram) -> Generator[Emission, None, Flow]:
        node_id = frame.get("nodeID")
        if "nodeID" not in frame or (
            node_id == diagram.start_block and node_id not in diagram.nodes
        ):
            started = yield from self._start(frame, diagram)
            if started is not None:
                return started
            node_id, index = diagram.start, 0
        elif not isinstance(node_id, str) or node_id not in diagram.nodes:
            return Flow.RAN_OUT
        else:
            step_index = self._frame_storage(frame).get("step", 0)
            index = step_index if isinstance(step_index, int) and step_index >= 0 else 0
        announce = True
        while True:
            node = diagram.nodes[node_id]
            self._node_id = node_id
            self._point(frame, node_id, index)
            if announce:
                yield self._trace("block", {"blockID": node_id})
                announce = False
            if index >= len(node.steps):
                if node.next is None:
                    return Flow.RAN_OUT
                node_id, index, announce = node.next, 0, True
                continue
            self._steps_run += 1
            if self._steps_run > MAX_STEPS_PER_TURN:
                yield from self._timed_out()
                return Flow.END
            outcome = yield from self._run_step(frame, diagram, node_id, index)
            if outcome is Flow.NEXT:
                index += 1
            elif isinstance(outcome, Jump):
                node_id, index, announce = outcome.node, 0, True
            elif outcome is Flow.WAIT:
                self._point(frame, node_id, index)
                return outcome
            else:
                return outcome

    def _start(self, frame: Frame, diagram: Diagram) -> Generator[Emission, None, Flow | None]:
        """The diagram's start block. ``None`` means: go on to the first node."""
        self._point_at(frame, diagram.start_block)
        yield self._trace("block", {"blockID": diagram.start_block})
        if not self._pending:
            yield self._debug("beginning flow", "start")
            return None
        self._pending = False
        commanded = yield from self._command()
        if commanded is not None:
            return Flow.FRAME_CHANGED
        if _intent_request(self._request) and len(self._stack) <= 2:
            return None  # a one-shot intent nothing else claims starts the flow, like a launch
        return Flow.WAIT  # any other request stops on the start block, running nothing

    def _run_step(
        self, frame: Frame, diagram: Diagram, node_id: str, index: int
    ) -> Generator[Emission, None, StepResult]:
        step = diagram.nodes[node_id].steps[index]
        if self._pending:
            # The first step to run takes the request. Steps that do not listen for one only
            # let the stack's commands have it, and otherwise stop the turn where they are.
            self._pending = False
            if waits(step):
                return (yield from self._resume(step))  # type: ignore[arg-type]
            if isinstance(step, IfStep) and not step.legacy:
                return (yield from self._run_plain_step(step))
            commanded = yield from self._command()
            if commanded is not None:
                return commanded
            return Flow.RAN_OUT if isinstance(step, CardStep | CarouselStep) else Flow.WAIT
        if isinstance(step, ChoiceStep | CaptureStep | CustomActionStep | HandoffStep):
            return (yield from self._enter_wait(step))
        if isinstance(step, CardStep | CarouselStep):
            return (yield from self._enter_wait(step))
        if isinstance(step, FlowStep):
            return (yield from self._enter_component(frame, diagram, node_id, index, step))
        return (yield from self._run_plain_step(step))

    def _enter_component(
        self, frame: Frame, diagram: Diagram, node_id: str, index: int, step: FlowStep
    ) -> Generator[Emission, None, StepResult]:
        component = self._agent.components[step.component]
        # The caller resumes where this step leads, as the runtime stores the flow's `nextId`.
        after = self._continuation(diagram, node_id, index + 1)
        if after is None:
            frame["nodeID"] = None
            self._frame_storage(frame).pop("step", None)
        else:
            self._point(frame, *after)
        called = self._new_frame(component.diagram_id)
        called["storage"]["outputMap"] = []
        self._stack.append(called)
        yield from self._stack_changed()
        yield self._debug(f"entering flow `{component.diagram_id}`", "flow")
        return Flow.FRAME_CHANGED

    @staticmethod
    def _continuation(diagram: Diagram, node_id: str, index: int) -> tuple[str, int] | None:
        for _ in range(len(diagram.nodes) + 1):
            node = diagram.nodes[node_id]
            if index >= len(node.steps):
                if node.next is None:
                    return None
                node_id, index = node.next, 0
                continue
            step = node.steps[index]
            if not isinstance(step, GotoStep):
                return node_id, index
            node_id, index = step.node, 0
        return node_id, index

    def _point_at(self, frame: Frame, node_id: str) -> None:
        if "nodeID" not in frame:
            rest = dict(frame)
            frame.clear()
            frame.update({"nodeID": node_id, **rest})
        frame["nodeID"] = node_id
        self._frame_storage(frame).pop("step", None)

    def _point(self, frame: Frame, node_id: str, index: int) -> None:
        if "nodeID" not in frame:
            rest = dict(frame)
            frame.clear()
            frame.update({"nodeID": node_id, **rest})
        frame["nodeID"] = node_id
        storage = self._frame_storage(frame)
        if index:
            storage["step"] = index
        else:
            storage.pop("step", None)

    def _timed_out(self) -> Iterator[Trace]:
        yield self._debug_error("ERROR: turn timeout - check for infinite loops")
        self._state["stack"], self._state["storage"] = [], {}
        self._ended = True
        yield self._trace("end", None)

    def _debug_error(self, message: str) -> Trace:
        return self._trace("debug", {"message": message, "level": "error"})


def _path_request(request: Mapping[str, Any] | None) -> bool:
    if request is None or not str(request.get("type", "")).startswith("path-"):
        return False
    payload = request.get("payload")
    return isinstance(payload, Mapping) and isinstance(payload.get("label"), str)


def _intent_request(request: Mapping[str, Any] | None) -> bool:
    return request is not None and request.get("type") == "intent"


def _tidy_number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


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
