"""`vf-mcp eval --regrade RUN.json [--suite NEW.yaml]`: new or changed checks on a finished run.

The run is the JSON `--json` wrote: its transcripts hold every turn as the agent answered it, so the
checks of the suites (the ones given, else the files the run names) are applied to those turns
again, and no request goes to the runtime. Budgets are checked again too: latency on the recorded
latencies, judge tokens on what the run spent plus what the regrade's new judge calls spent. Judged
criteria go to the judge (`VF_MCP_JUDGE_*`) only when new or changed: a criterion the run already
graded on the same turn keeps its verdict (its threshold is applied again), so an unchanged
criterion cannot flip on a second opinion. A simulated conversation keeps its goal's verdict; its
conversation checks are applied again.

Tests match by suite name and test id; a scripted transcript must match its test turn by turn
(the same kind of input, the same message): a suite whose tests are not the run's is refused
before anything is graded. What changed is said one line per test and per check, and is in the
JSON (`--json`: a `vf-mcp/regrade/v1` document with the changes and the regraded run).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Literal

import anyio
from pydantic import BaseModel, Field

from vf_mcp.arguments import OneLineParser
from vf_mcp.config import Settings
from vf_mcp.domain.transcript import (
    CheckResult,
    JudgeUsage,
    RunResult,
    Transcript,
    decide_outcome,
)
from vf_mcp.errors import ConfigurationError, ScriptError, VfMcpError
from vf_mcp.evaluation import budgets
from vf_mcp.evaluation.baseline import REGRADE_SCHEMA, load_run_report
from vf_mcp.evaluation.connection import ServiceFactory
from vf_mcp.evaluation.html_report import html_report
from vf_mcp.evaluation.judge import ChatModel, JudgeSettings, OpenAIChatClient
from vf_mcp.evaluation.loader import load_path
from vf_mcp.evaluation.reports import junit_xml, markdown_report, outcome_counts, write_whole
from vf_mcp.evaluation.script import JudgeCheck, ScriptTest, Suite
from vf_mcp.evaluation.testrun import TestRun, judged_result
from vf_mcp.evaluation.trials import TurnBudget, counted, summarize
from vf_mcp.retry import RetryPolicy
from vf_mcp.transcripts.render import describe_user

ABSENT = "absent"
_RUNNER_CHECKS = frozenset({"custom_action"})  # made by the runner, not written in a suite


class VerdictChange(BaseModel):
    """One verdict the regrade changed: a test's outcome (`check` None) or one check's."""

    suite: str
    test: str
    trial: int | None = None
    turn: int | None = Field(default=None, description="None: the test, or a whole-test check")
    check: str | None = Field(default=None, description="The check's label; None: the test")
    before: str = Field(description=f"The outcome in the run, or {ABSENT!r} for a new check")
    after: str = Field(description=f"The outcome now, or {ABSENT!r} for a check removed")

    def line(self) -> str:
        where = f"{self.suite} / {self.test}"
        if self.trial is not None:
            where += f" (trial {self.trial})"
        if self.turn is not None:
            where += f" · turn {self.turn}"
        if self.check is not None:
            where += f" · {self.check}"
        kind = "test" if self.check is None else "check"
        return f"CHANGED {kind} {where}: {self.before} → {self.after}"


class RegradeReport(BaseModel):
    """What `--regrade ... --json FILE` writes."""

    schema_version: Literal["vf-mcp/regrade/v1"] = REGRADE_SCHEMA
    source: str = Field(description="The run that was regraded")
    changes: list[VerdictChange] = Field(default_factory=list)
    run: RunResult


def build_parser() -> OneLineParser:
    parser = OneLineParser(
        prog="vf-mcp eval --regrade",
        description="Apply the suites' checks to the transcripts of a finished run, with no "
        "runtime call, and say which verdicts changed.",
    )
    parser.add_argument("--regrade", type=Path, required=True, metavar="RUN.json")
    parser.add_argument(
        "--suite",
        type=Path,
        action="append",
        default=[],
        metavar="NEW.yaml",
        help="the suites as they are now, repeatable (default: the files the run names)",
    )
    parser.add_argument("paths", nargs="*", type=Path, metavar="PATH", help="same as --suite")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the changes and the run")
    parser.add_argument("--junit", type=Path, metavar="FILE", help="write a JUnit XML report")
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="write a Markdown report")
    parser.add_argument("--html", type=Path, metavar="FILE", help="write an HTML report")
    parser.add_argument("--allow-ungraded", action="store_true", help="as for a run")
    return parser


def main(argv: list[str], environ: Mapping[str, str]) -> int:
    """Exit 0 when the regraded run passes, 1 when it does not, 2 on bad input (nothing written)."""
    args = build_parser().parse_or_exit_code(argv)
    if isinstance(args, int):
        return args
    try:
        _refuse_overwriting(args)
        run = load_run(args.regrade)
        suites = _suites(run, [*args.suite, *args.paths])
        if (problem := match_problem(run, suites)) is not None:
            raise ScriptError(problem)
        settings = Settings.from_env(environ)
        regraded = anyio.run(_regrade_with_judge, run, suites, settings)
    except (ConfigurationError, ScriptError) as exc:
        print(f"vf-mcp eval --regrade: {exc}", file=sys.stderr)
        return 2
    for warning in new_warnings(run, regraded):
        print(f"warning: {warning}", file=sys.stderr)
    changes = verdict_changes(run, regraded)
    for change in changes:
        print(change.line())
    counts = ", ".join(outcome_counts(regraded))
    print(f"vf-mcp eval --regrade: {counted(len(changes), 'verdict')} changed; now {counts}")
    report = RegradeReport(source=str(args.regrade), changes=changes, run=regraded)
    try:
        _write_reports(args, report)
    except OSError as exc:
        print(
            f"vf-mcp eval --regrade: cannot write {exc.filename or 'a report'} "
            f"({exc.strerror or exc}); choose another path",
            file=sys.stderr,
        )
        return 2
    return 0 if regraded.succeeded(allow_ungraded=args.allow_ungraded) else 1


def _refuse_overwriting(args: argparse.Namespace) -> None:
    source = args.regrade.resolve()
    for flag in ("json", "junit", "markdown", "html"):
        out: Path | None = getattr(args, flag)
        if out is not None and out.resolve() == source:
            raise ConfigurationError(
                f"--{flag} would overwrite the run it regrades ({args.regrade}); write the "
                "regrade to another file"
            )


def load_run(path: Path) -> RunResult:
    """The finished run to re-grade, refused in one line when the file is not one."""
    return load_run_report(path, "--regrade")


def _suites(run: RunResult, paths: Sequence[Path]) -> list[Suite]:
    """The suites given, else those the run names by file."""
    if not paths:
        for result in run.suites:
            if result.source is None or not Path(result.source).is_file():
                raise ScriptError(
                    f"the run's suite {result.name!r} came from {result.source or 'no file'}, "
                    "which is not here; give the suite with --suite FILE"
                )
        paths = list(dict.fromkeys(Path(r.source or "") for r in run.suites))
    suites: list[Suite] = []
    for path in paths:
        try:
            suites += load_path(path)
        except OSError as exc:
            raise ScriptError(f"{exc.filename or path}: cannot be read ({exc.strerror})") from None
    return suites


def match_problem(run: RunResult, suites: Sequence[Suite]) -> str | None:
    """Why these suites are not the run's (a suite, a test or a turn the run has and they do
    not), in one line, or None."""
    by_name = {s.name: s for s in suites}
    for result in run.suites:
        suite = by_name.get(result.name)
        if suite is None:
            names = ", ".join(repr(n) for n in by_name) or "none"
            return (
                f"the run has suite {result.name!r} and the suites given are {names}: give "
                "the run's suite (its tests may change, its name may not)"
            )
        tests = {t.id: t for t in suite.tests}
        for transcript in result.tests:
            test = tests.get(transcript.test_id)
            if test is None:
                return (
                    f"the run's test {result.name} / {transcript.test_id} is not in "
                    f"{suite.source}: regrade with a suite that still has it"
                )
            if (problem := _turns_problem(test, transcript)) is not None:
                return f"test {result.name} / {transcript.test_id}: {problem}"
    return None


def _turns_problem(test: ScriptTest, transcript: Transcript) -> str | None:
    if (transcript.kind == "simulated") != (test.simulate is not None):
        return f"the run's test is {transcript.kind} and the suite's is not: they are not the same"
    if transcript.kind == "simulated":
        return None
    if len(transcript.turns) > len(test.turns):
        return f"the run has {len(transcript.turns)} turns and the suite's test {len(test.turns)}"
    for turn, step in zip(transcript.turns, test.turns, strict=False):
        written = step.user_action(None)
        same = written.kind == turn.user.kind and (
            written.kind not in ("message", "event") or written.text == turn.user.text
        )
        if not same:
            return (
                f"turn {turn.index} {describe_user(turn.user)} in the run, and "
                f"{describe_user(written)} in the suite: the turns must be the run's"
            )
    return None


async def _regrade_with_judge(run: RunResult, suites: list[Suite], settings: Settings) -> RunResult:
    judge_settings = JudgeSettings.from_settings(settings)
    if judge_settings is None:
        return await regrade(run, suites, None, settings)
    policy = RetryPolicy(max_retries=settings.max_retries, deadline=settings.retry_deadline)
    async with OpenAIChatClient(judge_settings, retry=policy) as judge:
        return await regrade(run, suites, judge, settings)


async def regrade(
    run: RunResult, suites: Sequence[Suite], judge: ChatModel | None, settings: Settings
) -> RunResult:
    """The run with the suites' checks applied again to its transcripts; no runtime call."""
    by_name = {s.name: s for s in suites}
    results = []
    for result in run.suites:
        host = _Host(by_name[result.name], judge, settings)
        tests = {t.id: t for t in host.suite.tests}
        regraded = [await _Regrade(host, tests[t.test_id], t).transcript() for t in result.tests]
        trials = [
            summarize(s.test_id, [t for t in regraded if t.test_id == s.test_id])
            for s in result.trials
        ]
        update = {
            "tests": regraded,
            "trials": trials,
            "checks": budgets.suite_checks(host.suite, regraded),
            "judge_usage": JudgeUsage.total(t.judge_usage for t in regraded),
        }
        results.append(result.model_copy(update=update))
    usage = JudgeUsage.total(s.judge_usage for s in results)
    return run.model_copy(update={"suites": results, "judge_usage": usage})


