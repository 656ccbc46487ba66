"""The emulator's shared in-memory world: agents, API-key resolution, state, faults, recordings."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from . import options
from .agent import HEX24, AgentDefinition
from .faults import FaultRegistry
from .options import RouteSet, StateSemantics
from .recording import Recorder
from .sessions import DEFAULT_SESSION_TTL_S, SessionKeys
from .store import StateStore
from .transcript_book import TranscriptBook


class AuthError(Exception):
    """The request's API key is missing, malformed or unknown; ``str(self)`` is Voiceflow's text."""


class EmulatorCore:
    def __init__(
        self,
        agents: Sequence[AgentDefinition],
        *,
        session_ttl_seconds: float = DEFAULT_SESSION_TTL_S,
        state_semantics: StateSemantics = "recorded",
        routes: RouteSet = "hosted",
    ) -> None:
        if not agents:
            raise ValueError("the emulator needs at least one agent")
        ids = [agent.project_id for agent in agents]
        if len(set(ids)) != len(ids):
            raise ValueError("agents must have distinct project_id values")
        self.agents: tuple[AgentDefinition, ...] = tuple(agents)
        self.state_semantics: StateSemantics = options.state_semantics(state_semantics)
        self.routes: RouteSet = options.route_set(routes)
        self.store = StateStore()
        self.faults = FaultRegistry()
        self.recorder = Recorder()
        self.sessions = SessionKeys(session_ttl_seconds)
        self.transcripts = TranscriptBook()
        # SSE responses still being written: a client that goes away must bring this back down.
        self.open_streams = 0
        self._streams_changed = threading.Condition()
        # Set by the server that runs the app: closes the connection from a client port.
        self.drop_connection: Callable[[int], None] = lambda port: None

    def agent_for_key(self, key: str | None) -> AgentDefinition:
        """Pick the agent an ``Authorization`` value gives access to.

        An agent's own ``api_key`` always wins. An agent without one is reached by any ``VF.DM.``
        key when it is the only agent, or else by a key whose id part is its project id
        (``VF.DM.<project_id>.<anything>``).
        """
        if not key:
            raise AuthError("Auth Key Required")
        if not key.startswith("VF.DM."):
            raise AuthError("Unauthorized")
        for agent in self.agents:
            if agent.api_key == key:
                return agent
        keyless = [agent for agent in self.agents if agent.api_key is None]
        if len(self.agents) == 1 and keyless:
            return keyless[0]
        key_id = key.split(".")[2] if key.count(".") >= 2 else ""
        for agent in keyless:
            if key_id.lower() == agent.project_id.lower():
                return agent
        raise AuthError("Unauthorized")

    def agent_for_project(self, project_id: str) -> AgentDefinition:
        return next(agent for agent in self.agents if agent.project_id == project_id)

    @staticmethod
    def environment_exists(agent: AgentDefinition, environment: str) -> bool:
        return environment in agent.environments or bool(HEX24.match(environment))

    @staticmethod
    def traffic_split_environment(agent: AgentDefinition) -> str:
        """Where a v4 session without an environment lands.

        The emulator has no traffic split, so it picks ``development`` (the default of every
        older route) when the agent has it, else the agent's first environment.
        """
        if "development" in agent.environments or not agent.environments:
            return "development"
        return agent.environments[0]

    def count_stream(self, delta: int) -> None:
        with self._streams_changed:
            self.open_streams += delta
            self._streams_changed.notify_all()

    def wait_for_streams_closed(self, timeout: float) -> bool:
        """Block (another thread than the server's) until no SSE response is being written."""
        with self._streams_changed:
            return self._streams_changed.wait_for(lambda: self.open_streams == 0, timeout)

    def reset(self) -> None:
        self.store.clear()
        self.faults.reset()
        self.recorder.clear()
        self.sessions.clear()
        self.transcripts.clear()
