"""Evaluation of Voiceflow agents: scripts, voiceflow-cli imports, judge, reports, record/replay.

One responsibility per module: `transcript` (the canonical record and its JSON Schema), `script`
(the suite format), `loader` and `voiceflow_cli` (reading suites), `checks`, `turns`, `judge`,
`simulator` and `runner` (running them), `recording` (record/replay), `render`, `reports` and
`exports` (output), `live` (transcripts of live conversations), `prompts`, `api` and `cli`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Names load their module on first use (PEP 562): the MCP server imports this package at start,
# and a cold start should not pay for the suite loader, the judge and the reports.
_EXPORTS = {
    "judge_from_env": "api",
    "run_conversation": "api",
    "ServiceFactory": "connection",
    "ChatModel": "judge",
    "JudgeSettings": "judge",
    "OpenAIChatClient": "judge",
    "TranscriptBook": "live",
    "load_path": "loader",
    "load_script": "loader",
    "ProgressEvent": "runner",
    "run_suite": "runner",
    "run_suites": "runner",
    "Suite": "script",
    "RunResult": "transcript",
    "SuiteResult": "transcript",
    "Transcript": "transcript",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


if TYPE_CHECKING:
    from vf_mcp.evaluation.api import judge_from_env, run_conversation
    from vf_mcp.evaluation.connection import ServiceFactory
    from vf_mcp.evaluation.judge import ChatModel, JudgeSettings, OpenAIChatClient
    from vf_mcp.evaluation.loader import load_path, load_script
    from vf_mcp.evaluation.runner import ProgressEvent, run_suite, run_suites
    from vf_mcp.evaluation.script import Suite
    from vf_mcp.transcripts.book import TranscriptBook
    from vf_mcp.transcripts.models import RunResult, SuiteResult, Transcript

__all__ = [
    "ChatModel",
    "JudgeSettings",
    "OpenAIChatClient",
    "ProgressEvent",
    "RunResult",
    "ServiceFactory",
    "Suite",
    "SuiteResult",
    "Transcript",
    "TranscriptBook",
    "judge_from_env",
    "load_path",
    "load_script",
    "run_conversation",
    "run_suite",
    "run_suites",
]
