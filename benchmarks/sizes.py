"""Summary size: what a model reads (the tool's text content) against the raw trace JSON.

Raw bytes are the runtime's own answer: the body of a plain (non-verbose) interact, which is the
trace array exactly as sent. The same script runs through vf-mcp once per verbosity, each on a
fresh conversation; structured-content bytes are shown for information.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from mcp import Client

from benchmarks.procs import EXAMPLE_KEY, LONG_TURN_KEY
from benchmarks.stats import ratio, verdict
from benchmarks.targets import vf_settings
from vf_mcp.server import build_server

GOALS = {"standard": 0.25, "minimal": 0.10}
# On the real runtime's recorded conversations (tests/fixtures/real_runtime), issue #12's goals.
RECORDED_GOALS = {"standard": 0.25, "minimal": 0.20}

CONVERSATION: tuple[dict[str, Any], ...] = (
    {"launch": True},
    {"choice": "Track an order"},
    {"message": "1001"},
    {"choice": "Track another order"},
    {"message": "1002"},
    {"choice": "Talk to a person"},
    {"action": {"type": "done"}},
    {"choice": "Ask a question"},
    {"message": "How long does shipping take?"},
    {"choice": "That's all"},
)
LONG_TURN: tuple[dict[str, Any], ...] = ({"launch": True},)


@dataclass
class SizeRow:
    scenario: str
    turns: int
    traces: int
    raw: int
    text: dict[str, int]
    structured: dict[str, int]
    words: int
    """Bytes of what the agent said and the button labels alone: no summary can go below."""
    goals: dict[str, float] = dataclasses.field(default_factory=lambda: dict(GOALS))
    agent: str = ""
    """The recorded agent (real-runtime rows)."""

    def cells(self) -> list[str]:
        standard = ratio(self.text["standard"], self.raw)
        minimal = ratio(self.text["minimal"], self.raw)
        return [
            self.scenario,
            f"{self.turns} / {self.traces}",
            f"{self.raw:,}",
            f"{self.text['standard']:,} ({standard:.3f})",
            f"{self.text['minimal']:,} ({minimal:.3f})",
            f"{self.words:,} ({ratio(self.words, self.raw):.3f})",
            f"{self.structured['standard']:,} ({ratio(self.structured['standard'], self.raw):.2f})",
            f"<={self.goals['standard']:.2f}: {verdict(standard, self.goals['standard'])} / "
            f"<={self.goals['minimal']:.2f}: {verdict(minimal, self.goals['minimal'])}",
        ]


HEADERS = [
    "scenario",
    "turns / traces",
    "raw trace JSON bytes",
    "standard text bytes (ratio)",
    "minimal text bytes (ratio)",
    "agent words + labels only (ratio)",
    "structured JSON bytes (ratio, info)",
    "goals standard / minimal",
]


async def _raw_bytes(
    runtime_url: str, key: str, script: Sequence[dict[str, Any]]
) -> tuple[int, int]:
    """Replay the script with bare httpx; (bytes of the trace arrays, number of traces)."""
    size = count = 0
    buttons: dict[str, dict[str, Any]] = {}
    async with httpx.AsyncClient(base_url=runtime_url, headers={"Authorization": key}) as http:
        for step in script:
            if step.get("launch"):
                action: dict[str, Any] = {"type": "launch"}
            elif "message" in step:
                action = {"type": "text", "payload": step["message"]}
            elif "choice" in step:
                action = buttons[step["choice"].casefold()]
            else:
                action = step["action"]
            response = await http.post(
                "/state/user/bench-sizes-raw/interact",
                json={"action": action},
                headers={"versionID": "development"},
            )
            response.raise_for_status()
            size += len(response.content)
            traces = response.json()
            count += len(traces)
            offered = [
                b for t in traces if t["type"] == "choice" for b in t["payload"].get("buttons", [])
            ]
            if offered:
                buttons = {b["name"].casefold(): b["request"] for b in offered}
    return size, count


def _words(turn: dict[str, Any]) -> int:
    """Bytes of the agent's messages, card texts and button labels in one structured result."""
    parts: list[str] = [choice["label"] for choice in turn.get("choices", [])]
    for message in turn.get("messages", []):
        parts.append(message.get("text", ""))
        for card in message.get("cards", []):
            parts += [card.get("title", ""), card.get("description", "")]
    return sum(len(part.encode()) for part in parts)


async def _summary_bytes(
    runtime_url: str, key: str, script: Sequence[dict[str, Any]], verbosity: str
) -> tuple[int, int, int]:
    """(text, structured-content JSON, agent words) bytes of the script's turns through vf-mcp."""
    text = structured = words = 0
    user_id = f"bench-sizes-{verbosity}"
    server = build_server(vf_settings(runtime_url, stream=False, key=key))
    async with Client(server) as client:
        for step in script:
            result = await client.call_tool(
                "interact", {**step, "user_id": user_id, "verbosity": verbosity}
            )
            if result.is_error:
                raise RuntimeError(f"turn {step} failed: {result.content}")
            text += sum(len(getattr(b, "text", "").encode()) for b in result.content)
            structured += len(json.dumps(result.structured_content, separators=(",", ":")))
            words += _words(result.structured_content or {})
    return text, structured, words


async def measure(runtime_url: str) -> list[SizeRow]:
    rows = []
    scenarios = (
        ("example agent, whole conversation", EXAMPLE_KEY, CONVERSATION),
        ("one turn of 200 traces (+ end)", LONG_TURN_KEY, LONG_TURN),
    )
    for name, key, script in scenarios:
        raw, traces = await _raw_bytes(runtime_url, key, script)
        text: dict[str, int] = {}
        structured: dict[str, int] = {}
        for verbosity in ("standard", "minimal"):
            text[verbosity], structured[verbosity], words = await _summary_bytes(
                runtime_url, key, script, verbosity
            )
        rows.append(SizeRow(name, len(script), traces, raw, text, structured, words))
    return rows


async def measure_recorded() -> list[SizeRow]:
    """The real runtime's recorded acme and pizza conversations, replayed through the tools: one
    row per agent (issue 24's goal holds for each)."""
    # The replay lives with the contract tests that hold the goldens; imported only here.
    from tests.real_runtime import CASES, load_exchanges, replay_agent

    rows = []
    for agent in ("acme", "pizza"):
        replayed = await replay_agent(agent)
        turns = [e for e in load_exchanges(agent) if e in CASES and e.traces is not None]
        raw = sum(len(json.dumps(e.traces, separators=(",", ":"))) for e in turns)
        text = {
            "standard": sum(len(replayed[e.id].text.encode()) for e in turns),
            "minimal": sum(len((replayed[e.id].minimal or "").encode()) for e in turns),
        }
        structured = sum(
            len(json.dumps(replayed[e.id].structured, separators=(",", ":"))) for e in turns
        )
        words = sum(_words(replayed[e.id].structured or {}) for e in turns)
        rows.append(
            SizeRow(
                f"real runtime, recorded {agent} turns",
                len(turns),
                sum(len(e.traces or []) for e in turns),
                raw,
                text,
                {"standard": structured, "minimal": structured},
                words,
                dict(RECORDED_GOALS),
                agent,
            )
        )
    return rows
