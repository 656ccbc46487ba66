"""Deterministic assertions over a whole conversation: `always`, `never`, `eventually`.

Each wraps one per-turn check (text, status, variables, trace, buttons, the trajectory) and
holds every turn that ran to it, so a simulated conversation, whose turns nobody wrote in
advance, can be checked without a judge, as Rasa's conversation assertions do
(https://rasa.com/docs/reference/testing/evals/scenarios). A turn where the inner check cannot
be decided (an `error`, e.g. an unnamed tool) decides nothing: the assertion errs only when no
other turn settles it.
"""

from __future__ import annotations

from collections.abc import Sequence

from vf_mcp.domain.transcript import CheckOutcome, CheckResult, TranscriptTurn
from vf_mcp.evaluation import checks as checking
from vf_mcp.evaluation.checkmodels import AlwaysCheck, EventuallyCheck, NeverCheck, describe_check

Assertion = AlwaysCheck | NeverCheck | EventuallyCheck


def _result(check: Assertion, outcome: CheckOutcome, evidence: str) -> CheckResult:
    return CheckResult(
        id=check.id,
        kind=check.type,
        label=describe_check(check),
        expected=describe_check(check.check),
        outcome=outcome,
        evidence=evidence,
    )


def evaluate(check: Assertion, turns: Sequence[TranscriptTurn]) -> CheckResult:
    ran = [t for t in turns if t.status is not None]
    if not ran:
        return _result(check, "failed", "no turn ran")
    results = [(t.index, checking.evaluate(check.check, t)) for t in ran]
    held = [(i, r) for i, r in results if r.outcome == "passed"]
    broke = [(i, r) for i, r in results if r.outcome == "failed"]
    unknown = [(i, r) for i, r in results if r.outcome not in ("passed", "failed")]
    where = f"over {len(ran)} turn{'s' if len(ran) != 1 else ''}"
    if isinstance(check, AlwaysCheck):
        if broke:
            index, result = broke[0]
            return _result(check, "failed", f"turn {index} does not: {result.evidence}")
        if unknown:
            return _undecided(check, unknown)
        return _result(check, "passed", f"held in every turn {where}")
    if isinstance(check, NeverCheck):
        if held:
            index, result = held[0]
            return _result(check, "failed", f"turn {index} does: {result.evidence}")
        if unknown:
            return _undecided(check, unknown)
        return _result(check, "passed", f"held in no turn {where}")
    if held:
        index, result = held[0]
        return _result(check, "passed", f"turn {index}: {result.evidence}")
    if unknown:
        return _undecided(check, unknown)
    last = broke[-1][1].evidence if broke else ""
    return _result(check, "failed", f"held in no turn {where}; last turn: {last}")


def _undecided(check: Assertion, unknown: list[tuple[int, CheckResult]]) -> CheckResult:
    index, result = unknown[0]
    return _result(check, "error", f"turn {index} cannot be checked: {result.evidence}")
