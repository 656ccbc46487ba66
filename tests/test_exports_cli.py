"""`vf-mcp eval --export FORMAT=PATH`: one run writes every export asked for, each one its own tool
takes (promptfoo's is run by promptfoo in tests/test_promptfoo_export.py, DeepEval's loaded here
by DeepEval itself), from a live run and from a recording alike; a path that cannot take its export
is refused in one line before anything runs."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.evaluation_fixtures import EXAMPLES
from vf_mcp.cli import run
from vf_mcp.emulator import Emulator
from vf_mcp.evaluation.loader import load_path

DEEPEVAL_PYTHON = Path(__file__).resolve().parent.parent / ".venv-deepeval" / "bin" / "python"
SUITES = [
    str(EXAMPLES / "order_support.passing.yaml"),
    str(EXAMPLES / "order_support.failing.yaml"),
]


def exports(folder: Path) -> list[str]:
    return [
        *("--export", f"promptfoo={folder / 'promptfooconfig.yaml'}"),
        *("--export", f"deepeval={folder / 'deepeval.json'}"),
        *("--export", f"voiceflow-cli={folder / 'voiceflow'}"),
    ]


def deepeval_loads(text: str) -> str:
    """What DeepEval's own `ConversationalTestCase` says of the export (its own venv)."""
    python = os.environ.get("VF_MCP_DEEPEVAL_PYTHON") or str(DEEPEVAL_PYTHON)
    if not Path(python).exists():
        pytest.fail("DeepEval is not installed: run scripts/test, which creates .venv-deepeval")
    code = (
        "import json,sys\nfrom deepeval.test_case import ConversationalTestCase\n"
        "print(len([ConversationalTestCase.model_validate(c) for c in json.load(sys.stdin)]))"
    )
    done = subprocess.run(
        [python, "-c", code], input=text, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def test_one_run_writes_every_export_live_and_from_its_recording(
    eval_env: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    live, replayed, recording = tmp_path / "live", tmp_path / "replayed", tmp_path / "recording"
    # The failing suite fails on purpose: exit 1, and every export is written all the same.
    assert run(["eval", *SUITES, "--record", str(recording), *exports(live)]) == 1
    assert run(["eval", *SUITES, "--replay", str(recording), *exports(replayed)]) == 1
    capsys.readouterr()

    promptfoo = yaml.safe_load((live / "promptfooconfig.yaml").read_text(encoding="utf-8"))
    tests = {t["metadata"]["conversationId"] for t in promptfoo["tests"]}
    assert "Order support (deterministic)/track_shipped_order" in tests
    deepeval = (live / "deepeval.json").read_text(encoding="utf-8")
    assert deepeval_loads(deepeval) == str(len(json.loads(deepeval))) != "0"
    # voiceflow-cli's folder reads back as the suite it exported.
    [exported] = load_path(live / "voiceflow")
    assert exported.dialect == "voiceflow-cli" and exported.tests
    # From the recording, the same exports (but the fresh user ids each run draws).
    for name in ("promptfooconfig.yaml", "deepeval.json", "voiceflow/suite.yaml"):
        assert same(replayed / name) == same(live / name), name


def same(path: Path) -> str:
    return re.sub(r"vf-eval-[0-9a-f]{12}", "vf-eval-<id>", path.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("target", "said"),
    [
        ("deepeval={folder}", "--export deepeval={folder}: {folder} is a folder"),
        ("voiceflow-cli={file}", "--export voiceflow-cli={file}: {file} is a file"),
        ("pdf=out.pdf", "'pdf=out.pdf': give FORMAT=PATH, FORMAT one of promptfoo, deepeval"),
    ],
)
def test_an_export_that_cannot_be_written_is_refused_before_the_run(
    eval_env: Emulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    target: str,
    said: str,
) -> None:
    file = tmp_path / "taken.txt"
    file.write_text("")
    where = {"folder": tmp_path, "file": file}
    assert run(["eval", SUITES[0], "--export", target.format(**where)]) == 2
    err = capsys.readouterr().err
    assert said.format(**where) in err
    assert not eval_env.requests  # refused before anything ran
