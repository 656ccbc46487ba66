"""The transcripts of the conversations the emulator ran (served by `analytics`), and the
Analytics project definitions (properties, evaluations) that go with them."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

_ids = itertools.count(1)
MAX_TRANSCRIPTS = 5000
"""The oldest transcripts are forgotten past this: load tests run the emulator for a long time."""


def new_id() -> str:
    return f"{next(_ids):024x}"


@dataclass
class Log:
    type: str
    data: Any
    at: float


@dataclass
class Transcript:
    id: str
    session_id: str
    project_id: str
    environment_id: str
    created_at: float
    updated_at: float
    ended_at: float | None = None
    logs: list[Log] = field(default_factory=list)
    # property id -> (value, metadata, set at)
    values: dict[str, tuple[str, Any, float]] = field(default_factory=dict)
    # evaluation id -> (value, reason, cost, at)
    results: dict[str, tuple[Any, str, float, float]] = field(default_factory=dict)


class TranscriptBook:
    """Transcripts by id, the open one per (project, user), and the project's definitions."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._transcripts: dict[str, Transcript] = {}
        self._open: dict[tuple[str, str], str] = {}
        self.properties: dict[str, dict[str, Any]] = {}
        self.evaluations: dict[str, dict[str, Any]] = {}

    def record_turn(
        self,
        project_id: str,
        user_id: str,
        environment: str,
        action: dict[str, Any] | None,
        traces: Iterable[Any],
    ) -> None:
        """One turn: the action the user sent, every trace the agent emitted, and `end` when
        the conversation ended. A launch after a turn starts a new transcript (a new session)."""
        now = time.time()
        sent = action if action is not None else {"type": "launch"}
        with self._lock:
            current = self._transcripts.get(self._open.get((project_id, user_id), ""))
            if current is None or (sent.get("type") == "launch" and current.logs):
                current = Transcript(new_id(), user_id, project_id, environment, now, now)
                self._transcripts[current.id] = current
                self._open[(project_id, user_id)] = current.id
                if len(self._transcripts) > MAX_TRANSCRIPTS:
                    oldest = next(iter(self._transcripts.values()))
                    del self._transcripts[oldest.id]
                    if self._open.get((oldest.project_id, oldest.session_id)) == oldest.id:
                        del self._open[(oldest.project_id, oldest.session_id)]
            current.logs.append(Log("action", sent, now))
            ended = False
            for trace in traces:
                if isinstance(trace, dict):
                    current.logs.append(Log("trace", trace, now))
                    ended = ended or trace.get("type") == "end"
            current.updated_at = now
            if ended:
                current.logs.append(Log("end", None, now))
                current.ended_at = now
                del self._open[(project_id, user_id)]

    def get(self, transcript_id: str) -> Transcript | None:
        with self._lock:
            return self._transcripts.get(transcript_id)

    def of_project(self, project_id: str) -> list[Transcript]:
        with self._lock:
            return [t for t in self._transcripts.values() if t.project_id == project_id]

    def set_value(self, transcript: Transcript, property_id: str, value: str, meta: Any) -> float:
        now = time.time()
        with self._lock:
            transcript.values[property_id] = (value, meta, now)
        return now

    def set_result(
        self, transcript: Transcript, evaluation_id: str, value: Any, reason: str, cost: float
    ) -> None:
        with self._lock:
            transcript.results[evaluation_id] = (value, reason, cost, time.time())

    def clear(self) -> None:
        with self._lock:
            self._transcripts.clear()
            self._open.clear()
            self.properties.clear()
            self.evaluations.clear()
