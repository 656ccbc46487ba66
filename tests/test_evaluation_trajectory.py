"""Trajectory checks (flows, blocks, tools) against the emulator and the recorded real runtime.

The emulator's example agent prices a reorder with a named API tool; its `all_traces` event
sends a tool call nothing names; the pizza agent (mirroring the recorded project) runs a
component flow. The recorded pizza exchanges 12 and 15 are what general-runtime answered with
`config.excludeTypes: []`: they are replayed byte for byte to the same code path.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.canary import CANARY_KEY
from tests.real_runtime import ReplayRuntime, load_exchanges
from tests.threaded_server import serve_in_thread
from vf_mcp.config import Settings
from vf_mcp.conversation import TurnRequest
from vf_mcp.domain.transcript import CheckResult, Transcript
from vf_mcp.emulator import Emulator, load_agent, running_emulator
from vf_mcp.evaluation.connection import ServiceFactory
from vf_mcp.evaluation.judge import ChatModel
from vf_mcp.evaluation.runner import run_suite
from vf_mcp.evaluation.script import ScriptTest, Suite
from vf_mcp.evaluation.testrun import TestRun
from vf_mcp.evaluation.trials import TurnBudget
from vf_mcp.summary import render_turn

pytestmark = pytest.mark.anyio

AGENTS = Path(__file__).resolve().parents[1] / "vf_mcp" / "emulator" / "agents"
MAIN_FLOW = "411834fa29c2b2825683eddf"  # the example agent's main diagram
PIZZA_ROOT, PIZZA_COMPONENT = "66d2e0a00000000000000103", "66d2e0a00000000000000104"
REORDER = [{"launch": True}, {"choice": "Track an order"}, {"message": "1001"}]


def outcomes(checks: list[CheckResult]) -> list[str]:
    return [c.outcome for c in checks]


def suite(*tests: dict[str, Any], **extra: Any) -> Suite:
    return Suite.model_validate({"name": "trajectory", "tests": list(tests), **extra})


async def test_flow_block_and_tool_checks_per_turn_and_over_the_conversation(
    settings: Settings, emulator: Emulator
) -> None:
    holds = [
        {"tool": "price_order", "times": 1},
        {"tool": "6650f0c2a1b2c3d4e5f6a001"},  # by the ref's apiToolID too
        {"tool": "PRICE_ORDER"},  # names match in any case
        {"block": "reorder_quote"},
        {"flow": MAIN_FLOW},
        {"block": "order_unknown", "never": True},
        {"in_order": [{"block": "reorder"}, {"block": "reorder_quote"}, {"tool": "price_order"}]},
    ]
    breaks = [
        {"tool": "price_order", "times": 2},
        {"tool": "refund_order"},
        {"block": "reorder_quote", "never": True},
        {"in_order": [{"tool": "price_order"}, {"block": "reorder"}]},
        {"block": "REORDER_QUOTE"},  # block ids are exact
    ]
    whole = [
        {"block": "order_1001"},  # turn 3
        {"tool": "price_order", "times": 1},
        {"in_order": [{"block": "order_1001"}, {"tool": "price_order"}]},
        {"in_order": [{"tool": "price_order"}, {"block": "order_1001"}]},  # wrong way round
    ]
    test = {
        "id": "reorder",
        "turns": [*REORDER, {"message": "order it again", "expect": holds + breaks}],
        "expect": whole,
    }
    [result] = (await run_suite(suite(test), ServiceFactory(settings))).tests
    turn = result.turns[3]
    assert outcomes(turn.checks) == ["passed"] * len(holds) + ["failed"] * len(breaks), [
        (c.label, c.evidence) for c in turn.checks
    ]
    assert outcomes(result.checks) == ["passed", "passed", "passed", "failed"]
    evidence = {c.label: c.evidence for c in turn.checks}
    assert evidence["tool 'refund_order' runs"] == (
        "tool 'refund_order' ran 0 times; ran: tool price_order"
    )
    assert (
        "block 'reorder_quote' ran 1 time; ran: block after_order, block reorder,"
        in (evidence["block 'reorder_quote' never runs"])
    )
    assert evidence["in order: tool 'price_order' → block 'reorder'"].startswith(
        "no block 'reorder' after tool 'price_order'; ran: "
    )
    # The transcript keeps the trajectory: the ref named the tool, the call ended.
    [tool] = [s for s in turn.trajectory.steps if s.kind == "tool"]  # type: ignore[union-attr]
    assert (tool.id, tool.name, tool.ref_type, tool.finished) == (
        "6650f0c2a1b2c3d4e5f6a001",
        "price_order",
        "api-tool",
        True,
    )
    assert turn.trajectory is not None and turn.trajectory.requested
    # Every turn of a trajectory suite asked for every trace; the summary the model reads did not
    # change for it (quiet traces are counted, never shown).
    bodies = [r.json for r in emulator.requests if r.path.endswith("/interact")]
    assert len(bodies) == 4 and all(b["config"] == {"excludeTypes": []} for b in bodies)


async def test_an_unnamed_tool_or_a_turn_without_flow_traces_is_an_error_that_says_why(
    settings: Settings, emulator: Emulator
) -> None:
    # all_traces sends a tool-call pair with no ref: which tool ran is unknown.
    unnamed = {
        "id": "unnamed",
        "turns": [
            {"launch": True},
            {
                "event": "all_traces",
                "expect": [
                    {"tool": "lookup"},
                    {"tool": "lookup", "never": True},
                    {"tool": "lookup", "times": 2},  # two would be more calls than ran: a fail
                ],
            },
        ],
    }
    [result] = (await run_suite(suite(unnamed), ServiceFactory(settings))).tests
    checks = result.turns[1].checks
    assert outcomes(checks) == ["error", "error", "failed"]
    assert checks[0].evidence == (
        "tool 'lookup' ran 0 times; the runtime did not name 1 tool call(s) (callID call_dbg_1): "
        "no trace with a tool ref came while the call was open"
    )
    assert result.outcome == "error"

    # The service asked for nothing: a flow check of that turn cannot be decided.
    async with ServiceFactory(settings).open() as service:
        plain = await service.interact(TurnRequest(launch=True))
        asked = await service.interact(
            TurnRequest(user_id=plain.user_id, launch=True, exclude_types=[])
        )
    assert {t.type for t in asked.traces} >= {"block", "flow", "debug"}
    assert not {t.type for t in plain.traces} & {"block", "flow", "debug"}
    # The model reads the same summary either way; only the quiet trace count differs.
    shown = [render_turn(o.result, "standard") for o in (plain, asked)]
    assert shown[0] == shown[1] and asked.result.trace_count > plain.result.trace_count


async def test_a_trajectory_suite_goes_to_plain_interact_even_when_the_server_streams(
    stream_settings: Settings, emulator: Emulator
) -> None:
    plain = {"id": "s", "turns": [{"launch": True}]}
    checks = {"id": "t", "turns": [{"launch": True, "expect": [{"block": "welcome"}]}]}
    [streamed] = (await run_suite(suite(plain), ServiceFactory(stream_settings))).tests
    [checked] = (await run_suite(suite(checks), ServiceFactory(stream_settings))).tests
    assert streamed.outcome == checked.outcome == "passed", checked.turns[0].checks
    paths = [r.path for r in emulator.requests]
    # The v2 stream's body has no config, so the trajectory turn used the plain endpoint.
    assert paths[0].endswith("/interact/stream") and paths[1].endswith(
        f"/{checked.user_id}/interact"
    )


async def test_v4_turns_carry_the_trace_types_in_their_config(
    stream_settings: Settings, emulator: Emulator
) -> None:
    v4 = stream_settings.model_copy(update={"api_version": "v4"})
    tests = [{"id": "t", "turns": [{"launch": True, "expect": [{"flow": MAIN_FLOW}]}]}]
    [result] = (await run_suite(suite(*tests), ServiceFactory(v4))).tests
    assert result.outcome == "passed", result.turns[0].checks
    [turn] = [r for r in emulator.requests if r.path.startswith("/v4/interact")]
    assert turn.path == "/v4/interact" and turn.json["config"] == {"excludeTypes": []}


@pytest.fixture(scope="module")
def pizza() -> Iterator[Emulator]:
    with running_emulator([load_agent(AGENTS / "pizza.yaml")]) as emulator:
        yield emulator


async def test_component_flows_on_the_pizza_agent(pizza: Emulator) -> None:
    settings = Settings.validated({"api_key": CANARY_KEY, "runtime_url": pizza.url})
    test = {
        "id": "build",
        "turns": [
            {"launch": True},
            {
                "action": {"type": "path-lp-build", "payload": {"label": "Build a pizza"}},
                "expect": [{"flow": PIZZA_COMPONENT}, {"block": "bp_ask_size"}],
            },
            {
                "message": "large",
                "expect": [
                    {"flow": PIZZA_ROOT},
                    {"in_order": [{"block": "bp_confirm"}, {"flow": PIZZA_ROOT}]},
                ],
            },
        ],
        "expect": [{"flow": PIZZA_COMPONENT, "times": 1}, {"flow": "Build a pizza"}],
    }
    [result] = (await run_suite(suite(test), ServiceFactory(settings))).tests
    assert [outcomes(t.checks) for t in result.turns[1:]] == [["passed"] * 2] * 2, [
        (c.label, c.evidence) for t in result.turns for c in t.checks
    ]
    # The runtime names flows by id only, so a check by name fails, showing the ids it saw.
    assert outcomes(result.checks) == ["passed", "failed"]
    assert PIZZA_COMPONENT in result.checks[1].evidence


class _Host:
    """What a test needs from its suite's run: here, a suite with no judge and no cap."""

    def __init__(self, suite: Suite, factory: ServiceFactory) -> None:
        self.suite = suite
        self.factory = factory
        self.judge: ChatModel | None = None
        self.budget = TurnBudget(None)
        self.trajectory = suite.needs_trajectory

    async def emit(self, kind: str, text: str, **fields: object) -> None:
        pass


