"""`vf-mcp eval PATH...`: run suites against the configured agent and write the reports.

`vf-mcp eval fork ...` (`fork`) and `vf-mcp eval --regrade RUN.json` (`regrade`) are handed on.
Reads the agent's settings like the server (`VOICEFLOW_*`) and the judge's (`VF_MCP_JUDGE_*`).
Exit status: 0 when every test passed (ungraded judged criteria count as passed only with
--allow-ungraded), 1 on any failure, error or skipped test, 2 on bad arguments, suites or
configuration, all found before anything runs (a suite file missing, empty or broken, no API
key, `--repeat` out of range, a baseline that is not one of these suites, a recording without
these suites, a simulated user and no judge to play it, a `from_state` that is not a whole state
or was saved by another agent), or a report that cannot be written;
2 too when the baseline environment's run erred in every test (no report then);
3 when a test or check regressed against the baseline (`--compare`, `--baseline-environment`);
130 when Ctrl-C stopped the run (the reports asked for still hold the tests that finished).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import anyio
from pydantic import SecretStr

from vf_mcp.arguments import OneLineParser
from vf_mcp.config import ENV_JUDGE_API_KEY, ENV_JUDGE_MODEL, ENV_JUDGE_URL, Settings
from vf_mcp.domain.transcript import RunResult
from vf_mcp.errors import (
    AuthenticationError,
    ConfigurationError,
    NotFoundError,
    ScriptError,
    VfMcpError,
)
from vf_mcp.evaluation import fork, regrade
from vf_mcp.evaluation.agreement import read_labels, with_labels, with_voiceflow
from vf_mcp.evaluation.baseline import Comparison, compare, load_baseline, one_line
from vf_mcp.evaluation.connection import ServiceFactory
from vf_mcp.evaluation.export_targets import ExportTarget, export_target
from vf_mcp.evaluation.html_report import html_report
from vf_mcp.evaluation.judge import ChatModel, JudgeSettings, OpenAIChatClient
from vf_mcp.evaluation.loader import load_path
from vf_mcp.evaluation.recording import Recorder, Replayer
from vf_mcp.evaluation.reports import (
    first_problem,
    json_report,
    junit_xml,
    markdown_report,
    outcome_counts,
    run_size,
    suite_warnings,
)
from vf_mcp.evaluation.runner import (
    DEFAULT_CONCURRENCY,
    FinishedSoFar,
    ProgressEvent,
    RunOptions,
    run_suites,
)
from vf_mcp.evaluation.script import MAX_REPEAT, Suite
from vf_mcp.evaluation.startstate import check_start_states
from vf_mcp.evaluation.trials import DEFAULT_MAX_TURNS, counted, trial_lines
from vf_mcp.evaluation.write_back import WriteBackStopped, plan_write_back, write_back
from vf_mcp.retry import RetryPolicy
from vf_mcp.telemetry import configure_from_env
from vf_mcp.voiceflow.analytics import AnalyticsClient

REGRADE_HELP = (
    "apply the suites' checks (--suite NEW.yaml, else the run's) to a finished run's "
    "transcripts, with no runtime call, and say which verdicts changed"
)
REPLAY_PLACEHOLDER_KEY = "VF.DM.000000000000000000000000.replay"
EXIT_REGRESSION = 3
EXIT_INTERRUPTED = 130  # what a shell reports for a command stopped by Ctrl-C (128 + SIGINT)
INTERRUPTED = (
    "interrupted (Ctrl-C): the reports hold the tests that finished; run again for the rest"
)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="vf-mcp eval",
        description="Run conversation suites (vf-mcp or voiceflow-cli format) against the agent. "
        "`vf-mcp eval fork RECORDING --at K --out FILE` writes a test that starts at a recorded "
        "turn (see `vf-mcp eval fork --help`); `vf-mcp eval import --help`: write suites from "
        "Voiceflow transcripts.",
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="suite file or dir")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help=f"tests run at once (default {DEFAULT_CONCURRENCY})",
    )
    _add_output_options(parser)
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument(
        "--record", type=Path, metavar="DIR", help="record runtime and judge replies"
    )
    modes.add_argument("--replay", type=Path, metavar="DIR", help="answer from a recording")
    _add_regrade_options(parser)
    parser.add_argument(
        "--allow-ungraded",
        action="store_true",
        help="judged criteria left ungraded (no judge configured) do not fail the run",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        metavar="N",
        help=f"run every test N times (1-{MAX_REPEAT}; a test's own `repeat` wins) and report "
        "pass rates, pass^k and flaky tests",
    )
    parser.add_argument(
        "--max-turns",
        type=int,
        default=DEFAULT_MAX_TURNS,
        metavar="N",
        help=f"stop the run after N requests to the agent (default {DEFAULT_MAX_TURNS})",
    )
    _add_production_options(parser)
    baselines = parser.add_mutually_exclusive_group()
    baselines.add_argument(
        "--compare",
        type=Path,
        metavar="BASELINE.json",
        help="compare with a report --json wrote; exit 3 on a regression",
    )
    baselines.add_argument(
        "--baseline-environment",
        metavar="ENV",
        help="run the suites on ENV first and compare this run with it; exit 3 on a regression",
    )
    return parser


def _add_regrade_options(parser: argparse.ArgumentParser) -> None:
    """Read before this parser runs (`regrade.main` has its own); listed here for --help."""
    parser.add_argument("--regrade", type=Path, metavar="RUN.json", help=REGRADE_HELP)
    parser.add_argument(
        "--suite",
        type=Path,
        action="append",
        metavar="NEW.yaml",
        help="with --regrade: the suites as they are now, repeatable (default: the files the run "
        "names)",
    )


def _add_production_options(parser: argparse.ArgumentParser) -> None:
    """What goes back to Voiceflow, and who the judge is compared with (`vf-mcp eval import`)."""
    parser.add_argument(
        "--write-back",
        action="store_true",
        help="set the verdicts on imported conversations as Voiceflow transcript properties",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="with --write-back: print what it would set"
    )
    parser.add_argument(
        "--labels",
        type=Path,
        metavar="FILE.csv",
        help="people's labels (transcript_id,criterion,label): report the judge's agreement",
    )


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    """Where the run is written besides the terminal: reports, and exports for other tools."""
    parser.add_argument("--junit", type=Path, metavar="FILE", help="write a JUnit XML report")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the transcripts as JSON")
    parser.add_argument("--markdown", type=Path, metavar="FILE", help="write a Markdown report")
    parser.add_argument(
        "--html", type=Path, metavar="FILE", help="write a self-contained HTML report (chats)"
    )
    parser.add_argument(
        "--export",
        type=export_target,
        action="append",
        default=[],
        metavar="FORMAT=PATH",
        help="also write the run for another tool, repeatable: promptfoo=FILE (promptfoo eval "
        "-c FILE), deepeval=FILE (ConversationalTestCase JSON), voiceflow-cli=DIR "
        "(voiceflow test execute DIR)",
    )


def argument_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the arguments themselves, in one line, or None."""
    if args.concurrency < 1:
        return "--concurrency must be at least 1"
    if args.max_turns < 1:
        return "--max-turns must be at least 1"
    if args.repeat is not None and not 1 <= args.repeat <= MAX_REPEAT:
        return f"--repeat must be between 1 and {MAX_REPEAT}, got {args.repeat}"
    for flag in ("junit", "json", "markdown", "html"):
        path = getattr(args, flag)
        if path is not None and path.is_dir():
            return f"--{flag} {path} is a folder; give the file to write, e.g. {path / 'report'}"
    targets: list[ExportTarget] = args.export
    for target in targets:
        if (problem := target.problem()) is not None:
            return problem
    if args.suite:
        return "--suite goes with --regrade (a run takes its suites as PATH)"
    if args.dry_run and not args.write_back:
        return "--dry-run goes with --write-back (it prints what --write-back would set)"
    if args.record is not None and args.record.exists() and not args.record.is_dir():
        return f"--record {args.record} is a file; give the folder to write the recording in"
    return None


