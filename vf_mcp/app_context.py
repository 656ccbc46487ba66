"""What the MCP server holds for its whole life: shared by the tool modules."""

from __future__ import annotations

from dataclasses import dataclass, field

from vf_mcp.conversation import ConversationService
from vf_mcp.evaluation import TranscriptBook
from vf_mcp.evaluation.judge import OpenAIChatClient


@dataclass
class AppContext:
    service: ConversationService
    judge: OpenAIChatClient | None = None
    transcripts: dict[str | None, TranscriptBook] = field(default_factory=dict)
    """Transcripts of the conversations held here, per caller namespace."""
    ttl_seconds: float = 86_400
