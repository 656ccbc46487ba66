"""Tests that start mid-conversation: `--record` keeps the state after every turn, `vf-mcp eval
fork` turns a recorded turn into a test, `from_state` puts the state back with replace_state; a
state that is malformed or from another agent is refused in one line before anything runs."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from mcp import Client

from tests.evaluation_fixtures import ISLA_KEY, isla_emulator, isla_settings
from vf_mcp.config import Settings
from vf_mcp.emulator import Emulator, FaultPlan
from vf_mcp.errors import ScriptError
from vf_mcp.evaluation.cli import main as eval_main
from vf_mcp.evaluation.loader import load_script
from vf_mcp.server import build_server

TRACKING = {
    "name": "Tracking",
    "tests": [
        {
            "id": "track",
            "variables": {"customer": "Alex"},
            "turns": [
                {"launch": True},
                {"choice": "Track an order", "expect": [{"contains": "order number"}]},
                {"message": "My order number is 1001", "expect": [{"contains": "has shipped"}]},
                {"choice": "That's all", "expect": [{"status": "ended"}]},
            ],
            "expect": [{"never": {"contains": "didn't get that"}}],
        }
    ],
}


def main(argv: list[str]) -> int:
    return eval_main(argv, os.environ)


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


@pytest.fixture
def recorded(eval_env: Emulator, tmp_path: Path) -> Path:
    """The tracking conversation recorded against the emulator: its test's cassette."""
    suite = tmp_path / "tracking.yaml"
    suite.write_text(yaml.safe_dump(TRACKING))
    assert main([str(suite), "--record", str(tmp_path / "rec")]) == 0
    return tmp_path / "rec" / "Tracking" / "track.json"