def run_problem(args: argparse.Namespace, suites: list[Suite]) -> str | None:
    """A run that cannot finish under its cap: more trials of one test than turns allowed."""
    repeats = [(args.repeat or 1, "--repeat")] + [
        (t.repeat, f"test {s.name} / {t.id}'s repeat") for s in suites for t in s.tests if t.repeat
    ]
    count, where = max(repeats, key=lambda item: item[0])
    if count > args.max_turns:
        return (
            f"{where} is {count}, above the run's cap of {args.max_turns} turns (--max-turns): "
            "every trial takes at least one turn, so raise --max-turns or lower the repeat"
        )
    return None


def judge_problem(suites: list[Suite], *, judged: bool, replay: Path | None) -> str | None:
    """A simulated user that the judge model plays, in a run without one: that test cannot even
    start (no message to send), so the run is refused rather than failing on checks of nothing."""
    played = [
        f"{s.name} / {t.id}"
        for s in suites
        for t in s.tests
        if t.simulate is not None and t.simulate.tester is None
    ]
    if judged or not played:
        return None
    more = f" (and {len(played) - 1} more)" if len(played) > 1 else ""
    if replay is not None:
        return (
            f"test {played[0]}{more} has a simulated user, played by the judge model, and the "
            f"recording in {replay} has no judge replies: record it with a judge configured"
        )
    return (
        f"test {played[0]}{more} has a simulated user, played by the judge model, and no judge "
        f"is configured: set {ENV_JUDGE_URL} and {ENV_JUDGE_MODEL} (and {ENV_JUDGE_API_KEY})"
    )


