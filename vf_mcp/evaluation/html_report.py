"""The HTML report of a run: one self-contained page, each test's conversation as a chat.

The page loads nothing (its Content-Security-Policy forbids every fetch and every script), so it
can be opened from disk, attached to a CI run or mailed; the chat is `vf_mcp.chat`, the same
component the MCP App view shows, and everything from the agent in it is escaped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from html import escape

from vf_mcp.chat import ChatOptions, chat_css, render_chat
from vf_mcp.evaluation.baseline import Change, Comparison
from vf_mcp.evaluation.reports import outcome_counts
from vf_mcp.evaluation.trials import trial_lines
from vf_mcp.transcripts.models import CheckResult, RunResult, Transcript, TranscriptTurn
from vf_mcp.transcripts.render import OUTCOME_MARKS

_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; form-action 'none'"

_REPORT_CSS = """
body { margin: 0; background: #f6f8fa; color: #1b1f24;
  font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 60rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.4rem; margin: .5rem 0; } h2 { font-size: 1.15rem; margin: 0; }
.vf-summary, .vf-test { background: #fff; border: 1px solid #d0d7de; border-radius: 10px;
  padding: .8rem 1rem; margin: 0 0 1rem; }
.vf-test > header { display: flex; gap: .6rem; align-items: baseline; flex-wrap: wrap; }
.vf-meta { color: #57606a; font-size: .85em; }
.vf-badge { font-weight: 700; font-size: .8em; padding: .05rem .5rem; border-radius: 999px;
  border: 1.5px solid currentColor; }
.vf-outcome-passed { color: #146c2e; } .vf-outcome-failed, .vf-outcome-error { color: #b3261e; }
.vf-outcome-to_grade, .vf-outcome-skipped, .vf-outcome-not_run { color: #7a4a00; }
.vf-checks { list-style: none; margin: .2rem 0; padding: 0; font-size: .9em; }
.vf-check { border-left: 3px solid #d0d7de; padding: .15rem .5rem; margin: .2rem 0; }
.vf-check.vf-outcome-failed, .vf-check.vf-outcome-error { border-color: #b3261e; }
.vf-check.vf-outcome-passed { border-color: #146c2e; }
.vf-check .vf-label { color: #1b1f24; }
.vf-evidence, .vf-verdict { margin: .1rem 0 0; color: #57606a; white-space: pre-wrap;
  overflow-wrap: anywhere; }
.vf-changes li.vf-regressed { color: #b3261e; } .vf-changes li.vf-improved { color: #146c2e; }
"""


def html_report(
    run: RunResult, *, comparison: Comparison | None = None, allow_ungraded: bool = False
) -> str:
    """The whole page; `comparison` adds the baseline diff, overall and per test."""
    verdict = "PASSED" if run.succeeded(allow_ungraded=allow_ungraded) else "FAILED"
    changes = comparison.changes if comparison is not None else []
    tests = "".join(_test(t, [c for c in changes if _of(c, t)]) for t in run.transcripts)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>vf-mcp evaluation: {verdict}</title>"
        f"<style>{chat_css()}{_REPORT_CSS}</style></head><body><main>"
        f"<h1>vf-mcp evaluation: {verdict}</h1>"
        f"{_summary(run, comparison)}{tests}</main></body></html>\n"
    )


def _of(change: Change, test: Transcript) -> bool:
    # The comparison keys tests as the runs do: by suite and key (the test id, with its trial).
    return (change.suite, change.test) == (test.suite, test.key)


def _summary(run: RunResult, comparison: Comparison | None) -> str:
    tests, counts = run.transcripts, outcome_counts(run)
    parts = [
        f"<p>{len(tests)} tests: {escape(', '.join(counts))}; {run.turns_sent} turns sent.</p>"
    ]
    if run.stopped:
        parts.append(f'<p class="vf-error">Stopped early: {escape(run.stopped)}</p>')
    for suite in run.suites:
        if suite.trials:
            parts.append(f"<h2>Trials: {escape(suite.name)}</h2>")
            parts.append(_list(trial_lines(suite.trials)))
        if suite.warnings:
            parts.append(f"<h2>Warnings: {escape(suite.name)}</h2>{_list(suite.warnings)}")
    if comparison is not None:
        parts.append(f"<h2>Compared with {escape(comparison.baseline)}</h2>")
        parts.append(
            _changes(comparison.changes, extra=comparison.lines()[len(comparison.changes) :])
        )
    return f'<section class="vf-summary" aria-label="Summary">{"".join(parts)}</section>'


def _list(lines: Sequence[str]) -> str:
    return "<ul>" + "".join(f"<li>{escape(line)}</li>" for line in lines) + "</ul>"


def _changes(changes: Sequence[Change], extra: Sequence[str] = ()) -> str:
    items = [f'<li class="vf-{c.kind}">{escape(c.line())}</li>' for c in changes]
    items += [f"<li>{escape(line)}</li>" for line in extra]
    return f'<ul class="vf-changes">{"".join(items)}</ul>'


def _test(test: Transcript, changes: Sequence[Change]) -> str:
    title = test.name if test.trial is None else f"{test.name} (trial {test.trial})"
    meta = f"{test.suite} · {len(test.turns)} turns · {test.duration_ms / 1000:.2f} s"
    meta += f" · started {test.started_at:%Y-%m-%d %H:%M:%S}"
    parts = [
        f"<header><h2>{escape(title)}</h2>{_badge(test.outcome)}"
        f'<span class="vf-meta">{escape(meta)}</span></header>'
    ]
    if test.description:
        parts.append(f"<p>{escape(test.description)}</p>")
    if test.simulation is not None:
        sim = test.simulation
        said = f"Simulated user ({sim.tester}): {sim.persona or 'no persona'}; goal: {sim.goal}"
        parts.append(f'<p class="vf-meta">{escape(said)}; stopped: {sim.stop_reason or "n/a"}</p>')
    if test.error:
        parts.append(f'<p class="vf-error" role="alert">{escape(test.error)}</p>')
    if test.warnings:
        parts.append(_list(test.warnings))
    parts.append(render_chat(test.turns, ChatOptions(turn_extra=_turn_checks)))
    if test.checks:
        parts.append(f"<h3>Conversation checks</h3>{_checks(test.checks)}")
    if changes:
        parts.append(f"<h3>Compared with the baseline</h3>{_changes(changes)}")
    opening = f'<section class="vf-test" data-outcome="{test.outcome}" id="{_anchor(test)}">'
    return f"{opening}{''.join(parts)}</section>"


def _anchor(test: Transcript) -> str:
    """A unique id for the test's section: two suites may hold the same test id."""
    return escape(re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{test.suite}--{test.key}"))


def _badge(outcome: str) -> str:
    return (
        f'<span class="vf-badge vf-outcome-{outcome}">{OUTCOME_MARKS.get(outcome, outcome)}</span>'
    )


def _turn_checks(turn: TranscriptTurn) -> str:
    timing = f'<p class="vf-meta">Turn {turn.index}: {turn.latency_ms:.0f} ms</p>'
    return timing + (_checks(turn.checks) if turn.checks else "")


def _checks(checks: Sequence[CheckResult]) -> str:
    return f'<ul class="vf-checks">{"".join(_check(c) for c in checks)}</ul>'


def _check(check: CheckResult) -> str:
    parts = [f'{_badge(check.outcome)} <span class="vf-label">{escape(check.label)}</span>']
    if check.evidence:
        parts.append(f'<p class="vf-evidence">{escape(check.evidence)}</p>')
    if check.verdict is not None:
        verdict = check.verdict
        score = f", score {verdict.score:.2f}" if verdict.score is not None else ""
        model = f" ({verdict.model})" if verdict.model else ""
        said = f"Judge{model}: {verdict.verdict}{score}. {verdict.reasoning}".strip()
        parts.append(f'<p class="vf-verdict">{escape(said)}</p>')
    return f'<li class="vf-check vf-outcome-{check.outcome}">{"".join(parts)}</li>'
