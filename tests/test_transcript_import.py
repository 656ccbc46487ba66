"""From production to tests: conversations the emulator ran are read back through the Analytics
API, written as suites (`vf-mcp eval import`), run green against the same agent, graded against
Voiceflow's evaluator and people's labels, and their verdicts written back as properties."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import yaml
from mcp import Client

from tests.canary import CANARY_KEY, CANARY_SECRET
from tests.evaluation_fixtures import FakeJudge, running_judge, verdict
from vf_mcp.app import open_app
from vf_mcp.config import Settings
from vf_mcp.emulator import Emulator, FaultMatch, FaultPlan
from vf_mcp.evaluation.agreement import cohen_kappa
from vf_mcp.evaluation.checkmodels import ChoiceCheck, ContainsCheck, JudgeCheck, StatusCheck
from vf_mcp.evaluation.cli import main as eval_main
from vf_mcp.evaluation.import_cli import parse_until
from vf_mcp.evaluation.importing import transcript_suite
from vf_mcp.evaluation.loader import load_path, suite_from_data
from vf_mcp.evaluation.script import Suite
from vf_mcp.evaluation.write_back import PASSED_PROPERTY
from vf_mcp.retry import RetryPolicy
from vf_mcp.server import build_server
from vf_mcp.voiceflow.analytics import AnalyticsClient
from vf_mcp.voiceflow.analytics_models import PropertyValue, SearchFilters, Transcript

LAUNCH = {"type": "launch"}
TRACK = {"type": "path-ask_order", "payload": {"label": "Track an order"}}
DONE_TALKING = {"type": "path-goodbye", "payload": {"label": "That's all"}}
CRITERION = "The agent tells the user when the order arrives"


def main(argv: list[str]) -> int:
    return eval_main(argv, os.environ)


@pytest.fixture
def production(
    monkeypatch: pytest.MonkeyPatch, emulator: Emulator, project_id: str
) -> dict[str, str]:
    """Three conversations users had: one ended (a button, a capture), one abandoned while the
    host ran a custom action it answered, and one where the user only opened the chat."""
    monkeypatch.setenv("VOICEFLOW_API_KEY", CANARY_KEY)
    monkeypatch.setenv("VOICEFLOW_RUNTIME_URL", emulator.url)
    monkeypatch.setenv("VOICEFLOW_ANALYTICS_URL", emulator.url)
    monkeypatch.setenv("VOICEFLOW_PROJECT_ID", project_id)
    for name in ("VOICEFLOW_ANALYTICS_API_KEY", "VOICEFLOW_ENVIRONMENT", "VF_MCP_JUDGE_URL",
                 "VF_MCP_JUDGE_MODEL", "VF_MCP_JUDGE_API_KEY"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    conversations = {
        "ended": [LAUNCH, TRACK, {"type": "text", "payload": "1001"}, DONE_TALKING],
        "abandoned": [LAUNCH, TRACK, {"type": "text", "payload": "1001"},
                      {"type": "text", "payload": "order it again"}, {"type": "done"}],
        "opened": [LAUNCH],
    }  # fmt: skip
    with httpx.Client(base_url=emulator.url, headers={"Authorization": CANARY_KEY}) as http:
        for user, actions in conversations.items():
            for action in actions:
                answer = http.post(f"/state/user/{user}/interact", json={"action": action})
                assert answer.status_code == 200, answer.text
        found = http.post(f"/v1/transcript/project/{project_id}").json()["transcripts"]
    return {t["sessionID"]: t["id"] for t in found}


def _suites(folder: Path) -> dict[str, Suite]:
    """The suites written in `folder`, by the session (user id) of their conversation."""
    found = {}
    for suite in load_path(folder):
        description = suite.tests[0].description or ""
        found[description.split(",")[0].removeprefix("Session ")] = suite
    return found


def test_imported_conversations_become_suites_that_run_green(
    production: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "imported"
    assert main(["import", "--out", str(out)]) == 0
    stdout, stderr = capsys.readouterr()
    assert (
        stdout.strip()
        == f"vf-mcp eval import: wrote 2 suites to {out}; skipped 1 with no user turn"
    )
    assert "hold users' words" in stderr
    suites = _suites(out)
    assert set(suites) == {"ended", "abandoned"}

    ended = suites["ended"].tests[0]
    assert [t.launch or t.choice or t.message for t in ended.turns] == [
        True, "Track an order", "1001", "That's all",
    ]  # fmt: skip
    assert ChoiceCheck(label="Track an order", proposed=True) in ended.turns[0].expect
    assert ContainsCheck(value="What's your order number?", proposed=True) in ended.turns[1].expect
    assert ended.turns[-1].expect[-1] == StatusCheck(status="ended", proposed=True)
    assert all(check.proposed for turn in ended.turns for check in turn.expect)
    assert ended.imported_from is not None
    assert ended.imported_from.transcript_id == production["ended"]

    abandoned = suites["abandoned"].tests[0]
    assert "abandoned" in (abandoned.description or "")
    assert [m.name for m in abandoned.on_action] == ["checkout"]
    assert abandoned.on_action[0].reply == {"type": "done"}
    assert len(abandoned.turns) == 4  # the answer to the custom action is the mock, not a turn
    # The agent's words after the host's answer join the turn that asked for the custom action.
    assert ChoiceCheck(label="That's all", proposed=True) in abandoned.turns[3].expect

    assert main([str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        "vf-mcp eval: 2 tests: 2 passed, 0 failed, 0 errors, 0 to grade, 0 skipped"
    )


def test_equals_on_request_and_one_session(
    production: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "one"
    assert (
        main(["import", "--session", "ended", "--equals", "--limit", "5", "--out", str(out)]) == 0
    )
    (suite,) = load_path(out)
    first = suite.tests[0].turns[0].expect[0]
    assert first.type == "equals" and first.proposed
    assert first.value.startswith("Hi! I'm the Acme order assistant.")


async def _values(emulator: Emulator, transcript_id: str) -> dict[str, PropertyValue]:
    settings = Settings.validated({"api_key": CANARY_KEY, "analytics_url": emulator.url})
    async with AnalyticsClient(settings) as analytics:
        values = await analytics.property_values(transcript_id)
        names = {p.id: p.name for p in await analytics.properties(_project(emulator))}
        shown = (await analytics.get_transcript(transcript_id)).properties
    # The values show on the transcript too, as Voiceflow's transcript view shows them.
    assert {(p.name, p.value) for p in shown} == {(names[v.property_id], v.value) for v in values}
    return {names[v.property_id]: v for v in values}


def _project(emulator: Emulator) -> str:
    return emulator.agents[0].project_id


def test_verdicts_are_written_back_and_read_again(
    production: dict[str, str], emulator: Emulator, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    out = tmp_path / "imported"
    assert main(["import", "--out", str(out)]) == 0
    assert main([str(out), "--write-back", "--dry-run"]) == 0
    said = capsys.readouterr().out
    assert f"would set {production['ended']}: {PASSED_PROPERTY} = true" in said
    listed = httpx.get(
        f"{emulator.url}/v1/transcript-property/project/{_project(emulator)}",
        headers={"authorization": CANARY_KEY},
    ).json()
    assert listed == {"properties": []}  # a dry run sets nothing

    assert main([str(out), "--write-back"]) == 0
    assert "--write-back set 2 transcript properties" in capsys.readouterr().out
    # Again, for one of them: the property is found by name, not defined a second time.
    assert main([str(next(out.iterdir())), "--write-back"]) == 0
    for session in ("ended", "abandoned"):
        values = anyio.run(_values, emulator, production[session])
        assert values[PASSED_PROPERTY].value == "true"
        assert values[PASSED_PROPERTY].metadata == {"source": "vf-mcp", "reason": ""}
    listed = httpx.get(
        f"{emulator.url}/v1/transcript-property/project/{_project(emulator)}",
        headers={"authorization": CANARY_KEY},
    ).json()
    assert [p["name"] for p in listed["properties"]] == [PASSED_PROPERTY]


def test_cohen_kappa_matches_the_hand_computation() -> None:
    # 5 both yes, 1 judge-only yes, 1 other-only yes, 3 both no: p_o = 8/10; both say yes 6 of
    # 10 times, so p_e = 0.6*0.6 + 0.4*0.4 = 0.52, and kappa = (0.8 - 0.52) / 0.48 = 7/12.
    pairs = [(True, True)] * 5 + [(True, False), (False, True)] + [(False, False)] * 3
    assert cohen_kappa(pairs) == pytest.approx(7 / 12)
    assert cohen_kappa([(True, True), (False, False)]) == pytest.approx(1.0)
    assert cohen_kappa([(True, True), (True, True)]) is None  # chance agreement is total


def _plant_evaluation(emulator: Emulator, verdicts: dict[str, bool]) -> None:
    with httpx.Client(base_url=emulator.url, headers={"authorization": CANARY_KEY}) as http:
        created = http.post(
            "/v1/transcript-evaluation",
            json={"projectID": _project(emulator), "name": "Arrival", "type": "boolean",
                  "prompt": CRITERION, "truePrompt": "yes", "falsePrompt": "no"},
        )  # fmt: skip
        assert created.status_code == 201, created.text
        evaluation_id = created.json()["evaluation"]["id"]
        for transcript_id, value in verdicts.items():
            planted = http.post(
                "/_emulator/transcript-evaluation-results",
                json={"transcriptID": transcript_id, "evaluationID": evaluation_id,
                      "value": value, "reason": "planted"},
            )  # fmt: skip
            assert planted.status_code == 201


def test_judge_agreement_with_voiceflow_and_with_people(
    production: dict[str, str], emulator: Emulator, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    # Voiceflow says yes to both; the judge says yes only where the user ended the chat
    # ("Goodbye"); the people's labels say no to the ended one, yes to the other.
    _plant_evaluation(emulator, {production["ended"]: True, production["abandoned"]: True})
    out = tmp_path / "imported"
    assert main(["import", "--out", str(out)]) == 0
    criteria = [c for s in load_path(out) for c in s.tests[0].expect]
    assert criteria and all(isinstance(c, JudgeCheck) and c.reference is True for c in criteria)
    labels = tmp_path / "labels.csv"
    labels.write_text(
        "transcript_id,criterion,label\n"
        f"{production['ended']},{CRITERION},no\n{production['abandoned']},{CRITERION},yes\n",
        encoding="utf-8",
    )
    judge = FakeJudge([("Goodbye", verdict(True)), ("", verdict(False))])
    with running_judge(judge) as url:
        monkeypatch.setenv("VF_MCP_JUDGE_URL", url)
        monkeypatch.setenv("VF_MCP_JUDGE_MODEL", "fake")
        capsys.readouterr()
        code = main([str(out), "--labels", str(labels), "--markdown", str(tmp_path / "r.md")])
    assert code == 1  # the judge failed the abandoned conversation's criterion
    lines = capsys.readouterr().out.splitlines()
    # Voiceflow: judge (yes, no) vs (yes, yes): p_o = 1/2, p_e = 1/2*1 + 1/2*0 = 1/2, kappa 0.
    # People: judge (yes, no) vs (no, yes): p_o = 0, p_e = 1/2, kappa -1.
    assert "agreement with Voiceflow's evaluator: 50% of 2 verdicts, Cohen's kappa 0.00" in lines
    assert f"agreement with human labels ({labels}): 0% of 2 verdicts, Cohen's kappa -1.00" in lines
    disagreements = [line for line in lines if line.startswith("  disagree")]
    assert len(disagreements) == 3
    assert any("judge no, other yes" in line for line in disagreements)
    assert "## Judge agreement" in (tmp_path / "r.md").read_text(encoding="utf-8")


# -- bad input: one line, exit 2, nothing written ----------------------------------------------


def _one_line_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str], out: Path) -> str:
    code = main(argv)
    stdout, stderr = capsys.readouterr()
    assert code == 2, stderr
    assert stdout == ""
    assert len(stderr.strip().splitlines()) == 1, stderr
    assert CANARY_SECRET not in stderr
    assert not out.exists(), "nothing may be written"
    return stderr


def test_an_unknown_project_is_one_line(
    production: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "never"
    said = _one_line_exit_2(
        ["import", "--project", "nosuchproject", "--out", str(out)], capsys, out
    )
    assert "404" in said and "nosuchproject" in said


def test_a_key_without_analytics_access_is_one_line(
    production: dict[str, str], emulator: Emulator, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    emulator.faults.add(
        FaultPlan(match=FaultMatch(path_contains="/v1/transcript/project"), status=401,
                  body={"statusCode": 401, "message": "Unauthorized", "error": "Unauthorized"})
    )  # fmt: skip
    out = tmp_path / "never"
    said = _one_line_exit_2(["import", "--out", str(out)], capsys, out)
    assert "401" in said and "VOICEFLOW_ANALYTICS_API_KEY" in said


def test_an_empty_search_is_one_line(
    production: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "never"
    said = _one_line_exit_2(["import", "--session", "nobody", "--out", str(out)], capsys, out)
    assert "no transcripts" in said and "sessionID=nobody" in said


def test_a_log_of_unknown_type_writes_nothing(
    production: dict[str, str], emulator: Emulator, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    odd: dict[str, Any] = httpx.get(
        f"{emulator.url}/v1/transcript/{production['ended']}",
        headers={"authorization": CANARY_KEY},
    ).json()
    odd["transcript"]["logs"].insert(2, {"type": "annotation", "data": {}, "createdAt": None})
    emulator.faults.add(
        FaultPlan(match=FaultMatch(path_contains=f"/v1/transcript/{production['ended']}"),
                  status=200, body=odd)
    )  # fmt: skip
    out = tmp_path / "never"
    said = _one_line_exit_2(["import", "--out", str(out)], capsys, out)
    assert "'annotation'" in said and production["ended"] in said
    assert not list(tmp_path.iterdir()), "no staging folder is left behind"


@pytest.mark.anyio
async def test_search_pages_until_a_short_page(
    production: dict[str, str], emulator: Emulator
) -> None:
    settings = Settings.validated({"api_key": CANARY_KEY, "analytics_url": emulator.url})
    async with AnalyticsClient(settings) as analytics:
        every = await analytics.search(_project(emulator), page_size=1)
        two = await analytics.search(_project(emulator), SearchFilters(), limit=2, page_size=1)
    assert sorted(t.id for t in every) == sorted(production.values())
    assert [t.id for t in two] == [t.id for t in every][:2]
    pages = [r for r in emulator.requests if r.path.endswith(f"/project/{_project(emulator)}")]
    # 3 transcripts at 1 a page: 3 full pages and an empty one, then 2 for the limit.
    assert [r.query.get("skip") for r in pages][-6:] == ["0", "1", "2", "3", "0", "1"]


@pytest.mark.anyio
async def test_the_import_transcripts_tool_reads_only_and_returns_suites(
    production: dict[str, str], emulator: Emulator
) -> None:
    settings = Settings.validated(
        {"api_key": CANARY_KEY, "runtime_url": emulator.url, "analytics_url": emulator.url,
         "project_id": _project(emulator), "read_only": True}
    )  # fmt: skip
    async with Client(build_server(settings)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert tools["import_transcripts"].annotations.read_only_hint is True  # type: ignore[union-attr]
        answer = await client.call_tool("import_transcripts", {"session": "ended"})
    assert not answer.is_error, answer.content
    found = answer.structured_content or {}
    assert found["skipped"] == 0
    assert [s["transcript_id"] for s in found["suites"]] == [production["ended"]]
    suite = suite_from_data(yaml.safe_load(found["suites"][0]["suite_yaml"]), source="tool",
                            base_dir=None)  # fmt: skip
    assert suite.tests[0].turns[1].choice == "Track an order"
    assert all(r.method == "GET" or "/v1/transcript/project/" in r.path
               for r in emulator.requests if "/v1/" in r.path)  # fmt: skip


@pytest.mark.anyio
async def test_logs_come_redacted_unless_asked_and_reads_are_retried(
    emulator: Emulator, project_id: str
) -> None:
    async with httpx.AsyncClient(
        base_url=emulator.url, headers={"Authorization": CANARY_KEY}
    ) as http:
        for action in (LAUNCH, {"type": "text", "payload": "mail me at ada@example.com"}):
            answer = await http.post("/state/user/ada/interact", json={"action": action})
            assert answer.is_success
    # One 503 on the search (a read, though a POST) and one on the get: both retried.
    for path in ("/v1/transcript/project", "/v1/transcript/0"):
        emulator.faults.add(FaultPlan(match=FaultMatch(path_contains=path), status=503))
    settings = Settings.validated(
        {"api_key": CANARY_KEY, "analytics_url": emulator.url, "max_retries": 1}
    )
    async with AnalyticsClient(settings, retry=RetryPolicy(max_retries=1, base_delay=0)) as api:
        (found,) = await api.search(project_id, SearchFilters(sessionID="ada"))
        redacted = await api.get_transcript(found.id)
        plain = await api.get_transcript(found.id, unredacted=True)
    said = [log.body.get("payload") for log in redacted.logs if log.type == "action"]
    assert said == [None, "mail me at [EMAIL]"]
    assert [log.body.get("payload") for log in plain.logs if log.type == "action"][1] == (
        "mail me at ada@example.com"
    )
    assert len(emulator.faults.applied) == 2


def test_a_bare_until_date_includes_that_whole_day() -> None:
    assert parse_until("2026-08-31").isoformat() == "2026-08-31T23:59:59.999000+00:00"
    assert parse_until("2026-08-31T10:00:00Z").isoformat() == "2026-08-31T10:00:00+00:00"


def test_a_button_that_sends_an_intent_is_pressed_by_its_label() -> None:
    def log(kind: str, data: dict[str, Any]) -> dict[str, Any]:
        return {"type": kind, "data": data}

    pizza = {"type": "intent", "payload": {"intent": {"name": "order_pizza"}, "query": "Pizza",
                                           "label": "Pizza"}}  # fmt: skip
    buttons = {"type": "choice", "payload": {"buttons": [{"name": "Pizza", "request": pizza}]}}
    typed = {"type": "intent", "payload": {"intent": {"name": "order_pasta"}, "query": "pasta pls"}}
    transcript = Transcript.model_validate(
        {"id": "t1", "sessionID": "s", "projectID": "p", "createdAt": "2026-08-01T00:00:00Z",
         "logs": [log("action", {"type": "launch"}), log("trace", buttons),
                  log("action", pizza), log("trace", buttons), log("action", typed)]}
    )  # fmt: skip
    suite = transcript_suite(transcript)
    assert suite is not None
    steps = suite.tests[0].turns
    assert (steps[1].choice, steps[2].message) == ("Pizza", "pasta pls")


# -- what the review found: each through the CLI (or the tool) against the emulator ------------


def _serve_logs(emulator: Emulator, transcript_id: str, logs: list[tuple[str, Any]]) -> None:
    """From now on, the emulator answers `transcript_id` with these logs (type, data)."""
    answer: dict[str, Any] = httpx.get(
        f"{emulator.url}/v1/transcript/{transcript_id}", headers={"authorization": CANARY_KEY}
    ).json()
    answer["transcript"]["logs"] = [{"type": t, "data": d, "createdAt": None} for t, d in logs]
    emulator.faults.add(
        FaultPlan(match=FaultMatch(path_contains=f"/v1/transcript/{transcript_id}"), times=-1,
                  status=200, body=answer)
    )  # fmt: skip


def _imported_turns(out: Path) -> list[Any]:
    assert main(["import", "--session", "ended", "--out", str(out)]) == 0
    (suite,) = load_path(out)
    return list(suite.tests[0].turns)


def _text(message: str) -> tuple[str, Any]:
    return ("trace", {"type": "text", "payload": {"message": message}})


def _buttons(*buttons: tuple[str, dict[str, Any]]) -> tuple[str, Any]:
    shown = [{"name": name, "request": request} for name, request in buttons]
    return ("trace", {"type": "choice", "payload": {"buttons": shown}})


def test_typed_text_is_not_taken_for_a_text_button(
    production: dict[str, str], emulator: Emulator, tmp_path: Path
) -> None:
    balance = {"type": "text", "payload": "Check account balance"}
    _serve_logs(emulator, production["ended"], [
        ("action", LAUNCH), _text("How can I help?"), _buttons(("Check account balance", balance)),
        ("action", {"type": "text", "payload": "I want to talk to a human"}), _text("Sure."),
        _buttons(("Check account balance", balance)), ("action", balance), _text("It is 5."),
    ])  # fmt: skip
    turns = _imported_turns(tmp_path / "out")
    assert [(t.message, t.choice) for t in turns[1:]] == [
        ("I want to talk to a human", None), (None, "Check account balance"),
    ]  # fmt: skip


def test_a_button_whose_label_repeats_or_is_a_number_is_pressed_by_its_number(
    production: dict[str, str], emulator: Emulator, tmp_path: Path
) -> None:
    def path(name: str) -> dict[str, Any]:
        return {"type": f"path-{name}", "payload": {"label": name}}

    card = {"type": "carousel", "payload": {"layout": "Carousel", "cards": [
        {"id": size, "title": size, "description": {"text": size},
         "buttons": [{"name": "Select", "request": path(size)}]} for size in ("small", "large")
    ]}}  # fmt: skip
    _serve_logs(emulator, production["ended"], [
        ("action", LAUNCH), ("trace", card), ("action", path("large")), _text("Large it is."),
        _buttons(("2", path("two")), ("1", path("one"))), ("action", path("one")), _text("One."),
    ])  # fmt: skip
    turns = _imported_turns(tmp_path / "out")
    # The second "Select", and the second button (labelled "1"): `choice: 1` would press another.
    assert [t.choice for t in turns[1:]] == [2, 2]


def test_a_transcript_that_fails_to_load_is_one_line(
    production: dict[str, str], emulator: Emulator, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    gone = FaultMatch(method="GET", path_contains=f"/v1/transcript/{production['ended']}")
    emulator.faults.add(FaultPlan(match=gone, status=404, body={"message": "Transcript gone"}))
    out = tmp_path / "never"
    said = _one_line_exit_2(["import", "--out", str(out)], capsys, out)
    assert "404" in said and production["ended"] in said

    monkeypatch.setenv("VOICEFLOW_MAX_RETRIES", "0")
    emulator.faults.add(FaultPlan(match=gone, status=500, body={"message": "boom"}))
    assert main(["import", "--out", str(out)]) == 1
    stderr = capsys.readouterr().err
    assert len(stderr.strip().splitlines()) == 1 and "500" in stderr, stderr
    assert not out.exists()


@pytest.mark.anyio
async def test_the_tool_answers_a_transcript_that_fails_to_load_in_one_line(
    production: dict[str, str], emulator: Emulator
) -> None:
    settings = Settings.validated(
        {"api_key": CANARY_KEY, "runtime_url": emulator.url, "analytics_url": emulator.url,
         "project_id": _project(emulator)}
    )  # fmt: skip
    gone = FaultMatch(method="GET", path_contains=f"/v1/transcript/{production['ended']}")
    emulator.faults.add(FaultPlan(match=gone, status=404, body={"message": "Transcript gone"}))
    async with Client(build_server(settings)) as client:
        answer = await client.call_tool("import_transcripts", {"session": "ended"})
    assert answer.is_error
    (text,) = [c.text for c in answer.content if c.type == "text"]
    assert "404" in text and production["ended"] in text and "\n" not in text


def test_a_labels_file_from_a_spreadsheet(
    production: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = tmp_path / "imported"
    assert main(["import", "--session", "ended", "--out", str(out)]) == 0
    assert f"vf-mcp eval import: wrote 1 suite to {out}" in capsys.readouterr().out
    labels = tmp_path / "labels.csv"
    header = b"transcript_id,criterion,label\n"
    for content, expected in [
        (b"\xef\xbb\xbf" + header + b"t1,c,yes\n", None),  # Excel's "CSV UTF-8"
        (header + b"t1,caf\xe9,yes\n", "is not UTF-8"),  # Latin-1
        (header + b"t1\n", "line 2 has fewer than 3 columns"),
    ]:
        labels.write_bytes(content)
        capsys.readouterr()
        with running_judge(FakeJudge([("", verdict(True))])) as url:  # --labels needs a judge
            monkeypatch.setenv("VF_MCP_JUDGE_URL", url)
            monkeypatch.setenv("VF_MCP_JUDGE_MODEL", "fake")
            code = main([str(out), "--labels", str(labels)])
        stdout, stderr = capsys.readouterr()
        if expected is None:
            assert code == 0, stderr
            assert f"agreement with human labels ({labels}): no criterion graded by both" in stdout
        else:
            assert code == 2 and stdout == ""
            assert len(stderr.strip().splitlines()) == 1 and expected in stderr, stderr


@pytest.mark.anyio
async def test_search_stops_when_the_server_ignores_skip(
    production: dict[str, str], emulator: Emulator
) -> None:
    settings = Settings.validated({"api_key": CANARY_KEY, "analytics_url": emulator.url})
    async with AnalyticsClient(settings) as analytics:
        first = await analytics.search_page(_project(emulator), take=2)
        page = {"transcripts": [t.model_dump(mode="json", by_alias=True) for t in first]}
        emulator.faults.add(
            FaultPlan(match=FaultMatch(path_contains="/v1/transcript/project"), times=-1,
                      status=200, body=page)
        )  # fmt: skip
        with anyio.fail_after(5):
            found = await analytics.search(_project(emulator), page_size=2)
    assert [t.id for t in found] == [t.id for t in first]
    # The second page brought nothing new: a server that ignores `skip` would repeat it forever.
    assert len(emulator.faults.applied) == 2


def test_import_into_a_folder_that_holds_those_suites_needs_force(
    production: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "imported"
    assert main(["import", "--out", str(out)]) == 0
    before = {p.name: p.read_text(encoding="utf-8") for p in out.iterdir()}
    (out / next(iter(before))).write_text("# edited by hand\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["import", "--out", str(out)]) == 2
    stdout, stderr = capsys.readouterr()
    assert stdout == "" and len(stderr.strip().splitlines()) == 1, stderr
    assert "--force" in stderr and "already" in stderr
    assert (out / next(iter(before))).read_text(encoding="utf-8") == "# edited by hand\n"
    assert main(["import", "--out", str(out), "--force"]) == 0
    assert {p.name: p.read_text(encoding="utf-8") for p in out.iterdir()} == before


def test_a_trace_without_a_type_is_bad_input_naming_the_log(
    production: dict[str, str], emulator: Emulator, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    _serve_logs(emulator, production["ended"], [
        ("action", LAUNCH), _text("Hi."), ("trace", {"payload": {}}),
        ("action", {"type": "text", "payload": "hello"}),
    ])  # fmt: skip
    out = tmp_path / "never"
    said = _one_line_exit_2(["import", "--out", str(out)], capsys, out)
    assert production["ended"] in said and "log 3" in said and "runtime" not in said


def test_environment_takes_the_id_the_transcripts_carry(
    production: dict[str, str], emulator: Emulator, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    found = httpx.post(
        f"{emulator.url}/v1/transcript/project/{_project(emulator)}",
        headers={"authorization": CANARY_KEY},
    ).json()["transcripts"]
    (environment,) = {t["environmentID"] for t in found}
    assert len(environment) == 24 and int(environment, 16) >= 0  # an ID, not the alias
    out = tmp_path / "by-id"
    assert main(["import", "--environment", environment, "--out", str(out)]) == 0
    assert len(list(out.iterdir())) == 2
    capsys.readouterr()
    said = _one_line_exit_2(
        ["import", "--environment", "development", "--out", str(tmp_path / "never")], capsys,
        tmp_path / "never",
    )  # fmt: skip
    assert "environment ID" in said and "alias" in said


def test_words_yaml_would_change_come_back_the_same(
    production: dict[str, str], emulator: Emulator, tmp_path: Path
) -> None:
    odd = "nel\x85x and\u2028more"
    _serve_logs(emulator, production["ended"], [
        ("action", LAUNCH), _text("Hi."), ("action", {"type": "text", "payload": odd}),
        _text(f"You said {odd}."),
    ])  # fmt: skip
    turns = _imported_turns(tmp_path / "out")
    assert turns[1].message == odd


def test_a_write_back_that_fails_midway_says_how_many_were_set(
    production: dict[str, str], emulator: Emulator, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    out = tmp_path / "imported"
    assert main(["import", "--out", str(out)]) == 0
    value = FaultMatch(method="POST", path_contains="/v1/transcript-property-value")
    emulator.faults.add(FaultPlan(match=value, latency_ms=0))  # the first goes through
    emulator.faults.add(FaultPlan(match=value, status=500, body={"message": "boom"}))
    capsys.readouterr()
    assert main([str(out), "--write-back"]) == 1
    (said,) = [line for line in capsys.readouterr().err.splitlines() if "--write-back" in line]
    assert "set 1 of 2 transcript properties" in said and "500" in said
    assert "the Analytics API may already have applied it" in said and "runtime" not in said


@pytest.mark.anyio
async def test_the_app_keeps_one_analytics_client_and_closes_it(
    production: dict[str, str], emulator: Emulator
) -> None:
    settings = Settings.validated({"api_key": CANARY_KEY, "analytics_url": emulator.url})
    async with open_app(settings) as app:
        analytics = app.analytics()
        assert app.analytics() is analytics  # one pool for every import_transcripts call
        assert len(await analytics.search(_project(emulator))) == 3
    with pytest.raises(RuntimeError, match="closed"):
        await analytics.search(_project(emulator))
