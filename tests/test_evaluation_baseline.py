"""Baselines: `vf-mcp eval --compare BASELINE.json` and `--baseline-environment`, turn by turn.

The agent under test changes between the two runs the way a release changes it: a second
emulator serves the example agent with another greeting.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.canary import CANARY_KEY
from tests.emulator_fixtures import EXAMPLE
from vf_mcp.domain.transcript import CheckResult, RunResult, SuiteResult, Transcript
from vf_mcp.emulator import AgentDefinition, Emulator, FaultMatch, FaultPlan, running_emulator
from vf_mcp.evaluation.baseline import compare
from vf_mcp.evaluation.cli import main as eval_main

SUITE = {
    "name": "Release gate",
    "tests": [
        {
            "id": "greets",
            "turns": [
                {"launch": True, "expect": [{"contains": "Acme order assistant"}]},
                {"choice": "Track an order", "expect": [{"contains": "order number"}]},
            ],
        },
        {
            "id": "new_greeting",
            "turns": [{"launch": True, "expect": [{"contains": "Welcome back"}]}],
        },
    ],
}


@pytest.fixture(scope="module")
def changed_agent() -> Iterator[Emulator]:
    """The example agent after a release that reworded its greeting."""
    data = yaml.safe_load(EXAMPLE.read_text())
    data["nodes"]["welcome"]["steps"][0]["message"] = "Welcome back to Acme. What can I do?"
    with running_emulator([AgentDefinition.model_validate(data)]) as emulator:
        yield emulator


@pytest.fixture
def run_eval(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Any:
    monkeypatch.setenv("VOICEFLOW_API_KEY", CANARY_KEY)
    monkeypatch.delenv("VOICEFLOW_PROJECT_ID", raising=False)

    def run(runtime: Emulator, *argv: str) -> tuple[int, str, str]:
        monkeypatch.setenv("VOICEFLOW_RUNTIME_URL", runtime.url)
        code = eval_main(list(argv), os.environ)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


def test_a_regression_against_the_baseline_exits_3_turn_by_turn(
    emulator: Emulator, changed_agent: Emulator, run_eval: Any, tmp_path: Path
) -> None:
    suite, baseline = tmp_path / "gate.yaml", tmp_path / "baseline.json"
    suite.write_text(json.dumps(SUITE))
    code, _, _ = run_eval(emulator, str(suite), "--json", str(baseline))
    assert code == 1  # new_greeting fails on today's agent: a plain failure
    code, out, _ = run_eval(emulator, str(suite), "--compare", str(baseline))
    assert code == 1 and "compared with " + str(baseline) + ": 0 tests regressed, 0 improved" in out

    report = tmp_path / "report.md"
    code, out, _ = run_eval(
        changed_agent, str(suite), "--compare", str(baseline), "--markdown", str(report)
    )
    assert code == 3
    lines = [line for line in out.splitlines() if line.startswith(("REGRESSED", "IMPROVED"))]
    assert lines[0].startswith("REGRESSED Release gate / greets: passed → failed (text contains")
    assert lines[1].startswith(
        "REGRESSED Release gate / greets · turn 1 · text contains 'Acme order assistant': "
        "passed → failed (the agent said 'Welcome back to Acme. What can I do?')"
    )
    assert lines[2].startswith("IMPROVED Release gate / new_greeting: failed → passed")
    assert lines[3].startswith("IMPROVED Release gate / new_greeting · turn 1 · text contains")
    assert len(lines) == 4  # turn 2 passed in both
    assert f"compared with {baseline}: 1 test regressed, 1 improved, 0 new, 0 missing" in out
    assert f"## Compared with {baseline}" in report.read_text()


def test_a_test_and_its_turn_are_one_regression_with_the_error_cut_at_a_word(
    emulator: Emulator, run_eval: Any, tmp_path: Path
) -> None:
    suite, baseline, now = tmp_path / "gate.yaml", tmp_path / "base.json", tmp_path / "now.json"
    suite.write_text(json.dumps({**SUITE, "tests": SUITE["tests"][:1]}))
    assert run_eval(emulator, str(suite), "--json", str(baseline))[0] == 0
    emulator.faults.add(
        FaultPlan(match=FaultMatch(path_contains="/interact"), times=-1, status=500,
                  body={"message": "the runtime fell over " * 20})
    )  # fmt: skip
    code, out, _ = run_eval(emulator, str(suite), "--compare", str(baseline), "--json", str(now))
    assert code == 3
    assert f"compared with {baseline}: 1 test regressed, 0 improved, 0 new, 0 missing" in out
    error = json.loads(now.read_text())["suites"][0]["tests"][0]["turns"][0]["error"]
    lines = [line for line in out.splitlines() if line.startswith("REGRESSED")]
    assert [line.split(":")[0] for line in lines] == [
        "REGRESSED Release gate / greets",
        "REGRESSED Release gate / greets · turn 1",
        "REGRESSED Release gate / greets · turn 2",
    ]
    assert lines[2].endswith("passed → error (the turn did not run)")
    for line in lines[:2]:  # the runtime's error, cut after a whole word
        said = line.split(" → error (", 1)[1]
        assert said.endswith("…)") and len(said) <= 302
        kept = said.removesuffix("…)")
        assert error.startswith(kept) and error[len(kept)] == " "


def test_a_v1_baseline_still_compares(emulator: Emulator, run_eval: Any, tmp_path: Path) -> None:
    """A report written by an older vf-mcp (transcript schema v1) is read, upgraded, compared."""
    suite = tmp_path / "gate.yaml"
    suite.write_text(json.dumps(SUITE))
    baseline = Path(__file__).parent / "fixtures" / "run-v1.json"
    assert json.loads(baseline.read_text())["schema_version"] == "vf-mcp/transcript/v1"
    code, out, err = run_eval(emulator, str(suite), "--compare", str(baseline))
    assert code == 3 and "--compare" not in err  # progress only: the baseline was read
    lines = [line for line in out.splitlines() if line.startswith(("REGRESSED", "IMPROVED"))]
    # The v1 baseline says new_greeting passed; today's agent does not say "Welcome back".
    assert lines[0].startswith("REGRESSED Release gate / new_greeting: passed → failed")
    assert lines[1].startswith("REGRESSED Release gate / new_greeting · turn 1 · text contains")
    assert len(lines) == 2  # greets passed in both, its v1 turn matched by position and label
    assert f"compared with {baseline}: 1 test regressed, 0 improved, 0 new, 0 missing" in out


def test_a_baseline_of_another_suite_or_schema_is_refused_in_one_line(
    emulator: Emulator, run_eval: Any, tmp_path: Path
) -> None:
    suite = tmp_path / "gate.yaml"
    suite.write_text(json.dumps(SUITE))
    other = tmp_path / "other.json"
    other.write_text(RunResult(suites=[_suite("Checkout suite", [])]).model_dump_json())
    code, out, err = run_eval(emulator, str(suite), "--compare", str(other))
    assert (code, out) == (2, "")
    assert err.strip() == (
        f"vf-mcp eval: --compare {other}: a baseline of 'Checkout suite', not of 'Release gate'; "
        "compare with a --json report of the same suite"
    )
    future = tmp_path / "future.json"
    future.write_text(json.dumps({"schema_version": "vf-mcp/transcript/v3", "suites": []}))
    code, _, err = run_eval(emulator, str(suite), "--compare", str(future))
    assert code == 2 and err.strip() == (
        f"vf-mcp eval: --compare {future}: its schema is vf-mcp/transcript/v3, this vf-mcp reads "
        "vf-mcp/transcript/v1 and vf-mcp/transcript/v2; write the report again with this "
        "version's --json"
    )
    markdown = tmp_path / "report.md"
    markdown.write_text("# vf-mcp evaluation: PASSED\n")
    code, _, err = run_eval(emulator, str(suite), "--compare", str(markdown))
    assert code == 2 and err.strip() == (
        f"vf-mcp eval: --compare {markdown}: not JSON; give a report written by "
        "`vf-mcp eval --json`"
    )
    assert emulator.requests == []


def test_two_environments_of_one_agent(emulator: Emulator, run_eval: Any, tmp_path: Path) -> None:
    suite = tmp_path / "gate.yaml"
    suite.write_text(json.dumps({**SUITE, "tests": SUITE["tests"][:1]}))
    code, out, _ = run_eval(emulator, str(suite), "--baseline-environment", "production")
    assert code == 0
    assert (
        "compared with environment production: 0 tests regressed, 0 improved, 0 new, 0 missing"
        in out
    )
    versions = [r.headers.get("versionid") for r in emulator.requests]
    assert versions == ["production", "production", "development", "development"]


def test_a_baseline_environment_that_cannot_run_refuses_the_comparison(
    emulator: Emulator, run_eval: Any, tmp_path: Path
) -> None:
    """A misspelt environment errs every baseline test; "improved" against that would let any
    run through the regression gate."""
    suite, report = tmp_path / "gate.yaml", tmp_path / "report.md"
    suite.write_text(json.dumps({**SUITE, "tests": SUITE["tests"][:1]}))
    code, out, err = run_eval(
        emulator, str(suite), "--baseline-environment", "nosuchenv", "--markdown", str(report)
    )
    assert code == 2 and "IMPROVED" not in out and not report.exists()
    refusal = [line for line in err.splitlines() if line.startswith("vf-mcp eval:")]
    assert len(refusal) == 1
    assert refusal[0].startswith(
        "vf-mcp eval: --baseline-environment nosuchenv: the baseline environment could not be run"
    )
    assert "Cannot resolve version alias" in refusal[0]
    assert "check that 'nosuchenv' is an environment" in refusal[0]
    versions = {r.headers.get("versionid") for r in emulator.requests}
    assert versions == {"nosuchenv"}  # this run never started


def _suite(name: str, tests: list[Transcript]) -> SuiteResult:
    return SuiteResult(name=name, started_at=datetime.now(UTC), tests=tests)


def _simulated(outcome: str, goal: str, turns: int) -> Transcript:
    from vf_mcp.domain.transcript import TranscriptTurn, UserAction

    return Transcript.model_validate(
        {
            "suite": "s",
            "test_id": "sim",
            "name": "sim",
            "kind": "simulated",
            "started_at": datetime.now(UTC),
            "outcome": outcome,
            "turns": [
                TranscriptTurn(
                    index=i, user=UserAction(kind="message", text="hi"), status="awaiting_user"
                )
                for i in range(1, turns + 1)
            ],
            "checks": [
                CheckResult(kind="goal", label="goal: reorder", outcome=goal),  # type: ignore[arg-type]
                CheckResult(kind="never", label="never: status is error", outcome="passed"),
            ],
        }
    )


def test_simulated_conversations_compare_outcome_and_assertions_not_turns() -> None:
    before = RunResult(suites=[_suite("s", [_simulated("passed", "passed", 3)])])
    after = RunResult(suites=[_suite("s", [_simulated("failed", "failed", 5)])])
    comparison = compare(before, after, label="base.json")
    assert [(c.turn, c.check, c.before, c.after) for c in comparison.changes] == [
        (None, None, "passed", "failed"),
        (None, "goal: reorder", "passed", "failed"),
    ]
