"""Contract with the real runtime, client side: every recorded exchange replayed through the tools.

Each exchange of `tests/fixtures/real_runtime/` is sent through the MCP tools to a loopback
server answering exactly what Voiceflow's open-source runtime answered; what a model reads for it
(the tool's text, at `standard` and, for turns, `minimal`) must equal the reviewed golden in
`summaries.json`. Regenerate the goldens after a deliberate change with
`python -m tests.test_real_runtime_replay` and review the diff line by line.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.types import CallToolResult

from tests.canary import CANARY_KEY
from tests.real_runtime import FIXTURES, Exchange, ReplayRuntime, all_exchanges, load_exchanges
from tests.threaded_server import serve_in_thread
from vf_mcp.config import Settings
from vf_mcp.conversation import STREAM_OFF
from vf_mcp.server import build_server
from vf_mcp.summary import TurnResult, render_turn

GOLDENS = FIXTURES / "summaries.json"
# Refused by the tool before any request: the runtime's 400 for a partial PUT cannot happen.
REFUSED_LOCALLY = {"acme-16"}
# Requests the tools send differently, so only the recorded answer is replayed: the client leaves
# out `turn` (GET may return it, PUT refuses it), and `interact` sends no `config` (these two asked
# for every trace with `excludeTypes: []`: their block, flow and debug traces must stay quiet).
BODY_DIFFERS = {"acme-17", "pizza-12", "pizza-15"}
# The v2 stream route the open-source runtime lacks: covered by test_the_recorded_404_...
STREAM_ROUTE = {"acme-32"}


@dataclasses.dataclass
class Replayed:
    text: str
    minimal: str | None
    is_error: bool
    structured: dict[str, Any] | None


def text_of(result: CallToolResult) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


def tool_call(exchange: Exchange) -> tuple[str, dict[str, Any]]:
    """The tool call a user of vf-mcp makes to send this exchange's request."""
    user_id, body = exchange.user_id, exchange.request_json
    if exchange.is_turn:
        return "interact", {"user_id": user_id, "action": body["action"]}
    if exchange.method == "GET":
        return "get_state", {"user_id": user_id}
    if exchange.method == "PUT":
        return "replace_state", {"user_id": user_id, "state": body}
    if exchange.method == "DELETE":
        return "delete_state", {"user_id": user_id}
    if exchange.method == "PATCH":
        return "update_variables", {"user_id": user_id, "variables": body}
    raise AssertionError(f"no tool sends {exchange.method} {exchange.path}")


def replayable(agent: str) -> list[Exchange]:
    return [e for e in load_exchanges(agent) if not e.is_v2beta1 and e.id not in STREAM_ROUTE]


async def replay_agent(agent: str) -> dict[str, Replayed]:
    """Every exchange of one agent, in recorded order, through one server (its memory carries)."""
    runtime = ReplayRuntime()
    results: dict[str, Replayed] = {}
    with serve_in_thread(runtime.app) as server:
        settings = Settings.validated(
            {"api_key": CANARY_KEY, "runtime_url": server.url, "max_retries": 0}
        )
        async with Client(build_server(settings)) as client:
            for exchange in replayable(agent):
                tool, arguments = tool_call(exchange)
                if exchange.id not in REFUSED_LOCALLY:
                    matched = dataclasses.replace(
                        exchange, match_body=exchange.id not in BODY_DIFFERS
                    )
                    runtime.expect(matched)
                sent = len(runtime.seen)
                version = _version_header(exchange)
                if version is not None:
                    arguments["environment"] = version
                result = await client.call_tool(tool, arguments)
                assert not runtime.mismatches, runtime.mismatches
                expected_requests = 0 if exchange.id in REFUSED_LOCALLY else 1
                assert len(runtime.seen) - sent == expected_requests, exchange.id
                structured = result.structured_content
                minimal = None
                if tool == "interact" and not result.is_error:
                    minimal = render_turn(TurnResult.model_validate(structured), "minimal")
                results[exchange.id] = Replayed(
                    text_of(result), minimal, bool(result.is_error), structured
                )
    return results


