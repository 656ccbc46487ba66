"""`vf-mcp eval` as a function: exit codes, reports, record and replay, configuration errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.canary import CANARY_KEY
from tests.evaluation_fixtures import EXAMPLES, FakeJudge, running_judge, verdict
from vf_mcp.domain.transcript import RunResult
from vf_mcp.emulator import Emulator, FaultPlan
from vf_mcp.evaluation.cli import main as eval_main


def main(argv: list[str]) -> int:
    """`vf-mcp eval` as the CLI runs it: with the process environment the tests set."""
    return eval_main(argv, os.environ)


@pytest.fixture
def agent_env(monkeypatch: pytest.MonkeyPatch, emulator: Emulator) -> Emulator:
    monkeypatch.setenv("VOICEFLOW_API_KEY", CANARY_KEY)
    monkeypatch.setenv("VOICEFLOW_RUNTIME_URL", emulator.url)
    for name in ("VOICEFLOW_PROJECT_ID", "VOICEFLOW_ENVIRONMENT", "VF_MCP_JUDGE_URL",
                 "VF_MCP_JUDGE_MODEL", "VF_MCP_JUDGE_API_KEY"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    return emulator


def test_passing_suite_exits_0(
    agent_env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "report.md"
    junit = tmp_path / "out" / "junit.xml"
    code = main(
        [
            str(EXAMPLES / "order_support.passing.yaml"),
            "--markdown",
            str(report),
            "--junit",
            str(junit),
        ]
    )
    out, err = capsys.readouterr()
    assert code == 0
    assert out.splitlines() == [
        "trials Order support (deterministic) / greeting_is_stable: 3/3 trials passed "
        "(pass rate 100%, pass^3 1.00)",
        "vf-mcp eval: 7 tests, 9 trials: 9 passed, 0 failed, 0 errors, 0 to grade, 0 skipped",
    ]
    # The suite's header counts as the summary does: tests, and the trials the outcomes count.
    assert "Suite Order support (deterministic): 7 tests, 9 trials" in err
    # Not a terminal: plain progress lines, one per turn and test.
    assert "PASSED Order support (deterministic) / Track an order that has shipped" in err
    assert "turn 3: My order number is 1001 → Order 1001 has shipped" in err
    assert report.read_text().startswith("# vf-mcp evaluation: PASSED")
    assert junit.read_text().startswith('<?xml version="1.0" encoding="UTF-8"?>')


def test_failing_suite_exits_1_with_a_readable_markdown_report(
    agent_env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "failing.md"
    code = main([str(EXAMPLES / "order_support.failing.yaml"), "--markdown", str(report)])
    assert code == 1
    out = capsys.readouterr().out
    assert "1 passed, 4 failed" in out
    # Why each new test failed, in one line each, and the misspelt mock named as a warning.
    assert (
        "FAILED Order support (failing on purpose) / checkout_nobody_answers: custom action "
        "'checkout' is answered: the agent waits for the host to answer the custom action "
        "'checkout' (result types: done, cancel) and no mock answers it"
    ) in out
    assert "tool 'refund_order' runs: tool 'refund_order' ran 0 times; ran: tool price_order" in out
    assert "checkout_nobody_answers: on_action mock 'chekout' was never asked for" in out
    text = report.read_text()
    assert "## Failed: Order support (failing on purpose) / wrong_delivery_day" in text
    assert "User: 1001\nAgent: Order 1001 has shipped and should arrive on Friday." in text


def test_ungraded_criteria_fail_unless_allowed_and_a_judge_grades_them(
    agent_env: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    judged = str(EXAMPLES / "order_support.judged.yaml")
    assert main([judged]) == 1
    assert main([judged, "--allow-ungraded"]) == 0
    assert "2 to grade" in capsys.readouterr().out

    judge = FakeJudge(
        [("Criterion:", verdict(True)), ("Knowledge the agent retrieved", verdict(True))]
    )
    with running_judge(judge) as url:
        monkeypatch.setenv("VF_MCP_JUDGE_URL", url)
        monkeypatch.setenv("VF_MCP_JUDGE_MODEL", "fake-judge")
        assert main([judged]) == 0
    assert len(judge.requests) == 4
    assert sum("Knowledge the agent retrieved" in t for t in judge.texts()) == 1


def test_record_then_replay_without_the_runtime(
    agent_env: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    failing = str(EXAMPLES / "order_support.failing.yaml")
    assert main([failing, "--record", str(tmp_path / "rec")]) == 1
    recorded = capsys.readouterr().out
    monkeypatch.delenv("VOICEFLOW_API_KEY")
    monkeypatch.setenv("VOICEFLOW_RUNTIME_URL", "http://127.0.0.1:9")  # discard port: nothing there
    seen = len(agent_env.requests)
    replay_json = tmp_path / "replay.json"
    assert main([failing, "--replay", str(tmp_path / "rec"), "--json", str(replay_json)]) == 1
    assert capsys.readouterr().out == recorded
    assert len(agent_env.requests) == seen
    assert '"outcome": "failed"' in replay_json.read_text()


def test_bad_input_exits_nonzero_with_one_line(
    agent_env: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([str(tmp_path / "missing.yaml")]) == 2  # 1 would say a test failed
    assert "no such file or directory" in capsys.readouterr().err
    assert main(["--concurrency", "0", str(EXAMPLES)]) == 2
    assert main([]) == 2
    assert main([str(EXAMPLES), "--record", "a", "--replay", "b"]) == 2
    monkeypatch.delenv("VOICEFLOW_API_KEY")
    assert main([str(EXAMPLES / "order_support.passing.yaml")]) == 2  # configuration
    assert "VOICEFLOW_API_KEY is not set" in capsys.readouterr().err


# A test suite started in the background (`scripts/test &`) runs with SIGINT ignored, and a child
# inherits that: Python then never turns Ctrl-C into KeyboardInterrupt. A terminal's foreground
# process has the default, which this gives the run before it starts.
CTRL_C_AS_IN_A_TERMINAL = (
    "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "sys.argv[0] = 'vf-mcp'; runpy.run_module('vf_mcp', run_name='__main__')"
)


def test_ctrl_c_keeps_the_tests_that_finished(agent_env: Emulator, tmp_path: Path) -> None:
    # Two quick tests in order, then one whose turn is still in flight when Ctrl-C comes. The run
    # is its own process and gets a real SIGINT, as from a terminal.
    agent_env.faults.add({"match": {"path_contains": "interact"}, "latency_ms": 0, "times": 2})
    agent_env.faults.add({"match": {"path_contains": "interact"}, "latency_ms": 3000, "times": 1})
    suite = tmp_path / "sequence.yaml"
    suite.write_text(
        "name: sequence\nnew_user_per_test: false\ntests:\n"
        "  - {id: greets, turns: [{launch: true, expect: [{contains: Acme}]}]}\n"
        "  - {id: wrong, turns: [{choice: Track an order, expect: [{contains: never said}]}]}\n"
        "  - {id: tracks, turns: [{message: '1002'}]}\n"
    )
    report = tmp_path / "run.json"
    run_eval = subprocess.Popen(
        [sys.executable, "-c", CTRL_C_AS_IN_A_TERMINAL, "eval", str(suite), "--json", str(report)],
        env=dict(os.environ),  # agent_env set the key and the runtime's URL
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # The wait is long: a loaded machine starts a Python slowly; the test is not about time.
        assert agent_env.wait_for_requests(3, "interact", timeout=90), "no third turn came"
        run_eval.send_signal(signal.SIGINT)
        out, err = run_eval.communicate(timeout=60)
    finally:
        run_eval.kill()
    assert run_eval.returncode == 130, err
    run = RunResult.model_validate_json(report.read_text())
    assert [(t.key, t.outcome) for t in run.transcripts] == [
        ("greets", "passed"),
        ("wrong", "failed"),
    ]
    assert run.stopped is not None and run.stopped.startswith("interrupted (Ctrl-C)")
    assert "FAILED sequence / wrong: text contains 'never said'" in out
    assert out.splitlines()[-1].startswith("vf-mcp eval: 2 tests: 1 passed, 1 failed")


def test_labels_without_a_judge_and_write_back_without_imports_are_refused_before_running(
    agent_env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = str(EXAMPLES / "order_support.passing.yaml")
    labels = tmp_path / "labels.csv"
    labels.write_text("transcript_id,criterion,label\n")
    assert main([suite, "--labels", str(labels)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.splitlines() == [
        f"vf-mcp eval: --labels {labels}: agreement is the judge's with people, and no judge is "
        "configured: set VF_MCP_JUDGE_URL and VF_MCP_JUDGE_MODEL (and VF_MCP_JUDGE_API_KEY)"
    ]
    assert main([suite, "--write-back"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.splitlines() == [
        "vf-mcp eval: --write-back sets verdicts on conversations imported from Voiceflow, and "
        "no test in these suites was imported; write suites with `vf-mcp eval import` first"
    ]
    assert agent_env.requests == []  # refused before anything ran


def test_budget_lines_say_the_error_and_unknown_tokens(
    agent_env: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A judge that reports no `usage`: the test errs on its token budget, not on the latency
    check that also failed, and its tokens are unknown rather than 0."""
    suite, report = tmp_path / "budget.yaml", tmp_path / "budget.md"
    suite.write_text(
        json.dumps(
            {
                "name": "Budget",
                "tests": [
                    {
                        "id": "slow_and_judged",
                        "max_judge_tokens": 100,
                        "turns": [
                            {
                                "launch": True,
                                "expect": [
                                    {"latency_ms": {"max": 200}},
                                    {"judge": "The agent greets the user"},
                                ],
                            }
                        ],
                    }
                ],
            }
        )
    )
    agent_env.faults.add(
        FaultPlan.model_validate({"match": {"path_contains": "/interact"}, "latency_ms": 400,
                                  "times": -1})
    )  # fmt: skip
    monkeypatch.setenv("VF_MCP_JUDGE_MODEL", "fake-judge")
    with running_judge(FakeJudge([("Criterion:", verdict(True))])) as url:
        monkeypatch.setenv("VF_MCP_JUDGE_URL", url)
        assert main([str(suite), "--markdown", str(report)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(
        "ERROR Budget / slow_and_judged: judge tokens at most 100: 1 judge answer carried no "
        "`usage`"
    )
    assert "judge: unknown tokens (1 call, none with usage)" in out
    assert out[-1] == "vf-mcp eval: 1 test: 0 passed, 0 failed, 1 error, 0 to grade, 0 skipped"
    assert "| Budget | slow_and_judged | error | 1 |" in report.read_text()
    assert "| unknown |" in report.read_text()

    # With usage, over the budget: the latency check failed first, and the budget is named too.
    with running_judge(FakeJudge([("Criterion:", verdict(True))], usage=(90, 30))) as url:
        monkeypatch.setenv("VF_MCP_JUDGE_URL", url)
        assert main([str(suite)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("FAILED Budget / slow_and_judged: latency max 200 ms: ")
    assert out[0].endswith(
        "; also judge tokens at most 100: failed (the judge spent 120 tokens (90 in, 30 out, "
        "1 call))"
    )
    assert "judge: 120 tokens (90 in, 30 out, 1 call)" in out


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (
            ["--export", "junit=x.xml"],
            "vf-mcp eval: argument --export: 'junit=x.xml': give FORMAT=PATH, FORMAT one of "
            "promptfoo, deepeval, voiceflow-cli (e.g. --export promptfoo=promptfooconfig.yaml); "
            "see vf-mcp eval --help",
        ),
        (
            ["fork", "--at", "abc"],
            "vf-mcp eval fork: argument --at: invalid int value: 'abc'; see vf-mcp eval fork "
            "--help",
        ),
        (
            [str(EXAMPLES), "--concurrency", "0"],
            "vf-mcp eval: --concurrency must be at least 1; see vf-mcp eval --help",
        ),
        (
            [str(EXAMPLES), "--suite", "new.yaml"],
            "vf-mcp eval: --suite goes with --regrade (a run takes its suites as PATH); see "
            "vf-mcp eval --help",
        ),
        (
            ["import", "--limit", "many"],
            "vf-mcp eval import: argument --limit: invalid int value: 'many'; see vf-mcp eval "
            "import --help",
        ),
    ],
)
def test_an_argument_error_is_one_line_without_the_usage_block(
    agent_env: Emulator, capsys: pytest.CaptureFixture[str], argv: list[str], line: str
) -> None:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert (out, err.splitlines()) == ("", [line])


def test_eval_help_lists_the_regrade_suite_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert (
        "--suite NEW.yaml      with --regrade: the suites as they are now"
        in capsys.readouterr().out
    )
