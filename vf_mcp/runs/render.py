"""What a model reads of a run: one line of state and progress, then, once it finished, the same
transcripts `run_conversation` answers with."""

from __future__ import annotations

from vf_mcp.domain.run import RunRecord
from vf_mcp.domain.transcript import RunResult, TestOutcome
from vf_mcp.runs.models import RunStarted
from vf_mcp.transcripts.render import Rest, render_run

_OUTCOMES: tuple[TestOutcome, ...] = ("passed", "failed", "error", "to_grade", "skipped")


def render_started(started: RunStarted) -> str:
    return (
        f"Started run {started.run_id} on agent {started.agent}: "
        f"{_count(started.tests_total, 'test')}, up to {_count(started.turns_planned, 'turn')}. "
        f"Poll get_run(run_id={started.run_id!r}) for its progress and, once it finished, its "
        "results; cancel_run stops it."
    )


def render_record(record: RunRecord, *, offset: int = 0, limit: int | None = None) -> str:
    """A finished run reads as `run_conversation` does, a page of its tests at a time."""
    if record.state == "finished" and record.result is not None:
        page = render_run(record.result, offset=offset, limit=limit, rest=_rest(record.run_id))
        return f"{_finished_line(record, record.result)}\n\n{page}"
    progress = (
        f"{record.tests_done} of {_count(record.tests_total, 'test')} done, "
        f"{_count(record.turns_sent, 'turn')}"
    )
    failing = f"; failing so far: {', '.join(record.failing)}" if record.failing else ""
    if record.state == "running":
        asked = " (cancel requested: it stops at its next turn or test)"
        return (
            f"Run {record.run_id} is running on agent {record.agent}: {progress}{failing}"
            f"{asked if record.cancel_requested else ''}. Call get_run again for more; "
            "cancel_run stops it."
        )
    why = f"; {record.detail}" if record.detail else ""
    # An error's detail says what next itself (start_run, or what to fix first).
    again = "" if "start_run" in why else " Start it again with start_run to get its results."
    ended = f"Run {record.run_id} {_ENDED[record.state]} after {progress}{failing}{why}."
    finished = record.result.transcripts if record.result is not None else []
    if record.result is None or not finished:
        return ended + again
    # A cancelled or stopped run keeps the tests it finished: they read as a finished run's.
    page = render_run(record.result, offset=offset, limit=limit, rest=_rest(record.run_id))
    return (
        f"{ended} The {_count(len(finished), 'test')} it finished follow; start it again with "
        f"start_run for a whole run.\n\n{page}"
    )


def _rest(run_id: str) -> Rest:
    def rest(next_offset: int) -> str:
        return f"get_run(run_id={run_id!r}, offset={next_offset}) shows the next ones"

    return rest


_ENDED = {
    "cancelled": "was cancelled",
    "stopped": "stopped with its worker",
    "lost": "was lost with its worker",
    "error": "failed",
    "finished": "finished",
}


def _finished_line(record: RunRecord, result: RunResult) -> str:
    tests = result.transcripts
    counts = ", ".join(f"{n} {o}" for o in _OUTCOMES if (n := sum(t.outcome == o for t in tests)))
    stopped = f"; {result.stopped}" if result.stopped else ""
    return (
        f"Run {record.run_id} finished: {_count(len(tests), 'test')} ({counts or 'none'}), "
        f"{_count(result.turns_sent, 'turn')}{stopped}."
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
