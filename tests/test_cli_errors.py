"""Bad input to every `vf-mcp` command, as a new user would give it: one line on stderr that says
what happened, why and what to do, the documented exit code, and never a traceback.

The serving commands run as real processes (a busy port is met only by a real bind, and their
logging is process-wide); the file and flag cases call the CLI's `run` in this process, which is
what `vf-mcp` calls, so an exception escaping it is exactly the traceback a user would see.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.canary import CANARY_KEY
from tests.evaluation_fixtures import EXAMPLES
from vf_mcp.cli import EXIT_INTERNAL_ERROR, run
from vf_mcp.emulator import Emulator

BROKEN_YAML = "name: x\nsteps: [\n  - bad: {\n"
README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port another process (here: this one) is listening on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def one_line(err: str) -> str:
    """The only line of `err`, after checking it is one line and no traceback."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_every_serving_command_refuses_a_busy_port_before_announcing_itself(
    busy_port: int,
) -> None:
    env = {"PATH": os.environ["PATH"], "VOICEFLOW_API_KEY": CANARY_KEY}
    commands = {
        "emulator": ["emulator", "--port", str(busy_port)],
        "MCP over HTTP": ["--transport", "http", "--port", str(busy_port)],
        "A2A": ["a2a", "--port", str(busy_port)],
    }
    # Started together: three interpreter starts side by side rather than one after another.
    running = {
        name: subprocess.Popen(
            [sys.executable, "-m", "vf_mcp", *argv],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, argv in commands.items()
    }
    for name, process in running.items():
        out, err = process.communicate(timeout=60)
        assert process.returncode == 2, (name, err)
        line = one_line(err)
        assert f"cannot listen on 127.0.0.1:{busy_port}: another process is already listening" in (
            line
        ), name
        assert "choose another port with --port" in line
        # Nothing said it was serving: it never was.
        assert "serving" not in err + out and "listening on http" not in out, name
        if name == "MCP over HTTP":  # README's Troubleshooting quotes it, on the default port
            troubleshooting = README.read_text().split("## Troubleshooting", 1)[1]
            assert line.replace(str(busy_port), "8765") in " ".join(troubleshooting.split())


def test_an_agent_file_that_does_not_load_is_one_line_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "folder.yaml").mkdir()
    (tmp_path / "broken.yaml").write_text(BROKEN_YAML)
    (tmp_path / "other.json").write_text('{"a": 1}')
    (tmp_path / "latin1.yaml").write_bytes("name: café\n".encode("latin-1"))
    cases = {
        "missing.yaml": "cannot be read (No such file or directory)",
        "folder.yaml": "cannot be read (Is a directory)",
        # Was 102 lines of traceback.
        "broken.yaml": "is not valid YAML (expected the node content, but found '-' at line 3, "
        "column 3)",
        "other.json": "project_id: Field required (and 4 more)",
        "latin1.yaml": "is not valid YAML or JSON ('utf-8' codec can't decode byte 0xe9",
    }
    for name, expected in cases.items():
        agent = tmp_path / name
        assert run(["emulator", "--agent", str(agent)]) == 2, name
        line = one_line(capsys.readouterr().err)
        assert line.startswith(f"vf-mcp emulator: agent file {agent}: {expected}"), line
        assert line.endswith("; fix it, or leave out --agent")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["emulator", "--port", "99999"], "--port: must be a port number from 0 to 65535"),
        (["emulator", "--session-ttl", "soon"], "--session-ttl: must be a positive number"),
        (["--transport", "http", "--port", "0"], "--port: must be a port number from 1 to 65535"),
        (["a2a", "--port", "http"], "--port: must be a port number from 1 to 65535"),
    ],
)
def test_a_bad_flag_value_is_refused_by_the_parser_with_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    with pytest.raises(SystemExit) as stopped:
        run(argv)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    # argparse's usage, then the one line that says what is wrong.
    assert expected in err.strip().splitlines()[-1]


def test_an_address_the_emulator_cannot_listen_on_is_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # TEST-NET-1 (RFC 5737) is never an address of this machine.
    assert run(["emulator", "--host", "192.0.2.1"]) == 2
    line = one_line(capsys.readouterr().err)
    assert "cannot listen on 192.0.2.1:0: 192.0.2.1 is not an address of this machine" in line
    assert "pass --host 127.0.0.1" in line


