"""`vf-mcp eval --html`: one self-contained page, opened in headless Chromium and read back as
the DOM a person would see."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import html as lxml_html

from tests.browser import dump_dom, screenshot
from tests.canary import CANARY_KEY
from vf_mcp.domain.transcript import (
    AgentReply,
    RunResult,
    SuiteResult,
    Transcript,
    TranscriptTurn,
    UserAction,
)
from vf_mcp.domain.turn import AgentMessage, Card, Media
from vf_mcp.emulator import Emulator
from vf_mcp.evaluation.baseline import Change, Comparison
from vf_mcp.evaluation.cli import main as eval_main
from vf_mcp.evaluation.html_report import html_report
from vf_mcp.evaluation.trials import summarize

SCRIPT_TAG = "<script>document.title='pwned'</script>"
SUITE = f"""\
name: Report
on_failure: continue
tests:
  - id: welcome
    turns:
      - launch: true
        expect:
          - contains: What can I do for you?
  - id: unknown_order
    description: The agent repeats what it was given; the test expects an order it cannot find.
    turns:
      - launch: true
      - choice: Track an order
      - message: "{SCRIPT_TAG}"
        expect:
          - contains: arrive on Friday
"""


@pytest.fixture
def report(monkeypatch: pytest.MonkeyPatch, emulator: Emulator, tmp_path: Path) -> Path:
    monkeypatch.setenv("VOICEFLOW_API_KEY", CANARY_KEY)
    monkeypatch.setenv("VOICEFLOW_RUNTIME_URL", emulator.url)
    for name in ("VOICEFLOW_PROJECT_ID", "VF_MCP_JUDGE_URL", "VF_MCP_JUDGE_MODEL"):
        monkeypatch.delenv(name, raising=False)
    suite = tmp_path / "report.yaml"
    suite.write_text(SUITE)
    page = tmp_path / "out" / "report.html"
    assert eval_main([str(suite), "--html", str(page)], os.environ) == 1
    return page


def test_the_report_shows_each_conversation_as_a_chat(report: Path, tmp_path: Path) -> None:
    dom = lxml_html.fromstring(dump_dom(report))
    welcome, unknown = dom.cssselect("section.vf-test")
    assert (welcome.get("data-outcome"), unknown.get("data-outcome")) == ("passed", "failed")
    # The example agent's welcome and its three buttons, as its web chat shows them.
    first_turn = welcome.cssselect(".vf-turn")[0]
    agent_says = [p.text_content() for p in first_turn.cssselect(".vf-agent .vf-text")]
    assert any("What can I do for you?" in said for said in agent_says)
    buttons = [b.text_content() for b in first_turn.cssselect("button.vf-choice")]
    assert buttons == ["Track an order", "Ask a question", "Talk to a person"]
    assert all(b.get("disabled") is not None for b in first_turn.cssselect("button.vf-choice"))
    # A failed check with its evidence, under the turn it belongs to.
    failed = unknown.cssselect(".vf-turn")[2].cssselect(".vf-check.vf-outcome-failed")
    assert len(failed) == 1
    assert "arrive on Friday" in failed[0].text_content()
    evidence = failed[0].cssselect(".vf-evidence")[0].text_content()
    assert "I couldn't find order" in evidence
    screenshot(report, tmp_path / "report.png")


def test_markup_typed_by_the_user_renders_as_text(report: Path) -> None:
    dom = lxml_html.fromstring(dump_dom(report))
    assert dom.cssselect("title")[0].text_content() == "vf-mcp evaluation: FAILED"  # never ran
    assert dom.cssselect("script") == []
    user = " ".join(p.text_content() for p in dom.cssselect(".vf-user .vf-text"))
    assert SCRIPT_TAG in user
    variables = " ".join(d.text_content() for d in dom.cssselect(".vf-vars dd"))
    assert SCRIPT_TAG in variables  # the captured order number, as the agent stored it


def test_an_agent_message_holding_a_script_tag_renders_as_text(tmp_path: Path) -> None:
    # The runtime strips tags from what it echoes, so the agent's own message is made here.
    said = f"Here it is: {SCRIPT_TAG}<img src=x onerror=alert(1)>"
    turn = TranscriptTurn(
        index=1,
        user=UserAction(kind="launch"),
        agent=AgentReply(
            messages=[
                AgentMessage(kind="text", text=said),
                AgentMessage(
                    kind="card",
                    cards=[Card(title=SCRIPT_TAG, image_url="javascript:alert(1)")],
                ),
                AgentMessage(
                    kind="image", media=Media(kind="image", url="data:image/png;base64,AAAA")
                ),
            ]
        ),
        status="awaiting_user",
    )
    test = Transcript(suite="s", test_id="t", name="t", started_at=datetime.now(UTC),
                      outcome="passed", turns=[turn])  # fmt: skip
    suite = SuiteResult(name="s", started_at=test.started_at, tests=[test])
    page = tmp_path / "script.html"
    page.write_text(html_report(RunResult(suites=[suite])))
    dom = lxml_html.fromstring(dump_dom(page))
    assert dom.cssselect("title")[0].text_content() == "vf-mcp evaluation: PASSED"
    assert dom.cssselect("script") == [] and dom.cssselect("img") == []
    assert said in dom.cssselect(".vf-agent .vf-text")[0].text_content()
    assert dom.cssselect(".vf-card-title")[0].text_content() == SCRIPT_TAG
    attributes = [v for element in dom.iter() for v in element.attrib.values()]
    assert not [v for v in attributes if v.startswith(("javascript:", "data:"))]


def test_the_report_loads_nothing(report: Path) -> None:
    text = report.read_text()
    assert 'http-equiv="Content-Security-Policy"' in text
    assert "default-src 'none'" in text
    assert "<link" not in text and "src=" not in text


def test_trials_and_the_baseline_diff_show_overall_and_under_their_test() -> None:
    started = datetime.now(UTC)
    tests = [
        Transcript(
            suite="s",
            test_id="greet",
            name="greet",
            started_at=started,
            outcome=outcome,
            trial=trial,
        )
        for trial, outcome in ((1, "passed"), (2, "failed"))
    ]
    suite = SuiteResult(name="s", started_at=started, tests=tests,
                        trials=[summarize("greet", tests)])  # fmt: skip
    change = Change(kind="regressed", suite="s", test="greet#2", before="passed", after="failed")
    comparison = Comparison(baseline="base.json", changes=[change])
    dom = lxml_html.fromstring(html_report(RunResult(suites=[suite]), comparison=comparison))
    summary = dom.cssselect("section.vf-summary")[0].text_content()
    assert "greet: 1/2 trials passed (pass rate 50%, pass^2 0.00) FLAKY" in summary
    assert "compared with base.json: 1 regressed" in summary
    first, second = dom.cssselect("section.vf-test")
    assert (first.get("id"), second.get("id")) == ("s--greet-1", "s--greet-2")
    assert [h.text_content() for h in dom.cssselect("section.vf-test h2")] == [
        "greet (trial 1)",
        "greet (trial 2)",
    ]
    assert first.cssselect(".vf-changes") == []
    regressed = second.cssselect(".vf-changes li.vf-regressed")[0].text_content()
    assert regressed == "REGRESSED s / greet#2: passed → failed"
