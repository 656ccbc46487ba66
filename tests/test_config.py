from __future__ import annotations

from pathlib import Path

import pytest

from tests.canary import CANARY_KEY, CANARY_SECRET
from vf_mcp.config import DEFAULT_RUNTIME_URL, Settings, env_names, settings_table
from vf_mcp.errors import ConfigurationError


def test_defaults_need_nothing_but_give_no_key() -> None:
    settings = Settings.from_env({})
    assert settings.environment is None
    assert settings.default_environment == "development"
    assert settings.v4_environment is None  # v4: the project's traffic split picks
    assert settings.runtime_url == DEFAULT_RUNTIME_URL
    assert settings.log_level == "WARNING"
    assert settings.api_key is None
    with pytest.raises(ConfigurationError, match="VOICEFLOW_API_KEY is not set"):
        settings.require_api_key()


def test_every_documented_variable_is_read() -> None:
    settings = Settings.from_env(
        {
            "VOICEFLOW_API_KEY": CANARY_KEY,
            "VOICEFLOW_PROJECT_ID": "p1",
            "VOICEFLOW_ENVIRONMENT": "production",
            "VOICEFLOW_RUNTIME_URL": "https://general-runtime.acme.voiceflow.com/",
            "VOICEFLOW_TIMEOUT": "12.5",
            "VOICEFLOW_CONNECT_TIMEOUT": "3",
            "VF_MCP_LOG_LEVEL": "debug",
            "VF_MCP_HANDOFF_ACTIONS": "escalate, handoff",
        }
    )
    assert settings.require_api_key() == CANARY_KEY
    assert settings.project_id == "p1"
    assert settings.environment == "production"
    assert settings.runtime_url == "https://general-runtime.acme.voiceflow.com"
    assert (settings.timeout, settings.connect_timeout) == (12.5, 3.0)
    assert settings.log_level == "DEBUG"
    assert settings.handoff_actions == {"escalate", "handoff"}


def test_a_key_of_another_shape_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({"VOICEFLOW_API_KEY": "VF.WS.workspace-" + CANARY_SECRET})
    assert "VF.DM." in caught.value.message
    assert CANARY_SECRET not in str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("VOICEFLOW_TIMEOUT", "soon", "VOICEFLOW_TIMEOUT='soon' is not a number"),
        ("VOICEFLOW_TIMEOUT", "-1", "VOICEFLOW_TIMEOUT"),
        ("VOICEFLOW_RUNTIME_URL", "ftp://x", "VOICEFLOW_RUNTIME_URL must be an http(s) URL"),
        ("VF_MCP_LOG_LEVEL", "loud", "VF_MCP_LOG_LEVEL"),
        ("VF_MCP_SUMMARY_MAX_CHARS", "0", "VF_MCP_SUMMARY_MAX_CHARS='0' must be at least 500"),
        ("VF_MCP_SUMMARY_MAX_CHARS", "-5", "VF_MCP_SUMMARY_MAX_CHARS='-5' must be at least 500"),
        ("VF_MCP_SUMMARY_MAX_CHARS", "2.5", "VF_MCP_SUMMARY_MAX_CHARS='2.5' is not a whole"),
        ("VF_MCP_SUMMARY_MAX_CHARS", "lots", "is not a whole number"),
        ("VOICEFLOW_MAX_RETRIES", "three", "VOICEFLOW_MAX_RETRIES='three' is not a whole number"),
        ("VF_MCP_READ_ONLY", "maybe", "VF_MCP_READ_ONLY='maybe' is not true or false"),
        ("VOICEFLOW_API_VERSION", "v9", "VOICEFLOW_API_VERSION='v9' must be one of 'legacy'"),
        ("VF_MCP_JUDGE_URL", "https://llm.example/v1", "VF_MCP_JUDGE_MODEL is not"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({name: value})
    assert expected in caught.value.message
    assert "\n" not in caught.value.message


def test_every_field_is_read_from_its_own_variable() -> None:
    names = env_names()
    assert len(set(names.values())) == len(names), "two fields read one variable"
    defaults = Settings()
    for field, variable in names.items():
        if field in ("api_key", "auth_tokens", "judge_url", "oauth_issuer", "store_url"):
            continue  # validated values, checked by their own tests
        raw = Settings.model_fields[field].annotation
        sample = {"bool | None": "false", "bool": "true"}.get(str(raw).replace("typing.", ""))
        if sample is None:
            continue
        assert getattr(Settings.from_env({variable: sample}), field) != getattr(defaults, field)


def test_the_readme_table_is_the_settings_declaration() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    # Regenerate: python -c 'from vf_mcp.config import settings_table; print(settings_table())'
    assert settings_table() in readme


def test_the_judge_is_part_of_the_settings() -> None:
    settings = Settings.from_env(
        {"VF_MCP_JUDGE_URL": "https://llm.example/v1/", "VF_MCP_JUDGE_MODEL": "m",
         "VF_MCP_JUDGE_API_KEY": "sk-" + CANARY_SECRET, "VF_MCP_JUDGE_TIMEOUT": "5"}
    )  # fmt: skip
    assert (settings.judge_url, settings.judge_model, settings.judge_timeout) == (
        "https://llm.example/v1",
        "m",
        5.0,
    )
    assert CANARY_SECRET not in repr(settings)


def test_the_summary_budget_defaults_to_8000_characters() -> None:
    assert Settings.from_env({}).summary_max_chars == 8000
    assert Settings.from_env({"VF_MCP_SUMMARY_MAX_CHARS": " 1200 "}).summary_max_chars == 1200


def test_the_key_is_absent_from_repr_str_and_dumps() -> None:
    settings = Settings.from_env({"VOICEFLOW_API_KEY": CANARY_KEY})
    for text in (repr(settings), str(settings), settings.model_dump_json()):
        assert CANARY_SECRET not in text
