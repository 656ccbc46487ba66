"""The HTML report of a run: one self-contained page to triage a run from.

The page is templates/report.html.jinja, rendered with autoescape. It opens on a summary table
(one row per test, failures first, each linking to its test) with filters by outcome, then the
baseline side by side (`--compare`), then each test's conversation as a chat, a repeated test's
trials grouped under it with the failing ones open. It loads nothing and runs no script (its
Content-Security-Policy forbids every fetch and every script: the filters are CSS `:target`), so
it can be opened from disk, attached to a CI run or mailed; the chat is `vf_mcp.chat`, the same
component the MCP App view shows, and everything from the agent in it is escaped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from vf_mcp.chat import ChatOptions
from vf_mcp.domain.transcript import RunResult, TestOutcome, Transcript, TrialSummary
from vf_mcp.evaluation.baseline import Change, Comparison
from vf_mcp.evaluation.reports import outcome_counts, run_size
from vf_mcp.evaluation.trials import trials_result
from vf_mcp.transcripts.render import OUTCOME_MARKS, simulated_by

TRIAGE_ORDER: tuple[TestOutcome, ...] = ("failed", "error", "to_grade", "skipped", "passed")
"""The order tests are shown in, and which trial's outcome a repeated test takes: the worst."""
Moved = Literal["regressed", "improved", ""]
_PROBLEM_CHARS = 200  # of a test's first problem, in the summary table


@dataclass(frozen=True)
class ReportedTest:
    """One test of the page: a test run once, or a repeated test with its trials."""

    suite: str
    test_id: str
    name: str
    runs: list[Transcript]
    trials: TrialSummary | None
    changes: list[Change] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return _anchor(self.suite, self.test_id)

    @property
    def repeated(self) -> bool:
        return any(t.trial is not None for t in self.runs)

    @property
    def outcome(self) -> TestOutcome:
        return min((t.outcome for t in self.runs), key=TRIAGE_ORDER.index)

    @property
    def turns(self) -> int:
        return sum(len(t.turns) for t in self.runs)

    @property
    def seconds(self) -> float:
        return sum(t.duration_ms for t in self.runs) / 1000

    @property
    def trials_line(self) -> str:
        return trials_result(self.trials) if self.trials is not None else ""

    @property
    def trials_brief(self) -> str:
        """For the summary table: "2/3, pass^3 0.00, flaky"."""
        summary = self.trials
        if summary is None or summary.trials == 0:
            return self.trials_line
        hat = summary.pass_hat_k[summary.trials]
        flaky = ", flaky" if summary.flaky else ""
        return f"{summary.passed}/{summary.trials}, pass^{summary.trials} {hat:.2f}{flaky}"

    @property
    def problem(self) -> str:
        """The first problem of its first failing trial, in one line."""
        for test in sorted(self.runs, key=lambda t: TRIAGE_ORDER.index(t.outcome)):
            if said := first_problem(test):
                where = f"trial {test.trial}: " if test.trial is not None else ""
                text = " ".join(f"{where}{said}".split())
                return text if len(text) <= _PROBLEM_CHARS else text[: _PROBLEM_CHARS - 1] + "…"
        return ""


@dataclass(frozen=True)
class BaselineRow:
    """One test of the baseline comparison: its outcome there and here, and its checks that
    moved (None: the test is not in that run)."""

    suite: str
    key: str
    anchor: str | None
    before: str | None
    after: str | None
    moved: Moved
    checks: list[Change]


