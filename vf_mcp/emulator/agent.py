"""Agent-file models and loader: the emulator's own description of a conversational agent.

The format is deliberately small. An agent is a set of nodes, each a list of steps run in order
(see :mod:`.steps`); some steps wait for the user and the conversation resumes there on the next
request. Nodes live in the main diagram or in a component (another diagram a ``flow`` step
runs), and every id a step or command mentions is checked when the file loads.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .steps import (
    ActionPath,
    Branch,
    Button,
    CaptureStep,
    CardStep,
    CarouselStep,
    ChoiceStep,
    CodeStep,
    ConditionStep,
    CustomActionStep,
    EndStep,
    FlowStep,
    GotoStep,
    HandoffStep,
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
    WaitingStep,
    step_targets,
)

HEX24 = re.compile(r"^[0-9a-fA-F]{24}$")
DEFAULT_ENVIRONMENTS: tuple[str, ...] = ("development", "production", "staging", "main")
DEFAULT_AGENT_PATH = Path(__file__).parent / "agents" / "order_support.yaml"
DEFAULT_START_BLOCK = "start"
# Built-in variables every state carries, in the order the runtime declares them.
BUILTIN_VARIABLES: tuple[str, ...] = (
    "sessions",
    "user_id",
    "timestamp",
    "platform",
    "locale",
    "intent_confidence",
    "last_utterance",
    "last_response",
)

__all__ = [
    "BUILTIN_VARIABLES",
    "DEFAULT_AGENT_PATH",
    "DEFAULT_ENVIRONMENTS",
    "HEX24",
    "ActionPath",
    "AgentDefinition",
    "AgentFileError",
    "Branch",
    "Button",
    "CaptureStep",
    "CardStep",
    "CarouselStep",
    "ChoiceStep",
    "CodeStep",
    "Command",
    "Component",
    "ConditionStep",
    "CustomActionStep",
    "Diagram",
    "EndStep",
    "FlowStep",
    "GotoStep",
    "HandoffStep",
    "IfStep",
    "IntentRoute",
    "KnowledgeEntry",
    "KnowledgeStep",
    "NoReplyStep",
    "Node",
    "RandomStep",
    "RawStep",
    "SetStep",
    "SpeakStep",
    "Step",
    "TextStep",
    "ToolStep",
    "VisualStep",
    "WaitingStep",
    "default_agent",
    "load_agent",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_hex24(value: str | None) -> str | None:
    if value is not None and not HEX24.match(value):
        raise ValueError("must be a 24-character hex id")
    return value


def _derived_id(*parts: str) -> str:
    """A stable 24-hex id for files that do not give one (stack frames need ids)."""
    return hashlib.sha1(":".join(parts).encode()).hexdigest()[:24]


class Node(_Model):
    name: str | None = None
    steps: list[Step] = Field(min_length=1)
    # Where the flow goes after the last step (the runtime's `nextId`); none ends the diagram.
    next: str | None = None


class KnowledgeEntry(_Model):
    title: str
    question: str = ""
    keywords: list[str] = Field(default_factory=list)
    answer: str


class IntentRoute(_Model):
    """An intent the emulator's NLU knows; with ``goto`` it is also a global jump command."""

    goto: str | None = None
    # entity name -> variable; every mapped variable is overwritten (null when the entity is absent)
    entities: dict[str, str] = Field(default_factory=dict)
    # `{entity}` marks where an entity's value goes ("make it a {pizza_size} please").
    utterances: list[str] = Field(default_factory=list)


class Command(_Model):
    """A jump command of the main diagram: a request of this type (or this intent) at any
    waiting step that does not handle it itself goes to ``goto``."""

    request: str | None = None
    intent: str | None = None
    goto: str

    @model_validator(mode="after")
    def _one_event(self) -> Command:
        if (self.request is None) == (self.intent is None):
            raise ValueError("a command needs exactly one of `request`, `intent`")
        return self


class Component(_Model):
    diagram_id: str
    name: str
    start: str
    start_block: str = DEFAULT_START_BLOCK
    nodes: dict[str, Node] = Field(min_length=1)

    @field_validator("diagram_id")
    @classmethod
    def _hex24(cls, value: str) -> str:
        _check_hex24(value)
        return value


@dataclass(frozen=True)
class Diagram:
    """A diagram as the engine sees it (the main one or a component)."""

    diagram_id: str
    name: str
    start: str
    start_block: str
    nodes: dict[str, Node]
    commands: tuple[Command, ...] = ()


