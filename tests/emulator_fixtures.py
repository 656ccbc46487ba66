"""Fixtures the emulator's own tests share: one emulator serving the example agent per module,
reset before each test, and an HTTP client that speaks to it with a key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from vf_mcp.emulator import Emulator, load_agent, running_emulator

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "order_support.yaml"
KEY = "VF.DM.0123456789abcdef01234567.emulatorsecret"


@pytest.fixture(scope="module")
def server() -> Iterator[Emulator]:
    with running_emulator([load_agent(EXAMPLE)]) as emulator:
        yield emulator


@pytest.fixture
def emu(server: Emulator) -> Emulator:
    server.reset()
    return server


@pytest.fixture
def client(emu: Emulator) -> Iterator[httpx.Client]:
    """Authenticated with the API key (legacy routes, session start, session events)."""
    with httpx.Client(base_url=emu.url, headers={"Authorization": KEY}, timeout=10) as http:
        yield http


@pytest.fixture
def project(emu: Emulator) -> str:
    return emu.agents[0].project_id
