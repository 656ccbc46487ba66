from __future__ import annotations

import pytest

from tests.canary import CANARY_KEY, CANARY_SECRET
from vf_mcp.config import DEFAULT_RUNTIME_URL, Settings
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
        ("VF_MCP_SUMMARY_MAX_CHARS", "0", "VF_MCP_SUMMARY_MAX_CHARS='0' is not a whole number"),
        ("VF_MCP_SUMMARY_MAX_CHARS", "-5", "VF_MCP_SUMMARY_MAX_CHARS='-5' is not a whole"),
        ("VF_MCP_SUMMARY_MAX_CHARS", "2.5", "VF_MCP_SUMMARY_MAX_CHARS='2.5' is not a whole"),
        ("VF_MCP_SUMMARY_MAX_CHARS", "lots", "at least 500"),
    ],
)
def test_bad_values_name_the_variable(name: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigurationError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        Settings.from_env({name: value})


def test_the_summary_budget_defaults_to_8000_characters() -> None:
    assert Settings.from_env({}).summary_max_chars == 8000
    assert Settings.from_env({"VF_MCP_SUMMARY_MAX_CHARS": " 1200 "}).summary_max_chars == 1200


def test_the_key_is_absent_from_repr_str_and_dumps() -> None:
    settings = Settings.from_env({"VOICEFLOW_API_KEY": CANARY_KEY})
    for text in (repr(settings), str(settings), settings.model_dump_json()):
        assert CANARY_SECRET not in text
