"""Conversation state per (project, user), shared by the server thread and test code."""

from __future__ import annotations

import copy
import threading
from typing import Any

State = dict[str, Any]


class StateStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._states: dict[tuple[str, str], State] = {}

    def get(self, project_id: str, user_id: str) -> State | None:
        with self._lock:
            state = self._states.get((project_id, user_id))
            return copy.deepcopy(state) if state is not None else None

    def put(self, project_id: str, user_id: str, state: State) -> None:
        with self._lock:
            self._states[(project_id, user_id)] = copy.deepcopy(state)

    def delete(self, project_id: str, user_id: str) -> None:
        with self._lock:
            self._states.pop((project_id, user_id), None)

    def clear(self) -> None:
        with self._lock:
            self._states.clear()
