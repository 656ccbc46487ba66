"""Shared fixtures: one real emulator on loopback per session, reset before each test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from tests.canary import CANARY_KEY
from vf_mcp.config import Settings
from vf_mcp.emulator import Emulator, default_agent, running_emulator
from vf_mcp.voiceflow import VoiceflowClient

# The emulator's own tests share `server`, `emu`, `client` and `project` (one module's emulator);
# `--fast` leaves out the slow tests (the edit-test loop); pytester runs it in tests of its own.
pytest_plugins = ["tests.emulator_fixtures", "tests.fast_loop", "pytester"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def emulator_session() -> Iterator[Emulator]:
    with running_emulator([default_agent()]) as emulator:
        yield emulator


@pytest.fixture
def emulator(emulator_session: Emulator) -> Emulator:
    emulator_session.reset()
    return emulator_session


@pytest.fixture
def project_id() -> str:
    return default_agent().project_id


@pytest.fixture
def settings(emulator: Emulator) -> Settings:
    """Plain (non-streaming) settings: no project id, no retries."""
    return Settings.validated(
        {"api_key": CANARY_KEY, "runtime_url": emulator.url, "max_retries": 0}
    )


@pytest.fixture
def stream_settings(emulator: Emulator, project_id: str) -> Settings:
    return Settings.validated(
        {
            "api_key": CANARY_KEY,
            "runtime_url": emulator.url,
            "project_id": project_id,
            "max_retries": 0,  # the retry tests turn retries on with short delays
        }
    )


@pytest.fixture
async def vf(stream_settings: Settings) -> AsyncIterator[VoiceflowClient]:
    async with VoiceflowClient(stream_settings) as client:
        yield client


@pytest.fixture
def eval_env(monkeypatch: pytest.MonkeyPatch, emulator: Emulator) -> Emulator:
    """The environment `vf-mcp eval` reads, pointed at the emulator with the canary key."""
    monkeypatch.setenv("VOICEFLOW_API_KEY", CANARY_KEY)
    monkeypatch.setenv("VOICEFLOW_RUNTIME_URL", emulator.url)
    for name in ("VOICEFLOW_PROJECT_ID", "VF_MCP_JUDGE_URL", "VF_MCP_JUDGE_MODEL"):
        monkeypatch.delenv(name, raising=False)
    return emulator
