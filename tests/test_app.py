"""The composition root, tested without MCP: what it opens, what it closes, what a turn costs."""

from __future__ import annotations

import ast
from dataclasses import replace
from pathlib import Path

import anyio
import anyio.lowlevel
import pytest

from tests.canary import CANARY_KEY
from vf_mcp.agents import load_agents
from vf_mcp.app import open_app
from vf_mcp.config import Settings
from vf_mcp.conversation import TurnRequest
from vf_mcp.domain.conversation import ConversationMemory
from vf_mcp.emulator import Emulator
from vf_mcp.store.memory import InMemoryMemory, in_memory_store
from vf_mcp.voiceflow.sessions import KeyedLocks

pytestmark = pytest.mark.anyio
PACKAGE = Path(__file__).resolve().parent.parent / "vf_mcp"


class CountingMemory(InMemoryMemory):
    def __init__(self) -> None:
        super().__init__()
        self.loads = 0

    async def load(self, key: str) -> ConversationMemory | None:
        self.loads += 1
        return await super().load(key)


async def test_open_app_opens_every_agent_and_closes_what_it_opened(
    settings: Settings, emulator: Emulator, tmp_path: Path
) -> None:
    agents_file = tmp_path / "agents.yaml"
    agents_file.write_text(
        "default: support\nagents:\n"
        "  support: {api_key_env: KEY_A}\n"
        "  billing: {api_key_env: KEY_B}\n"
    )
    environ = {"KEY_A": CANARY_KEY, "KEY_B": CANARY_KEY}
    directory = load_agents(agents_file, settings, environ)
    judged = settings.model_copy(update={"judge_url": "http://127.0.0.1:9/v1", "judge_model": "m"})
    async with open_app(judged, directory) as app:
        assert set(app.services) == {"support", "billing"} and app.default_agent == "support"
        assert app.judge is not None and app.judge.model == "m"
        clients = [service.client for service in app.services.values()]
        outcome = await app.service_for("billing").interact(TurnRequest(launch=True))
        assert outcome.result.messages
    assert all(client.closed for client in clients)
    assert app.judge.closed


async def test_a_turn_reads_the_store_once_and_records_without_reading_it_again(
    settings: Settings,
) -> None:
    counting = CountingMemory()
    store = replace(in_memory_store(), memory=counting)
    async with open_app(settings, store=store) as app:
        outcome = await app.service_for(None).interact(TurnRequest(user_id="once", launch=True))
        await app.transcripts.record(outcome, agent=app.default_agent)
        assert counting.loads == 1
        recorded = await app.transcripts.get("once", agent=app.default_agent)
    assert recorded is not None and recorded.turns[0].variables is not None


def test_the_core_never_imports_evaluation() -> None:
    """Evaluation builds on the core, never the other way round (the front ends may use both;
    so may `runs`, evaluation's background form, whose models alone the store imports)."""
    front_ends = {"tools", "evaluation", "runs", "cli.py", "app.py", "emulator"}
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.relative_to(PACKAGE).parts[0] in front_ends:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            module = node.module if isinstance(node, ast.ImportFrom) else None
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if any(m and m.startswith("vf_mcp.evaluation") for m in [module, *names]):
                offenders.append(str(path.relative_to(PACKAGE)))
    assert offenders == []


async def test_the_v4_start_locks_are_dropped_once_nobody_needs_them() -> None:
    locks = KeyedLocks()

    async def start(user: str) -> None:
        async with locks.hold(user):
            assert len(locks) >= 1
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as group:
        for i in range(200):
            group.start_soon(start, f"user-{i % 7}")
    assert len(locks) == 0
