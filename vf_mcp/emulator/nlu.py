"""The emulator's language understanding: text -> an intent request, as the runtime's NLC does.

An utterance matches when its words appear, in order and next to each other, in the text;
``{entity}`` stands for any value of that entity. The longest matching utterance wins, so
"make it a {pizza_size} please" beats a bare "{pizza_size}". Text that matches nothing becomes
the ``None`` intent, the way the runtime hands unmatched text to the flow.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from .agent import AgentDefinition

NONE_INTENT = "None"
_SLOT = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def words(text: str) -> str:
    """Lower-case words separated by single spaces: the form every comparison uses."""
    return " ".join(re.findall(r"[a-z0-9']+", text.lower()))


def same_words(a: str, b: str) -> bool:
    return words(a) == words(b)


@dataclass(frozen=True)
class _Match:
    intent: str
    length: int
    entities: tuple[tuple[str, str], ...]


def _value_pattern(values: Iterable[str]) -> str:
    forms = sorted({words(v) for v in values if words(v)}, key=len, reverse=True)
    return "|".join(re.escape(form) for form in forms) or r"(?!)"


def _utterance_pattern(utterance: str, entities: Mapping[str, list[str]]) -> re.Pattern[str]:
    parts: list[str] = []
    for piece in re.split(r"(\{[A-Za-z_][A-Za-z0-9_]*\})", utterance):
        slot = _SLOT.fullmatch(piece)
        if slot is not None:
            name = slot.group(1)
            parts.append(f"(?P<{name}>{_value_pattern(entities.get(name, []))})")
        elif words(piece):
            parts.append(re.escape(words(piece)))
    return re.compile(r"(?:^| )" + " ".join(parts) + r"(?= |$)")


def _canonical(value: str, values: Iterable[str]) -> str:
    # The entity's value as the agent file spells it, not as the user typed it.
    return next((v for v in values if words(v) == value), value)


def _matches(text: str, agent: AgentDefinition) -> Iterable[_Match]:
    heard = words(text)
    for name, route in agent.intents.items():
        for utterance in route.utterances:
            found = _utterance_pattern(utterance, agent.entities).search(heard)
            if found is None:
                continue
            entities = tuple(
                (entity, _canonical(value, agent.entities.get(entity, [])))
                for entity, value in found.groupdict().items()
                if value
            )
            yield _Match(name, len(found.group(0).strip()), entities)


def none_request(query: str) -> dict[str, Any]:
    return {
        "type": "intent",
        "payload": {"query": query, "intent": {"name": NONE_INTENT}, "entities": []},
    }


def understand(text: str, agent: AgentDefinition) -> dict[str, Any]:
    """The intent request the runtime's NLU would make of ``text``."""
    best: _Match | None = None
    for match in _matches(text, agent):
        if best is None or match.length > best.length:
            best = match
    if best is None:
        return none_request(text)
    return {
        "type": "intent",
        "payload": {
            "query": text,
            "intent": {"name": best.intent},
            "entities": [{"name": name, "value": value} for name, value in best.entities],
            "confidence": 1,
        },
    }


def find_value(text: str, values: Iterable[str]) -> str | None:
    """An entity value said anywhere in ``text`` (entity filling accepts a bare value)."""
    options = list(values)
    found = re.search(r"(?:^| )(" + _value_pattern(options) + r")(?= |$)", words(text))
    return None if found is None else _canonical(found.group(1), options)
