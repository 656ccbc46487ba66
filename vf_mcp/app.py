"""The composition root: everything a server holds for its life, opened from one `Settings`.

`open_app` opens the store, one Voiceflow client per agent (one connection pool each), the judge
when one is configured, the transcript book and the background runs (`start_run`), and closes all
it opened, in reverse order: runs still going are stopped before the clients they use close. The
Analytics API client (`import_transcripts`) is opened on first use and closed with the rest. The
MCP server's lifespan opens it (stdio and HTTP alike); so can any other front end, and tests,
without MCP.
"""

from __future__ import annotations

import functools
import threading
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vf_mcp.agents import AgentDirectory, single_agent
from vf_mcp.config import Settings
from vf_mcp.conversation import HEARTBEAT_SECONDS, ConversationService, StreamRoutes
from vf_mcp.errors import InvalidInputError
from vf_mcp.retry import RetryPolicy
from vf_mcp.runs.manager import RunManager, open_runs
from vf_mcp.store import Store, open_store
from vf_mcp.transcripts.book import TranscriptBook
from vf_mcp.voiceflow.client import VoiceflowClient

if TYPE_CHECKING:
    from vf_mcp.evaluation.judge import OpenAIChatClient
    from vf_mcp.voiceflow.analytics import AnalyticsClient


@dataclass
class App:
    settings: Settings
    directory: AgentDirectory
    services: dict[str, ConversationService]
    """One conversation service per agent, by agent name."""
    store: Store
    transcripts: TranscriptBook
    runs: RunManager
    """Suite runs in this worker's background, and every run's record in the store."""
    judge: OpenAIChatClient | None = None
    stopping: threading.Event = field(default_factory=threading.Event)
    """Set by the server layer once the worker began to stop (the SIGTERM drain): from then on
    `start_run` is refused, as its runs would be stopped when the drain ends."""
    offered_tools: frozenset[str] = frozenset()
    """The MCP tools this deployment offers (`vf_mcp.tools.choose`); empty outside MCP."""
    _analytics: AnalyticsClient | None = field(default=None, init=False, repr=False)

    def analytics(self) -> AnalyticsClient:
        """The Analytics API client: one connection pool for the app's life, opened on first use
        and closed with the app. Imported only then, so a start loads none of it."""
        if self._analytics is None:
            from vf_mcp.voiceflow.analytics import AnalyticsClient

            self._analytics = AnalyticsClient(self.settings)
        return self._analytics

    async def aclose_analytics(self) -> None:
        if self._analytics is not None:
            analytics, self._analytics = self._analytics, None
            await analytics.aclose()

    @property
    def default_agent(self) -> str:
        return self.directory.default

    def agent_name(self, agent: str | None) -> str:
        name = agent or self.directory.default
        if name not in self.services:
            raise InvalidInputError(
                f"There is no agent {name!r}; agents: {', '.join(sorted(self.services))}"
            )
        return name

    def service_for(self, agent: str | None) -> ConversationService:
        return self.services[self.agent_name(agent)]


@asynccontextmanager
async def open_app(
    settings: Settings,
    directory: AgentDirectory | None = None,
    *,
    client: VoiceflowClient | None = None,
    store: Store | None = None,
    heartbeat_seconds: float | None = None,
    stopping: threading.Event | None = None,
    offered_tools: frozenset[str] = frozenset(),
) -> AsyncIterator[App]:
    """Open everything; a given `client` serves the default agent and a given `store` is used,
    and both are left open for their owner; a given `stopping` is set by whoever serves the app
    when the worker begins to stop."""
    stopping = stopping or threading.Event()
    directory = directory or single_agent(settings)
    async with AsyncExitStack() as stack:
        if store is None:
            store = open_store(
                settings.store_url.get_secret_value() if settings.store_url else None,
                ttl_seconds=settings.store_ttl,
                max_mb=settings.store_max_mb,
                transcript_max_kb=settings.transcript_max_kb,
            )
            stack.push_async_callback(store.aclose)
        transcripts = TranscriptBook(store.transcripts)
        heartbeat = HEARTBEAT_SECONDS if heartbeat_seconds is None else heartbeat_seconds
        services = await _open_services(stack, directory, store, client, transcripts, heartbeat)
        judge = await _open_judge(stack, settings)
        # Entered last, so left first: runs stop while the clients and judge they use are open.
        runs = await stack.enter_async_context(
            open_runs(store.runs, max_runs=settings.max_runs, stopping=stopping)
        )
        app = App(
            settings=settings,
            directory=directory,
            services=services,
            store=store,
            transcripts=transcripts,
            runs=runs,
            judge=judge,
            stopping=stopping,
            offered_tools=offered_tools,
        )
        stack.push_async_callback(app.aclose_analytics)
        yield app


async def _open_services(
    stack: AsyncExitStack,
    directory: AgentDirectory,
    store: Store,
    client: VoiceflowClient | None,
    transcripts: TranscriptBook,
    heartbeat_seconds: float,
) -> dict[str, ConversationService]:
    routes = StreamRoutes()
    projects = Counter(
        (a.settings.runtime_url, a.settings.project_id) for a in directory.agents.values()
    )
    services: dict[str, ConversationService] = {}
    for name, agent in directory.agents.items():
        # One agent keeps the plain keys; several get a prefix each in the shared store.
        view = store if len(directory.agents) == 1 else store.for_agent(name)
        if client is not None and name == directory.default:
            vf = client
        else:
            vf = VoiceflowClient(agent.settings, session_keys=view.session_keys)
            stack.push_async_callback(vf.aclose)
        # Agents on one project share its runtime state per user id: keep them apart there too.
        shared = projects[(agent.settings.runtime_url, agent.settings.project_id)] > 1
        services[name] = ConversationService(
            vf,
            view,
            agent.settings,
            heartbeat_seconds=heartbeat_seconds,
            id_prefix=f"{name}." if shared else "",
            stream_routes=routes,
            # A turn cut off with its worker is recorded in the caller's transcript when found.
            lost_turns=functools.partial(transcripts.record_lost, agent=name),
        )
    return services


async def _open_judge(stack: AsyncExitStack, settings: Settings) -> OpenAIChatClient | None:
    if settings.judge_url is None:
        return None
    # The judge's client is imported only when one is configured: stdio start-up stays light.
    from vf_mcp.evaluation.judge import JudgeSettings, OpenAIChatClient

    judge_settings = JudgeSettings.from_settings(settings)
    if judge_settings is None:
        return None
    policy = RetryPolicy(max_retries=settings.max_retries, deadline=settings.retry_deadline)
    judge = OpenAIChatClient(judge_settings, retry=policy)
    stack.push_async_callback(judge.aclose)
    return judge
