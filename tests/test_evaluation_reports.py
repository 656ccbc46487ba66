"""Reports and exports, each checked by its consumer's rules: the strict JUnit XSD, the shipped
transcript JSON Schema, DeepEval's and promptfoo's documented shapes, and our own voiceflow-cli
importer (the export is run again against the emulator)."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import anyio
import jsonschema
import pytest
import yaml
from lxml import etree
from lxml import html as lxml_html

from tests.canary import CANARY_KEY
from tests.evaluation_fixtures import EXAMPLES
from vf_mcp.config import Settings
from vf_mcp.domain.transcript import (
    CheckResult,
    JudgeVerdict,
    RunResult,
    SimulationInfo,
    SuiteResult,
    Transcript,
)
from vf_mcp.emulator import Emulator
from vf_mcp.evaluation.connection import ServiceFactory
from vf_mcp.evaluation.exports import to_deepeval, to_promptfoo, to_voiceflow_cli
from vf_mcp.evaluation.html_report import html_report
from vf_mcp.evaluation.loader import load_path
from vf_mcp.evaluation.reports import json_report, junit_xml, markdown_report
from vf_mcp.evaluation.runner import run_suites
from vf_mcp.evaluation.script import Suite
from vf_mcp.transcripts.render import render_transcript
from vf_mcp.transcripts.schema import SCHEMA_PATH

DEEPEVAL_VENV_PYTHON = Path(__file__).resolve().parent.parent / ".venv-deepeval" / "bin" / "python"

XSD = etree.XMLSchema(etree.parse(str(Path(__file__).parent / "schemas" / "junit-windyroad.xsd")))

CONTROL_CHARACTERS = {
    "name": "Raw control characters",
    "tests": [
        {
            "id": "all_traces",
            "turns": [
                {"launch": True},
                {"event": "all_traces", "expect": [{"contains": "\x01 other control"}]},
            ],
        }
    ],
}


async def run_examples(settings: Settings) -> RunResult:
    suites = [
        *load_path(EXAMPLES / "order_support.passing.yaml"),
        *load_path(EXAMPLES / "order_support.failing.yaml"),
        *load_path(EXAMPLES / "order_support.judged.yaml"),
        Suite.model_validate(CONTROL_CHARACTERS),
    ]
    return await run_suites(suites, ServiceFactory(settings))


@pytest.fixture(scope="module")
def run(emulator_session: Emulator) -> RunResult:
    # Once per module: every report test reads the same run, as a CI job would.
    emulator_session.reset()
    settings = Settings.validated({"api_key": CANARY_KEY, "runtime_url": emulator_session.url})
    return anyio.run(run_examples, settings)


def test_junit_is_valid_against_the_strict_ant_schema(run: RunResult) -> None:
    for allow in (False, True):
        document = etree.fromstring(junit_xml(run, allow_ungraded=allow).encode())
        assert XSD.validate(document), XSD.error_log
    document = etree.fromstring(junit_xml(run).encode())
    suites = document.findall("testsuite")
    assert [s.get("name") for s in suites] == [s.name for s in run.suites]
    passing, failing, judged, control = suites
    assert (passing.get("tests"), passing.get("failures")) == ("9", "0")
    assert (failing.get("tests"), failing.get("failures")) == ("5", "4")
    # Trials are test cases of their own; an unused mock's warning goes to system-err.
    names = [c.get("name") for c in passing.findall("testcase")]
    assert names.count("greeting_is_stable#2") == 1 and "greeting_is_stable" not in names
    # pass^k over the trials is the suite's: a property, and the first lines of its output.
    trials = "3/3 trials passed (pass rate 100%, pass^3 1.00)"
    shown = passing.find("properties/property[@name='trials greeting_is_stable']")
    assert shown is not None and shown.get("value") == trials
    out = passing.findtext("system-out") or ""
    assert out.startswith(f"Trials:\ngreeting_is_stable: {trials}\n\n")
    assert "on_action mock 'chekout' was never asked for" in (failing.findtext("system-err") or "")
    failure = failing.find("testcase[@name='wrong_delivery_day']/failure")
    assert failure is not None and failure.get("type") == "contains"
    assert "arrive on Friday" in (failure.get("message") or "")
    assert "Turn 3" in (failure.text or "")
    # Ungraded criteria fail unless allowed, then they are skipped.
    assert judged.find("testcase/failure").get("type") == "to_grade"  # type: ignore[union-attr]
    allowed = etree.fromstring(junit_xml(run, allow_ungraded=True).encode())
    assert allowed.find("testsuite[3]/testcase/skipped") is not None
    # The agent's raw control characters were replaced, not written into the XML.
    assert "other control characters" in (control.findtext("system-out") or "")


def test_json_report_round_trips_and_matches_the_shipped_schema(run: RunResult) -> None:
    text = json_report(run)
    assert RunResult.model_validate_json(text) == run
    schema = json.loads(SCHEMA_PATH.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    for transcript in json.loads(text)["suites"][1]["tests"]:
        validator.validate(transcript)
    bad = json.loads(text)["suites"][0]["tests"][0] | {"outcome": "maybe"}
    assert not validator.is_valid(bad)


def test_markdown_shows_the_transcript_of_every_failing_test(run: RunResult) -> None:
    report = markdown_report(run)
    assert report.startswith("# vf-mcp evaluation: FAILED")
    assert "## Failed: Order support (failing on purpose) / wrong_delivery_day" in report
    assert "**First failure:** text contains 'arrive on Monday'" in report
    assert "Agent: Order 1001 has shipped and should arrive on Friday." in report
    assert "[FAIL] variable $.order_status equals 'delivered'" in report
    assert "## Failed: Order support (failing on purpose) / missing_button" in report
    assert "## To grade: Order support (judged) / helpful_tracking" in report
    assert "## Failed: Order support (failing on purpose) / still_passes" not in report
    assert "Track an order that has shipped" in report  # in the table, not as a transcript
    # What a mock answered, where in the turn; an unused mock, in the warnings.
    assert (
        "Agent: Ordering 1001 again comes to 42.50 dollars. Taking you to checkout.\n"
        'Custom action: checkout {"order_number":"1001","total":"42.50"}\n'
        'Host [mock]: answers checkout with {"type":"cancel"}\n'
        "Agent: Checkout cancelled. Anything else?"
    ) in report
    assert "- checkout_nobody_answers: on_action mock 'chekout' was never asked for" in report
    assert "Ran: block after_order, flow 411834fa29c2b2825683eddf, block reorder" in report


def test_deepeval_export_has_the_conversational_test_case_shape(run: RunResult) -> None:
    export = to_deepeval(run)
    cases = json.loads(export.to_json())
    assert len(cases) == len(run.transcripts)
    allowed_case = {"name", "scenario", "expected_outcome", "user_description", "chatbot_role",
                    "context", "tags", "additional_metadata", "turns"}  # fmt: skip
    for case in cases:
        assert set(case) <= allowed_case and case["turns"]
        for turn in case["turns"]:
            assert turn["role"] in ("user", "assistant") and isinstance(turn["content"], str)
    tracked = next(c for c in cases if c["name"].endswith("/track_shipped_order"))
    assert tracked["turns"][0]["role"] == "assistant"  # a launch has no user text
    assert [t["role"] for t in tracked["turns"][1:3]] == ["user", "assistant"]
    assert tracked["turns"][3]["content"] == "My order number is 1001"
    judged = next(c for c in cases if c["name"].endswith("/helpful_tracking"))
    assert "when the order will arrive" in judged["expected_outcome"]
    # The named tool of the reorder turn, and the chunk the returns answer was built from.
    reorder = next(c for c in cases if c["name"].endswith("/reorder_with_a_checkout_mock"))
    called = [t for t in reorder["turns"] if t.get("tools_called")]
    assert [t["tools_called"] for t in called] == [
        [{"name": "price_order", "description": "api-tool 6650f0c2a1b2c3d4e5f6a001"}]
    ]
    assert "Payment received" in called[0]["content"]
    returns = next(c for c in cases if c["name"].endswith("/returns_question"))
    [context] = [t["retrieval_context"] for t in returns["turns"] if t.get("retrieval_context")]
    assert len(context) == 1 and "within 30 days of delivery" in context[0]
    # The all_traces event's tool call carries no ref: listed as skipped, not guessed at.
    assert export.skipped == [
        "Raw control characters / all_traces turn 2: tool call call_dbg_1 is not in "
        "tools_called: the runtime did not name it"
    ]

    # The real package, in its own venv (its pins clash with ours); scripts/test builds it.
    python = os.environ.get("VF_MCP_DEEPEVAL_PYTHON") or str(DEEPEVAL_VENV_PYTHON)
    if not Path(python).exists():
        pytest.fail(
            "DeepEval is not installed for the export test: run scripts/test, which creates "
            ".venv-deepeval, or point VF_MCP_DEEPEVAL_PYTHON at a Python that has deepeval"
        )
    code = (
        "import json,sys\nfrom deepeval.test_case import ConversationalTestCase\n"
        "for c in json.load(sys.stdin): ConversationalTestCase.model_validate(c)\nprint('ok')"
    )
    done = subprocess.run(
        [python, "-c", code], input=export.to_json(), capture_output=True, text=True, timeout=60
    )
    assert done.stdout.strip() == "ok", done.stderr


def test_promptfoo_export_grades_recorded_conversations(run: RunResult) -> None:
    # promptfoo itself runs the export in tests/test_promptfoo_export.py; this is its shape.
    export = to_promptfoo(run)
    config = yaml.safe_load(export.to_yaml())
    assert config["providers"] == ["echo"] and config["prompts"] == ["{{transcript}}"]
    assert len(config["tests"]) == len(run.transcripts)
    for test in config["tests"]:
        assert set(test) <= {"description", "vars", "metadata", "assert"}
        assert test["metadata"]["conversationId"]
        for completion in test["vars"]["_conversation"]:
            assert set(completion) == {"input", "output"}
    judged = next(
        t for t in config["tests"] if "helpful_tracking" in t["metadata"]["conversationId"]
    )
    # Criteria for promptfoo's grader, the text check on the turn's own text, in check order.
    assert [a["type"] for a in judged["assert"]] == [
        *("llm-rubric", "contains", "llm-rubric", "llm-rubric")
    ]
    assert judged["assert"][1] == {
        "type": "contains", "value": "shipped", "transform": "context.vars.replies[2].text"
    }  # fmt: skip
    assert judged["vars"]["replies"][2] == {"turn": 3, "text": run_text(run, "helpful_tracking")}
    assert judged["vars"]["_conversation"][2]["input"] == "1001"
    # A grounding check left to grade (no judge in this run) has nothing promptfoo can grade.
    assert export.skipped == [
        "Order support (judged) / grounded_returns_answer: check 'the answer is grounded in the "
        "retrieved knowledge' was left to grade, and promptfoo has nothing to grade it on"
    ]


def run_text(run: RunResult, test_id: str, turn: int = 3) -> str:
    [test] = [t for t in run.transcripts if t.test_id == test_id]
    return test.turns[turn - 1].agent.text


@pytest.mark.anyio
async def test_voiceflow_cli_export_runs_again_through_our_importer(
    run: RunResult, settings: Settings, tmp_path: Path
) -> None:
    passing = RunResult(suites=[run.suites[0]])
    export = to_voiceflow_cli(passing)
    # A raw custom-action result has no voiceflow-cli input type: that test is named, not dropped.
    # A mocked custom action has no voiceflow-cli counterpart either.
    assert [s.split(":")[0] for s in export.skipped] == [
        "Order support (deterministic) / handoff_and_back",
        "Order support (deterministic) / reorder_with_a_checkout_mock",
    ]
    for name, text in export.files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    [suite] = load_path(tmp_path)
    assert suite.dialect == "voiceflow-cli" and suite.new_user_per_test
    result = await run_suites([suite], ServiceFactory(settings))
    assert [t.outcome for t in result.transcripts] == ["passed"] * 7, markdown_report(result)
    exported = yaml.safe_load(
        export.files["tests/Order_support_deterministic_returns_question.yaml"]
    )
    assert exported["interactions"][1]["user"] == {"type": "button", "value": "Ask a question"}
    assert {"type": "traceType", "value": "choice"} in exported["interactions"][0]["agent"][
        "validate"
    ]


def test_the_shipped_schema_is_the_one_the_models_generate() -> None:
    from vf_mcp.transcripts.schema import render_schema

    assert SCHEMA_PATH.read_text() == render_schema(), (
        "the v2 models changed: if on purpose, run "
        "python -c 'import vf_mcp.transcripts.schema as t; t.write_schema()'"
    )


def test_a_v1_transcript_written_before_these_fields_still_validates(run: RunResult) -> None:
    """Transcripts written before trajectory, retrieval, mocks and trials lack those keys."""
    new_keys = {"trajectory", "retrieval", "host_replies", "trial"}

    def older(value: object) -> object:
        if isinstance(value, dict):
            return {k: older(v) for k, v in value.items() if k not in new_keys}
        if isinstance(value, list):
            return [older(v) for v in value]
        return value

    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))
    reorder = next(t for t in run.transcripts if t.test_id == "reorder_with_a_checkout_mock")
    written = json.loads(reorder.model_dump_json())
    assert written["turns"][3]["host_replies"] and written["turns"][3]["trajectory"]
    before = older(written)
    validator.validate(before)
    assert Transcript.model_validate(before).turns[3].trajectory is None
    validator.validate(written)


def test_a_simulated_user_is_named_by_the_model_that_played_it() -> None:
    # The model that graded the goal is the one that played the user: the same chat does both.
    goal = CheckResult(
        kind="goal",
        label="goal: track order 1001",
        outcome="failed",
        verdict=JudgeVerdict(verdict="fail", reasoning="It did not.", model="gpt-test-mini"),
    )
    test = Transcript(
        suite="s",
        test_id="sim",
        name="sim",
        kind="simulated",
        started_at=datetime.now(UTC),
        outcome="failed",
        simulation=SimulationInfo(goal="track order 1001", max_turns=4, stop_reason="turn_limit"),
        checks=[goal],
    )
    run = RunResult(suites=[SuiteResult(name="s", started_at=test.started_at, tests=[test])])
    played = "played by the judge model gpt-test-mini: no persona"
    assert f"Simulated user, {played}" in render_transcript(test)
    assert f"Simulated user, {played}" in lxml_html.fromstring(html_report(run)).text_content()
    assert f"**Simulated user**, {played}" in markdown_report(run)
    relayed = SimulationInfo(goal="g", max_turns=4, tester="voiceflow_agent")
    agent = test.model_copy(update={"simulation": relayed})
    assert "Simulated user, played by another Voiceflow agent" in render_transcript(agent)