def test_a_recorded_turn_forks_into_a_test_that_runs_green_and_replays(
    recorded: Path,
    eval_env: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cassette = json.loads(recorded.read_text())
    assert cassette["version"] == 2
    assert [s["turn"] for s in cassette["states"]] == [1, 2, 3, 4]
    # The state, not the transcript, is what the recording keeps; its user id is normalised.
    assert cassette["states"][1]["state"]["variables"]["user_id"] == "{user_id}"
    assert not any(e["scope"].endswith("/state") for e in cassette["runtime"])

    forked = tmp_path / "forks" / "track_at_2.yaml"
    assert main(["fork", str(recorded), "--at", "2", "--out", str(forked)]) == 0
    assert f"wrote {forked}" in capsys.readouterr().out
    test = yaml.safe_load(forked.read_text())["tests"][0]
    assert test["from_state"] == {"recording": "../rec/Tracking/track.json", "turn": 2}
    assert [t.get("message") for t in test["turns"]] == ["My order number is 1001", None]
    assert test["turns"][1]["choice"] == "That's all"  # a button of the forked test's own turn
    assert test["expect"] == [{"type": "never", "check": {"type": "contains",
                                                          "value": "didn't get that"}}]  # fmt: skip
    assert "variables" not in test  # the first turn's variables are in the state already

    # Green only from the saved state: to a new user "1001" is no order number at all.
    seen = len(eval_env.requests)
    assert (
        main([str(forked), "--record", str(tmp_path / "rec2"), "--json", str(tmp_path / "r.json")])
        == 0
    )
    puts = [r for r in eval_env.requests[seen:] if r.method == "PUT"]
    assert len(puts) == 1 and puts[0].path.startswith("/state/user/vf-eval-")
    run = json.loads((tmp_path / "r.json").read_text())["suites"][0]["tests"][0]
    assert "has shipped" in run["turns"][0]["agent"]["messages"][0]["text"]

    # Forked at 3, the first turn presses a button of turn 3: it is sent as the button's request.
    at_3 = tmp_path / "forks" / "track_at_3.yaml"
    assert main(["fork", str(recorded), "--at", "3", "--out", str(at_3)]) == 0
    pressed = yaml.safe_load(at_3.read_text())["tests"][0]["turns"][0]
    assert pressed["action"] == {"type": "path-goodbye", "payload": {"label": "That's all"}}
    assert main([str(at_3)]) == 0

    # Under --replay the forked test replays as recorded: its state too, with no runtime.
    monkeypatch.setenv("VOICEFLOW_RUNTIME_URL", "http://127.0.0.1:9")
    seen = len(eval_env.requests)
    assert main([str(forked), "--replay", str(tmp_path / "rec2")]) == 0
    assert len(eval_env.requests) == seen


def test_a_state_file_starts_a_test_and_a_malformed_one_is_refused(
    recorded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = json.loads(recorded.read_text())["states"][1]["state"]
    saved = tmp_path / "saved.json"
    saved.write_text(json.dumps({"user_id": "someone", "exists": True, "state": state}))
    suite = tmp_path / "from_file.yaml"
    test = {"id": "from_file", "from_state": "saved.json",
            "turns": [{"message": "1001", "expect": [{"contains": "has shipped"}]}]}  # fmt: skip
    suite.write_text(yaml.safe_dump({"name": "From a file", "tests": [test]}))
    assert main([str(suite)]) == 0
    capsys.readouterr()

    saved.write_text(json.dumps({"variables": {"a": 1}}))
    report = tmp_path / "report.json"
    assert main([str(suite), "--json", str(report)]) == 2
    line = one_error_line(capsys)
    assert "from_state: the state file" in line and "lacks 'stack' and 'storage'" in line
    assert not report.exists()


def test_a_state_from_another_agent_is_refused_before_anything_runs(
    recorded: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    forked = tmp_path / "fork.yaml"
    assert main(["fork", str(recorded), "--at", "1", "--out", str(forked)]) == 0
    capsys.readouterr()
    with isla_emulator() as other:
        monkeypatch.setenv("VOICEFLOW_API_KEY", ISLA_KEY)
        monkeypatch.setenv("VOICEFLOW_RUNTIME_URL", other.url)
        report = tmp_path / "report.json"
        assert main([str(forked), "--json", str(report)]) == 2
        # Only the probe ran: the other agent's state, read and deleted; no test turn, no PUT.
        assert {r.method for r in other.requests} == {"POST", "GET", "DELETE"}
    line = one_error_line(capsys)
    assert "was saved by another agent" in line and "record the conversation again" in line
    assert not report.exists()


def test_fork_refuses_bad_input_in_one_line_and_writes_nothing(
    recorded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.yaml"
    not_a_recording = tmp_path / "x.json"
    not_a_recording.write_text('{"hello": 1}')
    old = json.loads(recorded.read_text())
    old.update(version=1, script=None, states=[])
    version_1 = tmp_path / "v1.json"
    version_1.write_text(json.dumps(old))
    cases = {
        ("--at", "0"): "--at 0 is out of range",
        ("--at", "4"): "fork at a turn from 1 to 3",
        ("--at", "99"): "--at 99 is out of range",
    }
    for (flag, k), said in cases.items():
        assert main(["fork", str(recorded), flag, k, "--out", str(out)]) == 2
        assert said in one_error_line(capsys)
    # A folder holding one test means that test; one holding two does not say which.
    assert main(["fork", str(recorded.parent.parent), "--at", "1", "--out", str(out)]) == 0
    out.unlink()
    (recorded.parent / "again.json").write_text(recorded.read_text())
    capsys.readouterr()
    for source, said in [
        (not_a_recording, "is not one test's recording"),
        (version_1, "recorded before vf-mcp kept the test and its states"),
        (recorded.parent.parent, "holds 2 recorded tests"),
    ]:
        assert main(["fork", str(source), "--at", "1", "--out", str(out)]) == 2
        assert said in one_error_line(capsys)
    assert not out.exists()
    assert not list(tmp_path.glob(".*partial"))


def test_fork_takes_a_suite_folder_of_one_test_and_counts_a_folder_of_many(
    recorded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.yaml"
    assert main(["fork", str(recorded.parent), "--at", "1", "--out", str(out)]) == 0
    assert yaml.safe_load(out.read_text())["tests"][0]["from_state"]["turn"] == 1
    out.unlink()
    for n in range(4):
        (recorded.parent / f"copy_{n}.json").write_text(recorded.read_text())
    capsys.readouterr()
    assert main(["fork", str(recorded.parent), "--at", "1", "--out", str(out)]) == 2
    assert one_error_line(capsys) == (
        f"vf-mcp eval fork: {recorded.parent} holds 5 recorded tests (copy_0.json, copy_1.json, "
        f"copy_2.json and 2 more); give one test's file, e.g. {recorded.parent}/<test>.json"
    )
    assert main(["fork", str(tmp_path / "rec"), "--at", "1", "--out", str(out)]) == 2
    said = one_error_line(capsys)
    assert "holds 5 recorded tests" in said and said.endswith(f"{tmp_path}/rec/<suite>/<test>.json")
    assert not out.exists()


def test_fork_does_not_overwrite_a_suite_without_force(
    recorded: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.yaml"
    out.write_text("# reviewed by hand\n")
    assert main(["fork", str(recorded), "--at", "1", "--out", str(out)]) == 2
    assert one_error_line(capsys) == (
        f"vf-mcp eval fork: --out {out} already exists (a suite written before, perhaps edited "
        "since), so nothing was written; pass --force to replace it, or choose another --out"
    )
    assert out.read_text() == "# reviewed by hand\n"
    assert main(["fork", str(recorded), "--at", "1", "--out", str(out), "--force"]) == 0
    assert yaml.safe_load(out.read_text())["tests"][0]["from_state"]["turn"] == 1


def test_a_served_suite_names_no_state_outside_the_tests_directory(tmp_path: Path) -> None:
    """The MCP server runs suites from its tests directory or inline: `from_state` must not read
    any other file of the server's machine."""
    tests_dir = tmp_path / "tests"
    tests_dir.mkdir()
    inside: dict[str, Any] = {"name": "S", "tests": [{"id": "t", "from_state": "saved/state.json",
                                      "turns": [{"message": "hi"}]}]}  # fmt: skip
    outside = copy.deepcopy(inside)
    outside["tests"][0]["from_state"] = {"recording": "../rec/S/t.json", "turn": 1}
    (tests_dir / "inside.yaml").write_text(yaml.safe_dump(inside))
    (tests_dir / "outside.yaml").write_text(yaml.safe_dump(outside))

    [suite] = load_script("inside.yaml", tests_dir=tests_dir)
    start = suite.tests[0].from_state
    assert start is not None and start.file == str(tests_dir.resolve() / "saved" / "state.json")
    with pytest.raises(ScriptError, match="is outside the tests directory"):
        load_script("outside.yaml", tests_dir=tests_dir)
    with pytest.raises(ScriptError, match="an inline suite has no folder"):
        load_script(json.dumps(inside))


def test_a_fork_of_a_test_that_started_from_a_state_starts_from_its_own_recording(
    recorded: Path, eval_env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A forked test, recorded and forked again, starts from the new recording's turn, not from
    the state the first fork started from; the recording names that state relative to itself."""
    forked = tmp_path / "forks" / "track_at_2.yaml"
    assert main(["fork", str(recorded), "--at", "2", "--out", str(forked)]) == 0
    assert main([str(forked), "--record", str(tmp_path / "rec2")]) == 0
    [again] = (tmp_path / "rec2").glob("*/*.json")
    kept = json.loads(again.read_text())["script"]["test"]["from_state"]
    assert kept == {"recording": "../../rec/Tracking/track.json", "turn": 2}
    assert str(tmp_path) not in again.read_text()

    twice = tmp_path / "forks" / "twice.yaml"
    assert main(["fork", str(again), "--at", "1", "--out", str(twice)]) == 0
    test = yaml.safe_load(twice.read_text())["tests"][0]
    assert test["from_state"] == {"recording": f"../rec2/{again.parent.name}/{again.name}",
                                  "turn": 1}  # fmt: skip
    capsys.readouterr()
    assert main([str(twice)]) == 0


def test_a_recording_keeps_no_secret_of_the_test_as_written(
    eval_env: Emulator, tmp_path: Path
) -> None:
    key = "VF.DM.0123456789abcdef01234567.secretsecretsecret"
    suite = {"name": "Keys", "tests": [{"id": "t", "variables": {"partner_key": key},
                                        "turns": [{"launch": True}]}]}  # fmt: skip
    path = tmp_path / "keys.yaml"
    path.write_text(yaml.safe_dump(suite))
    assert main([str(path), "--record", str(tmp_path / "rec")]) == 0
    cassette = (tmp_path / "rec" / "Keys" / "t.json").read_text()
    assert "secretsecretsecret" not in cassette
    assert json.loads(cassette)["script"]["test"]["variables"] == {"partner_key": "VF.DM.***"}


def test_fork_refuses_a_turn_whose_state_was_not_kept(
    eval_env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = tmp_path / "tracking.yaml"
    suite.write_text(yaml.safe_dump(TRACKING))
    # The state after turn 1 cannot be read: the recording keeps turns 2 to 4 only.
    eval_env.faults.add(
        FaultPlan(match={"method": "GET", "path_contains": "/state/user/"}, status=400)
    )
    assert main([str(suite), "--record", str(tmp_path / "rec")]) == 0
    assert "the state after turn 1 was not recorded" in capsys.readouterr().out
    out = tmp_path / "out.yaml"
    assert main(["fork", str(tmp_path / "rec"), "--at", "1", "--out", str(out)]) == 2
    line = one_error_line(capsys)
    assert "did not keep the state after turn 1" in line and "turns 2, 3" in line, line
    assert not out.exists()


@pytest.mark.anyio
async def test_the_mcp_tools_check_a_saved_state_before_a_run_is_accepted(
    recorded: Path, settings: Settings, tmp_path: Path
) -> None:
    """run_conversation and start_run ask the agent for its version as `vf-mcp eval` does: a
    state another agent saved is refused before any turn (no PUT), a run never starts."""
    assert main(["fork", str(recorded), "--at", "1", "--out", str(tmp_path / "fork.yaml")]) == 0
    served = settings.model_copy(update={"tests_dir": tmp_path})
    async with Client(build_server(served)) as client:
        same_agent = await client.call_tool("run_conversation", {"script": "fork.yaml"})
    assert not same_agent.is_error
    assert same_agent.structured_content["suites"][0]["tests"][0]["outcome"] == "passed"

    with isla_emulator() as other:
        configured = isla_settings(other).model_copy(update={"tests_dir": tmp_path})
        async with Client(build_server(configured)) as client:
            ran = await client.call_tool("run_conversation", {"script": "fork.yaml"})
            started = await client.call_tool("start_run", {"script": "fork.yaml"})
        methods = {r.method for r in other.requests}
    for result in (ran, started):
        text = "\n".join(getattr(block, "text", "") for block in result.content)
        assert result.is_error and "was saved by another agent" in text, text
    assert "PUT" not in methods  # only the probes: a launch, its state read and deleted