def production_problem(
    args: argparse.Namespace, suites: list[Suite], *, judged: bool
) -> str | None:
    """`--labels` with nobody to grade, or `--write-back` with nothing imported: either would run
    the whole suite only to say at the end that it had nothing to do."""
    if args.labels is not None and not judged:
        return (
            f"--labels {args.labels}: agreement is the judge's with people, and no judge is "
            f"configured: set {ENV_JUDGE_URL} and {ENV_JUDGE_MODEL} (and {ENV_JUDGE_API_KEY})"
        )
    if args.write_back and not any(t.imported_from for s in suites for t in s.tests):
        return (
            "--write-back sets verdicts on conversations imported from Voiceflow, and no test in "
            "these suites was imported; write suites with `vf-mcp eval import` first"
        )
    return None


def replay_problem(replayer: Replayer | None, suites: list[Suite]) -> str | None:
    """A recording that holds nothing of a suite: its every request would fail as unrecorded."""
    if replayer is None:
        return None
    missing = replayer.unrecorded(dict.fromkeys(s.name for s in suites))
    if not missing:
        return None
    more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
    return (
        f"--replay {replayer.root}: no recording of suite {missing[0]!r}{more} (nothing in "
        f"{replayer.folder(missing[0])}/); record it first with --record {replayer.root}"
    )


def replay_warnings(replayer: Replayer | None, suites: list[Suite]) -> list[str]:
    """Tests of a recorded suite that the recording lacks: they fail when they run (a run that
    stopped early while recording leaves the same tests out, so this does not refuse)."""
    if replayer is None:
        return []
    keys = {(suite, test) for suite, test in replayer.cassettes}
    return [
        f"--replay {replayer.root} has no recording of {s.name} / {t.id} "
        f"({replayer.path(s.name, t.id)}): it fails if it runs; record again with "
        f"--record {replayer.root}"
        for s in suites
        for t in s.tests
        if not any(su == s.name and (k == t.id or k.startswith(f"{t.id}#")) for su, k in keys)
    ]


def load_suites(paths: list[Path]) -> list[Suite]:
    """Every suite at `paths`; a file that cannot be read is a `ScriptError` naming it."""
    suites: list[Suite] = []
    for path in paths:
        try:
            suites += load_path(path)
        except OSError as exc:
            where = exc.filename or path
            raise ScriptError(f"{where}: cannot be read ({exc.strerror or exc})") from None
    return suites


def _other_command(argv: list[str], environ: Mapping[str, str]) -> int | None:
    """The exit status of `import`, `fork` or `--regrade`, which own their options; None for a
    run."""
    if argv[:1] == ["import"]:
        from vf_mcp.evaluation.import_cli import main as import_main

        return import_main(argv[1:], environ)
    if argv[:1] == ["fork"]:
        return fork.main(argv[1:])
    if any(a == "--regrade" or a.startswith("--regrade=") for a in argv):
        return regrade.main(argv, environ)
    return None


