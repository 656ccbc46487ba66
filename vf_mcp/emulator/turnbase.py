"""What every part of a turn shares: the state being changed, trace builders, the AI memory.

The turn itself is assembled from mixins (:mod:`.stepping` runs steps, :mod:`.waiting` handles
the steps that wait, :mod:`.engine` drives the stack); this base holds their common ground.
"""

from __future__ import annotations

import base64
import enum
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .agent import AgentDefinition, Diagram
from .bookkeeping import remember_assistant
from .traces import Trace, debug_payload, new_id, slate, strip_ssml, text_payload, trace

State = dict[str, Any]
Frame = dict[str, Any]

# Voiceflow ends a turn that loops ("turn timeout"); these bounds play that role.
MAX_STEPS_PER_TURN = 500
MAX_STACK_DEPTH = 16
NO_MATCHES = "noMatchesCounter"
NO_REPLIES = "noRepliesCounter"
ARMED_NO_REPLY = "noReply"  # the emulator's own: a `no_reply` step armed the next wait
CALLED_COMMAND = "calledCommand"


@dataclass(frozen=True)
class Pause:
    """Ask a streaming caller to wait before producing the next trace."""

    ms: int


Emission = Trace | Pause


@dataclass(frozen=True)
class TurnOptions:
    user_id: str
    completion_events: bool = False
    audio_events: bool = False
    audio_encoding: str = "audio/mp3"
    stop_all: bool = False
    stop_types: frozenset[str] = frozenset()
    # The legacy interact's filter strips SSML from speak traces; the streams keep it.
    strip_ssml: bool = True
    # Merged (deeply) into the stored variables before the turn runs.
    variables: Mapping[str, Any] = field(default_factory=dict)


class Flow(enum.Enum):
    NEXT = "next"  # carry on with the following step
    WAIT = "wait"  # the turn ends here; the frame waits at this step
    END = "end"  # an exit ended the turn
    FRAME_CHANGED = "frame"  # the stack changed (component, command): run the new top
    RAN_OUT = "ran out"  # this frame has nothing more to run


@dataclass(frozen=True)
class Jump:
    node: str


StepResult = Flow | Jump


class TurnBase:
    """Shared state of one turn; see :class:`vf_mcp.emulator.engine.Turn`."""

    def __init__(
        self,
        agent: AgentDefinition,
        options: TurnOptions,
        clock: Callable[[], float],
    ) -> None:
        self._agent = agent
        self._options = options
        self._clock = clock
        self._diagrams: dict[str, Diagram] = agent.diagrams()
        self._state: State = {"stack": [], "storage": {}, "variables": {}}
        self._steps_run = 0
        # An exit ended the session this turn (so no second `end` trace is due).
        self._ended = False

    # -- the state ---------------------------------------------------------------------------

    @property
    def _vars(self) -> dict[str, Any]:
        variables: dict[str, Any] = self._state["variables"]
        return variables

    @property
    def _stack(self) -> list[Frame]:
        stack: list[Frame] = self._state["stack"]
        return stack

    @property
    def _storage(self) -> dict[str, Any]:
        storage: dict[str, Any] = self._state["storage"]
        return storage

    def _top(self) -> Frame:
        return self._stack[-1]

    def _diagram_of(self, frame: Frame) -> Diagram | None:
        diagram_id = frame.get("diagramID")
        return self._diagrams.get(diagram_id) if isinstance(diagram_id, str) else None

    @staticmethod
    def _frame_storage(frame: Frame) -> dict[str, Any]:
        storage = frame.get("storage")
        if not isinstance(storage, dict):
            storage = frame["storage"] = {}
        return storage

    def _new_frame(self, diagram_id: str, node_id: str | None = None) -> Frame:
        # No `nodeID` key means "from the diagram's start", as the runtime's frames do.
        frame: Frame = {} if node_id is None else {"nodeID": node_id}
        frame.update({"diagramID": diagram_id, "storage": {}, "commands": [], "variables": {}})
        return frame

    # -- traces ------------------------------------------------------------------------------

    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _trace(self, kind: str, payload: Any, **extra: Any) -> Trace:
        return trace(kind, payload, self._now_ms(), **extra)

    def _debug(self, message: str, kind: str | None = None) -> Trace:
        return self._trace("debug", debug_payload(message, kind))

    def _path(self, path: str) -> Trace:
        return self._trace("path", {"path": path})

    def _stack_changed(self) -> Iterator[Trace]:
        """The runtime announces every stack change with a ``flow`` trace of the new top."""
        if self._stack and self._top().get("diagramID") != self._agent.version:
            yield self._trace("flow", {"diagramID": self._top().get("diagramID")})

    def _text(self, message: str, *, delay: int | None = None, ai: bool = False) -> Trace:
        self._vars["last_response"] = message
        remember_assistant(self._vars, message)
        return self._trace("text", text_payload(message, delay=delay, ai=ai))

    def _say(self, message: str, *, delay: int | None = None, ai: bool = False) -> Iterator[Trace]:
        yield self._text(message, delay=delay, ai=ai)
        yield from self._audio(message)

    def _speak(self, message: str, extra: Mapping[str, Any]) -> Trace:
        self._vars["last_response"] = message
        remember_assistant(self._vars, message)
        shown = strip_ssml(message) if self._options.strip_ssml else message
        return self._trace("speak", {"message": shown, "type": "message", **extra})

    def _remember_output(self, output: Any) -> None:
        """The frame keeps its last output (slate for text, a string for speak), as recorded."""
        if self._stack:
            self._frame_storage(self._top())["output"] = output

    def _said(self, message: str) -> None:
        self._remember_output(slate(message))

    def _audio(self, message: str) -> Iterator[Trace]:
        """Synthetic TTS output for ``audio_events``: start, one base64 chunk, end."""
        if not self._options.audio_events:
            return
        audio = base64.b64encode(f"EMULATED-TTS:{message}".encode()).decode()
        yield self._trace("audio", {"state": "start", "messageID": new_id()})
        yield self._trace(
            "audio",
            {"state": "content", "content": audio, "encoding": self._options.audio_encoding},
        )
        yield self._trace("audio", {"state": "end"})
