"""voiceflow-cli's own example files, imported and run unchanged against the emulator."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.evaluation_fixtures import (
    XVD,
    FakeJudge,
    isla_emulator,
    isla_settings,
    judge_client,
    running_judge,
    verdict,
)
from vf_mcp.config import Settings
from vf_mcp.emulator import Emulator
from vf_mcp.errors import ScriptError
from vf_mcp.evaluation.connection import ServiceFactory
from vf_mcp.evaluation.loader import load_path
from vf_mcp.evaluation.runner import run_suite
from vf_mcp.evaluation.script import VoiceflowCliCheck

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def isla() -> Iterator[Emulator]:
    with isla_emulator() as emulator:
        yield emulator


def services_judge() -> FakeJudge:
    """Plays the user by asking about services; the goal is met once the agent lists them."""
    return FakeJudge(
        [
            ("Reference texts:", verdict(True, 0.8, "both are about working hard")),
            ("You play the USER", '{"message": "Hi! What services do you offer?", "done": false}'),
            ("The user's goal:", lambda text: verdict("meditation" in text)),
        ]
    )


def interact_users(emulator: Emulator) -> list[str]:
    return [r.path.split("/")[3] for r in emulator.requests if r.path.endswith("/interact")]


async def test_first_release_example_passes_unchanged(isla: Emulator) -> None:
    isla.reset()
    suite = load_path(XVD / "first_release")[0]
    assert suite.dialect == "voiceflow-cli" and suite.environment == "development"
    assert suite.on_failure == "stop" and not suite.new_user_per_test

    result = await run_suite(suite, ServiceFactory(isla_settings(isla)))

    [test] = result.tests
    assert test.outcome == "passed", test.model_dump_json(indent=1)
    assert [c.kind for c in test.turns[1].checks] == [
        "voiceflow-cli:traceType",
        "voiceflow-cli:contains",
    ]
    assert test.user_id is not None and test.user_id.startswith("test-")
    # Plain interact, versionID from environmentName, exactly what the file says and no more.
    bodies = [r.json for r in isla.requests]
    assert [b["action"] for b in bodies] == [
        {"type": "launch"},
        {"type": "text", "payload": "I am doing well"},
        {"type": "text", "payload": "I have been working very hard"},
    ]
    assert {r.headers.get("versionid") for r in isla.requests} == {"development"}


async def test_head_example_suite_runs_with_the_judge(isla: Emulator) -> None:
    isla.reset()
    suite = load_path(XVD / "head")[0]
    judge = services_judge()
    with running_judge(judge) as url:
        async with judge_client(url) as chat:
            result = await run_suite(suite, ServiceFactory(isla_settings(isla)), judge=chat)

    outcomes = {t.test_id: t.outcome for t in result.tests}
    assert outcomes == {
        "traditional_test": "passed",
        "agent_test": "passed",
        "voiceflow_agent_test": "passed",
    }, [t.model_dump(include={"test_id", "error", "checks"}) for t in result.tests]
    traditional, agent, relayed = result.tests
    similarity = traditional.turns[2].checks[1]
    assert similarity.kind == "voiceflow-cli:similarity" and similarity.verdict is not None
    assert similarity.verdict.score == 0.8 and similarity.verdict.model == "fake-judge"
    # One user for the whole run (no newSessionPerTest) and so no launch in the agent tests.
    assert len({t.user_id for t in result.tests}) == 1
    assert agent.simulation is not None and agent.simulation.stop_reason == "goal_met"
    assert agent.turns[0].user.text == "Hi! What services do you offer?"
    assert "meditation" in agent.turns[0].agent.text
    assert relayed.simulation is not None and relayed.simulation.tester == "voiceflow_agent"
    # voiceflow-cli's quirk, kept: a space before every message but the first trace's, and the
    # runtime opens the tester's answer with a `path` trace.
    assert relayed.turns[0].user.text == " Hi! What services do you offer?"
    # The tester agent ran on its own user id with the key and environment from test_3.yaml.
    tester_users = {u for u in interact_users(isla) if u.startswith("voiceflow-agent-tester-")}
    assert tester_users == {f"voiceflow-agent-tester-{relayed.user_id}"}
    tester_requests = [r for r in isla.requests if "voiceflow-agent-tester-" in r.path]
    assert {r.headers.get("versionid") for r in tester_requests} == {"production"}
    # What cannot be honoured is named, including the key stored in the file.
    assert any("similarityConfig.model" in w for w in result.warnings)
    assert any("openAIConfig.model" in w for w in result.warnings)
    assert any("apiKey" in w for w in result.warnings)
    assert all("emulatorTesterAgent" not in w for w in result.warnings)
    # The similarity prompt holds the agent's raw message and both reference values.
    [similarity_prompt] = [t for t in judge.texts() if "Reference texts:" in t]
    assert "classic" in similarity_prompt and "expressing hard work" in similarity_prompt


async def test_head_example_without_a_judge_is_to_grade_not_failed(isla: Emulator) -> None:
    isla.reset()
    suite = load_path(XVD / "head")[0]
    result = await run_suite(suite, ServiceFactory(isla_settings(isla)))
    traditional, agent, relayed = result.tests
    assert traditional.outcome == "to_grade"
    assert traditional.turns[2].checks[1].outcome == "to_grade"
    assert traditional.turns[2].checks[0].outcome == "passed"  # the regexp still ran
    assert agent.outcome == "to_grade" and "judge model" in agent.checks[0].evidence
    # The Voiceflow tester needs no model to talk: it ran to silence, the goal is left to grade.
    assert relayed.outcome == "to_grade" and relayed.simulation is not None
    assert relayed.simulation.stop_reason == "tester_silent"
    assert [t.user.text for t in relayed.turns] == [
        " Hi! What services do you offer?",  # the quirk above
        " That sounds lovely, thank you!",
    ]


async def test_order_support_suite_uses_every_input_and_validation(settings: Settings) -> None:
    suite = load_path(XVD / "order_support")[0]
    result = await run_suite(suite, ServiceFactory(settings))
    assert [t.outcome for t in result.tests] == ["passed", "passed"], result.model_dump_json()
    buttons, intents = result.tests
    assert buttons.user_id == intents.user_id
    assert buttons.turns[1].user.action == {
        "type": "path-ask_order",
        "payload": {"label": "Track an order"},
    }
    kinds = {c.kind for t in result.tests for turn in t.turns for c in turn.checks}
    assert kinds == {
        "voiceflow-cli:equals",
        "voiceflow-cli:exact_match",
        "voiceflow-cli:traceType",
        "voiceflow-cli:variable",
        "voiceflow-cli:regexp",
        "voiceflow-cli:contains",
    }
    assert intents.turns[0].user.action == {
        "type": "intent",
        "payload": {
            "intent": {"name": "track_order"},
            "entities": [{"name": "order_number", "value": "1002"}],
        },
    }


def _copy_suite(tmp_path: Path, replace: tuple[str, str], file: str = "buttons.yaml") -> Path:
    target = tmp_path / "suite"
    shutil.copytree(XVD / "order_support", target)
    path = target / "tests" / file
    text = path.read_text()
    assert replace[0] in text
    path.write_text(text.replace(replace[0], replace[1]))
    return target


async def test_first_failure_stops_the_rest_of_the_test_and_the_suite(
    settings: Settings, tmp_path: Path
) -> None:
    suite = load_path(_copy_suite(tmp_path, ("value: Alex", "value: Alexandra")))[0]
    result = await run_suite(suite, ServiceFactory(settings))
    buttons, intents = result.tests
    assert buttons.outcome == "failed" and len(buttons.turns) == 1
    failed = [c for c in buttons.turns[0].checks if c.outcome == "failed"]
    assert [c.evidence.split(";")[0] for c in failed] == ["profile.name is 'Alex'"]
    assert intents.outcome == "skipped" and not intents.turns


async def test_button_labels_match_exactly_as_in_voiceflow_cli(
    settings: Settings, tmp_path: Path
) -> None:
    suite = load_path(_copy_suite(tmp_path, ("value: Track an order", "value: track an order")))[0]
    result = await run_suite(suite, ServiceFactory(settings))
    buttons = result.tests[0]
    assert buttons.outcome == "error"
    assert "no button labelled exactly 'track an order'" in (buttons.turns[1].error or "")
    assert result.tests[1].outcome == "skipped"


async def test_new_session_per_test_gives_each_test_its_own_user(
    settings: Settings, tmp_path: Path
) -> None:
    target = tmp_path / "suite"
    shutil.copytree(XVD / "order_support", target)
    suite_file = target / "suite.yaml"
    suite_file.write_text(suite_file.read_text() + "\nnewSessionPerTest: true\n")
    result = await run_suite(load_path(target)[0], ServiceFactory(settings))
    assert result.tests[0].user_id != result.tests[1].user_id
    # Without the first test's conversation the intent test still works: it sends its own intent.
    assert result.tests[1].outcome == "passed"


def test_unknown_fields_and_types_are_reported_by_name(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "suite.yaml").write_text(
        "name: S\ndescription: d\nenvironmentName: development\nretries: 3\n"
        "tests:\n  - id: t\n    file: ./tests/t.yaml\n"
    )
    (tmp_path / "tests" / "t.yaml").write_text(
        "name: T\ndescription: d\ninteractions:\n"
        "  - id: a\n    user: {type: audio, audio: hello.wav}\n"
        "    agent: {validate: [{type: fuzzy, value: x}]}\n"
    )
    [suite] = load_path(tmp_path / "suite.yaml")
    joined = "\n".join(suite.warnings)
    assert "`retries` is not a voiceflow-cli field" in joined
    assert "user: `audio` is not a voiceflow-cli field" in joined
    assert "user.type 'audio' is not a voiceflow-cli input type" in joined
    assert "type 'fuzzy' is not a voiceflow-cli validation" in joined
    [check] = suite.tests[0].turns[0].expect
    assert isinstance(check, VoiceflowCliCheck) and check.validation == "fuzzy"


def test_a_test_file_that_is_not_yaml_is_refused_as_voiceflow_cli_does(tmp_path: Path) -> None:
    (tmp_path / "suite.yaml").write_text(
        "name: S\ndescription: d\nenvironmentName: dev\ntests:\n  - id: t\n    file: t.yml\n"
    )
    with pytest.raises(ScriptError, match="file is not a YAML file"):
        load_path(tmp_path / "suite.yaml")


def test_agent_test_import_maps_the_loop_settings() -> None:
    suite = load_path(XVD / "head")[0]
    agent = suite.tests[1].simulate
    assert agent is not None
    assert agent.max_turns == 7  # maxSteps 8: the opening counts as a step
    assert agent.launch is False  # launch only with newSessionPerTest
    assert agent.goal_check == "every_turn"
    assert agent.user_information == {"name": "Alex Johnson", "email": "alex@example.com"}
    tester = suite.tests[2].simulate
    assert tester is not None and tester.tester is not None
    assert tester.tester.environment == "production"
    assert tester.tester.api_key is not None
    assert "emulatorTesterAgent" not in repr(tester.tester)
