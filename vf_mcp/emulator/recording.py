"""What the emulator saw: API requests and emitted session events, for assertions."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from .faults import FaultPlan

REDACTED = "<redacted>"


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # v4 session keys in it (session events) are redacted
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names; the Authorization value is redacted
    json: Any  # parsed body, or None when absent / not JSON
    time: float
    fault: FaultPlan | None = None
    client_port: int | None = None  # the peer's source port: shows whether connections are reused

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "json": self.json,
            "time": self.time,
            "fault": None if self.fault is None else self.fault.model_dump(mode="json"),
            "client_port": self.client_port,
        }


@dataclass(frozen=True)
class RecordedSessionEvent:
    project_id: str
    session_id: str
    action: dict[str, Any]
    time: float
    applied: bool = False  # the emulator has no socket sessions, so events are never applied
    # True when session_id was a live v4 session key of the project (answered 201, no body).
    v4_session: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "project_id": self.project_id,
            "session_id": self.session_id,
            "action": self.action,
            "time": self.time,
            "applied": self.applied,
            "v4_session": self.v4_session,
        }


@dataclass
class Recorder:
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _requests: list[RecordedRequest] = field(default_factory=list)
    _session_events: list[RecordedSessionEvent] = field(default_factory=list)
    _arrived: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self._arrived = threading.Condition(self._lock)

    def add_request(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)
            self._arrived.notify_all()

    def wait_for_requests(self, count: int, path_contains: str, timeout: float) -> bool:
        """Block until `count` requests whose path holds `path_contains` arrived; False on timeout.

        Lets a test act while a request is being answered (a slow turn in flight) without a timer.
        """

        def arrived() -> bool:
            return sum(path_contains in r.path for r in self._requests) >= count

        with self._arrived:
            return self._arrived.wait_for(arrived, timeout)

    def add_session_event(self, event: RecordedSessionEvent) -> None:
        with self._lock:
            self._session_events.append(event)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def session_events(self) -> list[RecordedSessionEvent]:
        with self._lock:
            return list(self._session_events)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()
            self._session_events.clear()
