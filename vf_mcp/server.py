"""The MCP server: the chosen tools over the `App` a lifespan opens. It only builds."""

from __future__ import annotations

import functools
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager

from mcp.server import MCPServer

from vf_mcp import __version__
from vf_mcp.agents import AgentDirectory, single_agent
from vf_mcp.app import App, open_app
from vf_mcp.config import Settings
from vf_mcp.oauth import oauth_parts
from vf_mcp.store import Store
from vf_mcp.tools import TOOLS, bind_view, build_tools, choose
from vf_mcp.tools.evaluation import register_resources_and_prompts
from vf_mcp.view import VIEW_URI, apps_gate, view_extension
from vf_mcp.voiceflow.client import VoiceflowClient

INSTRUCTIONS = """\
Drive a Voiceflow conversational agent as its user.

1. Start with interact(launch=true). Keep the returned user_id and pass it to every later call:
   it is the conversation handle.
2. Read each result's text: what the agent said ("Agent: ..."), the buttons it offers
   ("Choices: 1) ... 2) ..."), and the status line.
3. Answer buttons with interact(choice="<label>") (case-insensitive) or choice=<number>; answer
   free questions with interact(message="...").
4. Watch the status: awaiting_user = your turn; awaiting_action = the agent asked for a custom
   action: send interact(action={"type": "<one of the listed result types>"}); ended = the
   conversation is over (launch again to restart); handoff = the agent passed the conversation to a
   person or another system: stop and report; error = something failed: read the message.
Use get_state / update_variables to inspect or preset variables, delete_state to reset.
Test suites: run_conversation runs a short one in one call; start_run runs any in the background
(poll get_run with its run_id; cancel_run stops it).
"""


Companion = Callable[[App], AbstractAsyncContextManager[object]]
"""Another front end opened over the server's `App` for its life (the A2A agent, `vf_mcp.a2a`)."""


class VfMcpServer(MCPServer[App]):
    """The MCP server, the agents it reaches, and the front ends that share its `App`: all given
    when it is built, and opened by its lifespan.

    A given `client` serves the default agent and a given `store` is used; both stay open.
    Raises `ConfigurationError` for an allow-list naming unknown tools.
    """

    directory: AgentDirectory
    companions: tuple[Companion, ...]
    stopping: threading.Event
    """Set by the HTTP server once the worker begins to stop; its `App` reads it too."""

    def __init__(
        self,
        settings: Settings,
        directory: AgentDirectory,
        *,
        client: VoiceflowClient | None = None,
        store: Store | None = None,
        heartbeat_seconds: float | None = None,
        companions: Sequence[Companion] = (),
    ) -> None:
        chosen = bind_view(choose(TOOLS, settings, several_agents=len(directory.agents) > 1))
        # The conversation view (MCP Apps) is served when a chosen tool shows it; only clients
        # known to speak the extension see its app-only tools and its resource listed
        # (`vf_mcp.view.gate`).
        view = any(spec.view is not None for spec in chosen)
        app_only = frozenset(spec.name for spec in chosen if spec.app_only)
        verifier, auth = oauth_parts(settings)
        self.directory = directory
        self.companions = tuple(companions)
        self.stopping = threading.Event()
        self._open_app = functools.partial(
            open_app,
            settings,
            directory,
            client=client,
            store=store,
            heartbeat_seconds=heartbeat_seconds,
            stopping=self.stopping,
            offered_tools=frozenset(spec.name for spec in chosen),
        )
        self._verifier = verifier
        super().__init__(
            "vf-mcp",
            title="Voiceflow agent",
            version=__version__,
            instructions=_instructions(directory),
            lifespan=self._lifespan,
            log_level=settings.log_level,
            token_verifier=verifier,
            auth=auth,
            tools=build_tools(chosen),
            extensions=[view_extension(settings.view_image_origins)] if view else [],
            middleware=[apps_gate(app_only, frozenset({VIEW_URI}))] if view else [],
        )
        register_resources_and_prompts(self)

    @asynccontextmanager
    async def _lifespan(self, _: MCPServer[App]) -> AsyncIterator[App]:
        try:
            async with self._open_app() as app, AsyncExitStack() as companions:
                for companion in self.companions:
                    await companions.enter_async_context(companion(app))
                yield app
        finally:
            if self._verifier is not None:
                await self._verifier.aclose()


def build_server(
    settings: Settings,
    *,
    agents: AgentDirectory | None = None,
    client: VoiceflowClient | None = None,
    store: Store | None = None,
    heartbeat_seconds: float | None = None,
    companions: Sequence[Companion] = (),
) -> VfMcpServer:
    """The MCP server for the configured agents (one, from `settings`, unless `agents`), with the
    front ends its lifespan opens beside it (`companions`; `vf_mcp.http.build_fronts`)."""
    return VfMcpServer(
        settings,
        agents or single_agent(settings),
        client=client,
        store=store,
        heartbeat_seconds=heartbeat_seconds,
        companions=companions,
    )


def _instructions(directory: AgentDirectory) -> str:
    if len(directory.agents) == 1:
        return INSTRUCTIONS
    return (
        f"{INSTRUCTIONS}\nThis server reaches several agents: {directory.describe()}. Every tool "
        f"takes `agent` (default: {directory.default}); a conversation belongs to one agent. "
        "Move a conversation to another agent with handoff.\n"
    )
