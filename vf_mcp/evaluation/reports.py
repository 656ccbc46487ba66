"""Reports of a run, rendered from the transcripts: JUnit XML, JSON and Markdown.

The JUnit file follows the strict Ant schema (windyroad/JUnit-Schema, vendored in
tests/schemas/) so strict and lenient readers (GitLab, Jenkins, GitHub actions) all accept it:
`testsuites` carries no attributes; each `testsuite` has properties, its testcases, then
`system-out` (every test's transcript) and `system-err` (import warnings).
"""

from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from pathlib import Path

from vf_mcp.domain.transcript import (
    CheckResult,
    JudgeUsage,
    RunResult,
    SuiteResult,
    TestOutcome,
    Transcript,
)
from vf_mcp.evaluation.baseline import Comparison, one_line
from vf_mcp.evaluation.trials import counted, tests_and_trials, trial_lines, trials_result
from vf_mcp.transcripts.render import render_check, render_transcript, simulated_by

# XML 1.0 allows TAB, LF, CR and everything from U+0020 except surrogates and U+FFFE/U+FFFF;
# agent output can carry raw control characters, which would make the file unreadable.
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


_OUTCOME_COUNTS: tuple[tuple[TestOutcome, str], ...] = (
    ("passed", "passed"),
    ("failed", "failed"),
    ("error", "errors"),
    ("to_grade", "to grade"),
    ("skipped", "skipped"),
)


def outcome_counts(run: RunResult) -> list[str]:
    """How many tests came to each outcome, as a run's summary says it ("3 passed", ...)."""
    tests = run.transcripts
    counts = [(sum(1 for t in tests if t.outcome == o), label) for o, label in _OUTCOME_COUNTS]
    return [counted(n, "error") if label == "errors" else f"{n} {label}" for n, label in counts]


def first_problem(test: Transcript) -> str:
    """Why a test failed or erred, in words: an error says the error (not a check that failed
    beside it), and a token budget that did not hold is named even when another check came
    first, since it is about the judge rather than the agent."""
    checks = test.all_checks()
    turn_error = next((t.error for t in test.turns if t.error), None)
    first = (
        next((c for c in checks if c.outcome == "error"), None) if test.outcome == "error" else None
    )
    first = first or test.first_failure()
    why = test.error or (turn_error if test.outcome == "error" else None)
    why = why or (f"{first.label}: {first.evidence}" if first else "see the report")
    budget = next(
        (c for c in checks if c.kind == "max_judge_tokens" and c.outcome in ("failed", "error")),
        None,
    )
    if budget is not None and budget is not first:
        why += f"; also {budget.label}: {budget.outcome} ({budget.evidence})"
    return why


def run_size(run: RunResult) -> str:
    """How many tests ran, and trials when some repeated: what the outcome counts add up to."""
    tests = {(t.suite, t.test_id) for t in run.transcripts}
    return tests_and_trials(len(tests), len(run.transcripts))


def _xml_text(text: str) -> str:
    return _XML_FORBIDDEN.sub("\ufffd", text)


def _junit_status(test: Transcript, allow_ungraded: bool) -> tuple[str, str, str, str] | None:
    """(element, type, message, details) for a test that did not pass, else None."""
    first = test.first_failure()
    if test.outcome == "error":
        where = test.error or next((t.error for t in test.turns if t.error), None)
        if where is None and first is not None:
            where = f"{first.label}: {first.evidence}"
        kind = (where or "error").split(":", 1)[0] if where else "error"
        return "error", kind, where or "error", render_transcript(test)
    if test.outcome == "failed" and first is not None:
        return "failure", first.kind, f"{first.label}: {first.evidence}", render_transcript(test)
    if test.outcome == "skipped":
        return "skipped", "", "; ".join(test.warnings) or "not run", ""
    if test.outcome == "to_grade":
        ungraded = [c for c in test.all_checks() if c.outcome == "to_grade"]
        message = f"{len(ungraded)} criteria not graded: " + "; ".join(c.label for c in ungraded)
        if allow_ungraded:
            return "skipped", "", message, ""
        return "failure", "to_grade", message, render_transcript(test)
    return None


def judge_properties(usage: JudgeUsage | None) -> list[tuple[str, str]]:
    """What the judge spent, as JUnit properties (none when it was not called)."""
    if usage is None:
        return []
    return [
        ("judge_calls", str(usage.calls)),
        ("judge_input_tokens", str(usage.input_tokens)),
        ("judge_output_tokens", str(usage.output_tokens)),
        ("judge_tokens_unreported_calls", str(usage.unreported)),
    ]


