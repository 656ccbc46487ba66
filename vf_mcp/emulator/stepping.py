"""Running the steps that do not wait: what they say, what they compute, where they go."""

from __future__ import annotations

import copy
import hashlib
import random
from collections.abc import Generator, Iterator
from typing import Any

from .bookkeeping import is_unset
from .expressions import ExpressionError, truthy
from .knowledge import best_entry, chunk_text, knowledge_trace_payload
from .steps import (
    Branch,
    CardButton,
    CardStep,
    CarouselStep,
    CodeStep,
    ConditionStep,
    EndStep,
    GotoStep,
    IfStep,
    KnowledgeStep,
    NoReplyStep,
    RandomStep,
    RawStep,
    SetStep,
    SpeakStep,
    Step,
    TextStep,
    ToolStep,
    VisualStep,
    compiled,
)
from .templating import render, render_value
from .traces import MISSING, Trace, change_summary, js_json, new_id, slate
from .turnbase import ARMED_NO_REPLY, Emission, Flow, Jump, Pause, StepResult, TurnBase

RESOLVED_PATH = "__RESOLVED_PATH__"
RANDOMS = "randoms"


class StepRunner(TurnBase):
    """The non-waiting half of a turn. ``_node_id`` is the node whose step is running."""

    _node_id: str = ""

    def _run_plain_step(self, step: Step) -> Generator[Emission, None, StepResult]:
        variables = self._vars
        match step:
            case TextStep():
                message = render(step.message, variables, slate=True)
                self._said(message)
                yield from self._say(message, delay=step.delay)
            case SpeakStep():
                message = render(step.message, variables, slate=True)
                extra: dict[str, Any] = {}
                if step.src is not None:
                    extra["src"] = render(step.src, variables)
                if step.voice is not None:
                    extra["voice"] = step.voice
                self._remember_output(message)
                yield self._speak(message, extra)
            case VisualStep():
                yield self._debug("__visual__ - entered", "visual")
                yield self._trace("visual", self._visual(step))
            case CardStep() | CarouselStep():
                shown = self._card(step) if isinstance(step, CardStep) else self._carousel(step)
                if shown is not None:
                    yield shown
            case ConditionStep():
                for branch in step.branches:
                    if _branch_holds(branch, variables.get(step.variable)):
                        return Jump(branch.goto)
                return Jump(step.default) if step.default else Flow.NEXT
            case SetStep():
                yield from self._set(step)
            case IfStep():
                return (yield from self._if(step))
            case CodeStep():
                return (yield from self._code(step))
            case RandomStep():
                yield self._debug("going down random path", "random")
                return Jump(self._pick(step))
            case KnowledgeStep():
                yield from self._knowledge(step)
            case ToolStep():
                yield from self._tool(step)
            case RawStep():
                for raw in step.traces:
                    copied = copy.deepcopy(raw)
                    yield copied if "time" in copied else {"time": self._now_ms(), **copied}
            case GotoStep():
                return Jump(step.node)
            case NoReplyStep():
                self._storage[ARMED_NO_REPLY] = {"goto": step.goto, "timeout": step.timeout}
                yield self._trace("no-reply", {"timeout": step.timeout})
            case EndStep():
                return (yield from self._exit())
        return Flow.NEXT

    # -- output ------------------------------------------------------------------------------

    def _visual(self, step: VisualStep) -> dict[str, Any]:
        dimensions = step.dimensions.model_dump() if step.dimensions else None
        return {
            "visualType": "image",
            "image": render(step.image, self._vars),
            "device": step.device,
            "dimensions": dimensions,
            "canvasVisibility": step.canvas_visibility,
        }

    def _description(self, text: str) -> dict[str, Any]:
        shown = render(text, self._vars, slate=True)
        return {"slate": slate(shown), "text": shown}

    def _buttons(self, buttons: list[CardButton]) -> list[dict[str, Any]]:
        return [
            {
                "name": render(b.label, self._vars),
                "request": render_value(b.wire_request(), self._vars, raw_placeholders=False),
            }
            for b in buttons
        ]

    def _card(self, step: CardStep) -> Trace | None:
        description = self._description(step.description)
        payload: dict[str, Any] = {
            "imageUrl": render(step.image_url, self._vars),
            "description": description,
            "buttons": self._buttons(step.buttons),
            "title": render(step.title, self._vars),
        }
        if not (
            payload["title"] or payload["buttons"] or payload["imageUrl"] or description["text"]
        ):
            return None
        return self._trace("cardV2", payload)

    def _carousel(self, step: CarouselStep) -> Trace | None:
        cards: list[dict[str, Any]] = []
        for card in step.cards:
            description = self._description(card.description)
            item: dict[str, Any] = {
                "id": card.id,
                "title": render(card.title, self._vars),
                "imageUrl": render(card.image_url, self._vars),
                "description": description,
                "buttons": self._buttons(card.buttons),
            }
            if item["title"] or item["imageUrl"] or item["buttons"] or description["text"]:
                cards.append(item)
        if not cards:
            return None
        return self._trace("carousel", {"layout": step.layout, "cards": cards})

    def _knowledge(self, step: KnowledgeStep) -> Iterator[Emission]:
        question = render(step.question, self._vars)
        entry = best_entry(question, self._agent.knowledge_base)
        answer = entry.answer if entry else render(step.fallback, self._vars)
        if entry is not None:
            # What was retrieved comes before the answer built from it.
            yield self._trace("knowledgeBase", knowledge_trace_payload(question, entry, answer))
        if not self._options.completion_events:
            yield from self._say(answer, ai=True)
            return
        message_id = new_id()
        yield self._trace("completion", {"state": "start", "messageID": message_id, "ai": True})
        for chunk in chunk_text(answer, step.chunk_words, chars=step.chunk_chars):
            if step.chunk_delay_ms:
                yield Pause(step.chunk_delay_ms)
            yield self._trace("completion", {"state": "content", "content": chunk})
        yield self._trace("completion", {"state": "end"})
        self._vars["last_response"] = answer
        yield from self._audio(answer)

    def _tool(self, step: ToolStep) -> Iterator[Trace]:
        call_id = f"call_{new_id(20)}"
        yield self._trace("tool-call", {"state": "start", "callID": call_id})
        if step.named:
            tool_id = step.tool_id or hashlib.sha1(f"tool:{step.name}".encode()).hexdigest()[:24]
            fields = ("apiToolID", "apiToolName") if step.kind == "api-tool" else (
                "functionID", "functionName"
            )  # fmt: skip
            ref = {
                "type": step.kind,
                "nodeID": self._node_id,
                "diagramID": self._top().get("diagramID"),
                fields[0]: tool_id,
                fields[1]: step.name,
            }
            payload = {
                "type": "tool",
                "level": "info",
                "message": f"calling {step.kind} `{step.name}`",
            }
            yield self._trace("debug", {**payload, "ref": ref})
        for name, value in step.result.items():
            self._vars[name] = render_value(value, self._vars)
        yield self._trace("tool-call", {"state": "end", "callID": call_id})

    # -- computing ---------------------------------------------------------------------------

    def _set(self, step: SetStep) -> Iterator[Trace]:
        variables = self._vars
        before = dict(variables)
        for name, value in step.variables.items():
            variables[name] = render_value(value, variables)
        if step.legacy:
            for name, source in step.expressions.items():
                expression = compiled(source)
                try:
                    value = expression.evaluate(variables)
                except ExpressionError as exc:
                    yield self._debug(
                        f"unable to resolve expression `{expression.with_braces()}` for "
                        f"`{{{name}}}`  \n`Error: {exc}`",
                        "set",
                    )
                    continue
                variables[name] = value
                yield self._debug(
                    f"setting `{{{name}}}`  \nevaluating `{expression.with_braces()}` to "
                    f"`{_js_string(value)}`",
                    "set",
                )
            return
        working = dict(variables)
        for name in step.expressions:
            working.setdefault(name, 0)  # a set creates a missing variable at 0 first
            before.setdefault(name, 0)
        try:
            for name, source in step.expressions.items():
                working[name] = compiled(source).evaluate(working)
        except ExpressionError as exc:
            yield self._debug(f"unable to resolve code  \n`{js_json(f'Error: {exc}')}`", "code")
            return
        variables.update(working)
        yield self._debug(change_summary(before, variables), "code")

    def _if(self, step: IfStep) -> Generator[Trace, None, StepResult]:
        if not step.legacy:
            # The current condition step runs as generated code, hence the code debug first.
            yield self._debug("evaluating code - no variable changes", "code")
        errors: list[str] = []
        for number, condition in enumerate(step.conditions, start=1):
            expression = compiled(condition.expression)
            try:
                value = expression.evaluate(self._vars)
            except ExpressionError as exc:
                if step.legacy:
                    yield self._debug(
                        f"unable to resolve expression `{expression.with_braces()}`  \n"
                        f"`Error: {exc}`",
                        "if",
                    )
                else:
                    errors.append(f'Error condition {number} - "{expression.source}": {exc}')
                continue
            if step.legacy:
                yield self._debug(
                    f"evaluating path {number}: `{expression.with_braces()}` to "
                    f"`{_js_string(value)}`",
                    "if",
                )
            if truthy(value) or (value == 0 and not isinstance(value, bool) and step.legacy):
                for error in errors:
                    yield self._debug(error, "ifV2")
                kind = "if" if step.legacy else "ifV2"
                verb = "condition true" if step.legacy else "condition matched"
                yield self._debug(f"{verb} - taking path {number}", kind)
                return Jump(condition.goto)
        for error in errors:
            yield self._debug(error, "ifV2")
        yield self._debug(
            "no conditions matched - taking else path", "if" if step.legacy else "ifV2"
        )
        return Jump(step.else_) if step.else_ else Flow.NEXT

    def _code(self, step: CodeStep) -> Generator[Trace, None, StepResult]:
        before = dict(self._vars)
        working = dict(self._vars)
        resolved: Any = MISSING
        try:
            for name, source in step.assign.items():
                working[name] = compiled(source).evaluate(working)
            if step.returns is not None:
                resolved = compiled(step.returns).evaluate(working)
        except ExpressionError as exc:
            yield self._debug(f"unable to resolve code  \n`{js_json(f'Error: {exc}')}`", "code")
            return Jump(step.fail) if step.fail else Flow.NEXT
        after = dict(working)
        if step.paths:
            after[RESOLVED_PATH] = None if resolved is MISSING else resolved
        yield self._debug(change_summary(before, after), "code")
        self._vars.update(working)
        for path in step.paths:
            if resolved is not MISSING and path.label == resolved:
                return Jump(path.goto)
        return Jump(step.success) if step.success else Flow.NEXT

    def _pick(self, step: RandomStep) -> str:
        if len(step.paths) == 1 or not step.unique:
            return random.choice(step.paths)
        randoms = self._storage.get(RANDOMS)
        if not isinstance(randoms, dict):
            randoms = self._storage[RANDOMS] = {}
        used = randoms.get(self._node_id)
        used = [u for u in used if isinstance(u, str)] if isinstance(used, list) else []
        choices = [p for p in step.paths if p not in used] or list(step.paths)
        if len(choices) == len(step.paths):
            used = []  # every path has had its turn: start over
        picked = random.choice(choices)
        randoms[self._node_id] = [*used, picked]
        return picked

    def _exit(self) -> Generator[Trace, None, StepResult]:
        """End the session: frames that have nowhere to resume are dropped, as the runtime does."""
        self._top()["nodeID"] = None
        while self._stack and not self._top().get("nodeID"):
            self._stack.pop()
        self._ended = True
        yield self._trace("end", None)
        yield self._debug("exiting session - saving location/resolving stack", "exit")
        return Flow.END


def _js_string(value: Any) -> str:
    """``value.toString()`` as a JavaScript debug message would show it."""
    if value is None:
        return "undefined"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "[object Object]"
    if isinstance(value, list):
        return ",".join(_js_string(v) if v is not None else "" for v in value)
    return str(value)


def _same(a: Any, b: Any) -> bool:
    """Equality that lets YAML's ``1001`` match the captured text ``"1001"``."""
    if type(a) is type(b):
        return bool(a == b)
    return str(a).strip().lower() == str(b).strip().lower()


def _branch_holds(branch: Branch, value: Any) -> bool:
    # Every declared variable starts at 0, the runtime's "not set", so 0 reads as unset here:
    # `exists` is false for null, 0 and ""; `equals: null` holds for null and 0.
    if "exists" in branch.model_fields_set:
        present = not is_unset(value) and value != ""
        return present is bool(branch.exists)
    if "in_" in branch.model_fields_set:
        return any(_same(option, value) for option in branch.in_ or [])
    if branch.equals is None:
        return is_unset(value)
    return value is not None and _same(branch.equals, value)
