"""Import xavidop/voiceflow-cli ("xvd") suites and tests so they run unchanged, with its semantics.

What carries over exactly (voiceflow-cli v1.37.6, https://github.com/xavidop/voiceflow-cli):
- one user id (`test-<uuid4>`) for the whole suite unless `newSessionPerTest: true`; tests and
  interactions in file order; nothing sent implicitly (scripted tests carry their own launch);
- the first failure stops everything (`on_failure: stop`), the rest is reported as skipped;
- `environmentName` as the environment of every request; the plain interact endpoint;
- `button` presses the button whose `request.payload.label` equals the value exactly, from the
  most recent `choice` trace of the test; `event` and `intent` actions as voiceflow-cli builds them;
- validations tried against each trace in order on the raw `payload.message`; `variable` reads
  the variable after the turn, applies `jsonPath` (`$` prepended) and compares `fmt.Sprint` text;
- `similarity` is graded by the judge model against `similarityThreshold`;
- agent tests: the judge model plays the user (`persona`, `userInformation`), or another
  Voiceflow agent does (`voiceflowAgentTesterConfig`, with its own key and environment); the goal
  is judged after every answer; launch only with `newSessionPerTest`; `maxSteps` counts the
  opening step, so `maxSteps: 8` sends at most 7 user messages.
What cannot be honoured is reported by name as a warning on the suite (never silently dropped):
the OpenAI model settings (`openAIConfig`, `similarityConfig.model`... : the judge model is used),
keys voiceflow-cli does not know (it ignores them too), and an API key stored in a file (used, but
flagged).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError

from vf_mcp.errors import ScriptError
from vf_mcp.evaluation.reading import parse_text, read_text
from vf_mcp.evaluation.script import (
    ScriptTest,
    Simulation,
    Suite,
    TurnStep,
    VoiceflowCliCheck,
    VoiceflowTester,
    resolve_under,
)

SUITE_KEYS = {
    "name",
    "description",
    "environmentName",
    "newSessionPerTest",
    "tests",
    "openAIConfig",
}
TEST_KEYS = {"name", "description", "interactions", "agent"}
INTERACTION_KEYS = {"id", "user", "agent", "variables"}
USER_KEYS = {"type", "text", "value", "event", "intent"}
VALIDATION_KEYS = {"id", "type", "value", "values", "similarityConfig", "variableConfig"}
AGENT_KEYS = {
    "goal",
    "persona",
    "maxSteps",
    "userInformation",
    "openAIConfig",
    "voiceflowAgentTesterConfig",
    "voiceflowAgentTargetConfig",
}
INPUT_TYPES = {"launch", "text", "event", "intent", "button"}


def looks_like_suite(data: Any) -> bool:
    if not isinstance(data, dict):
        return False
    tests = data.get("tests")
    listed_files = isinstance(tests, list) and any(
        isinstance(t, dict) and "file" in t for t in tests
    )
    return listed_files or "environmentName" in data or "newSessionPerTest" in data


def looks_like_test(data: Any) -> bool:
    return (
        isinstance(data, dict)
        and "tests" not in data
        and ("interactions" in data or "agent" in data)
    )


def _read_yaml(path: Path) -> Any:
    return parse_text(read_text(path), str(path))


def import_suite_data(data: Mapping[str, Any], *, base_dir: Path, source: str) -> Suite:
    warnings: list[str] = []
    where = Path(source).name
    _unknown(data, SUITE_KEYS, where, warnings)
    _openai_config(data.get("openAIConfig"), f"{where}: openAIConfig", warnings)
    new_session = bool(data.get("newSessionPerTest", False))
    tests: list[ScriptTest] = []
    for i, entry in enumerate(data.get("tests") or []):
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
            raise ScriptError(f"{source}: tests[{i}] needs `id` and `file`")
        file = str(entry["file"])
        if not file.endswith(".yaml"):
            raise ScriptError(f"{source}: tests[{i}].file {file!r}: file is not a YAML file")
        # A suite names its test files; none may point outside the suite's own directory.
        path = resolve_under(base_dir, file)
        test_data = _read_yaml(path)
        if not isinstance(test_data, dict):
            raise ScriptError(f"{path}: a voiceflow-cli test must be a mapping")
        test_id = str(entry.get("id") or path.stem)
        tests.append(
            import_test_data(
                test_data, test_id=test_id, new_session=new_session, where=file, warnings=warnings
            )
        )
    if not tests:
        raise ScriptError(f"{source}: the suite lists no tests")
    try:
        return Suite(
            name=str(data.get("name") or Path(source).stem),
            description=_str(data.get("description")),
            environment=_str(data.get("environmentName")),
            new_user_per_test=new_session,
            on_failure="stop",
            tests=tests,
            dialect="voiceflow-cli",
            streaming=False,
            user_id_prefix="test-",
            source=source,
            warnings=warnings,
        )
    except ValidationError as exc:
        raise ScriptError(f"{source}: {_first_error(exc)}") from None


def import_test_data(
    data: Mapping[str, Any],
    *,
    test_id: str,
    new_session: bool,
    where: str,
    warnings: list[str],
) -> ScriptTest:
    _unknown(data, TEST_KEYS, where, warnings)
    try:
        if isinstance(data.get("agent"), dict):
            if data.get("interactions"):
                warnings.append(
                    f"{where}: interactions: ignored, as voiceflow-cli does when `agent` is set"
                )
            return _agent_test(data, data["agent"], test_id, new_session, where, warnings)
        turns = [
            _interaction(item, i, where, warnings)
            for i, item in enumerate(data.get("interactions") or [])
        ]
        if not turns:
            raise ScriptError(f"{where}: the test has no interactions and no agent")
        return ScriptTest(
            id=test_id,
            name=_str(data.get("name")),
            description=_str(data.get("description")),
            turns=turns,
        )
    except ValidationError as exc:
        raise ScriptError(f"{where}: {_first_error(exc)}") from None


def _interaction(item: Any, i: int, where: str, warnings: list[str]) -> TurnStep:
    if not isinstance(item, dict):
        raise ScriptError(f"{where}: interactions[{i}] must be a mapping")
    here = f"{where}: interaction {item.get('id', i)!s}"
    _unknown(item, INTERACTION_KEYS, here, warnings)
    user: dict[str, Any] = item["user"] if isinstance(item.get("user"), dict) else {}
    _unknown(user, USER_KEYS, f"{here}: user", warnings)
    kind = str(user.get("type") or "")
    step: dict[str, Any] = {"id": _str(item.get("id"))}
    if kind == "launch":
        step["launch"] = True
    elif kind == "text":
        step["message"] = str(user.get("text") or "")
    elif kind == "event":
        step["event"] = str(user.get("event") or "")
    elif kind == "button":
        step["button"] = str(user.get("value") or "")
    elif kind == "intent":
        intent: dict[str, Any] = user["intent"] if isinstance(user.get("intent"), dict) else {}
        payload: dict[str, Any] = {"intent": {"name": str(intent.get("name") or "")}}
        if intent.get("entities"):
            payload["entities"] = [
                {"name": str(e.get("name", "")), "value": str(e.get("value", ""))}
                for e in intent["entities"]
                if isinstance(e, dict)
            ]
        step["action"] = {"type": "intent", "payload": payload}
    else:
        warnings.append(
            f"{here}: user.type {kind!r} is not a voiceflow-cli input type (launch, text, event, "
            "intent, button); voiceflow-cli sends an empty action, which fails the test"
        )
        step["action"] = {"type": ""}
    if isinstance(item.get("variables"), dict):
        step["variables"] = dict(item["variables"])
    agent: dict[str, Any] = item["agent"] if isinstance(item.get("agent"), dict) else {}
    _unknown(agent, {"validate"}, f"{here}: agent", warnings)
    step["expect"] = [
        _validation(v, f"{here}: validate[{j}]", warnings)
        for j, v in enumerate(agent.get("validate") or [])
    ]
    return TurnStep.model_validate(step)


def _validation(item: Any, here: str, warnings: list[str]) -> VoiceflowCliCheck:
    if not isinstance(item, dict):
        raise ScriptError(f"{here}: a validation must be a mapping")
    _unknown(item, VALIDATION_KEYS, here, warnings)
    kind = str(item.get("type") or "")
    if kind not in {"contains", "equals", "exact_match", "regexp", "traceType"} | {
        "similarity",
        "variable",
    }:
        warnings.append(
            f"{here}: type {kind!r} is not a voiceflow-cli validation; it can never pass"
        )
    similarity = item.get("similarityConfig")
    if kind == "similarity" and isinstance(similarity, dict):
        for name in ("model", "temperature", "top_p", "top_k"):
            if name in similarity:
                warnings.append(
                    f"{here}: similarityConfig.{name} {similarity[name]!r} is not used: the judge "
                    "model (VF_MCP_JUDGE_MODEL) grades similarity"
                )
    values = item.get("values")
    return VoiceflowCliCheck.model_validate(
        {
            "id": _str(item.get("id")),
            "validation": kind,
            "value": "" if item.get("value") is None else str(item.get("value")),
            "values": [str(v) for v in values] if isinstance(values, list) else [],
            "similarity": similarity if isinstance(similarity, dict) else None,
            "variable": item.get("variableConfig")
            if isinstance(item.get("variableConfig"), dict)
            else None,
        }
    )


def _agent_test(
    data: Mapping[str, Any],
    agent: Mapping[str, Any],
    test_id: str,
    new_session: bool,
    where: str,
    warnings: list[str],
) -> ScriptTest:
    here = f"{where}: agent"
    _unknown(agent, AGENT_KEYS, here, warnings)
    _openai_config(agent.get("openAIConfig"), f"{here}.openAIConfig", warnings)
    tester = _tester(agent, here, warnings)
    target = agent.get("voiceflowAgentTargetConfig")
    launch_variables = dict(target.get("variables") or {}) if isinstance(target, dict) else {}
    if launch_variables and not new_session:
        warnings.append(
            f"{here}.voiceflowAgentTargetConfig.variables: not sent, because the target is "
            "launched only with newSessionPerTest: true (as in voiceflow-cli)"
        )
    facts = {
        str(i.get("name")): str(i.get("value"))
        for i in agent.get("userInformation") or []
        if isinstance(i, dict)
    }
    max_steps = int(agent.get("maxSteps") or 0)
    simulation = Simulation(
        persona=str(agent.get("persona") or ""),
        goal=str(agent.get("goal") or ""),
        max_turns=max(max_steps - 1, 0),
        user_information=facts,
        launch=new_session,
        launch_variables=launch_variables if new_session else {},
        goal_check="every_turn",
        tester=tester,
    )
    return ScriptTest(
        id=test_id,
        name=_str(data.get("name")),
        description=_str(data.get("description")),
        simulate=simulation,
    )


def _tester(agent: Mapping[str, Any], here: str, warnings: list[str]) -> VoiceflowTester | None:
    """The Voiceflow agent playing the user, when the test names one."""
    config = agent.get("voiceflowAgentTesterConfig")
    if not isinstance(config, dict):
        return None
    tester_here = f"{here}.voiceflowAgentTesterConfig"
    _unknown(config, {"environmentName", "apiKey", "variables"}, tester_here, warnings)
    key = config.get("apiKey")
    if key:
        warnings.append(
            f"{tester_here}.apiKey: an API key is stored in this file; it is used for the "
            "tester agent, but keys belong in the environment, not in test files"
        )
    for ignored in ("persona", "userInformation"):
        if agent.get(ignored):
            warnings.append(
                f"{here}.{ignored}: not used with voiceflowAgentTesterConfig (the tester agent "
                "plays the user), as in voiceflow-cli"
            )
    return VoiceflowTester(
        environment=_str(config.get("environmentName")),
        api_key=SecretStr(str(key)) if key else None,
        variables=dict(config.get("variables") or {}),
    )


def _openai_config(config: Any, here: str, warnings: list[str]) -> None:
    if isinstance(config, dict):
        for name in ("model", "temperature"):
            if name in config:
                warnings.append(
                    f"{here}.{name} {config[name]!r} is not used: the judge model "
                    "(VF_MCP_JUDGE_MODEL) plays the user and judges the goal"
                )


def _unknown(data: Mapping[str, Any], known: set[str], here: str, warnings: list[str]) -> None:
    for key in data:
        if key not in known:
            warnings.append(f"{here}: `{key}` is not a voiceflow-cli field; ignored, as it does")


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _first_error(exc: ValidationError) -> str:
    first = exc.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in first["loc"])
    return f"{loc}: {first['msg']}" if loc else str(first["msg"])
