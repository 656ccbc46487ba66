"""Evaluation through the MCP server and the CLI: run_conversation, transcripts, prompt, eval."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from tests.processes import server_env
from vf_mcp.config import Settings
from vf_mcp.emulator import Emulator
from vf_mcp.server import build_server

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "evals"
INLINE = """
name: inline
tests:
  - id: track
    turns:
      - launch: true
        expect:
          - choice: Track an order
      - choice: Track an order
        expect:
          - contains: order number
      - message: "1002"
        expect:
          - variable: $.order_number
            equals: "1002"
          - contains: being prepared
  - id: judged
    turns:
      - launch: true
        expect:
          - judge: The agent greets the user and offers help
"""


def text_of(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


async def test_run_conversation_runs_a_script_with_progress_per_turn(settings: Settings) -> None:
    progress: list[str] = []

    async def on_progress(_p: float, _t: float | None, message: str | None) -> None:
        progress.append(message or "")

    async with Client(build_server(settings)) as client:
        result = await client.call_tool(
            "run_conversation", {"script": INLINE}, progress_callback=on_progress
        )
    assert not result.is_error, text_of(result)
    tests = {t["test_id"]: t for s in result.structured_content["suites"] for t in s["tests"]}
    assert tests["track"]["outcome"] == "passed"
    assert tests["judged"]["outcome"] == "to_grade"  # no judge: the caller grades it
    assert len([m for m in progress if m]) >= 4
    assert "order number" in text_of(result)


async def test_run_conversation_reads_files_only_inside_the_tests_dir(settings: Settings) -> None:
    configured = settings.model_copy(update={"tests_dir": EXAMPLES})
    async with Client(build_server(configured)) as client:
        ok = await client.call_tool("run_conversation", {"script": "order_support.passing.yaml"})
        escape = await client.call_tool("run_conversation", {"script": "../order_support.yaml"})
        broken = await client.call_tool("run_conversation", {"script": "tests: [oops"})
    assert not ok.is_error
    assert all(
        t["outcome"] == "passed" for s in ok.structured_content["suites"] for t in s["tests"]
    )
    assert escape.is_error
    assert broken.is_error


async def test_transcript_tool_and_resource_follow_the_conversation(settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        missing = await client.call_tool("transcript", {"user_id": "tr1"})
        await client.call_tool("interact", {"user_id": "tr1", "launch": True})
        await client.call_tool("interact", {"user_id": "tr1", "choice": "Track an order"})
        await client.call_tool("interact", {"user_id": "tr1", "message": "1001"})
        transcript = await client.call_tool("transcript", {"user_id": "tr1"})
        resource = await client.read_resource("voiceflow://transcripts/tr1")
        await client.call_tool("delete_state", {"user_id": "tr1"})
        forgotten = await client.call_tool("transcript", {"user_id": "tr1"})
    assert missing.is_error and "No transcript" in text_of(missing)
    turns = transcript.structured_content["turns"]
    assert [t["status"] for t in turns] == ["awaiting_user"] * 3
    assert turns[1]["user"]["text"] == "Track an order"
    assert "Order 1001 has shipped" in text_of(transcript)
    assert "Order 1001 has shipped" in resource.contents[0].text
    assert forgotten.is_error


async def test_evaluate_agent_prompt_and_read_only_mode(settings: Settings) -> None:
    async with Client(build_server(settings)) as client:
        prompt = await client.get_prompt(
            "evaluate_agent", {"goal": "track order 1001", "max_turns": "6"}
        )
    text = prompt.messages[0].content.text
    assert "track order 1001" in text and "interact" in text
    read_only = settings.model_copy(update={"read_only": True})
    async with Client(build_server(read_only)) as client:
        assert {t.name for t in (await client.list_tools()).tools} == {
            "get_state",
            "transcript",
            "get_run",
            "import_transcripts",
        }


def eval_command(emulator: Emulator, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vf_mcp", "eval", *args],
        env=server_env(emulator.url),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )


def test_vf_mcp_eval_passes_and_fails_with_a_readable_report(
    emulator: Emulator, tmp_path: Path
) -> None:
    passing = eval_command(
        emulator, str(EXAMPLES / "order_support.passing.yaml"), "--junit", str(tmp_path / "j.xml")
    )
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert (tmp_path / "j.xml").read_text().startswith("<?xml")
    report = tmp_path / "failing.md"
    failing = eval_command(
        emulator, str(EXAMPLES / "order_support.failing.yaml"), "--markdown", str(report)
    )
    assert failing.returncode == 1
    markdown = report.read_text()
    assert markdown.startswith("#")
    assert "Agent:" in markdown or "agent" in markdown.lower()


async def test_run_conversation_refuses_files_outside_and_keys_inside(
    settings: Settings, tmp_path: Path
) -> None:
    secret = tmp_path / "outside" / "secret.yaml"
    secret.parent.mkdir()
    secret.write_text("name: secret\ninteractions: []\n")
    tests_dir = tmp_path / "tests"
    tests_dir.mkdir()
    configured = settings.model_copy(update={"tests_dir": tests_dir})
    escaping = "name: x\ntests:\n  - id: t\n    file: ../outside/secret.yaml\n"
    keyed = (
        "name: k\ntests:\n  - id: t\n    simulate:\n      goal: g\n      tester:\n"
        "        api_key: VF.DM.0123456789abcdef01234567.x\n"
    )
    async with Client(build_server(configured)) as client:
        escape = await client.call_tool("run_conversation", {"script": escaping})
        with_key = await client.call_tool("run_conversation", {"script": keyed})
    assert escape.is_error and "outside the tests directory" in text_of(escape)
    assert with_key.is_error
    assert "VF.DM.0123" not in text_of(with_key)


async def test_an_unknown_check_is_named_with_the_valid_ones(settings: Settings) -> None:
    script = (
        "name: x\ntests:\n  - id: t\n    turns:\n      - launch: true\n"
        "        expect:\n          - criterion: hi\n"
    )
    async with Client(build_server(settings)) as client:
        result = await client.call_tool("run_conversation", {"script": script})
    assert result.is_error
    assert "unknown check ['criterion']: use one of variable, contains" in text_of(result)