def _version_header(exchange: Exchange) -> str | None:
    line = json.loads(
        (FIXTURES / f"{exchange.agent}-exchanges.jsonl")
        .read_text(encoding="utf-8")
        .splitlines()[exchange.number - 1]
    )
    version = line["request_headers"].get("versionID")
    return None if version in (None, "development") else str(version)


@pytest.fixture(scope="module")
def replayed() -> dict[str, Replayed]:
    results: dict[str, Replayed] = {}
    for agent in ("acme", "pizza"):
        results.update(anyio.run(replay_agent, agent))
    return results


def goldens() -> dict[str, dict[str, Any]]:
    loaded: dict[str, dict[str, Any]] = json.loads(GOLDENS.read_text(encoding="utf-8"))
    return loaded


CASES = [e for e in all_exchanges() if not e.is_v2beta1 and e.id not in STREAM_ROUTE]


@pytest.mark.parametrize("exchange", CASES, ids=[e.id for e in CASES])
def test_what_a_model_reads_for_each_recorded_exchange(
    replayed: dict[str, Replayed], exchange: Exchange
) -> None:
    golden = goldens()[exchange.id]
    got = replayed[exchange.id]
    assert got.text == golden["text"]
    assert got.minimal == golden.get("minimal")
    assert got.is_error is (exchange.status >= 400 or exchange.id in REFUSED_LOCALLY)


@pytest.mark.parametrize("exchange", [e for e in CASES if e.traces is not None], ids=lambda e: e.id)
def test_every_recorded_trace_is_counted_and_none_is_unknown(
    replayed: dict[str, Replayed], exchange: Exchange
) -> None:
    structured = replayed[exchange.id].structured
    assert structured is not None and exchange.traces is not None
    assert structured["trace_count"] == len(exchange.traces)
    assert structured["unknown_traces"] == {}
    text = replayed[exchange.id].text
    assert "Not shown" not in text and "_memory_" not in text and "last_event" not in text


def test_every_turn_is_compact_against_the_raw_traces(replayed: dict[str, Replayed]) -> None:
    turns = [e for e in CASES if e.traces is not None]
    raw = sum(len(json.dumps(e.traces, separators=(",", ":"))) for e in turns)
    standard = sum(len(replayed[e.id].text.encode()) for e in turns)
    minimal = sum(len((replayed[e.id].minimal or "").encode()) for e in turns)
    assert standard / raw <= 0.25, f"standard {standard / raw:.3f}"
    assert minimal / raw <= 0.20, f"minimal {minimal / raw:.3f}"


def write_goldens() -> None:
    results: dict[str, Replayed] = {}
    for agent in ("acme", "pizza"):
        results.update(anyio.run(replay_agent, agent))
    titles = {e.id: e.title for e in all_exchanges()}
    out = {
        key: {"title": titles[key], "text": r.text, **({"minimal": r.minimal} if r.minimal else {})}
        for key, r in results.items()
    }
    GOLDENS.write_text(json.dumps(out, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(out)} goldens to {GOLDENS}", file=sys.stderr)


@pytest.mark.anyio
async def test_the_recorded_404_for_the_stream_route_falls_back_to_plain_interact() -> None:
    acme = {e.id: e for e in load_exchanges("acme")}
    missing, launch = acme["acme-32"], acme["acme-01"]
    plain = dataclasses.replace(launch, path="/state/user/cap-s2/interact")
    runtime = ReplayRuntime()
    runtime.expect(missing, plain)
    with serve_in_thread(runtime.app) as server:
        settings = Settings.validated(
            {
                "api_key": CANARY_KEY,
                "runtime_url": server.url,
                "project_id": "64f1a0000000000000000002",
                "max_retries": 0,
            }
        )
        async with Client(build_server(settings)) as client:
            result = await client.call_tool(
                "interact", {"user_id": "cap-s2", "action": {"type": "launch"}}
            )
    assert not runtime.mismatches and not result.is_error
    assert result.structured_content is not None
    assert result.structured_content["warnings"] == [STREAM_OFF]
    assert text_of(result).startswith("Agent: Hi! I'm the Acme order assistant.")
    assert [path for _, path in runtime.seen] == [missing.path, plain.path]


if __name__ == "__main__":
    write_goldens()
