"""Several agents behind one server, and handing a conversation from one to another."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from tests.canary import CANARY_KEY
from vf_mcp.agents import load_agents
from vf_mcp.config import Settings
from vf_mcp.domain.transcript import Transcript
from vf_mcp.emulator import Emulator, load_agent, running_emulator
from vf_mcp.errors import ConfigurationError
from vf_mcp.handoff import MAX_TRANSCRIPT_BYTES, compact_transcript
from vf_mcp.server import build_server

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
KEYS = {
    "SUPPORT_VOICEFLOW_KEY": "VF.DM.6650f0c2a1b2c3d4e5f60718.support",
    "BILLING_VOICEFLOW_KEY": "VF.DM.6650f0c2a1b2c3d4e5f60719.billing",
}


@pytest.fixture(scope="module")
def two_agents() -> Iterator[Emulator]:
    agents = [load_agent(EXAMPLES / "order_support.yaml"), load_agent(EXAMPLES / "billing.yaml")]
    with running_emulator(agents) as emulator:
        yield emulator


@pytest.fixture
def base(two_agents: Emulator) -> Settings:
    two_agents.reset()
    return Settings.validated({"runtime_url": two_agents.url, "max_retries": 0})


def text_of(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


def test_the_example_agents_file_loads(base: Settings) -> None:
    directory = load_agents(EXAMPLES / "agents.yaml", base, KEYS)
    assert directory.names == ["billing", "support"]
    assert directory.default == "support"
    billing = directory.agents["billing"].settings
    assert billing.require_api_key() == KEYS["BILLING_VOICEFLOW_KEY"]
    assert billing.project_id == "6650f0c2a1b2c3d4e5f60719"
    assert billing.runtime_url == base.runtime_url  # inherited


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("agents:\n  a:\n    api_key_env: K\n    api_key: VF.DM.x", "keys never live in this file"),
        ("agents:\n  a:\n    api_key_env: MISSING_KEY", "MISSING_KEY (agent a)"),
        ("default: b\nagents:\n  a:\n    api_key_env: K", "default agent 'b'"),
        ("agents:\n  Bad Name:\n    api_key_env: K", "lowercase"),
        ("agents:\n  a:\n    api_key_env: K\n    colour: red", "colour"),
        ("agents: {}", "at least one agent"),
        ("agents: [", "not valid YAML"),
    ],
)
def test_bad_agents_files_are_refused_with_a_clear_message(
    tmp_path: Path, base: Settings, content: str, expected: str
) -> None:
    path = tmp_path / "agents.yaml"
    path.write_text(content)
    with pytest.raises(ConfigurationError) as caught:
        load_agents(path, base, {"K": CANARY_KEY})
    assert expected in caught.value.message


async def test_one_server_many_agents_and_a_handoff_carrying_variables(
    base: Settings, two_agents: Emulator
) -> None:
    directory = load_agents(EXAMPLES / "agents.yaml", base, KEYS)
    async with Client(build_server(base, agents=directory)) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert "handoff" in tools
        assert "agent" in tools["interact"].input_schema["properties"]
        await client.call_tool("interact", {"user_id": "ada", "launch": True})
        await client.call_tool("interact", {"user_id": "ada", "choice": "Track an order"})
        found = await client.call_tool("interact", {"user_id": "ada", "message": "1001"})
        assert "Order 1001 has shipped" in text_of(found)
        # The same user id on another agent is another conversation.
        elsewhere = await client.call_tool(
            "interact", {"user_id": "ada", "agent": "billing", "choice": 1}
        )
        assert elsewhere.is_error and "knows of no buttons" in text_of(elsewhere)
        moved = await client.call_tool(
            "handoff", {"user_id": "ada", "to_agent": "billing", "variables": ["order_number"]}
        )
        assert not moved.is_error, text_of(moved)
        assert moved.structured_content["variables"] == ["order_number"]
        assert "Hi, this is Acme billing. I can see order 1001." in text_of(moved)
        refund = await client.call_tool(
            "interact", {"user_id": "ada", "agent": "billing", "choice": "Request a refund"}
        )
        assert refund.structured_content["status"] == "ended"  # time for the caller to take over
        missing_var = await client.call_tool(
            "handoff", {"user_id": "ada", "to_agent": "billing", "variables": ["nope"]}
        )
        unknown = await client.call_tool(
            "interact", {"user_id": "ada", "agent": "sales", "launch": True}
        )
    assert missing_var.is_error and "has no variable nope" in text_of(missing_var)
    assert unknown.is_error and "agents: billing, support" in text_of(unknown)
    billing_state = two_agents.state("ada", "6650f0c2a1b2c3d4e5f60719")
    assert billing_state is not None
    variables = billing_state["variables"]
    assert variables["vf_handoff_from"] == "support"
    assert "Order 1001 has shipped" in variables["vf_handoff_transcript"]


def test_the_handoff_transcript_is_capped_and_keeps_the_latest_turns() -> None:
    from datetime import UTC, datetime

    from vf_mcp.domain.transcript import AgentReply, TranscriptTurn, UserAction
    from vf_mcp.domain.turn import AgentMessage

    turns = [
        TranscriptTurn(
            index=i,
            user=UserAction(kind="message", text=f"message {i} " + "x" * 200),
            agent=AgentReply(messages=[AgentMessage(kind="text", text=f"answer {i}")]),
            status="awaiting_user",
            latency_ms=1.0,
        )
        for i in range(1, 200)
    ]
    transcript = Transcript(
        suite="live",
        test_id="t",
        name="t",
        user_id="u",
        started_at=datetime.now(UTC),
        outcome="passed",
        turns=turns,
    )
    text = compact_transcript(transcript)
    assert len(text.encode()) <= MAX_TRANSCRIPT_BYTES
    assert text.startswith("[earlier turns omitted]")
    assert "answer 199" in text and "answer 1\n" not in text
    assert compact_transcript(None) == ""


async def test_two_agents_on_one_project_keep_separate_runtime_conversations(
    base: Settings, two_agents: Emulator, tmp_path: Path
) -> None:
    path = tmp_path / "agents.yaml"
    path.write_text(
        "agents:\n"
        "  dev:\n    api_key_env: SUPPORT_VOICEFLOW_KEY\n"
        "    project_id: 6650f0c2a1b2c3d4e5f60718\n"
        "  prod:\n    api_key_env: SUPPORT_VOICEFLOW_KEY\n"
        "    project_id: 6650f0c2a1b2c3d4e5f60718\n    environment: production\n"
    )
    directory = load_agents(path, base, KEYS)
    async with Client(build_server(base, agents=directory)) as client:
        await client.call_tool("interact", {"user_id": "ada", "agent": "dev", "launch": True})
        await client.call_tool("interact", {"user_id": "ada", "agent": "prod", "launch": True})
        picked = await client.call_tool(
            "interact", {"user_id": "ada", "agent": "dev", "choice": "Track an order"}
        )
    assert "order number" in text_of(picked)
    users = {
        r.path.split("/user/")[1].split("/")[0] for r in two_agents.requests if "/user/" in r.path
    }
    assert users == {"dev.ada", "prod.ada"}
