"""v4 session keys: opaque credentials bound to (project, user, environment), with a lifetime."""

from __future__ import annotations

import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

SESSION_KEY_PREFIX = "vfsk_"
# token_urlsafe(24) is 32 characters of [A-Za-z0-9_-]; the shape lets recordings redact keys
# found in paths (session events) without asking the registry whether they are still live.
SESSION_KEY_SHAPE = re.compile(re.escape(SESSION_KEY_PREFIX) + r"[A-Za-z0-9_-]{32}")
DEFAULT_SESSION_TTL_S = 3600.0


@dataclass(frozen=True)
class SessionBinding:
    """What a live session key stands for."""

    project_id: str
    user_id: str
    environment: str
    expires_at: float  # on the registry's monotonic clock


class SessionKeys:
    """Thread-safe: tests expire keys from their own thread while the server loop resolves them.

    One live key per (project, user): starting a session ends the previous one, as Voiceflow
    documents for ``POST /v4/project/{projectID}/session``. Ended and expired keys are simply
    forgotten, so both resolve to ``None``.
    """

    def __init__(
        self,
        ttl_seconds: float = DEFAULT_SESSION_TTL_S,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not ttl_seconds > 0:
            raise ValueError("session_ttl_seconds must be positive")
        self.ttl_seconds = float(ttl_seconds)
        self._clock = clock
        self._lock = threading.Lock()
        self._by_key: dict[str, SessionBinding] = {}
        self._by_user: dict[tuple[str, str], str] = {}

    def start(self, project_id: str, user_id: str, environment: str) -> str:
        key = SESSION_KEY_PREFIX + secrets.token_urlsafe(24)
        binding = SessionBinding(project_id, user_id, environment, self._clock() + self.ttl_seconds)
        with self._lock:
            previous = self._by_user.get((project_id, user_id))
            if previous is not None:
                self._by_key.pop(previous, None)
            self._by_key[key] = binding
            self._by_user[(project_id, user_id)] = key
        return key

    def resolve(self, key: str | None) -> SessionBinding | None:
        """The binding of a live key; ``None`` for anything unknown, ended or expired."""
        if not key:
            return None
        with self._lock:
            binding = self._by_key.get(key)
            if binding is None:
                return None
            if self._clock() >= binding.expires_at:
                self._forget(key, binding)
                return None
            return binding

    def expire_all(self) -> int:
        """Expire every live key at once (a test hook: no waiting for the TTL); returns how many."""
        with self._lock:
            now = self._clock()
            live = sum(1 for binding in self._by_key.values() if binding.expires_at > now)
            self._by_key.clear()
            self._by_user.clear()
            return live

    def clear(self) -> None:
        with self._lock:
            self._by_key.clear()
            self._by_user.clear()

    def _forget(self, key: str, binding: SessionBinding) -> None:
        self._by_key.pop(key, None)
        owner = (binding.project_id, binding.user_id)
        if self._by_user.get(owner) == key:
            del self._by_user[owner]


def redact_session_keys(text: str, replacement: str) -> str:
    """Hide anything shaped like a session key (they are credentials, and appear in paths)."""
    return SESSION_KEY_SHAPE.sub(replacement, text)
