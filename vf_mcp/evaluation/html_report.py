"""The HTML report of a run: one self-contained page, each test's conversation as a chat.

The page is templates/report.html.jinja, rendered with autoescape. It loads nothing (its
Content-Security-Policy forbids every fetch and every script), so it can be opened from disk,
attached to a CI run or mailed; the chat is `vf_mcp.chat`, the same component the MCP App view
shows, and everything from the agent in it is escaped.
"""

from __future__ import annotations

import re

from vf_mcp.chat import ChatOptions
from vf_mcp.domain.transcript import RunResult, Transcript
from vf_mcp.evaluation.baseline import Change, Comparison
from vf_mcp.evaluation.reports import outcome_counts
from vf_mcp.evaluation.trials import trial_lines
from vf_mcp.transcripts.render import OUTCOME_MARKS


def html_report(
    run: RunResult, *, comparison: Comparison | None = None, allow_ungraded: bool = False
) -> str:
    """The whole page; `comparison` adds the baseline diff, overall and per test."""
    # Jinja2 is loaded only by a run that writes the page.
    from vf_mcp.chat.templating import environment

    changes = comparison.changes if comparison is not None else []
    page = environment("vf_mcp.evaluation").get_template("report.html.jinja")
    return page.render(
        run=run,
        verdict="PASSED" if run.succeeded(allow_ungraded=allow_ungraded) else "FAILED",
        counts=outcome_counts(run),
        comparison=comparison,
        tests=[(t, [c for c in changes if _of(c, t)]) for t in run.transcripts],
        chat_options=ChatOptions(),
        outcome_marks=OUTCOME_MARKS,
        trial_lines=trial_lines,
        anchor=_anchor,
    )


def _of(change: Change, test: Transcript) -> bool:
    # The comparison keys tests as the runs do: by suite and key (the test id, with its trial).
    return (change.suite, change.test) == (test.suite, test.key)


def _anchor(test: Transcript) -> str:
    """A unique id for the test's section: two suites may hold the same test id."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{test.suite}--{test.key}")
