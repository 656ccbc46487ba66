"""The step types of an agent file: what each node does, in order.

Steps that wait for the user (``choice``, ``capture``, a blocking ``card`` or ``carousel``,
``custom_action``, ``handoff``) end the turn; the conversation resumes at them on the next
request. Every other step runs and hands over to the next one.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .expressions import Expression, ExpressionError

DEFAULT_NO_MATCH = "Sorry, I didn't get that."


class _Model(BaseModel):
    # Typos in a hand-written agent file should fail loudly instead of being ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


@lru_cache(maxsize=1024)
def compiled(source: str) -> Expression:
    """The parsed form of an expression already validated at load time."""
    return Expression.parse(source)


def _expression(value: str) -> str:
    try:
        compiled(value)
    except ExpressionError as exc:
        raise ValueError(str(exc)) from exc
    return value


ExpressionText = Annotated[str, Field(min_length=1)]


class Reprompt(_Model):
    """What a waiting step says when the request does not fit (``no_match``).

    Prompts are used in order, one per miss; once they run out, ``goto`` is taken if given,
    else the emulator's global no-match message is said (the runtime's behaviour).
    A bare string or list is shorthand for ``prompts``.
    """

    prompts: list[str] = Field(default_factory=list)
    goto: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"prompts": [value]}
        if isinstance(value, list):
            return {"prompts": value}
        return value


class NoReply(_Model):
    """The no-reply timeout of a waiting step and what a ``no-reply`` request gets.

    The first no-reply says ``prompts[0]`` and so on; the last prompt comes with the global
    10 s timeout, as the runtime does. Past the prompts, ``goto`` is taken (else the flow ends).
    """

    timeout: int = Field(default=30, ge=1)
    prompts: list[str] = Field(default_factory=list)
    goto: str | None = None


class TextStep(_Model):
    type: Literal["text"]
    message: str
    delay: int | None = Field(default=None, ge=0)


class SpeakStep(_Model):
    type: Literal["speak"]
    message: str
    src: str | None = None
    voice: str | None = None


class Button(_Model):
    label: str
    goto: str | None = None
    # Overrides the default ``path-<goto>`` request, e.g. an intent or text request.
    request: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _needs_target(self) -> Button:
        if self.goto is None and self.request is None:
            raise ValueError(f"button {self.label!r} needs `goto` or `request`")
        if self.request is not None and not isinstance(self.request.get("type"), str):
            raise ValueError(f"button {self.label!r}: `request.type` must be a string")
        return self

    def wire_request(self) -> dict[str, Any]:
        if self.request is not None:
            return self.request
        return {"type": f"path-{self.goto}", "payload": {"label": self.label}}


class CardButton(_Model):
    """A card's button is only a request; jump commands (or the next step) resolve it."""

    label: str
    request: dict[str, Any]

    @field_validator("request")
    @classmethod
    def _typed(cls, request: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(request.get("type"), str):
            raise ValueError("`request.type` must be a string")
        return request

    def wire_request(self) -> dict[str, Any]:
        return self.request


class Interaction(_Model):
    """A request a choice listens for without a button of its own: an intent or a request type."""

    intent: str | None = None
    request: str | None = None
    goto: str

    @model_validator(mode="after")
    def _one_event(self) -> Interaction:
        if (self.intent is None) == (self.request is None):
            raise ValueError("an interaction needs exactly one of `intent`, `request`")
        return self


Scope = Literal["global", "node"]


class ChoiceStep(_Model):
    type: Literal["choice"]
    buttons: list[Button] = Field(default_factory=list)
    # Numbered after the buttons that have a `goto` (path `choice:N` counts both, in order).
    interactions: list[Interaction] = Field(default_factory=list)
    no_match: Reprompt = Field(default_factory=lambda: Reprompt(prompts=[DEFAULT_NO_MATCH]))
    no_reply: NoReply | None = None
    # `node`: jump commands and global intents are not consulted here.
    scope: Scope = "global"

    @model_validator(mode="after")
    def _listens(self) -> ChoiceStep:
        if not self.buttons and not self.interactions:
            raise ValueError("a choice needs `buttons` or `interactions`")
        return self


class CaptureStep(_Model):
    """The whole reply into ``variable``, or one entity of an intent (``intent``, ``entity``)."""

    type: Literal["capture"]
    variable: str | None = None
    # Regex applied to the reply; group 1 (or the whole match) is stored, else the raw reply.
    extract: str | None = None
    intent: str | None = None
    entity: str | None = None
    scope: Scope = "global"
    no_match: Reprompt = Field(default_factory=Reprompt)
    no_reply: NoReply | None = None

    @field_validator("extract")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            re.compile(value)
        return value

    @model_validator(mode="after")
    def _one_target(self) -> CaptureStep:
        entity = self.intent is not None or self.entity is not None
        if entity and (self.intent is None or self.entity is None):
            raise ValueError("an entity capture needs both `intent` and `entity`")
        if entity == (self.variable is not None):
            raise ValueError("a capture needs `variable`, or `intent` and `entity`")
        if entity and self.extract is not None:
            raise ValueError("`extract` only applies to a `variable` capture")
        return self


class Branch(_Model):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    goto: str
    equals: Any = None
    in_: list[Any] | None = Field(default=None, alias="in")
    exists: bool | None = None

    @model_validator(mode="after")
    def _one_test(self) -> Branch:
        tests = self.model_fields_set & {"equals", "in_", "exists"}
        if len(tests) != 1:
            raise ValueError("a branch needs exactly one of `equals`, `in`, `exists`")
        return self


class ConditionStep(_Model):
    type: Literal["condition"]
    variable: str
    branches: list[Branch] = Field(min_length=1)
    # No default means "carry on with the next step".
    default: str | None = None


class SetStep(_Model):
    """``variables``: templated values; ``expressions``: computed ones, in order.

    ``legacy`` words the debug trace like Voiceflow's first set step (one line per variable)
    instead of the ``evaluating code`` diff of the current one.
    """

    type: Literal["set"]
    variables: dict[str, Any] = Field(default_factory=dict)
    expressions: dict[str, ExpressionText] = Field(default_factory=dict)
    legacy: bool = False

    @field_validator("expressions")
    @classmethod
    def _parse(cls, value: dict[str, str]) -> dict[str, str]:
        for source in value.values():
            _expression(source)
        return value

    @model_validator(mode="after")
    def _sets_something(self) -> SetStep:
        if not self.variables and not self.expressions:
            raise ValueError("a set step needs `variables` or `expressions`")
        return self


class Condition(_Model):
    expression: ExpressionText
    goto: str

    @field_validator("expression")
    @classmethod
    def _parse(cls, value: str) -> str:
        return _expression(value)


class IfStep(_Model):
    """The first condition that holds picks its node; else ``else``, else the next step."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    type: Literal["if"]
    conditions: list[Condition] = Field(min_length=1)
    else_: str | None = Field(default=None, alias="else")
    # Word the debug traces like Voiceflow's first condition step.
    legacy: bool = False


class CodePath(_Model):
    label: str
    goto: str


class CodeStep(_Model):
    """Assignments in order, then an optional ``returns`` whose value picks a labelled path.

    No label matches (or no ``returns``): ``success``, else the next step. An expression that
    fails: ``fail``, else the next step; no variable changes are kept then.
    """

    type: Literal["code"]
    assign: dict[str, ExpressionText] = Field(default_factory=dict)
    returns: ExpressionText | None = None
    paths: list[CodePath] = Field(default_factory=list)
    success: str | None = None
    fail: str | None = None

    @field_validator("assign")
    @classmethod
    def _parse_all(cls, value: dict[str, str]) -> dict[str, str]:
        for source in value.values():
            _expression(source)
        return value

    @field_validator("returns")
    @classmethod
    def _parse(cls, value: str | None) -> str | None:
        return None if value is None else _expression(value)

    @model_validator(mode="after")
    def _paths_need_returns(self) -> CodeStep:
        if self.paths and self.returns is None:
            raise ValueError("`paths` need a `returns` expression to choose between them")
        return self


class ActionPath(_Model):
    event: str
    goto: str | None = None
    label: str | None = None


class CustomActionStep(_Model):
    type: Literal["custom_action"]
    name: str
    payload: Any = None
    paths: list[ActionPath] = Field(default_factory=lambda: [ActionPath(event="done")])
    default_path: int = 0
    stop: bool = True


class KnowledgeStep(_Model):
    type: Literal["knowledge"]
    question: str = "{last_utterance}"
    fallback: str = "I'm not sure about that."
    chunk_words: int = Field(default=4, ge=1)
    chunk_chars: int | None = Field(default=None, ge=1)
    """Chunks of this many characters instead of whole words: the docs' own stream example
    splits an answer mid-word ("Welcome to our servi"), as an LLM's tokens do."""
    chunk_delay_ms: int = Field(default=0, ge=0)


class ToolStep(_Model):
    """An API tool or a function the agent calls: ``tool-call`` start, a ``debug`` trace whose
    ``ref`` names the tool (``named``), ``tool-call`` end; ``result`` is then set as variables."""

    type: Literal["tool"]
    name: str = Field(min_length=1)
    tool_id: str | None = None  # apiToolID / functionID; derived from the name when absent
    kind: Literal["api-tool", "function"] = "api-tool"
    # False: no ref at all, as a runtime that does not name its tools (or a filter) leaves it.
    named: bool = True
    result: dict[str, Any] = Field(default_factory=dict)


class HandoffStep(_Model):
    type: Literal["handoff"]
    mode: Literal["custom_action", "live_agent"] = "custom_action"
    action_name: str = "talk_to_agent"
    reason: str = "customer_request"
    variables: list[str] = Field(default_factory=list)
    message: str = "You are now chatting with a live agent."
    on_done: str | None = None


class EndStep(_Model):
    type: Literal["end"]


class RawStep(_Model):
    type: Literal["raw"]
    traces: list[dict[str, Any]] = Field(min_length=1)

    @field_validator("traces")
    @classmethod
    def _typed(cls, traces: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for item in traces:
            if not isinstance(item.get("type"), str):
                raise ValueError("every raw trace needs a string `type`")
        return traces


class GotoStep(_Model):
    type: Literal["goto"]
    node: str


class NoReplyStep(_Model):
    """Arms a no-reply timeout for the next waiting step (and says so with a trace now)."""

    type: Literal["no_reply"]
    timeout: int = Field(default=30, ge=1)
    goto: str | None = None


class CardStep(_Model):
    """A ``cardV2``. Blocking, it waits: its buttons are requests for jump commands to resolve,
    and a miss gets the no-match prompt plus a ``choice`` of the card's buttons."""

    type: Literal["card"]
    title: str = ""
    image_url: str = ""
    description: str = ""
    buttons: list[CardButton] = Field(default_factory=list)
    blocking: bool = False
    no_match: Reprompt = Field(default_factory=Reprompt)
    no_reply: NoReply | None = None


class CarouselCard(_Model):
    id: str
    title: str = ""
    image_url: str = ""
    description: str = ""
    buttons: list[CardButton] = Field(default_factory=list)


class CarouselStep(_Model):
    type: Literal["carousel"]
    layout: Literal["Carousel", "List"] = "Carousel"
    cards: list[CarouselCard] = Field(min_length=1)
    blocking: bool = False
    no_match: Reprompt = Field(default_factory=Reprompt)
    no_reply: NoReply | None = None


class Dimensions(_Model):
    width: int = Field(ge=0)
    height: int = Field(ge=0)


class VisualStep(_Model):
    type: Literal["visual"]
    image: str
    dimensions: Dimensions | None = None
    device: str | None = None
    canvas_visibility: Literal["full", "cropped", "hidden"] = "full"


class RandomStep(_Model):
    """Go to one of ``paths`` at random; ``unique`` uses each once before repeating any."""

    type: Literal["random"]
    paths: list[str] = Field(min_length=1)
    unique: bool = False


class FlowStep(_Model):
    """Run a component (another diagram); when it runs out of steps, carry on after this one."""

    type: Literal["flow"]
    component: str


Step = Annotated[
    TextStep
    | SpeakStep
    | ChoiceStep
    | CaptureStep
    | ConditionStep
    | SetStep
    | IfStep
    | CodeStep
    | CustomActionStep
    | KnowledgeStep
    | ToolStep
    | HandoffStep
    | EndStep
    | RawStep
    | GotoStep
    | NoReplyStep
    | CardStep
    | CarouselStep
    | VisualStep
    | RandomStep
    | FlowStep,
    Field(discriminator="type"),
]
WaitingStep = ChoiceStep | CaptureStep | CustomActionStep | HandoffStep | CardStep | CarouselStep


def waits(step: Step) -> bool:
    """Whether a request can land on this step: the steps the conversation stops at."""
    if isinstance(step, CardStep | CarouselStep):
        return step.blocking
    return isinstance(step, ChoiceStep | CaptureStep | CustomActionStep | HandoffStep)


def step_targets(step: Step) -> list[str]:
    """Node ids a step can move to inside its own diagram."""
    match step:
        case ChoiceStep():
            return [
                *(b.goto for b in step.buttons if b.goto),
                *(i.goto for i in step.interactions),
                *_reprompt_targets(step.no_match, step.no_reply),
            ]
        case CaptureStep() | CardStep() | CarouselStep():
            return _reprompt_targets(step.no_match, step.no_reply)
        case ConditionStep():
            return [b.goto for b in step.branches] + ([step.default] if step.default else [])
        case IfStep():
            return [c.goto for c in step.conditions] + ([step.else_] if step.else_ else [])
        case CodeStep():
            extra = [node for node in (step.success, step.fail) if node]
            return [p.goto for p in step.paths] + extra
        case CustomActionStep():
            return [p.goto for p in step.paths if p.goto]
        case HandoffStep():
            return [step.on_done] if step.on_done else []
        case NoReplyStep():
            return [step.goto] if step.goto else []
        case GotoStep():
            return [step.node]
        case RandomStep():
            return list(step.paths)
        case _:
            return []


def _reprompt_targets(no_match: Reprompt, no_reply: NoReply | None) -> list[str]:
    targets = [no_match.goto] if no_match.goto else []
    if no_reply is not None and no_reply.goto:
        targets.append(no_reply.goto)
    return targets