def html_report(
    run: RunResult,
    *,
    comparison: Comparison | None = None,
    baseline: RunResult | None = None,
    allow_ungraded: bool = False,
) -> str:
    """The whole page; `comparison` adds the baseline side by side (every test of `baseline`
    and of this run when given, else the tests that moved)."""
    # Jinja2 is loaded only by a run that writes the page.
    from vf_mcp.chat.templating import environment

    groups = reported_tests(run, comparison)
    page = environment("vf_mcp.evaluation").get_template("report.html.jinja")
    return page.render(
        run=run,
        verdict="PASSED" if run.succeeded(allow_ungraded=allow_ungraded) else "FAILED",
        size=run_size(run),
        counts=outcome_counts(run),
        groups=groups,
        filters=[(o, n) for o in TRIAGE_ORDER if (n := sum(g.outcome == o for g in groups))],
        comparison=comparison,
        baseline_rows=baseline_rows(run, comparison, baseline) if comparison else [],
        # Without the baseline's own tests, the new and missing ones are only named.
        baseline_extra=_new_and_missing(comparison) if comparison and not baseline else [],
        chat_options=ChatOptions(),
        outcome_marks=OUTCOME_MARKS,
        outcome_words=dict(
            zip(TRIAGE_ORDER, ("failed", "errors", "to grade", "skipped", "passed"), strict=True)
        ),
        anchor=trial_anchor,
        first_problem=first_problem,
        simulated_by=simulated_by,
    )


def reported_tests(run: RunResult, comparison: Comparison | None = None) -> list[ReportedTest]:
    """The run's tests, trials grouped under their test, in triage order (stable within)."""
    changes = comparison.changes if comparison is not None else []
    groups: list[ReportedTest] = []
    for suite in run.suites:
        summaries = {s.test_id: s for s in suite.trials}
        runs: dict[str, list[Transcript]] = {}
        for test in suite.tests:
            runs.setdefault(test.test_id, []).append(test)
        for test_id, tests in runs.items():
            keys = {t.key for t in tests}
            moved = [c for c in changes if c.suite == suite.name and c.test in keys]
            name = tests[0].name
            groups.append(
                ReportedTest(suite.name, test_id, name, tests, summaries.get(test_id), moved)
            )
    return sorted(groups, key=lambda g: TRIAGE_ORDER.index(g.outcome))


def baseline_rows(
    run: RunResult, comparison: Comparison, baseline: RunResult | None
) -> list[BaselineRow]:
    """Base and this run side by side, per test then per check that moved; regressions first."""
    before = {(t.suite, t.key): t.outcome for t in (baseline.transcripts if baseline else [])}
    after = {(t.suite, t.key): t for t in run.transcripts}
    keys = list(dict.fromkeys([*after, *before])) if baseline is not None else []
    keys += [
        k for k in dict.fromkeys((c.suite, c.test) for c in comparison.changes) if k not in keys
    ]
    rows = []
    for suite, key in keys:
        mine = [c for c in comparison.changes if (c.suite, c.test) == (suite, key)]
        whole = next((c for c in mine if c.turn is None and c.check is None), None)
        test = after.get((suite, key))
        then = whole.before if whole else before.get((suite, key))
        now = whole.after if whole else (test.outcome if test else None)
        moved: Moved = whole.kind if whole else next((c.kind for c in mine), "")
        where = trial_anchor(test) if test is not None else None
        checks = [c for c in mine if c is not whole]
        rows.append(BaselineRow(suite, key, where, then, now, moved, checks))
    order = ("regressed", "improved", "")
    return sorted(rows, key=lambda r: order.index(r.moved))


def _new_and_missing(comparison: Comparison) -> list[str]:
    return comparison.lines()[len(comparison.changes) : -1]


def first_problem(test: Transcript) -> str:
    """Why a test did not pass, as the terminal says it: its error or its first failed check."""
    first = test.first_failure()
    turn_error = next((t.error for t in test.turns if t.error), None)
    if test.error or turn_error:
        return test.error or turn_error or ""
    if first is not None:
        return f"{first.label}: {first.evidence}" if first.evidence else first.label
    if test.outcome == "to_grade":
        return "judged criteria left to grade (no judge configured)"
    if test.outcome == "skipped":
        return "; ".join(test.warnings) or "not run"
    return ""


def trial_anchor(test: Transcript) -> str:
    """The id of a test's section, or of one trial's (`--trial-2`) under its test's."""
    base = _anchor(test.suite, test.test_id)
    return base if test.trial is None else f"{base}--trial-{test.trial}"


def _anchor(suite: str, test_id: str) -> str:
    # Unique on the page: two suites may hold the same test id.
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{suite}--{test_id}")