class _Host:
    """What a test's checks need of a run: its suite and the judge. The factory is never opened
    (nothing here talks to the runtime)."""

    def __init__(self, suite: Suite, judge: ChatModel | None, settings: Settings) -> None:
        self.suite = suite
        self.judge = judge
        self.factory = ServiceFactory(settings)
        self.budget = TurnBudget(None)
        self.trajectory = suite.needs_trajectory

    async def emit(self, kind: str, text: str, **fields: object) -> None:
        return None


class _Regrade(TestRun):
    """One transcript graded again with its test's checks as they are now."""

    def __init__(self, host: _Host, test: ScriptTest, before: Transcript) -> None:
        super().__init__(host, test, before.user_id, trial=before.trial)
        self.before = before

    async def transcript(self) -> Transcript:
        before = self.before
        if before.outcome == "skipped":
            return before  # nothing ran, or the cap cut it: nothing to grade
        after = before.model_copy(deep=True)
        try:
            await self._grade(after)
        except VfMcpError as exc:  # the judge failed, or answered unusably
            after.error = f"judge: {exc.message}"
        after.outcome = decide_outcome(after)
        if after.outcome not in ("failed", "error") and (unrun := self._never_ran()) is not None:
            # The run stopped before these turns: nothing says they would pass.
            after.error = unrun
            after.warnings.append(unrun)
            after.outcome = decide_outcome(after)
        return after

    def _never_ran(self) -> str | None:
        ran, written = len(self.before.turns), len(self.test.turns)
        if self.before.kind == "simulated" or ran >= written:
            return None
        turns = f"turn {written}" if ran + 1 == written else f"turns {ran + 1}-{written}"
        return f"{turns} never ran, so the test cannot pass on a regrade; run the test again"

    async def _grade(self, after: Transcript) -> None:
        if after.kind == "simulated":
            self.turns = after.turns
            kept = [c for c in after.checks if c.kind == "goal"]
        else:
            for turn, step in zip(after.turns, self.test.turns, strict=False):
                self.turns.append(turn)
                if turn.error is None:
                    made = [c for c in turn.checks if c.kind in _RUNNER_CHECKS]
                    turn.checks = await self.turn_checks(step.expect, turn) + made
            kept = []
        failed = after.error is not None or any(t.error for t in after.turns)
        after.checks = kept + ([] if failed else await self.conversation_checks())
        # The run's tokens reached the verdicts kept; the new criteria's are added to them.
        new = self.judge.usage if self.judge is not None else None
        self.spent(after, JudgeUsage.total([self.before.judge_usage, new]))

    async def judged(
        self, check: JudgeCheck, conversation: str, focus: int | None, role: str
    ) -> CheckResult:
        # The same criterion on the same turn keeps the run's verdict: only new ones are judged.
        if focus is None:
            graded = self.before.checks
        else:
            graded = self.before.turns[focus - 1].checks if focus <= len(self.before.turns) else []
        for prior in graded:
            if prior.kind == "judge" and prior.expected == check.criterion and prior.verdict:
                return judged_result(check, prior.verdict)
        return await super().judged(check, conversation, focus, role)


