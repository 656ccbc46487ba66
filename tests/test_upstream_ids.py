"""The id the runtime sees for a conversation always fits Voiceflow's documented 128 characters."""

from __future__ import annotations

import pytest

from vf_mcp.config import Settings
from vf_mcp.conversation import TurnRequest
from vf_mcp.conversation.service import UPSTREAM_ID_MAX_LENGTH, ConversationService
from vf_mcp.emulator import Emulator
from vf_mcp.errors import InvalidInputError
from vf_mcp.store.memory import in_memory_store
from vf_mcp.voiceflow import VoiceflowClient

pytestmark = pytest.mark.anyio

NAMESPACE = "t0123456789ab"  # the shape callers.namespace_for gives every HTTP caller
PREFIX = "a-forty-character-agent-name-0123456789."


async def test_the_longest_id_a_tool_accepts_fits_without_prefixes(settings: Settings) -> None:
    async with VoiceflowClient(settings) as client:
        service = ConversationService(client, in_memory_store(), settings)
        assert len(service.upstream_id("u" * 100, None)) == 100


async def test_an_id_over_the_limit_is_refused_naming_its_parts(settings: Settings) -> None:
    async with VoiceflowClient(settings) as client:
        service = ConversationService(client, in_memory_store(), settings, id_prefix=PREFIX)
        room = UPSTREAM_ID_MAX_LENGTH - len(PREFIX) - len(NAMESPACE) - 1
        assert len(service.upstream_id("u" * room, NAMESPACE)) == UPSTREAM_ID_MAX_LENGTH
        with pytest.raises(InvalidInputError) as caught:
            await service.interact(
                TurnRequest(user_id="u" * (room + 1), launch=True), namespace=NAMESPACE
            )
    message = caught.value.message
    assert "\n" not in message
    assert "129 characters (agent prefix 40 + caller namespace 14 + user_id 75)" in message
    assert f"use a user_id of at most {room} characters" in message


async def test_nothing_reaches_the_runtime_for_a_refused_id(
    settings: Settings, emulator: Emulator
) -> None:
    async with VoiceflowClient(settings) as client:
        service = ConversationService(client, in_memory_store(), settings, id_prefix=PREFIX)
        with pytest.raises(InvalidInputError):
            await service.interact(TurnRequest(user_id="u" * 90, launch=True), namespace=NAMESPACE)
    assert emulator.requests == []
