"""Argument types and annotation presets every tool shares, declared once."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.types import ToolAnnotations
from pydantic import Field

from vf_mcp.conversation import ENVIRONMENT_PATTERN, USER_ID_MAX_LENGTH, USER_ID_PATTERN
from vf_mcp.domain.turn import Verbosity

# Mirrored into `Mcp-Param-User-Id` / `Mcp-Param-Agent` request headers by clients of the
# 2026-07-28 protocol (SEP-2243), so a load balancer can keep a conversation on one worker. The
# SDK accepts the annotation only on plain string properties: absence is "", not null.
USER_ID_HEADER = {"x-mcp-header": "User-Id"}
AGENT_HEADER = {"x-mcp-header": "Agent"}

UserId = Annotated[
    str,
    Field(
        description="Conversation handle returned by a previous interact call",
        min_length=1,
        max_length=USER_ID_MAX_LENGTH,
        pattern=USER_ID_PATTERN,
        json_schema_extra=USER_ID_HEADER,
    ),
]
NewOrUserId = Annotated[
    str,
    Field(
        description="Conversation handle from an earlier result; leave out to start a new "
        "conversation (a fresh id is returned)",
        max_length=USER_ID_MAX_LENGTH,
        pattern=f"^$|{USER_ID_PATTERN}",
        json_schema_extra=USER_ID_HEADER,
    ),
]
AgentName = Annotated[
    str,
    Field(
        description="Which agent to talk to, when the server has several (see its "
        "instructions); default: the default agent",
        max_length=40,
        json_schema_extra=AGENT_HEADER,
    ),
]
Environment = Annotated[
    str | None,
    Field(
        description="Agent environment: development (default), production, staging, an alias "
        "or a version id",
        max_length=64,
        pattern=ENVIRONMENT_PATTERN,
    ),
]
Variables = Annotated[
    dict[str, Any] | None,
    Field(description="Variables to merge into the agent's state before this turn"),
]
TurnVerbosity = Annotated[
    Verbosity,
    Field(
        description="minimal: messages, choices, status; standard: also custom actions, "
        "variable changes and unshown traces; debug: also the raw traces and the runtime's "
        "own variables"
    ),
]


def reads(title: str, *, open_world: bool = True) -> ToolAnnotations:
    """A tool that changes nothing."""
    return ToolAnnotations(title=title, read_only_hint=True, open_world_hint=open_world)


def writes(
    title: str, *, destructive: bool = False, idempotent: bool = False, open_world: bool = True
) -> ToolAnnotations:
    """A tool that changes the conversation on the runtime (or, not open-world, only what the
    server keeps)."""
    return ToolAnnotations(
        title=title,
        read_only_hint=False,
        destructive_hint=destructive,
        idempotent_hint=idempotent,
        open_world_hint=open_world,
    )


SuiteScript = Annotated[
    str,
    Field(
        description="A test suite as YAML or JSON text (vf-mcp or voiceflow-cli format), or the "
        "name of a suite file in the server's tests directory (VF_MCP_TESTS_DIR)",
        max_length=200_000,
    ),
]
TestedAgent = Annotated[
    str,
    Field(
        description="Which agent to test (default agent if left out)",
        json_schema_extra=AGENT_HEADER,
    ),
]
