"""How the runner gets `ConversationService`s: one per agent it talks to.

`ServiceFactory` builds services from `Settings` (with the record/replay transport when given), or
reuses a service the caller already has (the MCP server's) when nothing about it has to change.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from pydantic import SecretStr

from vf_mcp.config import Settings
from vf_mcp.conversation import ConversationService
from vf_mcp.evaluation.context import TurnClock
from vf_mcp.store.memory import in_memory_store
from vf_mcp.voiceflow.client import VoiceflowClient


class ServiceFactory:
    """Opens services for the agent under test and, for agent-to-agent tests, the tester agent."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        service: ConversationService | None = None,
        namespace: str | None = None,
        clock: TurnClock | None = None,
    ) -> None:
        self.settings = settings
        self.transport = transport
        self.clock = clock
        """What a turn's latency is read from: a recording's, under replay."""
        self._service = service
        self.namespace = namespace
        """The caller whose run this is (`vf_mcp.callers`): every conversation a suite holds is
        in that caller's namespace, like the caller's own, whatever user ids the suite names."""

    @classmethod
    def reusing(cls, service: ConversationService, namespace: str | None = None) -> ServiceFactory:
        """Use an existing service (e.g. the MCP server's) whenever it fits the request."""
        return cls(service.settings, service=service, namespace=namespace)

    @asynccontextmanager
    async def open(
        self, *, streaming: bool | None = None, api_key: SecretStr | None = None
    ) -> AsyncIterator[ConversationService]:
        """A service: `streaming=False` forces plain interact, `api_key` selects another agent."""
        if (
            self._service is not None
            and api_key is None
            and (streaming is None or streaming == self._service.streams)
        ):
            yield self._service
            return
        update: dict[str, object] = {}
        if streaming is False:
            # Plain interact: legacy needs no project id, but a v4 session cannot start without
            # one, so v4 turns streaming off instead.
            update["stream"] = False
            if self.settings.api_version != "v4":
                update["project_id"] = None
        if api_key is not None:
            update["api_key"] = api_key
        settings = self.settings.model_copy(update=update)
        store = in_memory_store()
        async with VoiceflowClient(
            settings, transport=self.transport, session_keys=store.session_keys
        ) as client:
            yield ConversationService(client, store, settings)
