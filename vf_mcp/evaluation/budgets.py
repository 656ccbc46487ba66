"""Latency and judge-token budgets: `latency_ms` (a turn, a conversation, a whole suite) and
`max_judge_tokens` (each test).

Latency is the turn's `latency_ms` as its record holds it: measured on a live run, read from the
recording under `--replay`, so a replay reaches the same verdict. Tokens are what the judge's
endpoint reported in `usage`; pricing stays out, so a budget is in tokens, not money.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import ceil

from vf_mcp.domain.transcript import CheckResult, JudgeUsage, Transcript, TranscriptTurn
from vf_mcp.evaluation.checkmodels import LatencyCheck, describe_check
from vf_mcp.evaluation.script import Suite
from vf_mcp.evaluation.trials import counted


def nearest_rank(values: Sequence[float], percent: float) -> float:
    """The `percent`th percentile by nearest rank: the ceil(p/100 * n)-th smallest value, so it
    is always one of the values measured (no interpolation between two turns)."""
    if not values:
        raise ValueError("no values to take a percentile of")
    ordered = sorted(values)
    return ordered[max(1, ceil(percent / 100 * len(ordered))) - 1]


def timed(turns: Sequence[TranscriptTurn]) -> list[float]:
    """The latencies of the turns that reached the agent (a turn refused before it was sent,
    e.g. a button that was not offered, took no time worth counting)."""
    return [t.latency_ms for t in turns if t.status is not None or t.latency_ms > 0]


def latency(check: LatencyCheck, latencies: Sequence[float], where: str) -> CheckResult:
    """Pass when every limit of `check` holds over `latencies` (milliseconds)."""
    label = describe_check(check)
    expected = check.model_dump(include={"max", "p95"}, exclude_none=True)
    if not latencies:
        return CheckResult(
            id=check.id, kind=check.type, label=label, expected=expected, outcome="not_run",
            evidence=f"no turn of {where} reached the agent",
        )  # fmt: skip
    slowest = max(latencies)
    seen = [f"slowest {slowest:g} ms"]
    passed = check.max is None or slowest <= check.max
    if check.p95 is not None:
        p95 = nearest_rank(latencies, 95)
        seen.append(f"p95 {p95:g} ms")
        passed = passed and p95 <= check.p95
    evidence = (
        f"{where} took {slowest:g} ms"
        if len(latencies) == 1
        else f"{', '.join(seen)} over {len(latencies)} turns of {where}"
    )
    return CheckResult(
        id=check.id,
        kind=check.type,
        label=label,
        expected=expected,
        outcome="passed" if passed else "failed",
        evidence=evidence,
    )


def suite_checks(suite: Suite, tests: Sequence[Transcript]) -> list[CheckResult]:
    """The suite's own checks (its `latency_ms`) over every turn of every test and trial."""
    if suite.latency_ms is None:
        return []
    return [
        latency(suite.latency_ms, timed([t for test in tests for t in test.turns]), "the suite")
    ]


def judge_tokens(limit: int, usage: JudgeUsage | None) -> CheckResult:
    """Pass when the test's judge calls spent at most `limit` tokens, input and output."""
    label = f"judge tokens at most {limit}"
    spent = usage or JudgeUsage()
    if spent.unreported:
        return CheckResult(
            kind="max_judge_tokens",
            label=label,
            expected=limit,
            outcome="error",
            evidence=f"{counted(spent.unreported, 'judge answer')} carried no `usage`, so the "
            "budget cannot "
            "be checked: use an endpoint that reports usage, or drop max_judge_tokens",
        )
    return CheckResult(
        kind="max_judge_tokens",
        label=label,
        expected=limit,
        outcome="passed" if spent.total_tokens <= limit else "failed",
        evidence=f"the judge spent {spent.describe()}",
    )