def test_a_suite_file_that_cannot_be_read_exits_2_in_one_line(
    eval_env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty.yaml").write_text("")
    (tmp_path / "broken.yaml").write_text(BROKEN_YAML)
    (tmp_path / "latin1.yaml").write_bytes("name: café\n".encode("latin-1"))
    (tmp_path / "no_suites").mkdir()
    cases = {
        "missing.yaml": "missing.yaml: no such file or directory",
        "empty.yaml": "empty.yaml: a suite must be a mapping with `name` and `tests`",
        "broken.yaml": "broken.yaml: cannot be parsed",
        "latin1.yaml": "latin1.yaml: is not UTF-8 text (invalid continuation byte at byte 9)",
        "no_suites": "no_suites: no suite.yaml and no *.yaml, *.yml or *.json files",
    }
    for name, expected in cases.items():
        # 2, not 1: 1 says a test failed, and none ran.
        assert run(["eval", str(tmp_path / name)]) == 2, name
        assert expected in one_line(capsys.readouterr().err)
    assert not eval_env.requests


def test_report_paths_that_cannot_be_written_are_refused(
    eval_env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    suite = str(EXAMPLES / "order_support.passing.yaml")
    assert run(["eval", suite, "--junit", str(tmp_path)]) == 2
    assert f"--junit {tmp_path} is a folder" in capsys.readouterr().err.splitlines()[-1]
    (tmp_path / "file").write_text("")
    assert run(["eval", suite, "--record", str(tmp_path / "file")]) == 2
    assert "--record" in capsys.readouterr().err.splitlines()[-1]
    assert not eval_env.requests  # both found before anything ran


def test_a_simulated_user_without_a_judge_says_a_judge_is_needed(
    eval_env: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["eval", str(EXAMPLES / "order_support.simulated.yaml")]) == 2
    line = one_line(capsys.readouterr().err)
    assert "test Order support (simulated user) / where_is_my_order (and 1 more) has a " in line
    assert "played by the judge model, and no judge is configured: set VF_MCP_JUDGE_URL" in line
    assert not eval_env.requests


def test_replay_says_which_recording_is_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("VOICEFLOW_API_KEY", raising=False)
    monkeypatch.setenv("VOICEFLOW_RUNTIME_URL", "http://127.0.0.1:9")  # nothing there
    suite = str(EXAMPLES / "order_support.passing.yaml")
    folder = tmp_path / "reports"
    (folder / "old").mkdir(parents=True)
    (folder / "old" / "report.json").write_text('{"schema_version": "vf-mcp/transcript/v1"}')
    cases = {
        tmp_path / "absent": "no such folder; record one first with --record",
        tmp_path: "no recording of suite 'Order support (deterministic)' (nothing in "
        f"{tmp_path}/Order_support_deterministic/); record it first with --record {tmp_path}",
        folder: f"{folder}/old/report.json is not part of a recording (suite: Field required)",
    }
    for where, expected in cases.items():
        assert run(["eval", suite, "--replay", str(where)]) == 2, where
        line = one_line(capsys.readouterr().err)
        assert line.startswith(f"vf-mcp eval: --replay {where}") and expected in line


def test_an_unforeseen_failure_is_one_line_and_its_own_exit_code(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import vf_mcp.demo

    def broken(**_: object) -> int:
        raise RuntimeError("a bug\nover two lines")

    # No input reaches a bug on purpose, so one is put in the demo's place.
    monkeypatch.setattr(vf_mcp.demo, "run_demo", broken)
    monkeypatch.delenv("VF_MCP_LOG_LEVEL", raising=False)
    assert run(["demo"]) == EXIT_INTERNAL_ERROR
    line = one_line(capsys.readouterr().err)
    assert "vf-mcp: internal error (RuntimeError: a bug over two lines); this is a bug" in line
    monkeypatch.setenv("VF_MCP_LOG_LEVEL", "DEBUG")
    assert run(["demo"]) == EXIT_INTERNAL_ERROR
    assert "Traceback" in capsys.readouterr().err  # asked for, by the one who will report it