def _suite_check_status(check: CheckResult) -> tuple[str, str, str, str] | None:
    if check.outcome in ("failed", "error"):
        kind = "failure" if check.outcome == "failed" else "error"
        return kind, check.kind, f"{check.label}: {check.evidence}", check.evidence
    if check.outcome == "not_run":
        return "skipped", "", check.evidence or "not run", ""
    return None


def junit_xml(run: RunResult, *, allow_ungraded: bool = False, hostname: str | None = None) -> str:
    host = hostname or socket.gethostname() or "localhost"
    root = ET.Element("testsuites")
    for number, suite in enumerate(run.suites):
        root.append(_junit_suite(suite, number, host, allow_ungraded))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _junit_suite(suite: SuiteResult, number: int, host: str, allow_ungraded: bool) -> ET.Element:
    statuses = [_junit_status(t, allow_ungraded) for t in suite.tests]
    # A suite's own checks (its latency_ms) are testcases too, so CI shows them as it shows tests.
    check_statuses = [_suite_check_status(c) for c in suite.checks]
    kinds = [s[0] if s else "passed" for s in [*statuses, *check_statuses]]
    element = ET.Element(
        "testsuite",
        {
            "name": _xml_text(suite.name),
            "timestamp": suite.started_at.strftime("%Y-%m-%dT%H:%M:%S"),
            "hostname": host,
            "tests": str(len(kinds)),
            "failures": str(kinds.count("failure")),
            "errors": str(kinds.count("error")),
            "skipped": str(kinds.count("skipped")),
            "time": f"{suite.duration_ms / 1000:.3f}",
            "id": str(number),
            "package": "vf-mcp",
        },
    )
    _junit_properties(element, suite)
    trials = {s.test_id: trials_result(s) for s in suite.trials}
    for test, status in zip(suite.tests, statuses, strict=True):
        case = _junit_case(element, suite, test.key, test.duration_ms)
        if status is None:
            continue
        kind, type_, message, details = status
        if test.trial is not None and test.test_id in trials:
            # The strict schema gives a testcase no properties: its message is where viewers
            # show how the trial's test fared over all its trials.
            message += f" [trial {test.trial}; {test.test_id}: {trials[test.test_id]}]"
        _junit_outcome(case, kind, type_, message, details)
    for check, status in zip(suite.checks, check_statuses, strict=True):
        case = _junit_case(element, suite, f"suite: {check.label}", 0.0)
        if status is not None:
            _junit_outcome(case, *status)
    out = ET.SubElement(element, "system-out")
    head = ["Trials:", *trial_lines(suite.trials)] if suite.trials else []
    parts = ["\n".join(head)] if head else []
    out.text = _xml_text("\n\n".join(parts + [render_transcript(t) for t in suite.tests]))
    err = ET.SubElement(element, "system-err")
    err.text = _xml_text("\n".join(suite_warnings(suite)))
    return element


def _junit_case(element: ET.Element, suite: SuiteResult, name: str, ms: float) -> ET.Element:
    attributes = {"name": _xml_text(name), "classname": _xml_text(suite.name)}
    return ET.SubElement(element, "testcase", {**attributes, "time": f"{ms / 1000:.3f}"})


def _junit_outcome(case: ET.Element, kind: str, type_: str, message: str, details: str) -> None:
    if kind == "skipped":
        ET.SubElement(case, "skipped", {"message": _xml_text(message)})
    else:
        child = ET.SubElement(case, kind, {"type": _xml_text(type_), "message": _xml_text(message)})
        child.text = _xml_text(details)


def _junit_properties(element: ET.Element, suite: SuiteResult) -> None:
    """The suite's facts, what the judge spent, and per repeated test its pass rate and pass^k
    (`trials greets`): trials are testcases of their own (`greets#2`), and the summary over them
    is the suite's."""
    properties = ET.SubElement(element, "properties")
    environments = sorted({t.environment for t in suite.tests if t.environment})
    facts = [
        ("dialect", suite.dialect),
        ("source", suite.source or ""),
        ("environment", ", ".join(environments)),
        *judge_properties(suite.judge_usage),
    ]
    facts += [(f"trials {s.test_id}", trials_result(s)) for s in suite.trials]
    for name, value in facts:
        if value:
            property_ = {"name": _xml_text(name), "value": _xml_text(value)}
            ET.SubElement(properties, "property", property_)


