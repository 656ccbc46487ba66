"""`vf-mcp eval --regrade RUN.json [--suite NEW.yaml]`: changed checks and criteria applied to a
finished run's transcripts with no runtime call (the runtime URL refuses connections, and the
emulator sees nothing), the changed verdicts said per test and per check, and in the JSON."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.canary import CANARY_KEY
from tests.evaluation_fixtures import FakeJudge, closed_port_settings, running_judge, verdict
from vf_mcp.emulator import Emulator
from vf_mcp.evaluation.cli import main as eval_main

CHANGED = "The agent offers a refund"
SUITE: dict[str, Any] = {
    "name": "Judged tracking",
    "tests": [
        {
            "id": "track",
            "turns": [
                {"launch": True},
                {"choice": "Track an order"},
                {"message": "1001", "expect": [{"judge": "The agent says when it arrives"}]},
            ],
            "expect": [{"judge": "The agent stays polite"}],
        },
        {"id": "greet", "turns": [{"launch": True, "expect": [{"contains": "Acme"}]}]},
    ],
}


def main(argv: list[str]) -> int:
    return eval_main(argv, os.environ)


def write(path: Path, suite: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(suite))
    return path


@pytest.fixture
def judge(monkeypatch: pytest.MonkeyPatch) -> Any:
    fake = FakeJudge([(CHANGED, verdict(False, reasoning="no refund offered")),
                      ("Criterion:", verdict(True))])  # fmt: skip
    with running_judge(fake) as url:
        monkeypatch.setenv("VF_MCP_JUDGE_URL", url)
        monkeypatch.setenv("VF_MCP_JUDGE_MODEL", "fake-judge")
        yield fake


@pytest.fixture
def finished_run(eval_env: Emulator, judge: FakeJudge, tmp_path: Path) -> Path:
    run = tmp_path / "run.json"
    assert main([str(write(tmp_path / "suite.yaml", SUITE)), "--json", str(run)]) == 0
    assert len(judge.requests) == 2
    return run


@pytest.fixture
def no_runtime(eval_env: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """No key, and a runtime URL where nothing listens: a regrade needs neither."""
    monkeypatch.delenv("VOICEFLOW_API_KEY")
    monkeypatch.setenv("VOICEFLOW_RUNTIME_URL", closed_port_settings().runtime_url)
    return eval_env


def test_a_changed_criterion_changes_the_verdict_with_no_runtime_call(
    finished_run: Path,
    no_runtime: Emulator,
    judge: FakeJudge,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    capsys.readouterr()
    seen, asked = len(no_runtime.requests), len(judge.requests)
    # Unchanged, from the file the run names: nothing changes and the judge is not asked again.
    assert main(["--regrade", str(finished_run)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "vf-mcp eval --regrade: 0 verdicts changed; now 2 passed, 0 failed, 0 errors, "
        "0 to grade, 0 skipped"
    ]
    assert len(judge.requests) == asked

    changed = copy.deepcopy(SUITE)
    changed["tests"][0]["turns"][2]["expect"] = [{"judge": CHANGED}]
    changed["tests"][1]["turns"][0]["expect"].append({"contains": "Goodbye"})
    out = tmp_path / "regraded.json"
    new = write(tmp_path / "new.yaml", changed)
    assert main(["--regrade", str(finished_run), "--suite", str(new), "--json", str(out)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "CHANGED check Judged tracking / track · turn 3 · judge: The agent offers a refund (was "
        "judge: The agent says when it arrives): passed → failed",
        "CHANGED test Judged tracking / track: passed → failed",
        "CHANGED check Judged tracking / greet · turn 1 · text contains 'Goodbye': absent → failed",
        "CHANGED test Judged tracking / greet: passed → failed",
        "vf-mcp eval --regrade: 4 verdicts changed; now 0 passed, 2 failed, 0 errors, "
        "0 to grade, 0 skipped",
    ]
    # Only the new criterion went to the judge; the runtime saw nothing.
    assert [CHANGED in t for t in judge.texts()[asked:]] == [True]
    assert len(no_runtime.requests) == seen
    report = json.loads(out.read_text())
    assert report["schema_version"] == "vf-mcp/regrade/v1"
    assert [(c["test"], c["turn"], c["before"], c["after"]) for c in report["changes"]] == [
        ("track", 3, "passed", "failed"),
        ("track", None, "passed", "failed"),
        ("greet", 1, "absent", "failed"),
        ("greet", None, "passed", "failed"),
    ]
    graded = report["run"]["suites"][0]["tests"][0]["turns"][2]["checks"][0]
    assert graded["evidence"] == "no refund offered"


def test_bad_input_is_one_line_exit_2_and_nothing_written(
    finished_run: Path,
    no_runtime: Emulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    capsys.readouterr()
    other_test = copy.deepcopy(SUITE)
    other_test["tests"][1]["id"] = "welcome"
    other_turn = copy.deepcopy(SUITE)
    other_turn["tests"][0]["turns"][2]["message"] = "1002"
    not_a_run = tmp_path / "not_a_run.json"
    not_a_run.write_text(json.dumps({"schema_version": "vf-mcp/transcript/v1", "suites": 3}))
    suite = str(tmp_path / "suite.yaml")
    out = tmp_path / "out.json"
    cases = [
        (["--regrade", suite], "not JSON; give a report written by"),
        (["--regrade", str(not_a_run)], "not a vf-mcp run report (suites"),
        (["--regrade", str(tmp_path / "none.json")], "cannot be read"),
        (["--regrade", str(finished_run), "--suite", str(write(tmp_path / "a.yaml", other_test))],
         "the run's test Judged tracking / greet is not in"),
        (["--regrade", str(finished_run), "--suite", str(write(tmp_path / "b.yaml", other_turn))],
         "turn 3 1001 in the run, and 1002 in the suite"),
    ]  # fmt: skip
    for argv, said in cases:
        assert main([*argv, "--json", str(out)]) == 2
        captured = capsys.readouterr()
        assert captured.out == ""
        assert len(captured.err.splitlines()) == 1 and said in captured.err, captured.err
    assert not out.exists()


def test_a_v1_run_is_regraded_and_written_as_v2(
    no_runtime: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A report an older vf-mcp wrote (transcript schema v1, by hand in tests/fixtures)."""
    v1_run = Path(__file__).parent / "fixtures" / "run-v1.json"
    suite = {
        "name": "Release gate",
        "tests": [
            {"id": "greets", "turns": [{"launch": True, "expect": [{"contains": "Acme"}]}]},
            # The criterion the v1 run checked is gone: its verdict goes with it.
            {"id": "new_greeting", "turns": [{"launch": True}]},
        ],
    }
    capsys.readouterr()
    out = tmp_path / "regraded.json"
    new = write(tmp_path / "gate.yaml", suite)
    assert main(["--regrade", str(v1_run), "--suite", str(new), "--json", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        "CHANGED check Release gate / new_greeting · turn 1 · text contains 'Welcome back': "
        "passed → absent",
        "vf-mcp eval --regrade: 1 verdict changed; now 2 passed, 0 failed, 0 errors, "
        "0 to grade, 0 skipped",
    ]
    run = json.loads(out.read_text())["run"]
    assert run["schema_version"] == "vf-mcp/transcript/v2"
    image = run["suites"][0]["tests"][0]["turns"][0]["agent"]["messages"][1]
    assert image["media"]["url"] == "https://cdn.example.com/acme.png" and "url" not in image


def test_a_test_stopped_before_its_later_turns_is_not_regraded_as_passed(
    eval_env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run that stopped at a failure on turn 1 of 3 never ran turns 2 and 3: a fixed check on
    turn 1 cannot make the test pass."""
    gate: dict[str, Any] = {
        "name": "Gate",
        "on_failure": "stop",
        "tests": [{"id": "greets", "turns": [
            {"launch": True, "expect": [{"contains": "Zebra"}]},
            {"message": "track my order"},
            {"message": "cancel it", "expect": [{"contains": "cancelled"}]},
        ]}],
    }  # fmt: skip
    run = tmp_path / "run.json"
    suite = write(tmp_path / "gate.yaml", gate)
    assert main([str(suite), "--json", str(run)]) == 1
    assert len(json.loads(run.read_text())["suites"][0]["tests"][0]["turns"]) == 1
    capsys.readouterr()

    gate["tests"][0]["turns"][0]["expect"] = [{"contains": "Acme"}]
    assert main(["--regrade", str(run), "--suite", str(write(suite, gate))]) == 1
    captured = capsys.readouterr()
    assert "CHANGED test Gate / greets: failed → error" in captured.out
    assert captured.err.splitlines() == [
        "warning: Gate / greets: turns 2-3 never ran, so the test cannot pass on a regrade; "
        "run the test again"
    ]


def test_a_regrade_report_is_read_again_and_never_overwrites_its_input(
    finished_run: Path,
    no_runtime: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    regraded = tmp_path / "regraded.json"
    assert main(["--regrade", str(finished_run), "--json", str(regraded)]) == 0
    # The regrade report is a run: it regrades again, and it is a baseline to compare with.
    again = tmp_path / "again.json"
    assert main(["--regrade", str(regraded), "--json", str(again)]) == 0
    assert json.loads(again.read_text())["source"] == str(regraded)
    monkeypatch.setenv("VOICEFLOW_RUNTIME_URL", no_runtime.url)
    monkeypatch.setenv("VOICEFLOW_API_KEY", CANARY_KEY)
    capsys.readouterr()
    greet_only = {"name": SUITE["name"], "tests": [SUITE["tests"][1]]}
    suite = write(tmp_path / "greet.yaml", greet_only)
    assert main([str(suite), "--compare", str(regraded)]) == 0
    compared = capsys.readouterr().out
    assert f"compared with {regraded}" in compared and "0 tests regressed" in compared

    # --json naming the run it reads is refused, and the run is left as it was.
    before = finished_run.read_bytes()
    assert main(["--regrade", str(finished_run), "--json", str(finished_run)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.splitlines()) == 1
    assert "--json would overwrite the run it regrades" in captured.err
    assert finished_run.read_bytes() == before
    assert not list(tmp_path.glob(".*partial"))
