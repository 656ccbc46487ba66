"""`vf-mcp eval PATH...`: run suites against the configured agent and write the reports.

Reads the agent's settings like the server (`VOICEFLOW_*`) and the judge's (`VF_MCP_JUDGE_*`).
Exit status: 0 when every test passed (ungraded judged criteria count as passed only with
--allow-ungraded), 1 on any failure, error, skipped test or unreadable suite, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

import anyio
from pydantic import SecretStr

from vf_mcp.config import Settings
from vf_mcp.errors import ConfigurationError, ScriptError
from vf_mcp.evaluation.connection import ServiceFactory
from vf_mcp.evaluation.judge import ChatModel, JudgeSettings, OpenAIChatClient
from vf_mcp.evaluation.loader import load_path
from vf_mcp.evaluation.recording import Recorder, Replayer
from vf_mcp.evaluation.reports import json_report, junit_xml, markdown_report
from vf_mcp.evaluation.runner import DEFAULT_CONCURRENCY, ProgressEvent, run_suites
from vf_mcp.evaluation.script import Suite
from vf_mcp.retry import RetryPolicy
from vf_mcp.transcripts.models import RunResult

REPLAY_PLACEHOLDER_KEY = "VF.DM.000000000000000000000000.replay"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vf-mcp eval",
        description="Run conversation suites (vf-mcp or voiceflow-cli format) against the agent.",
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="suite file or dir")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help=f"tests run at once (default {DEFAULT_CONCURRENCY})",
    )
    parser.add_argument("--junit", type=Path, metavar="FILE", help="write a JUnit XML report")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the transcripts as JSON")
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="write a Markdown report")
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument(
        "--record", type=Path, metavar="DIR", help="record runtime and judge replies"
    )
    modes.add_argument("--replay", type=Path, metavar="DIR", help="answer from a recording")
    parser.add_argument(
        "--allow-ungraded",
        action="store_true",
        help="judged criteria left ungraded (no judge configured) do not fail the run",
    )
    return parser


def main(argv: list[str], environ: Mapping[str, str]) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    if args.concurrency < 1:
        parser.print_usage(sys.stderr)
        print("vf-mcp eval: --concurrency must be at least 1", file=sys.stderr)
        return 2
    try:
        suites = [suite for path in args.paths for suite in load_path(path)]
        settings = Settings.from_env(environ)
        judge_settings = JudgeSettings.from_settings(settings)
        if args.replay is not None:
            replayer = Replayer(args.replay)
            if settings.api_key is None:
                # The key is never sent anywhere in a replay; the client only needs one to exist.
                settings = settings.model_copy(
                    update={"api_key": SecretStr(REPLAY_PLACEHOLDER_KEY)}
                )
        else:
            replayer = None
            settings.require_api_key()
    except (ScriptError, ConfigurationError, FileNotFoundError) as exc:
        print(f"vf-mcp eval: {exc}", file=sys.stderr)
        return 1
    for suite in suites:
        for warning in suite.warnings:
            print(f"warning: {warning}", file=sys.stderr)

    recorder = Recorder(args.record) if args.record is not None else None
    run = anyio.run(_run, suites, settings, judge_settings, recorder, replayer, args.concurrency)
    if recorder is not None:
        recorder.save()
    _write(args.junit, junit_xml(run, allow_ungraded=args.allow_ungraded))
    _write(args.json, json_report(run))
    _write(args.markdown, markdown_report(run, allow_ungraded=args.allow_ungraded))
    for line in failure_lines(run, allow_ungraded=args.allow_ungraded):
        print(line)
    print(summary_line(run))
    return 0 if run.succeeded(allow_ungraded=args.allow_ungraded) else 1


def failure_lines(run: RunResult, *, allow_ungraded: bool) -> list[str]:
    """Why the run did not pass, one line per test, so a terminal says it without a report."""
    lines = []
    for test in run.transcripts:
        if test.outcome in ("failed", "error"):
            check = test.first_failure()
            why = f"{check.label}: {check.evidence}" if check else (test.error or "see the report")
            lines.append(f"{test.outcome.upper()} {test.suite} / {test.name}: {why[:300]}")
    ungraded = sum(1 for t in run.transcripts if t.outcome == "to_grade")
    if ungraded and not allow_ungraded:
        lines.append(
            f"{ungraded} test(s) need a judge model: set VF_MCP_JUDGE_URL and VF_MCP_JUDGE_MODEL "
            "(and VF_MCP_JUDGE_API_KEY), or pass --allow-ungraded to accept them ungraded"
        )
    return lines


def summary_line(run: RunResult) -> str:
    tests = run.transcripts
    parts = [
        f"{sum(1 for t in tests if t.outcome == o)} {label}"
        for o, label in (
            ("passed", "passed"),
            ("failed", "failed"),
            ("error", "errors"),
            ("to_grade", "to grade"),
            ("skipped", "skipped"),
        )
    ]
    return "vf-mcp eval: " + ", ".join(parts)


def _write(path: Path | None, text: str) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


async def _run(
    suites: list[Suite],
    settings: Settings,
    judge_settings: JudgeSettings | None,
    recorder: Recorder | None,
    replayer: Replayer | None,
    concurrency: int,
) -> RunResult:
    if replayer is not None:
        factory = ServiceFactory(settings, transport=replayer.transport())
        return await _with_progress(suites, factory, replayer.chat(), concurrency)
    transport = recorder.transport() if recorder is not None else None
    factory = ServiceFactory(settings, transport=transport)
    if judge_settings is None:
        return await _with_progress(suites, factory, None, concurrency)
    policy = RetryPolicy(max_retries=settings.max_retries, deadline=settings.retry_deadline)
    async with OpenAIChatClient(judge_settings, retry=policy) as client:
        judge: ChatModel = recorder.chat(client) if recorder is not None else client
        return await _with_progress(suites, factory, judge, concurrency)


async def _with_progress(
    suites: list[Suite],
    factory: ServiceFactory,
    judge: ChatModel | None,
    concurrency: int,
    stream: TextIO | None = None,
) -> RunResult:
    out = stream or sys.stderr
    total = sum(len(s.tests) for s in suites)
    if not out.isatty():

        async def plain(event: ProgressEvent) -> None:
            print(event.text, file=out, flush=True)

        return await run_suites(
            suites, factory, judge=judge, concurrency=concurrency, on_progress=plain
        )

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.text import Text

    console = Console(file=out)
    with Progress(
        TextColumn("[bold]eval[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task("", total=total)

        async def fancy(event: ProgressEvent) -> None:
            if event.kind == "turn_finished":
                progress.update(task, description=event.text.strip()[:60])
            elif event.kind == "test_finished":
                progress.advance(task)
                colour = "green" if event.outcome == "passed" else "red"
                progress.console.print(Text(event.text, style=colour))

        return await run_suites(
            suites, factory, judge=judge, concurrency=concurrency, on_progress=fancy
        )
