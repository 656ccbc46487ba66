"""`vf-mcp eval --html`: one self-contained page to triage a run from, opened in headless
Chromium and read back as the DOM a person would see.

The page under test is the one the README shows (docs/images/html-report.png): the failing
example suite and a suite of this file's own, each test run three times (`--repeat 3`) and
compared with a baseline run of the same suites (`--compare`), where one trial now errs.
`VF_MCP_UPDATE_DOC_IMAGES=1 pytest tests/test_html_report.py` writes the screenshot there again.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import etree
from lxml import html as lxml_html

from tests.browser import dump_dom, screenshot
from tests.canary import CANARY_KEY
from tests.evaluation_fixtures import EXAMPLES
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

DOC_IMAGE = Path(__file__).parent.parent / "docs" / "images" / "html-report.png"
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
FAILING = EXAMPLES / "order_support.failing.yaml"
STILL_PASSES = "Order-support-failing-on-purpose---still_passes"
# With one test at a time, trials run in file order: wrong_delivery_day's three trials send 9
# turns and missing_button's 3, so the 13th turn is still_passes' first trial's launch.
TURNS_BEFORE_STILL_PASSES = 12


@dataclass(frozen=True)
class Triage:
    page: Path
    junit: Path
    dom: lxml_html.HtmlElement
    """The page as Chromium loaded it."""


@pytest.fixture(scope="module")
def triage(emulator_session: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Triage:
    """The report of the run above, rendered once and loaded once in Chromium for every test."""
    out = tmp_path_factory.mktemp("triage")
    suite = out / "report.yaml"
    suite.write_text(SUITE)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("VOICEFLOW_API_KEY", CANARY_KEY)
        env.setenv("VOICEFLOW_RUNTIME_URL", emulator_session.url)
        for name in ("VOICEFLOW_PROJECT_ID", "VF_MCP_JUDGE_URL", "VF_MCP_JUDGE_MODEL"):
            env.delenv(name, raising=False)
        emulator_session.reset()
        run = [str(FAILING), str(suite), "--repeat", "3", "--concurrency", "1"]
        env.chdir(out)  # the baseline reads as the user named it: base.json
        assert eval_main([*run, "--json", "base.json"], os.environ) == 1
        interact = {"path_contains": "interact"}
        emulator_session.faults.add({"match": interact, "times": TURNS_BEFORE_STILL_PASSES})
        emulator_session.faults.add({"match": interact, "times": 1, "status": 500})
        page, junit = out / "report.html", out / "junit.xml"
        reports = ["--compare", "base.json", "--html", str(page), "--junit", str(junit)]
        assert eval_main([*run, *reports], os.environ) == 3  # a regression
        emulator_session.reset()
    return Triage(page, junit, lxml_html.fromstring(dump_dom(page)))


def cells(row: lxml_html.HtmlElement) -> list[str]:
    return [" ".join(" ".join(td.itertext()).split()) for td in row.cssselect("td")]


def test_the_summary_table_comes_first_failures_first_each_row_linking_to_its_test(
    triage: Triage, tmp_path: Path
) -> None:
    dom = triage.dom
    main = dom.cssselect("main")[0]
    # The verdict, the counts, the filters, then the table: before any conversation.
    order = [e.get("class") for e in main if e.tag in ("section", "nav", "table", "div")]
    assert order[:5] == ["vf-summary", "vf-filters", "vf-board", "vf-baseline", "vf-tests"]
    summary = dom.cssselect("section.vf-summary p")[0].text_content()
    assert summary.startswith("7 tests, 21 trials: 5 passed, 15 failed, 1 error")
    rows = dom.cssselect("table.vf-board tbody tr")
    outcomes = [r.get("data-outcome") for r in rows]
    assert outcomes == ["failed"] * 5 + ["error", "passed"]
    assert [c.text_content() for c in dom.cssselect("table.vf-board th")] == [
        "Test", "Outcome", "Trials · pass^k", "Turns", "Time", "What failed",
    ]  # fmt: skip
    still = next(r for r in rows if "still_passes" in r.text_content())
    name, badge, trials, turns, time, problem = cells(still)
    assert (name, badge) == ("still_passes Order support (failing on purpose)", "ERROR")
    assert trials == "2/3, pass^3 0.00, flaky"
    assert turns == "3" and time.endswith(" s")  # one a trial, the first one cut by the 500
    assert problem.startswith("trial 1: ")
    # Every row links to its test's section, which exists once.
    for row in rows:
        target = row.cssselect("a")[0].get("href")
        assert target.startswith("#") and len(dom.cssselect(f"[id='{target[1:]}']")) == 1
    assert dom.cssselect(f"section#{STILL_PASSES}")[0].get("data-outcome") == "error"
    shot = screenshot(triage.page, tmp_path / "report.png", width=1100, height=1500)
    if os.environ.get("VF_MCP_UPDATE_DOC_IMAGES") == "1":
        shutil.copyfile(shot, DOC_IMAGE)


def test_trials_sit_under_their_test_with_the_failing_ones_open(triage: Triage) -> None:
    section = triage.dom.cssselect(f"section#{STILL_PASSES}")[0]
    trials = section.cssselect("details.vf-trial")
    assert [t.get("id") for t in trials] == [f"{STILL_PASSES}--trial-{n}" for n in (1, 2, 3)]
    assert [(t.get("data-outcome"), t.get("open") is not None) for t in trials] == [
        ("error", True),
        ("passed", False),
        ("passed", False),
    ]
    assert "2/3 trials passed" in section.cssselect(".vf-trials")[0].text_content()
    # Each trial holds its own conversation: one turn each, the first cut by the runtime's 500.
    assert [len(t.cssselect(".vf-turn")) for t in trials] == [1, 1, 1]
    assert trials[0].cssselect(".vf-turn .vf-error")
    assert all(len(s.cssselect("details.vf-trial")) == 3 for s in triage.dom.cssselect(".vf-test"))


def test_the_baseline_sits_side_by_side_per_test_and_per_check(triage: Triage) -> None:
    baseline = triage.dom.cssselect("section.vf-baseline")[0]
    assert baseline.cssselect("h2")[0].text_content() == "Compared with base.json"
    assert (
        "1 test regressed, 0 improved, 0 new, 0 missing" in baseline.text_content()
    )  # a test and its turn: one test
    bodies = baseline.cssselect("table.vf-sides tbody")
    assert len(bodies) == 21  # every trial of both runs
    regressed = bodies[0]
    assert regressed.get("class") == "vf-regressed"
    test_row, turn_row = regressed.cssselect("tr")
    assert cells(test_row) == [
        "Order support (failing on purpose) / still_passes#1", "PASS", "ERROR", "REGRESSED",
    ]  # fmt: skip
    assert test_row.cssselect("a")[0].get("href") == f"#{STILL_PASSES}--trial-1"
    where, before, after, evidence = cells(turn_row)
    assert (where, before, after) == ("turn 1", "PASS", "ERROR")
    assert "500" in evidence
    unchanged = [cells(b.cssselect("tr")[0]) for b in bodies[1:]]
    assert ["Report / welcome#1", "PASS", "PASS", ""] in unchanged
    # Under the test too, base and this run side by side.
    moved = triage.dom.cssselect(f"section#{STILL_PASSES} table.vf-sides tbody tr")
    assert [cells(r)[:3] for r in moved] == [
        ["still_passes#1 · test", "PASS", "ERROR"],
        ["still_passes#1 · turn 1", "PASS", "ERROR"],
    ]


def test_filters_by_outcome_are_links_the_stylesheet_answers(triage: Triage) -> None:
    dom = triage.dom
    links = [a.get("href") for a in dom.cssselect("nav.vf-filters a")]
    assert links == ["#top", "#only-not-passed", "#only-failed", "#only-error", "#only-passed"]
    # Each target is an empty element before what it filters: `:target ~` reaches only those.
    main = list(dom.cssselect("main")[0])
    board = main.index(dom.cssselect("table.vf-board")[0])
    for href in links[1:]:
        target = dom.cssselect(href)[0]
        assert main.index(target) < board and not target.text_content()
    style = dom.cssselect("style")[0].text_content()
    assert '#only-failed:target ~ .vf-tests > .vf-test:not([data-outcome="failed"])' in style
    assert dom.cssselect("script") == []


def test_the_report_shows_each_conversation_as_a_chat(triage: Triage) -> None:
    welcome = triage.dom.cssselect("details#Report--welcome--trial-1")[0]
    # The example agent's welcome and its three buttons, as its web chat shows them.
    first_turn = welcome.cssselect(".vf-turn")[0]
    agent_says = [p.text_content() for p in first_turn.cssselect(".vf-agent .vf-text")]
    assert any("What can I do for you?" in said for said in agent_says)
    buttons = [b.text_content() for b in first_turn.cssselect("button.vf-choice")]
    assert buttons == ["Track an order", "Ask a question", "Talk to a person"]
    assert all(b.get("disabled") is not None for b in first_turn.cssselect("button.vf-choice"))
    # The agent's two messages are two lines of the evidence, not a literal "\n".
    [said] = [e.text_content() for e in triage.dom.cssselect(".vf-evidence")
              if "Taking you to checkout." in e.text_content()][:1]  # fmt: skip
    assert "Taking you to checkout.\nCheckout cancelled." in said and "\\n" not in said
    # A failed check with its evidence, under the turn it belongs to.
    unknown = triage.dom.cssselect("details#Report--unknown_order--trial-1")[0]
    failed = unknown.cssselect(".vf-turn")[2].cssselect(".vf-check.vf-outcome-failed")
    assert len(failed) == 1
    assert "arrive on Friday" in failed[0].text_content()
    evidence = failed[0].cssselect(".vf-evidence")[0].text_content()
    assert "I couldn't find order" in evidence


def test_markup_typed_by_the_user_renders_as_text(triage: Triage) -> None:
    dom = triage.dom
    assert dom.cssselect("title")[0].text_content() == "vf-mcp evaluation: FAILED"  # never ran
    assert dom.cssselect("script") == []
    user = " ".join(p.text_content() for p in dom.cssselect(".vf-user .vf-text"))
    assert SCRIPT_TAG in user
    variables = " ".join(d.text_content() for d in dom.cssselect(".vf-vars dd"))
    assert SCRIPT_TAG in variables  # the captured order number, as the agent stored it


def test_junit_gives_each_failing_trial_its_tests_pass_hat_k(triage: Triage) -> None:
    document = etree.parse(str(triage.junit))
    error = document.find(".//testcase[@name='still_passes#1']/error")
    assert error is not None
    assert (error.get("message") or "").endswith(
        "[trial 1; still_passes: 2/3 trials passed (pass rate 67%, pass^3 0.00) FLAKY]"
    )


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


def test_the_report_loads_nothing(triage: Triage) -> None:
    text = triage.page.read_text()
    assert 'http-equiv="Content-Security-Policy"' in text
    assert "default-src 'none'" in text
    assert "<link" not in text and "src=" not in text


def test_a_comparison_without_its_baseline_run_shows_what_moved_and_names_the_rest() -> None:
    started = datetime.now(UTC)
    tests = [
        Transcript(suite="s", test_id="greet", name="greet", started_at=started, outcome=outcome)
        for outcome in ("failed",)
    ]
    suite = SuiteResult(name="s", started_at=started, tests=tests)
    change = Change(kind="regressed", suite="s", test="greet", before="passed", after="failed")
    comparison = Comparison(baseline="base.json", changes=[change], missing_tests=["s / gone"])
    dom = lxml_html.fromstring(html_report(RunResult(suites=[suite]), comparison=comparison))
    [body] = dom.cssselect("section.vf-baseline tbody")
    assert cells(body.cssselect("tr")[0]) == ["s / greet", "PASS", "FAIL", "REGRESSED"]
    named = [li.text_content() for li in dom.cssselect("section.vf-baseline li")]
    assert named == ["MISSING s / gone (in the baseline, not run now)"]