def new_warnings(before: RunResult, after: RunResult) -> list[str]:
    """The regrade's own warnings, each named by its test."""
    seen = {(t.suite, t.key): set(t.warnings) for t in before.transcripts}
    return [
        f"{t.suite} / {t.test_id}: {w}"
        for t in after.transcripts
        for w in t.warnings
        if w not in seen.get((t.suite, t.key), set())
    ]


def verdict_changes(before: RunResult, after: RunResult) -> list[VerdictChange]:
    """Every test and check whose outcome differs, in the run's order."""
    changes: list[VerdictChange] = []
    after_by_key = {(t.suite, t.key): t for t in after.transcripts}
    for old in before.transcripts:
        new = after_by_key[(old.suite, old.key)]
        pairs = [(None, old.checks, new.checks)] + [
            (o.index, o.checks, n.checks) for o, n in zip(old.turns, new.turns, strict=True)
        ]
        for turn, old_checks, new_checks in pairs:
            changes += [
                _change(old, was, now, turn=turn, check=label)
                for label, was, now in _by_label(old_checks, new_checks)
                if was != now
            ]
        if old.outcome != new.outcome:
            changes.append(_change(old, old.outcome, new.outcome))
    return changes


def _change(
    test: Transcript, before: str, after: str, *, turn: int | None = None, check: str | None = None
) -> VerdictChange:
    return VerdictChange(
        suite=test.suite,
        test=test.test_id,
        trial=test.trial,
        turn=turn,
        check=check,
        before=before,
        after=after,
    )


