"""`import_transcripts`: recent Voiceflow transcripts (the Analytics API) as suites with proposed
checks, for an assistant to review and run with `run_conversation`. It only reads from Voiceflow."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context
from mcp.types import CallToolResult
from pydantic import BaseModel, Field

from vf_mcp.app import App
from vf_mcp.config import ENV_PROJECT_ID
from vf_mcp.errors import ConfigurationError
from vf_mcp.tools.calls import call_of
from vf_mcp.tools.errors import result

MAX_IMPORTED = 20

Since = Annotated[str, Field(description="ISO date: created at or after")]
Until = Annotated[str, Field(description="ISO date: created at or before")]
Session = Annotated[str, Field(description="Only this session (user id)")]
NOTICE = "The suites hold users' words: keep them like user data"


class ImportedSuite(BaseModel):
    transcript_id: str
    file_name: str
    suite_yaml: str


class ImportedSuites(BaseModel):
    suites: list[ImportedSuite]
    skipped: int = Field(description="Conversations with no user turn, left out")
    notice: str = NOTICE


Count = Annotated[int, Field(description="Newest conversations to import", ge=1, le=MAX_IMPORTED)]


async def import_transcripts(
    ctx: Context[App], since: Since = "", until: Until = "", session: Session = "", limit: Count = 5
) -> Annotated[CallToolResult, ImportedSuites]:
    """Turn recent real conversations (Voiceflow transcripts) into test suites with proposed
    checks, to review and run with run_conversation. They hold users' words."""
    from vf_mcp.evaluation.import_cli import (
        ImportRequest,
        import_suites,
        parse_until,
        parse_when,
        suite_file_name,
        suite_yaml,
    )
    from vf_mcp.voiceflow.analytics_models import SearchFilters

    app = call_of(ctx).app
    settings = app.settings
    if not settings.project_id:
        raise ConfigurationError(
            f"import_transcripts needs {ENV_PROJECT_ID}: set it to the project ID"
        )
    request = ImportRequest(
        project_id=settings.project_id,
        filters=SearchFilters(
            sessionID=session or None,
            startDate=parse_when(since) if since else None,
            endDate=parse_until(until) if until else None,
        ),
        limit=limit,
    )
    imported = await import_suites(app.analytics(), request)
    found = ImportedSuites(
        suites=[
            ImportedSuite(transcript_id=origin.transcript_id, file_name=suite_file_name(suite),
                          suite_yaml=suite_yaml(suite))
            for suite in imported.suites
            if (origin := suite.tests[0].imported_from) is not None
        ],
        skipped=imported.skipped,
    )  # fmt: skip
    lines = [f"{len(found.suites)} suites ({found.skipped} skipped: no user turn). {NOTICE}."]
    lines += [f"\n# {s.file_name}\n{s.suite_yaml}" for s in found.suites]
    return result("\n".join(lines), found)