def suite_warnings(suite: SuiteResult) -> list[str]:
    """The suite's warnings, then each test's (an unused mock...); a skipped test's reason is
    its outcome already."""
    found = list(suite.warnings)
    for test in suite.tests:
        if test.outcome != "skipped":
            found += [f"{test.key}: {w}" for w in test.warnings]
    return found


def json_report(run: RunResult) -> str:
    return run.model_dump_json(indent=2) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _suite_checks(run: RunResult) -> list[str]:
    lines: list[str] = []
    for suite in run.suites:
        if suite.checks:
            lines += ["", f"## Suite checks: {suite.name}", ""]
            lines += [f"- {c.outcome}: {c.label} — {c.evidence}" for c in suite.checks]
    return lines


def _trials_and_baseline(run: RunResult, comparison: Comparison | None) -> list[str]:
    lines: list[str] = []
    if run.stopped:
        lines += ["", f"**Stopped early:** {run.stopped}."]
    for suite in run.suites:
        if suite.trials:
            lines += ["", f"## Trials: {suite.name}", ""]
            lines += [f"- {line}" for line in trial_lines(suite.trials)]
    if comparison is not None:
        lines += ["", f"## Compared with {comparison.baseline}", ""]
        lines += [f"- {line}" for line in comparison.lines()]
    return lines


def markdown_report(
    run: RunResult, *, allow_ungraded: bool = False, comparison: Comparison | None = None
) -> str:
    tests = run.transcripts
    counts = {o: sum(1 for t in tests if t.outcome == o) for o in
              ("passed", "failed", "error", "to_grade", "skipped")}  # fmt: skip
    summary = ", ".join(f"{n} {o.replace('_', ' ')}" for o, n in counts.items() if n)
    verdict = "PASSED" if run.succeeded(allow_ungraded=allow_ungraded) else "FAILED"
    lines = [f"# vf-mcp evaluation: {verdict}", "", f"{run_size(run)}: {summary or 'none'}.", ""]
    if run.judge_usage is not None:
        lines += [f"Judge: {run.judge_usage.describe()}.", ""]
    lines += [
        "| Suite | Test | Outcome | Turns | Time | Judge tokens | First problem |",
        "|---|---|---|---|---|---|---|",
    ]
    for test in tests:
        problem = first_problem(test) if test.outcome in ("failed", "error") else ""
        tokens = test.judge_usage.tokens() if test.judge_usage is not None else ""
        lines.append(
            f"| {_cell(test.suite)} | {_cell(test.name)} | {test.outcome} | {len(test.turns)} "
            f"| {test.duration_ms / 1000:.1f} s | {tokens} | {_cell(one_line(problem, 160))} |"
        )
    lines += _suite_checks(run)
    lines += _trials_and_baseline(run, comparison)
    for suite in run.suites:
        if warnings := suite_warnings(suite):
            lines += ["", f"## Warnings: {suite.name}", ""]
            lines += [f"- {w}" for w in warnings]
    shown = [t for t in tests if t.outcome in ("failed", "error", "to_grade")]
    for test in shown:
        title = {"failed": "Failed", "error": "Error", "to_grade": "To grade"}[test.outcome]
        lines += ["", f"## {title}: {test.suite} / {test.name}", ""]
        if test.description:
            lines += [test.description, ""]
        first = test.first_failure()
        if test.error:
            lines += [f"**Error:** {test.error}", ""]
        elif first is not None:
            lines += [f"**First failure:** {first.label} — {first.evidence}", ""]
        if test.simulation is not None:
            sim = test.simulation
            lines += [
                f"**Simulated user**, {simulated_by(test)}: {sim.persona or 'no persona'}; goal: "
                f"{sim.goal}; stopped: {sim.stop_reason or 'n/a'}",
                "",
            ]
        lines += ["```text", render_transcript(test), "```"]
        remaining = [c for c in test.all_checks() if c.outcome == "to_grade"]
        if remaining and test.outcome == "to_grade":
            lines += [
                "",
                "Criteria to grade:",
                *[f"- {render_check(c).strip()}" for c in remaining],
            ]
    return "\n".join(lines) + "\n"


def write_whole(path: Path, text: str) -> None:
    """Write `text` to `path` all at once: a reader never sees half a file, and a file it
    replaces stays whole until the new one is."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(path)
