"""Fault injection: latency, error statuses, slow or cut SSE streams."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class FaultMatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: str | None = None
    path_contains: str | None = None

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.path_contains is None or self.path_contains in path


class FaultPlan(BaseModel):
    """One injected misbehaviour, applied to the next ``times`` matching API requests."""

    model_config = ConfigDict(extra="forbid")

    match: FaultMatch = Field(default_factory=FaultMatch)
    times: int = Field(default=1, ge=-1)  # -1 = forever
    latency_ms: int | None = Field(default=None, ge=0)
    status: int | None = Field(default=None, ge=100, le=599)
    retry_after: int | float | str | None = None  # seconds; 429 gets "1" when unset
    body: Any = None  # JSON value, or a str sent as text/plain (or as `content_type`)
    content_type: str | None = None  # e.g. text/event-stream with a 200 to feed a client junk SSE
    cut_stream_after_events: int | None = Field(default=None, ge=0)
    chunk_delay_ms: int | None = Field(default=None, ge=0)
    # Close the connection without a byte of answer (after any latency): what a client sees when
    # it writes a request into a kept-alive connection the server is closing.
    drop_connection: bool = False

    @property
    def stream_only(self) -> bool:
        """Plans that can only change an SSE body should not be used up by other requests."""
        shapes_stream = self.cut_stream_after_events is not None or self.chunk_delay_ms is not None
        return shapes_stream and self.latency_ms is None and self.status is None


@dataclass
class ActiveFault:
    id: int
    plan: FaultPlan
    remaining: int  # -1 = forever
    used: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "plan": self.plan.model_dump(mode="json"),
            "remaining": self.remaining,
            "used": self.used,
        }


@dataclass(frozen=True)
class AppliedFault:
    fault_id: int
    plan: FaultPlan
    method: str
    path: str


class FaultRegistry:
    """Thread-safe: tests add faults from their own thread while the server loop consumes them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: list[ActiveFault] = []
        self._applied: list[AppliedFault] = []
        self._next_id = 1

    def add(self, plan: FaultPlan | dict[str, Any]) -> ActiveFault:
        plan = plan if isinstance(plan, FaultPlan) else FaultPlan.model_validate(plan)
        with self._lock:
            fault = ActiveFault(id=self._next_id, plan=plan, remaining=plan.times)
            self._next_id += 1
            if fault.remaining != 0:
                self._active.append(fault)
            return fault

    def clear(self) -> int:
        """Drop pending faults (the applied history stays); returns how many were dropped."""
        with self._lock:
            dropped = len(self._active)
            self._active.clear()
            return dropped

    def reset(self) -> None:
        with self._lock:
            self._active.clear()
            self._applied.clear()

    @property
    def pending(self) -> list[ActiveFault]:
        with self._lock:
            return list(self._active)

    @property
    def applied(self) -> list[AppliedFault]:
        with self._lock:
            return list(self._applied)

    def take(self, method: str, path: str, *, streaming: bool) -> FaultPlan | None:
        """Consume one use of the first pending plan that matches this request."""
        with self._lock:
            for fault in self._active:
                if fault.plan.stream_only and not streaming:
                    continue
                if not fault.plan.match.matches(method, path):
                    continue
                fault.used += 1
                if fault.remaining > 0:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._active.remove(fault)
                self._applied.append(AppliedFault(fault.id, fault.plan, method, path))
                return fault.plan
        return None
