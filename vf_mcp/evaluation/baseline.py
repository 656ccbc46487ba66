"""Comparing a run with a baseline: what regressed and what improved, turn by turn.

The baseline is the JSON `--json` wrote (a `RunResult`), or a run of the same suites on another
environment of the agent. Tests match by suite name and test id (and trial); in scripted tests
turns match by position and checks by kind and label within the turn; simulated conversations,
whose turns differ from run to run, compare their outcome and their conversation checks. A
regression is an outcome that was `passed` or `to_grade` and is now `failed` or `error` (a turn
that ran and now does not counts too); an improvement goes the other way, to `passed`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, Field, ValidationError

from vf_mcp.domain.transcript import (
    READABLE_SCHEMA_VERSIONS,
    CheckResult,
    RunResult,
    Transcript,
    TranscriptTurn,
)
from vf_mcp.errors import ConfigurationError
from vf_mcp.evaluation.script import Suite

_GOOD = frozenset({"passed", "to_grade"})
_BAD = frozenset({"failed", "error"})


class Change(BaseModel):
    """One outcome that moved between the baseline and this run."""

    kind: Literal["regressed", "improved"]
    suite: str
    test: str
    turn: int | None = None
    check: str | None = Field(default=None, description="The check's label; None: the test")
    before: str
    after: str
    evidence: str = ""

    def line(self) -> str:
        where = f"{self.suite} / {self.test}"
        if self.turn is not None:
            where += f" · turn {self.turn}"
        what = f" · {self.check}" if self.check else ""
        said = f" ({one_line(self.evidence)})" if self.evidence else ""
        return f"{self.kind.upper()} {where}{what}: {self.before} → {self.after}{said}"


class Comparison(BaseModel):
    baseline: str = Field(description="What was compared with: a file, or an environment")
    changes: list[Change] = Field(default_factory=list)
    new_tests: list[str] = Field(default_factory=list)
    missing_tests: list[str] = Field(default_factory=list)

    @property
    def regressions(self) -> list[Change]:
        return [c for c in self.changes if c.kind == "regressed"]

    @property
    def improvements(self) -> list[Change]:
        return [c for c in self.changes if c.kind == "improved"]

    def summary(self) -> str:
        """Tests, not lines: a test and the turn that broke it are one regression."""
        regressed = {(c.suite, c.test) for c in self.regressions}
        improved = {(c.suite, c.test) for c in self.improvements} - regressed
        tests = "test" if len(regressed) == 1 else "tests"
        return (
            f"compared with {self.baseline}: {len(regressed)} {tests} regressed, "
            f"{len(improved)} improved, {len(self.new_tests)} new, "
            f"{len(self.missing_tests)} missing"
        )

    def lines(self) -> list[str]:
        shown = [c.line() for c in self.changes]
        shown += [f"NEW {name} (not in the baseline)" for name in self.new_tests]
        shown += [f"MISSING {name} (in the baseline, not run now)" for name in self.missing_tests]
        return [*shown, self.summary()]


EVIDENCE_LIMIT: Final = 300


def one_line(text: str, limit: int = EVIDENCE_LIMIT) -> str:
    """`text` on one line, cut at a word with "…" when longer than `limit` (a line of the
    terminal's report, where an error cut mid-word reads as a different error)."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:  # a word, unless one word (a URL) takes most of the line
        cut = cut[:space]
    return cut.rstrip(" ,;:") + "…"


# -- loading ------------------------------------------------------------------------------------


REGRADE_SCHEMA: Final = "vf-mcp/regrade/v1"


def run_of_report(data: Any) -> Any:
    """The run a report holds: a `--regrade --json` report holds the regraded run under `run`;
    a run report is its own."""
    if isinstance(data, dict) and data.get("schema_version") == REGRADE_SCHEMA:
        return data.get("run")
    return data


def load_run_report(path: Path, flag: str) -> RunResult:
    """The run in a report `vf-mcp eval --json` wrote (or in a regrade report), a v1 one upgraded;
    refused in one line, naming `flag`, when the file cannot be one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"{flag} {path}: cannot be read ({exc.strerror})") from None
    except ValueError:
        raise ConfigurationError(
            f"{flag} {path}: not JSON; give a report written by `vf-mcp eval --json`"
        ) from None
    data = run_of_report(data)
    version = data.get("schema_version") if isinstance(data, dict) else None
    if version not in READABLE_SCHEMA_VERSIONS:
        raise ConfigurationError(
            f"{flag} {path}: its schema is {version or 'missing'}, this vf-mcp reads "
            f"{' and '.join(READABLE_SCHEMA_VERSIONS)}; write the report again with this "
            "version's --json"
        )
    try:
        return RunResult.model_validate(data)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigurationError(
            f"{flag} {path}: not a vf-mcp run report ({where}: {first['msg']})"
        ) from None


def load_baseline(path: Path, suites: Sequence[Suite]) -> RunResult:
    """A `--json` report to compare with, refused in one line when it cannot be one."""
    baseline = load_run_report(path, "--compare")
    ours, theirs = {s.name for s in suites}, {s.name for s in baseline.suites}
    if not ours & theirs:
        raise ConfigurationError(
            f"--compare {path}: a baseline of {_names(theirs)}, not of {_names(ours)}; compare "
            "with a --json report of the same suite"
        )
    return baseline


def _names(names: Iterable[str]) -> str:
    shown = sorted(names)
    return ", ".join(repr(n) for n in shown) if shown else "no suite"


# -- comparing ----------------------------------------------------------------------------------


def _move(before: str, after: str) -> Literal["regressed", "improved"] | None:
    if before in _GOOD and after in _BAD:
        return "regressed"
    if before in _BAD and after == "passed":
        return "improved"
    return None


def _keyed(checks: Iterable[CheckResult]) -> dict[tuple[str, str, int], CheckResult]:
    """Checks by kind, label and which occurrence of that pair they are."""
    seen: Counter[tuple[str, str]] = Counter()
    keyed = {}
    for check in checks:
        pair = (check.kind, check.label)
        keyed[(*pair, seen[pair])] = check
        seen[pair] += 1
    return keyed


class _Comparer:
    def __init__(self, label: str) -> None:
        self.result = Comparison(baseline=label)

    def change(self, old: Transcript, turn: int | None, check: str | None, before: str,
               after: str, evidence: str = "") -> None:  # fmt: skip
        kind = _move(before, after)
        if kind is not None:
            self.result.changes.append(
                Change(
                    kind=kind,
                    suite=old.suite,
                    test=old.key,
                    turn=turn,
                    check=check,
                    before=before,
                    after=after,
                    evidence=evidence,
                )
            )

    def checks(
        self,
        old: Transcript,
        turn: int | None,
        before: Iterable[CheckResult],
        after: Iterable[CheckResult],
    ) -> None:
        now = _keyed(after)
        for key, was in _keyed(before).items():
            new = now.get(key)
            if new is not None:
                self.change(old, turn, was.label, was.outcome, new.outcome, new.evidence)

    def turns(self, old: Transcript, new: Transcript) -> None:
        current = {t.index: t for t in new.turns}
        for was in old.turns:
            now = current.get(was.index)
            if now is None or (now.status is None and was.status is not None):
                why = now.error if now is not None and now.error else "the turn did not run"
                self.change(old, was.index, None, _turn_outcome(was), "error", why)
                continue
            if was.error is None and now.error is not None:
                self.change(old, was.index, None, _turn_outcome(was), "error", now.error)
            self.checks(old, was.index, was.checks, now.checks)

    def test(self, old: Transcript, new: Transcript) -> None:
        first = new.first_failure()
        turn_error = next((t.error for t in new.turns if t.error), "")
        why = new.error or (f"{first.label}: {first.evidence}" if first else turn_error)
        self.change(old, None, None, old.outcome, new.outcome, why)
        if old.kind == "script" and new.kind == "script":
            self.turns(old, new)
        self.checks(old, None, old.checks, new.checks)


def _turn_outcome(turn: TranscriptTurn) -> str:
    if turn.error is not None:
        return "error"
    outcomes = {c.outcome for c in turn.checks}
    return "failed" if outcomes & _BAD else "passed"


def compare(baseline: RunResult, current: RunResult, *, label: str) -> Comparison:
    """What moved from `baseline` to `current`, for the suites both ran."""
    comparer = _Comparer(label)
    shared = {s.name for s in baseline.suites} & {s.name for s in current.suites}
    before = {(t.suite, t.key): t for t in baseline.transcripts if t.suite in shared}
    after = {(t.suite, t.key): t for t in current.transcripts if t.suite in shared}
    for key, old in before.items():
        new = after.get(key)
        if new is None:
            comparer.result.missing_tests.append(f"{key[0]} / {key[1]}")
        elif "skipped" not in (old.outcome, new.outcome):
            comparer.test(old, new)
    comparer.result.new_tests = [f"{s} / {t}" for s, t in after if (s, t) not in before]
    return comparer.result