def main(argv: list[str], environ: Mapping[str, str]) -> int:
    """Exit 0 when everything passed, 1 on a failed test, 2 on bad arguments, suites or
    configuration (found before anything runs), 3 on a regression."""
    if (handed := _other_command(argv, environ)) is not None:
        return handed
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if (problem := argument_problem(args)) is not None:
            parser.error(problem)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    try:
        job, baseline = _prepare(args, environ)
        labels = read_labels(args.labels) if args.labels is not None else None
        # A test's saved state is read, and checked against the agent, before anything runs.
        probe = ServiceFactory(job.settings) if job.replayer is None else None
        anyio.run(check_start_states, job.suites, probe)
        # Spans and metrics of the run go where the server's would (OTEL_EXPORTER_OTLP_*).
        flush_telemetry = configure_from_env(environ)
    except (ConfigurationError, ScriptError) as exc:
        print(f"vf-mcp eval: {exc}", file=sys.stderr)
        return 2
    for warning in [w for suite in job.suites for w in suite.warnings] + replay_warnings(
        job.replayer, job.suites
    ):
        print(f"warning: {warning}", file=sys.stderr)
    try:
        done = _run_to_the_end(job, baseline)
    except BaselineNotRun as exc:
        print(f"vf-mcp eval: {exc}", file=sys.stderr)
        return 2  # no report: one would claim a comparison with nothing
    finally:
        flush_telemetry()
    run, comparison = done.run, done.comparison
    agreement = _print_results(job, done, labels)
    try:
        _save(job, done, agreement)
    except OSError as exc:
        print(
            f"vf-mcp eval: cannot write {exc.filename or 'a report'} ({exc.strerror or exc}): "
            "the run finished, but a report or the recording it asked for is missing; choose "
            "another path",
            file=sys.stderr,
        )
        return 2
    if done.interrupted:
        return EXIT_INTERRUPTED
    # Only a whole run's verdicts go back to Voiceflow.
    if args.write_back and (failed := _write_back(job, run)) is not None:
        return failed
    if comparison is not None and comparison.regressions:
        return EXIT_REGRESSION
    return 0 if run.succeeded(allow_ungraded=args.allow_ungraded) else 1


def _print_results(job: _Job, done: _Done, labels: list[tuple[str, str, bool]] | None) -> list[str]:
    """Print the run's failures, baseline and summary, then the judge's agreement (returned for
    the Markdown report)."""
    args = job.args
    shown = frozenset(w for suite in job.suites for w in suite.warnings)
    for line in report_lines(
        done.run, done.comparison, allow_ungraded=args.allow_ungraded, shown=shown
    ):
        print(line)
    agreement = agreement_lines(job.suites, done.run, labels, args.labels)
    for line in agreement:
        print(line)
    return agreement


class BaselineNotRun(Exception):
    """The baseline environment's run erred in every test: comparing with it would call every
    test of this run an improvement, and a regression gate would pass whatever happened."""


def baseline_problem(baseline: RunResult, environment: str) -> str | None:
    """Why the baseline environment's run cannot be compared with, or None."""
    tests = baseline.transcripts
    if tests and any(t.outcome != "error" for t in tests):
        return None
    errors = [t.error or next((u.error for u in t.turns if u.error), "") for t in tests]
    first = next((e for e in errors if e), None)
    why = (
        f"every test erred, the first with: {' '.join(first.split())}"
        if first
        else (baseline.stopped or "no test ran")
    )
    return (
        f"--baseline-environment {environment}: the baseline environment could not be run "
        f"({why}); check that {environment!r} is an environment (or version) of this agent "
        "and that the API key may run it; no report was written"
    )


def _prepare(args: argparse.Namespace, environ: Mapping[str, str]) -> tuple[_Job, RunResult | None]:
    """The run to do and its baseline, or the one-line reason it cannot run at all."""
    suites = load_suites(args.paths)
    settings, judge_settings, replayer = _configure(args, environ)
    judged = replayer.chat() is not None if replayer is not None else judge_settings is not None
    for problem in (
        run_problem(args, suites),
        replay_problem(replayer, suites),
        judge_problem(suites, judged=judged, replay=args.replay),
        production_problem(args, suites, judged=judged),
    ):
        if problem is not None:
            raise ConfigurationError(problem)
    baseline = load_baseline(args.compare, suites) if args.compare is not None else None
    recorder = Recorder(args.record, suites) if args.record is not None else None
    return _Job(suites, settings, judge_settings, recorder, replayer, args), baseline


def agreement_lines(
    suites: list[Suite],
    run: RunResult,
    labels: list[tuple[str, str, bool]] | None,
    labels_path: Path | None,
) -> list[str]:
    """The judge's agreement with Voiceflow's evaluator (imported references) and with people
    (--labels), when there is anything to compare."""
    found = [with_voiceflow(suites, run)]
    if labels is not None:
        found.append(with_labels(suites, run, labels, f"human labels ({labels_path})"))
    return [line for agreement in found if agreement is not None for line in agreement.lines()]