class AgentDefinition(_Model):
    project_id: str
    name: str
    api_key: str | None = None
    environments: list[str] = Field(default_factory=lambda: list(DEFAULT_ENVIRONMENTS))
    version_id: str | None = None
    diagram_id: str | None = None
    start: str
    start_block: str = DEFAULT_START_BLOCK
    # Declared variables and their defaults; null means "no default" (the state starts at 0).
    variables: dict[str, Any] = Field(default_factory=dict)
    knowledge_base: list[KnowledgeEntry] = Field(default_factory=list)
    events: dict[str, str] = Field(default_factory=dict)
    intents: dict[str, IntentRoute] = Field(default_factory=dict)
    # Custom entity types: name -> the values it recognises. Each is also a variable.
    entities: dict[str, list[str]] = Field(default_factory=dict)
    commands: list[Command] = Field(default_factory=list)
    components: dict[str, Component] = Field(default_factory=dict)
    nodes: dict[str, Node] = Field(min_length=1)

    @field_validator("project_id", "diagram_id", "version_id")
    @classmethod
    def _hex24(cls, value: str | None) -> str | None:
        return _check_hex24(value)

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
        problems = list(self._problems())
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # -- derived views ----------------------------------------------------------------------

    @property
    def flow_id(self) -> str:
        """The main diagram's id (derived from the project id when the file has none)."""
        return self.diagram_id or _derived_id(self.project_id)

    @property
    def version(self) -> str:
        """The version id: the base stack frame's ``diagramID``."""
        return self.version_id or _derived_id("version", self.project_id)

    @property
    def main(self) -> Diagram:
        commands = [
            *self.commands,
            *(Command(intent=name, goto=r.goto) for name, r in self.intents.items() if r.goto),
        ]
        return Diagram(
            diagram_id=self.flow_id,
            name="ROOT",
            start=self.start,
            start_block=self.start_block,
            nodes=self.nodes,
            commands=tuple(commands),
        )

    def diagrams(self) -> dict[str, Diagram]:
        found = {self.flow_id: self.main}
        for component in self.components.values():
            found[component.diagram_id] = Diagram(
                diagram_id=component.diagram_id,
                name=component.name,
                start=component.start,
                start_block=component.start_block,
                nodes=component.nodes,
            )
        return found

    def declared_variables(self) -> list[str]:
        """Every name a fresh state carries: entities, built-ins, then the file's variables."""
        return list(dict.fromkeys([*self.entities, *BUILTIN_VARIABLES, *self.variables]))

    # -- validation -------------------------------------------------------------------------

    def _problems(self) -> Iterator[str]:
        diagrams = [(self.flow_id, "the main diagram", self.start, self.nodes)]
        for key, component in self.components.items():
            diagrams.append(
                (component.diagram_id, f"component {key!r}", component.start, component.nodes)
            )
        ids = [diagram_id for diagram_id, *_ in diagrams]
        if len(set(ids)) != len(ids) or self.version in ids:
            yield "diagram ids (and the version id) must all differ"
        seen: dict[str, str] = {}
        for _, where, _, nodes in diagrams:
            for node_id in nodes:
                if node_id in seen:
                    yield f"node id {node_id!r} is used in {seen[node_id]} and {where}"
                seen.setdefault(node_id, where)
        main_nodes = set(self.nodes)
        root_refs = [
            self.start,
            *self.events.values(),
            *(r.goto for r in self.intents.values() if r.goto),
            *(c.goto for c in self.commands),
        ]
        missing = sorted({ref for ref in root_refs if ref not in main_nodes})
        if missing:
            yield f"unknown node id(s) referenced: {', '.join(missing)}"
        for _, where, start, nodes in diagrams[1:]:
            if start not in nodes:
                yield f"unknown node id(s) referenced: {start} (the start of {where})"
        for _, where, _, nodes in diagrams:
            yield from self._node_problems(where, nodes)
        for command in self.commands:
            if command.intent is not None and command.intent not in self.intents:
                yield f"command on unknown intent {command.intent!r}"
        for name, route in self.intents.items():
            for utterance in route.utterances:
                for entity in re.findall(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", utterance):
                    if entity not in self.entities:
                        yield f"intent {name!r}: utterance uses unknown entity {entity!r}"

    def _node_problems(self, where: str, nodes: dict[str, Node]) -> Iterator[str]:
        local = set(nodes)
        missing: set[str] = set()
        for node in nodes.values():
            if node.next is not None and node.next not in local:
                missing.add(node.next)
            for step in node.steps:
                missing.update(ref for ref in step_targets(step) if ref not in local)
                yield from self._step_problems(step)
        if missing:
            yield f"unknown node id(s) referenced in {where}: {', '.join(sorted(missing))}"

    def _step_problems(self, step: Step) -> Iterator[str]:
        if isinstance(step, FlowStep) and step.component not in self.components:
            yield f"flow step: unknown component {step.component!r}"
        if isinstance(step, CaptureStep) and step.intent is not None:
            if step.intent not in self.intents:
                yield f"capture: unknown intent {step.intent!r}"
            if step.entity not in self.entities:
                yield f"capture: unknown entity {step.entity!r}"
        if isinstance(step, ChoiceStep):
            for interaction in step.interactions:
                if interaction.intent is not None and interaction.intent not in self.intents:
                    yield f"choice: interaction on unknown intent {interaction.intent!r}"


class AgentFileError(ValueError):
    """An agent file that cannot be read or does not validate."""


def _why(error: Exception) -> str:
    """What is wrong with an agent file, in one line (a command line shows it as it is)."""
    if isinstance(error, OSError):
        return f"cannot be read ({error.strerror or error})"
    if isinstance(error, ValidationError):
        problems = error.errors(include_url=False, include_input=False)
        first = problems[0]
        where = ".".join(str(part) for part in first["loc"])
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        what = str(first["msg"]).removeprefix("Value error, ")
        return f"{where + ': ' if where else ''}{what}{more}"
    if isinstance(error, yaml.MarkedYAMLError) and error.problem_mark is not None:
        mark = error.problem_mark
        return (
            f"is not valid YAML ({error.problem} at line {mark.line + 1}, column {mark.column + 1})"
        )
    if isinstance(error, yaml.YAMLError | UnicodeDecodeError | json.JSONDecodeError):
        return f"is not valid YAML or JSON ({' '.join(str(error).split())[:200]})"
    return " ".join(str(error).split())


def load_agent(path: str | Path) -> AgentDefinition:
    """Load an agent from a YAML or JSON file."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
        data = json.loads(text) if file.suffix.lower() == ".json" else yaml.safe_load(text)
        return AgentDefinition.model_validate(data)
    except (OSError, ValueError, yaml.YAMLError, ValidationError) as exc:
        raise AgentFileError(f"{file}: {_why(exc)}") from exc


def default_agent() -> AgentDefinition:
    """The bundled example agent (``order_support.yaml``)."""
    return load_agent(DEFAULT_AGENT_PATH)