async def replayed_test(
    exchanges: list[int], test: dict[str, Any], user: str, **suite_fields: Any
) -> tuple[Transcript, ReplayRuntime]:
    """One test through the runner's own code, answered by recorded pizza exchanges."""
    recorded = {e.number: e for e in load_exchanges("pizza")}
    runtime = ReplayRuntime()
    runtime.expect(*(recorded[n] for n in exchanges))
    with serve_in_thread(runtime.app) as server:
        settings = Settings.validated(
            {"api_key": CANARY_KEY, "runtime_url": server.url, "max_retries": 0}
        )
        factory = ServiceFactory(settings)
        run_suite_ = Suite.model_validate({"name": "recorded", "tests": [test], **suite_fields})
        async with factory.open() as service:
            host = _Host(run_suite_, factory)
            transcript = await TestRun(host, ScriptTest.model_validate(test), user).run(service)
    return transcript, runtime


async def test_the_recorded_runtime_s_flows_and_blocks() -> None:
    diavola = {"type": "path-lp-diav", "payload": {"label": "Order a Diavola", "actions": []}}
    test = {
        "id": "recorded",
        "turns": [
            {
                "action": diavola,
                "expect": [
                    {"flow": PIZZA_COMPONENT},
                    {"block": "lp_build"},
                    {
                        "in_order": [
                            {"block": "lp_build"},
                            {"flow": PIZZA_COMPONENT},
                            {"block": "bp_start"},
                            {"block": "bp_ask_size"},
                        ]
                    },
                    {"flow": PIZZA_ROOT},
                ],
            },
            {
                "message": "make it a small please",
                "expect": [
                    {"block": "bp_price"},
                    {"flow": PIZZA_ROOT},
                    {"flow": PIZZA_COMPONENT, "never": True},
                ],
            },
        ],
        "expect": [
            {
                "in_order": [
                    {"flow": PIZZA_COMPONENT},
                    {"block": "bp_confirm"},
                    {"flow": PIZZA_ROOT},
                ]
            },
            {"flow": "Build a pizza"},
        ],
    }
    # The bodies must be the recorded ones: the driver asked for every trace as the capture did.
    transcript, runtime = await replayed_test([12, 15], test, "pz-b1")
    assert not runtime.mismatches, runtime.mismatches
    first, second = transcript.turns
    assert outcomes(first.checks) == ["passed", "passed", "passed", "failed"]
    assert outcomes(second.checks) == ["passed", "passed", "passed"]
    assert outcomes(transcript.checks) == ["passed", "failed"]
    assert first.trajectory is not None
    flows = [s for s in first.trajectory.steps if s.kind == "flow"]
    assert [(s.id, s.name) for s in flows] == [(PIZZA_COMPONENT, None)]  # ids, never names