def _write_back(job: _Job, run: RunResult) -> int | None:
    """Set the verdicts (or print them with --dry-run); an exit status when it failed."""
    planned = plan_write_back(job.suites, run)
    if not planned:
        print("vf-mcp eval: --write-back: no imported test reached a verdict; nothing to set")
        return None
    if job.args.dry_run:
        for value in planned:
            print(f"would set {value.line()}")
        return None

    async def send() -> int:
        async with AnalyticsClient(job.settings) as analytics:
            return len(await write_back(analytics, planned))

    try:
        count = anyio.run(send)
    except WriteBackStopped as stopped:
        exc = stopped.cause
        print(
            f"vf-mcp eval: --write-back failed after it set {stopped.done} of {stopped.total} "
            f"transcript properties (run it again to set them all): {exc}",
            file=sys.stderr,
        )
        return 2 if isinstance(exc, AuthenticationError | NotFoundError | ConfigurationError) else 1
    except VfMcpError as exc:
        print(f"vf-mcp eval: --write-back failed: {exc}", file=sys.stderr)
        return 2 if isinstance(exc, AuthenticationError | NotFoundError | ConfigurationError) else 1
    properties = counted(count, "transcript property", "transcript properties")
    print(f"vf-mcp eval: --write-back set {properties}")
    return None


def _run_to_the_end(job: _Job, baseline: RunResult | None) -> _Done:
    """The run, compared with its baseline; after Ctrl-C, the tests of this run that finished
    (none when it came during the baseline environment's run)."""
    try:
        return anyio.run(_run_and_compare, job, baseline)
    except KeyboardInterrupt:
        runs = 2 if job.args.baseline_environment is not None else 1
        if len(job.finished) == runs:
            return _Done(job.finished[-1].partial(INTERRUPTED), interrupted=True)
        return _Done(RunResult(stopped=INTERRUPTED), interrupted=True)


def _save(job: _Job, done: _Done, agreement: list[str]) -> None:
    """The recording and the reports asked for."""
    args = job.args
    run, comparison = done.run, done.comparison
    if job.recorder is not None:
        job.recorder.save()
    _write(args.junit, junit_xml(run, allow_ungraded=args.allow_ungraded))
    _write(args.json, json_report(run))
    markdown = markdown_report(run, allow_ungraded=args.allow_ungraded, comparison=comparison)
    if agreement:
        markdown += "\n## Judge agreement\n\n```\n" + "\n".join(agreement) + "\n```\n"
    _write(args.markdown, markdown)
    if args.html is not None:
        page = html_report(
            run, comparison=comparison, baseline=done.baseline, allow_ungraded=args.allow_ungraded
        )
        _write(args.html, page)
    for target in args.export:
        for skipped in target.write(run):
            print(f"vf-mcp eval: --export {target.format} left out {skipped}", file=sys.stderr)


def _configure(
    args: argparse.Namespace, environ: Mapping[str, str]
) -> tuple[Settings, JudgeSettings | None, Replayer | None]:
    settings = Settings.from_env(environ)
    judge_settings = JudgeSettings.from_settings(settings)
    if args.replay is None:
        settings.require_api_key()
        return settings, judge_settings, None
    if settings.api_key is None:
        # The key is never sent anywhere in a replay; the client only needs one to exist.
        settings = settings.model_copy(update={"api_key": SecretStr(REPLAY_PLACEHOLDER_KEY)})
    return settings, judge_settings, Replayer(args.replay)


def report_lines(
    run: RunResult,
    comparison: Comparison | None,
    *,
    allow_ungraded: bool,
    shown: frozenset[str] = frozenset(),
) -> list[str]:
    """What the terminal shows after the progress: warnings (but those `shown` already),
    failures, trials, the cap, the baseline, and the summary."""
    lines = failure_lines(run, allow_ungraded=allow_ungraded)
    for suite in run.suites:
        lines += [f"warning: {suite.name} / {w}" for w in suite_warnings(suite) if w not in shown]
        lines += [f"trials {suite.name} / {line}" for line in trial_lines(suite.trials)]
    if run.stopped:
        lines.append(f"stopped: {run.stopped}")
    if run.judge_usage is not None:
        lines.append(f"judge: {run.judge_usage.describe()}")
    if comparison is not None:
        lines += comparison.lines()
    return [*lines, summary_line(run)]


