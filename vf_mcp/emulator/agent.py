"""Agent-file models and loader: the emulator's own description of a conversational agent.

The format is deliberately small. An agent is a set of nodes, each a list of steps run in order;
some steps wait for the user (``choice``, ``capture``, ``custom_action``, ``handoff``) and the
conversation resumes there on the next request.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

HEX24 = re.compile(r"^[0-9a-fA-F]{24}$")
DEFAULT_ENVIRONMENTS: tuple[str, ...] = ("development", "production", "staging", "main")
DEFAULT_AGENT_PATH = Path(__file__).parent / "agents" / "order_support.yaml"


class _Model(BaseModel):
    # Typos in a hand-written agent file should fail loudly instead of being ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


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


class ChoiceStep(_Model):
    type: Literal["choice"]
    buttons: list[Button] = Field(min_length=1)
    no_match: str = "Sorry, I didn't get that."


class CaptureStep(_Model):
    type: Literal["capture"]
    variable: str
    # Regex applied to the reply; group 1 (or the whole match) is stored, else the raw reply.
    extract: str | None = None

    @field_validator("extract")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            re.compile(value)
        return value


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
    type: Literal["set"]
    variables: dict[str, Any]


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
    chunk_delay_ms: int = Field(default=0, ge=0)


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
        for trace in traces:
            if not isinstance(trace.get("type"), str):
                raise ValueError("every raw trace needs a string `type`")
        return traces


class GotoStep(_Model):
    type: Literal["goto"]
    node: str


class NoReplyStep(_Model):
    type: Literal["no_reply"]
    timeout: int = Field(default=30, ge=1)
    goto: str | None = None


Step = Annotated[
    TextStep
    | SpeakStep
    | ChoiceStep
    | CaptureStep
    | ConditionStep
    | SetStep
    | CustomActionStep
    | KnowledgeStep
    | HandoffStep
    | EndStep
    | RawStep
    | GotoStep
    | NoReplyStep,
    Field(discriminator="type"),
]
WaitingStep = ChoiceStep | CaptureStep | CustomActionStep | HandoffStep


class Node(_Model):
    name: str | None = None
    steps: list[Step] = Field(min_length=1)


class KnowledgeEntry(_Model):
    title: str
    question: str = ""
    keywords: list[str] = Field(default_factory=list)
    answer: str


class IntentRoute(_Model):
    goto: str
    # entity name -> variable; every mapped variable is overwritten (null when the entity is absent)
    entities: dict[str, str] = Field(default_factory=dict)
    utterances: list[str] = Field(default_factory=list)


class AgentDefinition(_Model):
    project_id: str
    name: str
    api_key: str | None = None
    environments: list[str] = Field(default_factory=lambda: list(DEFAULT_ENVIRONMENTS))
    diagram_id: str | None = None
    start: str
    variables: dict[str, Any] = Field(default_factory=dict)
    knowledge_base: list[KnowledgeEntry] = Field(default_factory=list)
    events: dict[str, str] = Field(default_factory=dict)
    intents: dict[str, IntentRoute] = Field(default_factory=dict)
    nodes: dict[str, Node] = Field(min_length=1)

    @field_validator("project_id", "diagram_id")
    @classmethod
    def _hex24(cls, value: str | None) -> str | None:
        if value is not None and not HEX24.match(value):
            raise ValueError("must be a 24-character hex id")
        return value

    @field_validator("api_key")
    @classmethod
    def _dm_key(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("VF.DM."):
            raise ValueError("must start with 'VF.DM.'")
        return value

    @field_validator("intents", mode="before")
    @classmethod
    def _intent_shorthand(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: {"goto": v} if isinstance(v, str) else v for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _references_resolve(self) -> AgentDefinition:
        missing = sorted({ref for ref in self._node_references() if ref not in self.nodes})
        if missing:
            raise ValueError(f"unknown node id(s) referenced: {', '.join(missing)}")
        return self

    @property
    def flow_id(self) -> str:
        """Stack frames need a ``diagramID``; derive a stable one when the file has none."""
        if self.diagram_id:
            return self.diagram_id
        return hashlib.sha1(self.project_id.encode()).hexdigest()[:24]

    def _node_references(self) -> list[str]:
        refs = [self.start, *self.events.values(), *(r.goto for r in self.intents.values())]
        for node in self.nodes.values():
            for step in node.steps:
                refs.extend(_step_references(step))
        return refs


def _step_references(step: Step) -> list[str]:
    match step:
        case ChoiceStep():
            return [b.goto for b in step.buttons if b.goto]
        case ConditionStep():
            return [b.goto for b in step.branches] + ([step.default] if step.default else [])
        case CustomActionStep():
            return [p.goto for p in step.paths if p.goto]
        case HandoffStep() | NoReplyStep():
            target = step.on_done if isinstance(step, HandoffStep) else step.goto
            return [target] if target else []
        case GotoStep():
            return [step.node]
        case _:
            return []


class AgentFileError(ValueError):
    """An agent file that cannot be read or does not validate."""


def load_agent(path: str | Path) -> AgentDefinition:
    """Load an agent from a YAML or JSON file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
        data = json.loads(text) if file.suffix.lower() == ".json" else yaml.safe_load(text)
        return AgentDefinition.model_validate(data)
    except (OSError, ValueError, yaml.YAMLError, ValidationError) as exc:
        raise AgentFileError(f"{file}: {exc}") from exc


def default_agent() -> AgentDefinition:
    """The bundled example agent (``order_support.yaml``)."""
    return load_agent(DEFAULT_AGENT_PATH)
