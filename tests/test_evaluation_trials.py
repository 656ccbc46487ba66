"""Trials: repeat and --repeat, pass^k, flaky tests, the turn cap and its partial report."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from math import comb
from pathlib import Path

import pytest

from tests.canary import CANARY_KEY
from vf_mcp.config import Settings
from vf_mcp.domain.transcript import RunResult, Transcript
from vf_mcp.emulator import Emulator, FaultPlan
from vf_mcp.evaluation.cli import main as eval_main
from vf_mcp.evaluation.connection import ServiceFactory
from vf_mcp.evaluation.loader import load_script
from vf_mcp.evaluation.reports import markdown_report
from vf_mcp.evaluation.runner import RunOptions, run_suites
from vf_mcp.evaluation.script import Suite
from vf_mcp.evaluation.trials import pass_hat_k, summarize, trial_lines

GREETING = {"launch": True, "expect": [{"contains": "Acme order assistant"}]}


def suite(**fields: object) -> Suite:
    return Suite.model_validate({"name": "trials", **fields})


def test_pass_hat_k_is_the_unbiased_estimate() -> None:
    assert pass_hat_k(3, 5, 1) == pytest.approx(3 / 5)
    assert pass_hat_k(3, 5, 2) == pytest.approx(comb(3, 2) / comb(5, 2))
    assert pass_hat_k(3, 5, 4) == 0.0  # no four of these trials all passed
    assert pass_hat_k(5, 5, 5) == 1.0
    with pytest.raises(ValueError, match="k must be between 1 and 5"):
        pass_hat_k(3, 5, 6)


def test_a_test_whose_every_trial_was_cut_says_none_ran_not_a_zero_rate() -> None:
    cut = [
        Transcript(
            suite="s",
            test_id="greets",
            name="greets",
            started_at=datetime.now(UTC),
            outcome="skipped",
            trial=trial,
        )
        for trial in (1, 2)
    ]
    summary = summarize("greets", cut)
    assert (summary.trials, summary.pass_hat_k) == (0, {})
    assert trial_lines([summary]) == ["greets: no trial ran (each was skipped), so no pass rate"]


@pytest.mark.anyio
async def test_a_failing_trial_makes_a_test_flaky_with_its_pass_hat_k(
    settings: Settings, emulator: Emulator
) -> None:
    # Exactly one of the four trials meets a failing runtime: which one does not matter.
    emulator.faults.add(
        FaultPlan.model_validate(
            {"match": {"path_contains": "/interact"}, "times": 1, "status": 500}
        )
    )
    tests = [
        {"id": "greets", "repeat": 4, "turns": [GREETING]},
        {"id": "once", "turns": [GREETING]},
    ]
    run = await run_suites([suite(tests=tests)], ServiceFactory(settings), concurrency=1)
    [result] = run.suites
    assert [(t.test_id, t.trial) for t in result.tests] == [
        ("greets", 1),
        ("greets", 2),
        ("greets", 3),
        ("greets", 4),
        ("once", None),
    ]
    [summary] = result.trials
    assert (summary.test_id, summary.trials, summary.passed, summary.flaky) == (
        "greets",
        4,
        3,
        True,
    )
    assert summary.pass_rate == 0.75
    assert summary.pass_hat_k == {1: 0.75, 2: 0.5, 3: 0.25, 4: 0.0}
    assert run.turns_sent == 5 and run.stopped is None
    report = markdown_report(run)
    assert "## Trials: trials" in report
    assert "- greets: 3/4 trials passed (pass rate 75%, pass^4 0.00) FLAKY" in report


@pytest.mark.anyio
async def test_the_turn_cap_stops_the_run_with_a_partial_report(
    settings: Settings, emulator: Emulator
) -> None:
    tests = [{"id": "two_turns", "turns": [GREETING, {"choice": "Track an order"}]}]
    run = await run_suites(
        [suite(tests=tests)],
        ServiceFactory(settings),
        concurrency=1,
        options=RunOptions(repeat=3, max_turns=3),
    )
    outcomes = [(t.trial, t.outcome, len(t.turns)) for t in run.transcripts]
    # Trial 1 ran both turns; trial 2 was cut after one; trial 3 never started.
    assert outcomes == [(1, "passed", 2), (2, "skipped", 1), (3, "skipped", 0)]
    assert run.turns_sent == 3 == len([r for r in emulator.requests if "/interact" in r.path])
    assert run.stopped is not None and "cap of 3 turns (--max-turns)" in run.stopped
    assert run.transcripts[1].warnings == [run.stopped]
    assert not run.succeeded()
    [summary] = run.suites[0].trials
    assert (summary.trials, summary.passed) == (1, 1)  # cut trials do not count
    assert f"**Stopped early:** {run.stopped}." in markdown_report(run)


def test_repeat_out_of_range_is_a_one_line_configuration_error(
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("VOICEFLOW_API_KEY", CANARY_KEY)
    monkeypatch.setenv("VOICEFLOW_RUNTIME_URL", emulator.url)
    monkeypatch.delenv("VOICEFLOW_PROJECT_ID", raising=False)
    path = tmp_path / "suite.yaml"
    path.write_text(
        json.dumps({"name": "t", "tests": [{"id": "a", "repeat": 5, "turns": [GREETING]}]})
    )

    def errors(argv: list[str]) -> tuple[int, list[str]]:
        code = eval_main(argv, os.environ)
        err = capsys.readouterr().err.strip().splitlines()
        return code, [line for line in err if line.startswith("vf-mcp eval:")]

    assert errors([str(path), "--repeat", "0"]) == (
        2,
        ["vf-mcp eval: --repeat must be between 1 and 100, got 0; see vf-mcp eval --help"],
    )
    assert errors([str(path), "--repeat", "101"])[0] == 2
    code, [line] = errors([str(path), "--max-turns", "4"])
    assert code == 2 and line.startswith(
        "vf-mcp eval: test t / a's repeat is 5, above the run's cap of 4 turns (--max-turns)"
    )
    assert emulator.requests == []  # nothing ran
    path.write_text(
        json.dumps({"name": "t", "tests": [{"id": "a", "repeat": 0, "turns": [GREETING]}]})
    )
    code, [line] = errors([str(path)])
    # A suite that does not validate is bad input (2), not a failed test (1).
    assert code == 2 and "tests.0.repeat: Input should be greater than or equal to 1" in line
    with pytest.raises(Exception, match="share one user"):
        load_script(
            json.dumps(
                {
                    "name": "s",
                    "new_user_per_test": False,
                    "tests": [{"id": "a", "repeat": 2, "turns": [GREETING]}],
                }
            )
        )


def test_repeat_from_the_command_line_and_the_json_report(
    emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("VOICEFLOW_API_KEY", CANARY_KEY)
    monkeypatch.setenv("VOICEFLOW_RUNTIME_URL", emulator.url)
    monkeypatch.delenv("VOICEFLOW_PROJECT_ID", raising=False)
    path = tmp_path / "suite.yaml"
    path.write_text(
        json.dumps(
            {
                "name": "t",
                "tests": [
                    {"id": "a", "turns": [GREETING]},
                    {"id": "b", "repeat": 1, "turns": [GREETING]},
                ],
            }
        )
    )
    report = tmp_path / "run.json"
    assert eval_main([str(path), "--repeat", "2", "--json", str(report)], os.environ) == 0
    out = capsys.readouterr().out
    assert "trials t / a: 2/2 trials passed (pass rate 100%, pass^2 1.00)" in out
    run = RunResult.model_validate_json(report.read_text())
    assert [t.key for t in run.transcripts] == ["a#1", "a#2", "b"]  # b's own repeat wins
    assert run.turns_sent == 3