def failure_lines(run: RunResult, *, allow_ungraded: bool) -> list[str]:
    """Why the run did not pass, one line per test, so a terminal says it without a report."""
    lines = []
    for test in run.transcripts:
        if test.outcome in ("failed", "error"):
            # Evidence keeps the agent's line breaks; the terminal gets one line.
            why = one_line(first_problem(test))
            lines.append(f"{test.outcome.upper()} {test.suite} / {test.name}: {why}")
    for suite in run.suites:
        for check in suite.checks:
            if check.outcome in ("failed", "error"):
                lines.append(
                    f"{check.outcome.upper()} {suite.name} (suite): {check.label}: "
                    f"{one_line(check.evidence)}"
                )
    ungraded = sum(1 for t in run.transcripts if t.outcome == "to_grade")
    if ungraded and not allow_ungraded:
        lines.append(
            f"{counted(ungraded, 'test')} {'needs' if ungraded == 1 else 'need'} a judge model: "
            "set VF_MCP_JUDGE_URL and VF_MCP_JUDGE_MODEL "
            "(and VF_MCP_JUDGE_API_KEY), or pass --allow-ungraded to accept "
            f"{'it' if ungraded == 1 else 'them'} ungraded"
        )
    return lines


def summary_line(run: RunResult) -> str:
    return f"vf-mcp eval: {run_size(run)}: " + ", ".join(outcome_counts(run))


def _write(path: Path | None, text: str) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


@dataclass(frozen=True)
class _Job:
    suites: list[Suite]
    settings: Settings
    judge_settings: JudgeSettings | None
    recorder: Recorder | None
    replayer: Replayer | None
    args: argparse.Namespace
    finished: list[FinishedSoFar] = field(default_factory=list)
    """Each run's tests as they finish (the baseline environment's run, then this one)."""

    def options(self, environment: str | None = None) -> RunOptions:
        return RunOptions(
            repeat=self.args.repeat,
            max_turns=self.args.max_turns,
            environment=environment,
            state_keeper=self.recorder,
        )


@dataclass(frozen=True)
class _Done:
    """What a run ends with: its results, and what they were compared with."""

    run: RunResult
    comparison: Comparison | None = None
    baseline: RunResult | None = None
    interrupted: bool = False


async def _run_and_compare(job: _Job, baseline: RunResult | None) -> _Done:
    label = str(job.args.compare) if baseline is not None else None
    if job.args.baseline_environment is not None:
        environment = job.args.baseline_environment
        baseline = await _run(job, job.options(environment))
        if (problem := baseline_problem(baseline, environment)) is not None:
            raise BaselineNotRun(problem)
        label = f"environment {environment}"
    run = await _run(job, job.options())
    if baseline is None or label is None:
        return _Done(run)
    return _Done(run, compare(baseline, run, label=label), baseline)


async def _run(job: _Job, options: RunOptions) -> RunResult:
    concurrency = job.args.concurrency
    finished = FinishedSoFar()
    job.finished.append(finished)
    if job.replayer is not None:
        factory = ServiceFactory(
            job.settings, transport=job.replayer.transport(), clock=job.replayer
        )
        return await _with_progress(
            job.suites, factory, job.replayer.chat(), concurrency, options, finished
        )
    transport = job.recorder.transport() if job.recorder is not None else None
    factory = ServiceFactory(job.settings, transport=transport, clock=job.recorder)
    if job.judge_settings is None:
        return await _with_progress(job.suites, factory, None, concurrency, options, finished)
    settings = job.settings
    policy = RetryPolicy(max_retries=settings.max_retries, deadline=settings.retry_deadline)
    async with OpenAIChatClient(job.judge_settings, retry=policy) as client:
        judge: ChatModel = job.recorder.chat(client) if job.recorder is not None else client
        return await _with_progress(job.suites, factory, judge, concurrency, options, finished)


async def _with_progress(
    suites: list[Suite],
    factory: ServiceFactory,
    judge: ChatModel | None,
    concurrency: int,
    options: RunOptions,
    finished: FinishedSoFar,
    stream: TextIO | None = None,
) -> RunResult:
    out = stream or sys.stderr
    total = sum(len(s.tests) * max(options.repeat or 1, *(t.repeat or 1 for t in s.tests))
                for s in suites)  # fmt: skip
    if not out.isatty():

        async def plain(event: ProgressEvent) -> None:
            print(event.text, file=out, flush=True)

        return await run_suites(
            suites, factory, judge=judge, concurrency=concurrency, on_progress=plain,
            options=options, finished=finished,
        )  # fmt: skip

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
            suites, factory, judge=judge, concurrency=concurrency, on_progress=fancy,
            options=options, finished=finished,
        )  # fmt: skip
