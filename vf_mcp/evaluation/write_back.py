"""`vf-mcp eval --write-back`: a run's verdicts on imported conversations, set as transcript
properties in Voiceflow so they show in its own transcript view and can filter its searches.

Each imported test sets `vf-mcp: passed` (the test's outcome) and one `vf-mcp: <criterion>` per
graded judge criterion, all boolean properties whose values are "true" or "false" with the
judge's reasoning in `metadata`. A property is defined once per project (found by name first).
Tests that were not imported, or did not reach a verdict, set nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import JsonValue

from vf_mcp.domain.transcript import RunResult, Transcript
from vf_mcp.errors import VfMcpError
from vf_mcp.evaluation.script import ImportedFrom, Suite
from vf_mcp.voiceflow.analytics import AnalyticsClient
from vf_mcp.voiceflow.analytics_models import PropertyValue

PASSED_PROPERTY = "vf-mcp: passed"
MAX_PROPERTY_NAME = 100
"""The API's bound on a property name."""
_MAX_REASON = 500


@dataclass(frozen=True)
class PlannedValue:
    """One property value to set on one transcript."""

    project_id: str
    transcript_id: str
    property_name: str
    value: str
    reason: str = ""

    def line(self) -> str:
        return f"{self.transcript_id}: {self.property_name} = {self.value}"


def property_name(criterion: str) -> str:
    name = f"vf-mcp: {' '.join(criterion.split())}"
    return name if len(name) <= MAX_PROPERTY_NAME else name[: MAX_PROPERTY_NAME - 1] + "…"


def _values_of(origin: ImportedFrom, transcript: Transcript) -> list[PlannedValue]:
    planned = []
    if transcript.outcome in ("passed", "failed"):
        planned.append(
            PlannedValue(origin.project_id, origin.transcript_id, PASSED_PROPERTY,
                         str(transcript.outcome == "passed").lower())
        )  # fmt: skip
    results = transcript.checks + [c for t in transcript.turns for c in t.checks]
    for result in results:
        if result.kind == "judge" and result.outcome in ("passed", "failed"):
            planned.append(
                PlannedValue(
                    origin.project_id,
                    origin.transcript_id,
                    property_name(str(result.expected)),
                    str(result.outcome == "passed").lower(),
                    result.evidence[:_MAX_REASON],
                )
            )
    return planned


def plan_write_back(suites: Sequence[Suite], run: RunResult) -> list[PlannedValue]:
    """What `--write-back` sets, in run order; the last trial of a repeated test wins."""
    origins = {(s.name, t.id): t.imported_from for s in suites for t in s.tests if t.imported_from}
    planned: dict[tuple[str, str], PlannedValue] = {}
    for transcript in run.transcripts:
        origin = origins.get((transcript.suite, transcript.test_id))
        if origin is None:
            continue
        for value in _values_of(origin, transcript):
            planned[(value.transcript_id, value.property_name)] = value
    return list(planned.values())


class WriteBackStopped(Exception):
    """`write_back` failed after setting `done` of `total` values (those stay set)."""

    def __init__(self, cause: VfMcpError, done: int, total: int) -> None:
        super().__init__(str(cause))
        self.cause, self.done, self.total = cause, done, total


async def write_back(
    analytics: AnalyticsClient, planned: Sequence[PlannedValue]
) -> list[PropertyValue]:
    """Define the missing properties (once per project and name), then set every value; a
    failure raises `WriteBackStopped`, counting the values already set."""
    written: list[PropertyValue] = []
    try:
        await _write(analytics, planned, written)
    except VfMcpError as exc:
        raise WriteBackStopped(exc, len(written), len(planned)) from exc
    return written


async def _write(
    analytics: AnalyticsClient, planned: Sequence[PlannedValue], written: list[PropertyValue]
) -> None:
    ids: dict[tuple[str, str], str] = {}
    for project_id in dict.fromkeys(p.project_id for p in planned):
        for existing in await analytics.properties(project_id):
            ids.setdefault((project_id, existing.name), existing.id)
    for value in planned:
        key = (value.project_id, value.property_name)
        if key not in ids:
            created = await analytics.create_property(*key, "boolean")
            ids[key] = created.id
        metadata: dict[str, JsonValue] = {"source": "vf-mcp", "reason": value.reason}
        written.append(
            await analytics.set_property_value(value.transcript_id, ids[key], value.value, metadata)
        )


__all__ = [
    "PASSED_PROPERTY",
    "PlannedValue",
    "WriteBackStopped",
    "plan_write_back",
    "property_name",
    "write_back",
]
