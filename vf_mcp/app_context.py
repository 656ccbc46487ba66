"""What the MCP server holds for its whole life: shared by the tool modules."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vf_mcp.conversation import ConversationService
from vf_mcp.errors import InvalidInputError

if TYPE_CHECKING:
    from vf_mcp.evaluation.judge import OpenAIChatClient
    from vf_mcp.transcripts.book import TranscriptBook


@dataclass
class AppContext:
    services: dict[str, ConversationService]
    """One conversation service per agent, by agent name."""
    default_agent: str
    judge: OpenAIChatClient | None = None
    transcripts: dict[tuple[str | None, str], TranscriptBook] = field(default_factory=dict)
    """Transcripts of the conversations held here, per (caller namespace, agent)."""
    ttl_seconds: float = 86_400

    def agent_name(self, agent: str | None) -> str:
        name = agent or self.default_agent
        if name not in self.services:
            raise InvalidInputError(
                f"There is no agent {name!r}; agents: {', '.join(sorted(self.services))}"
            )
        return name

    def service_for(self, agent: str | None) -> ConversationService:
        return self.services[self.agent_name(agent)]

    def book(self, namespace: str | None, agent: str | None) -> TranscriptBook:
        """Each caller (HTTP token) has its own transcripts per agent, like its conversations."""
        key = (namespace, self.agent_name(agent))
        book = self.transcripts.get(key)
        if book is None:
            from vf_mcp.transcripts.book import TranscriptBook

            book = self.transcripts[key] = TranscriptBook(ttl_seconds=self.ttl_seconds)
        return book