def _by_label(old: list[CheckResult], new: list[CheckResult]) -> list[tuple[str, str, str]]:
    """(label, outcome before, outcome after), checks paired by `id`, else as the n-th check of
    their kind in the turn: a check whose value changed is one line, named as it is now."""
    before, after = _keyed(old), _keyed(new)
    paired = []
    for key in dict.fromkeys([*before, *after]):
        was, now = before.get(key), after.get(key)
        label = now.label if now is not None else was.label if was is not None else ""
        if was is not None and now is not None and was.label != now.label:
            label = f"{now.label} (was {was.label})"
        paired.append((label, was.outcome if was else ABSENT, now.outcome if now else ABSENT))
    return paired


def _keyed(checks: list[CheckResult]) -> dict[tuple[str, str | int], CheckResult]:
    keyed: dict[tuple[str, str | int], CheckResult] = {}
    seen: dict[str, int] = {}
    for check in checks:
        if check.id is not None:
            keyed[("id", check.id)] = check
            continue
        seen[check.kind] = seen.get(check.kind, -1) + 1
        keyed[(check.kind, seen[check.kind])] = check
    return keyed


def _write_reports(args: argparse.Namespace, report: RegradeReport) -> None:
    run, ungraded = report.run, args.allow_ungraded
    outputs = {
        args.json: report.model_dump_json(indent=2) + "\n",
        args.junit: junit_xml(run, allow_ungraded=ungraded),
        args.markdown: markdown_report(run, allow_ungraded=ungraded),
        args.html: html_report(run, allow_ungraded=ungraded) if args.html else "",
    }
    for path, text in outputs.items():
        if path is not None:
            write_whole(path, text)


__all__ = ["RegradeReport", "VerdictChange", "load_run", "main", "regrade", "verdict_changes"]
