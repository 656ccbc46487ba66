"""How often vf-mcp's judge agrees with another grader on the same yes/no questions: Voiceflow's
evaluator (the `reference` an import puts on a judged criterion) or people (a CSV of labels).

Agreement is reported as the share of equal verdicts and as Cohen's kappa, which discounts the
agreement two graders would reach by chance given how often each says yes:
kappa = (p_o - p_e) / (1 - p_e), with p_o the observed agreement and p_e the sum over both
answers of the product of the two graders' rates of giving it. Kappa is undefined (None) when
chance agreement is already total (both graders always gave the same one answer).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vf_mcp.domain.transcript import RunResult
from vf_mcp.errors import ScriptError
from vf_mcp.evaluation.checkmodels import JudgeCheck
from vf_mcp.evaluation.script import Suite

LABEL_COLUMNS = ("transcript_id", "criterion", "label")
_YES = frozenset({"true", "yes", "pass", "passed", "1", "y"})
_NO = frozenset({"false", "no", "fail", "failed", "0", "n"})


@dataclass(frozen=True)
class LabelPair:
    """The judge's verdict and the other grader's on one criterion of one conversation."""

    test: str
    criterion: str
    judge: bool
    other: bool


@dataclass(frozen=True)
class Agreement:
    source: str
    """Who the judge is compared with: "Voiceflow's evaluator", "human labels (FILE)"."""
    pairs: tuple[LabelPair, ...]

    @property
    def rate(self) -> float | None:
        if not self.pairs:
            return None
        return sum(p.judge == p.other for p in self.pairs) / len(self.pairs)

    @property
    def kappa(self) -> float | None:
        return cohen_kappa([(p.judge, p.other) for p in self.pairs])

    @property
    def disagreements(self) -> list[LabelPair]:
        return [p for p in self.pairs if p.judge != p.other]

    def lines(self) -> list[str]:
        """What the terminal and the Markdown report show."""
        if not self.pairs:
            return [f"agreement with {self.source}: no criterion graded by both"]
        kappa = "undefined (one answer only)" if self.kappa is None else f"{self.kappa:.2f}"
        lines = [
            f"agreement with {self.source}: {self.rate:.0%} of {len(self.pairs)} verdicts, "
            f"Cohen's kappa {kappa}"
        ]
        for pair in self.disagreements:
            judge, other = ("yes" if v else "no" for v in (pair.judge, pair.other))
            lines.append(
                f"  disagree {pair.test}: {pair.criterion[:80]!r}: judge {judge}, other {other}"
            )
        return lines


def cohen_kappa(pairs: Sequence[tuple[bool, bool]]) -> float | None:
    """Cohen's kappa of two graders' yes/no verdicts on the same items."""
    if not pairs:
        return None
    count = len(pairs)
    observed = sum(a == b for a, b in pairs) / count
    first_yes = sum(a for a, _ in pairs) / count
    second_yes = sum(b for _, b in pairs) / count
    chance = first_yes * second_yes + (1 - first_yes) * (1 - second_yes)
    if chance >= 1:
        return None
    return (observed - chance) / (1 - chance)


def _judged(run: RunResult) -> dict[tuple[str, str], dict[str, bool]]:
    """(suite, test) -> {check id or criterion: passed} for every graded judge check."""
    found: dict[tuple[str, str], dict[str, bool]] = {}
    for transcript in run.transcripts:
        results = transcript.checks + [c for t in transcript.turns for c in t.checks]
        for result in results:
            if result.kind != "judge" or result.outcome not in ("passed", "failed"):
                continue
            verdicts = found.setdefault((transcript.suite, transcript.test_id), {})
            passed = result.outcome == "passed"
            verdicts[str(result.expected)] = passed
            if result.id:
                verdicts[result.id] = passed
    return found


def _judge_checks(suites: Iterable[Suite]) -> Iterable[tuple[Suite, str, JudgeCheck]]:
    for suite in suites:
        for test in suite.tests:
            for check in test.expect:
                if isinstance(check, JudgeCheck):
                    yield suite, test.id, check


def with_voiceflow(suites: Sequence[Suite], run: RunResult) -> Agreement | None:
    """The judge against the Voiceflow verdicts imported as `reference`; None when no suite
    carries any."""
    judged = _judged(run)
    pairs = []
    carried = False
    for suite, test_id, check in _judge_checks(suites):
        if check.reference is None:
            continue
        carried = True
        verdict = judged.get((suite.name, test_id), {}).get(check.id or check.criterion)
        if verdict is not None:
            pairs.append(LabelPair(f"{suite.name} / {test_id}", check.criterion, verdict,
                                   check.reference))  # fmt: skip
    return Agreement("Voiceflow's evaluator", tuple(pairs)) if carried else None


def read_labels(path: Path) -> list[tuple[str, str, bool]]:
    """(transcript id, criterion or check id, label) rows of a labels CSV."""
    try:
        # utf-8-sig: Excel's "CSV UTF-8" starts with a byte-order mark.
        with path.open(newline="", encoding="utf-8-sig") as file:
            rows = list(csv.DictReader(file))
    except OSError as exc:
        raise ScriptError(f"--labels {path}: cannot be read ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise ScriptError(
            f"--labels {path}: is not UTF-8 (byte {exc.start + 1} cannot be read); save it as "
            "CSV UTF-8"
        ) from None
    if rows and not set(LABEL_COLUMNS) <= set(rows[0]):
        raise ScriptError(
            f"--labels {path}: needs the columns {', '.join(LABEL_COLUMNS)}; it has "
            f"{', '.join(rows[0])}"
        )
    return [_label(path, number, row) for number, row in enumerate(rows, start=2)]


def _label(path: Path, number: int, row: dict[str | None, str | None]) -> tuple[str, str, bool]:
    if any(row.get(column) is None for column in LABEL_COLUMNS):
        raise ScriptError(
            f"--labels {path}: line {number} has fewer than {len(LABEL_COLUMNS)} columns; give "
            f"each row {', '.join(LABEL_COLUMNS)}"
        )
    said = (row["label"] or "").strip().lower()
    if said not in _YES | _NO:
        raise ScriptError(
            f"--labels {path}: line {number} has the label {row['label']!r}; use true or "
            "false (yes/no, pass/fail, 1/0)"
        )
    return (row["transcript_id"] or "").strip(), (row["criterion"] or "").strip(), said in _YES


def with_labels(
    suites: Sequence[Suite], run: RunResult, labels: Sequence[tuple[str, str, bool]], source: str
) -> Agreement:
    """The judge against people's labels, matched by transcript id and criterion (or check id)."""
    judged = _judged(run)
    by_transcript = {
        t.imported_from.transcript_id: (s.name, t.id)
        for s in suites
        for t in s.tests
        if t.imported_from is not None
    }
    pairs = []
    for transcript_id, criterion, label in labels:
        key = by_transcript.get(transcript_id)
        verdict = judged.get(key, {}).get(criterion) if key is not None else None
        if key is not None and verdict is not None:
            pairs.append(LabelPair(f"{key[0]} / {key[1]}", criterion, verdict, label))
    return Agreement(source, tuple(pairs))


__all__ = ["Agreement", "LabelPair", "cohen_kappa", "read_labels", "with_labels", "with_voiceflow"]
