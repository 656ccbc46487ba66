"""The trace summarizer: what a model reads for each documented trace type and status."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from vf_mcp.domain.turn import TurnResult
from vf_mcp.summary import describe_media, diff_variables, render_turn, strip_ssml, summarize_turn
from vf_mcp.voiceflow import parse_traces

HANDOFF = ("handoff", "talk_to_agent")


def turn(raw: list[dict[str, Any]], **kwargs: Any) -> TurnResult:
    options: dict[str, Any] = {
        "variables_before": None,
        "variables_after": None,
        "latency_ms": 12.3,
        "handoff_actions": HANDOFF,
    }
    options.update(kwargs)
    return summarize_turn("u-1", parse_traces(raw), **options)


def test_text_and_choices_render_like_the_example() -> None:
    result = turn(
        [
            {"type": "text", "payload": {"message": "Hi! What can I do for you?"}},
            {
                "type": "choice",
                "payload": {
                    "buttons": [
                        {
                            "name": "Track an order",
                            "request": {"type": "path-a", "payload": {"label": "Track an order"}},
                        },
                        {
                            "name": "Talk to a person",
                            "request": {"type": "path-b", "payload": {"label": "Talk to a person"}},
                        },
                    ]
                },
            },
        ]
    )
    assert render_turn(result) == (
        "Agent: Hi! What can I do for you?\n"
        "Choices: 1) Track an order 2) Talk to a person\n"
        "Status: awaiting_user"
    )
    assert render_turn(result, show_user_id=True).endswith(
        "Status: awaiting_user · new user_id u-1"
    )
    assert "12" not in render_turn(result), "latency is for the structured content only"
    assert result.latency_ms == 12.3
    assert result.choices[1].request == {"type": "path-b", "payload": {"label": "Talk to a person"}}


def test_ssml_is_stripped_from_speak_and_audio_is_described_not_inlined() -> None:
    audio = "data:audio/mpeg;base64," + "QUJD" * 100
    result = turn(
        [
            {
                "type": "speak",
                "payload": {
                    "message": "<speak>Hello <break time='1s'/> there &amp; bye</speak>",
                    "type": "message",
                    "src": audio,
                },
            }
        ]
    )
    assert result.messages[0].text == "Hello there & bye"
    media = result.messages[1].media
    assert media is not None and media.kind == "data" and media.size_bytes == 300
    assert media.media_type == "audio/mpeg"
    assert "QUJD" not in render_turn(result)


def test_cards_carousels_and_images_are_reduced_and_their_buttons_offered() -> None:
    button = {"name": "Buy", "request": {"type": "path-buy"}}
    result = turn(
        [
            {"type": "visual", "payload": {"visualType": "image", "image": "https://x/i.png"}},
            {
                "type": "cardV2",
                "payload": {
                    "title": "Mug",
                    "description": {"text": "A <b>nice</b> mug"},
                    "imageUrl": "https://x/m.png",
                    "buttons": [button],
                },
            },
            {
                "type": "carousel",
                "payload": {
                    "layout": "Carousel",
                    "cards": [
                        {
                            "id": "1",
                            "title": "Hat",
                            "description": {"text": "Warm"},
                            "imageUrl": None,
                            "buttons": [{"name": "Buy hat", "request": {"type": "path-hat"}}],
                        }
                    ],
                },
            },
        ]
    )
    assert [m.kind for m in result.messages] == ["image", "card", "carousel"]
    assert result.messages[1].cards[0].description == "A nice mug"
    assert [c.label for c in result.choices] == ["Buy", "Buy hat"]
    text = render_turn(result)
    assert "Agent [image]: https://x/i.png" in text
    assert "Agent [card]: Mug — A nice mug\n" in text
    assert "Agent [card]: Mug — A nice mug — image https://x/m.png" in render_turn(result, "debug")


def test_legacy_choice_shape_still_gives_choices() -> None:
    result = turn(
        [
            {
                "type": "choice",
                "payload": {
                    "choices": [{"name": "Yes", "intent": "yes_intent"}, {"name": "Later"}]
                },
            }
        ]
    )
    assert result.choices[0].request["payload"]["intent"] == {"name": "yes_intent"}
    assert result.choices[1].request == {"type": "text", "payload": "Later"}


def test_completion_chunks_become_one_message() -> None:
    result = turn(
        [
            {"type": "completion", "payload": {"state": "start", "messageID": "m"}},
            {"type": "completion", "payload": {"state": "content", "content": "Returns are "}},
            {"type": "completion", "payload": {"state": "content", "content": "free for 30 days."}},
            {"type": "completion", "payload": {"state": "end"}},
        ]
    )
    assert [m.text for m in result.messages] == ["Returns are free for 30 days."]


def test_audio_stream_is_counted_not_inlined() -> None:
    result = turn(
        [
            {"type": "audio", "payload": {"state": "start", "messageID": "a"}},
            {
                "type": "audio",
                "payload": {"state": "content", "content": "AAAA", "encoding": "audio/pcm"},
            },
            {"type": "audio", "payload": {"state": "end"}},
        ]
    )
    media = result.messages[0].media
    assert media is not None and media.size_bytes == 3 and media.media_type == "audio/pcm"


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        ([{"type": "text", "payload": {"message": "Bye"}}, {"type": "end"}], "ended"),
        ([{"type": "no-reply", "payload": {"timeout": 30}}], "awaiting_user"),
        (
            [
                {
                    "type": "live-agent-handoff",
                    "payload": {
                        "conversationID": "c",
                        "message": "Connecting",
                        "event": "chat_started",
                        "provider": "genesys",
                    },
                }
            ],
            "handoff",
        ),
        (
            [{"type": "call-forward", "payload": {"addressType": "phone", "address": "+15550100"}}],
            "handoff",
        ),
        (
            [
                {
                    "type": "talk_to_agent",
                    "payload": {"reason": "x"},
                    "paths": [{"event": {"type": "done"}}],
                    "defaultPath": 0,
                }
            ],
            "handoff",
        ),
        (
            [
                {
                    "type": "calendar",
                    "payload": {"today": 1},
                    "paths": [{"event": {"type": "done"}}, {"event": {"type": "cancel"}}],
                    "defaultPath": 0,
                }
            ],
            "awaiting_action",
        ),
        (
            [
                {
                    "type": "debug",
                    "payload": {"message": "An internal error occurred.", "level": "error"},
                },
                {"type": "end"},
            ],
            "error",
        ),
        ([{"type": "debug", "payload": {"message": "credit_limit_reached"}}], "error"),
        ([], "awaiting_user"),
    ],
)
def test_every_status(raw: list[dict[str, Any]], status: str) -> None:
    assert turn(raw).status == status


def test_a_custom_action_followed_by_more_content_did_not_stop() -> None:
    raw = [
        {
            "type": "calendar",
            "payload": {},
            "paths": [{"event": {"type": "done"}}],
            "defaultPath": 0,
        },
        {"type": "text", "payload": {"message": "Continuing"}},
    ]
    result = turn(raw)
    assert result.status == "awaiting_user"
    assert result.custom_actions[0].result_types == ["done"]


def test_status_line_details() -> None:
    no_reply = turn([{"type": "no-reply", "payload": {"timeout": 30}}])
    assert render_turn(no_reply).endswith("Status: awaiting_user (no-reply 30 s)")
    assert render_turn(no_reply, "minimal").endswith("Status: awaiting_user")
    assert "handoff to live agent (genesys)" in render_turn(
        turn(
            [
                {
                    "type": "live-agent-handoff",
                    "payload": {"provider": "genesys", "message": "Hold on"},
                }
            ]
        )
    )
    assert "error: An internal error occurred." in render_turn(
        turn(
            [
                {
                    "type": "debug",
                    "payload": {"message": "An internal error occurred.", "level": "error"},
                }
            ]
        )
    )


def test_unknown_traces_are_counted_in_standard_and_kept_in_debug() -> None:
    raw = [
        {"type": "x-custom-widget", "payload": {"a": 1}},
        {"type": "x-custom-widget"},
        {"type": "stream", "payload": {"src": "https://x/a.mp3", "action": "PLAY"}},
    ]
    standard = turn(raw)
    assert standard.unknown_traces == {"stream": 1, "x-custom-widget": 2}
    assert standard.traces is None
    assert "Not shown: stream x1, x-custom-widget x2" in render_turn(standard)
    debug = turn(raw, verbosity="debug")
    assert debug.traces == raw


QUIET = [
    {"type": "path", "payload": {"path": "choice:1"}},
    {"type": "flow", "payload": {"diagramID": "d"}},
    {"type": "block", "payload": {"blockID": "b"}},
    {"type": "goto", "payload": {"request": {"type": "intent"}}},
    {"type": "log", "payload": {"kind": "step.text"}},
    {"type": "tool-call", "payload": {"state": "start", "callID": "c1"}},
    {"type": "reasoning", "payload": {"state": "content", "content": "thinking"}},
    {"type": "debug", "payload": {"type": "start", "message": "beginning flow"}},
    {"type": "entity-filling", "payload": {"entityToFill": "size", "intent": {}}},
    {"type": "knowledgeBase", "payload": {"chunks": [{"score": 1}]}},
]


@pytest.mark.parametrize("trace", QUIET, ids=[str(t["type"]) for t in QUIET])
def test_quiet_types_are_counted_but_never_unknown_or_shown(trace: dict[str, Any]) -> None:
    result = turn([{"type": "text", "payload": {"message": "Hi"}}, trace])
    assert result.trace_count == 2
    assert result.unknown_traces == {}
    assert render_turn(result) == "Agent: Hi\nStatus: awaiting_user"


def test_quiet_traces_after_a_custom_action_leave_it_waiting() -> None:
    action = {"type": "checkout", "payload": {}, "paths": [{"event": {"type": "done"}}]}
    assert turn([action, *QUIET]).status == "awaiting_action"


def test_a_turn_with_no_traces_says_so_and_what_to_check() -> None:
    result = turn([])
    assert result.trace_count == 0
    assert result.warnings and "no traces" in result.warnings[0]
    text = render_turn(result)
    assert "no traces" in text and "get_state" in text
    assert text.splitlines()[-1] == "Status: awaiting_user"


def test_debug_carries_the_traces_exactly_as_received() -> None:
    received = (
        '[{"time":1796108699574,"type":"text","payload":{"slate":{"id":"9i0sd97","content":'
        '[{"children":[{"text":"Hi"}]}],"messageDelayMilliseconds":1000},"message":"Hi",'
        '"delay":1000}}]'
    )
    result = turn(json.loads(received), verbosity="debug")
    assert json.dumps(result.traces, separators=(",", ":")) == received


def test_runtime_variables_are_never_changes_and_go_apart_in_debug() -> None:
    before = {"order_number": 0, "sessions": 2, "_memory_": [], "last_event": {"type": "launch"}}
    after = {
        "order_number": "1001",
        "sessions": 2,
        "_memory_": [{"role": "user", "content": "1001"}],
        "vf_memory": "user: 1001",
        "last_event": {"type": "text", "payload": "1001"},
        "last_utterance": "1001",
    }
    standard = turn([], variables_before=before, variables_after=after)
    assert [c.name for c in standard.variables_changed or []] == ["order_number"]
    assert standard.runtime_variables_changed is None
    text = render_turn(standard)
    assert 'Variables: order_number: unset -> "1001"' in text
    assert "_memory_" not in text and "last_event" not in text
    debug = turn([], variables_before=before, variables_after=after, verbosity="debug")
    assert [c.name for c in debug.runtime_variables_changed or []] == [
        "_memory_",
        "last_event",
        "last_utterance",
        "vf_memory",
    ]


def test_a_declared_variable_at_the_runtimes_zero_default_is_no_change() -> None:
    first = turn([], variables_before=None, variables_after={"order_number": 0, "tier": "gold"})
    assert [(c.name, c.before, c.after) for c in first.variables_changed or []] == [
        ("tier", None, "gold")
    ]
    set_later = turn([], variables_before={"n": 0}, variables_after={"n": 13})
    assert set_later.variables_changed is not None
    assert set_later.variables_changed[0].before == 0, "the structured `before` stays raw"
    assert "n: unset -> 13" in render_turn(set_later)
    reset = turn([], variables_before={"n": 13}, variables_after={"n": 0})
    assert "n: 13 -> 0" in render_turn(reset)


def test_a_huge_turn_stays_within_the_budget_and_says_what_it_left_out() -> None:
    buttons = [{"name": f"Option {i}", "request": {"type": f"path-{i}"}} for i in range(3)]
    raw = [{"type": "text", "payload": {"message": f"Line {i} " + "x" * 100}} for i in range(200)]
    raw.append({"type": "choice", "payload": {"buttons": buttons}})
    result = turn(raw)
    whole = render_turn(result, max_chars=1_000_000)
    assert len(whole) > 20_000
    text = render_turn(result, max_chars=8000)
    assert len(text) <= 8000
    assert text.startswith("Agent: Line 0 ")
    assert "characters left out" in text and "structured content" in text
    assert "Choices: 1) Option 0 2) Option 1 3) Option 2" in text
    assert text.splitlines()[-1] == "Status: awaiting_user"
    assert len(result.messages) == 200, "the structured content keeps everything"


def test_a_single_huge_message_is_cut_not_dropped() -> None:
    result = turn([{"type": "text", "payload": {"message": "word " * 5000}}])
    text = render_turn(result, max_chars=1000)
    assert len(text) <= 1000 and text.startswith("Agent: word word")
    assert text.splitlines()[-1] == "Status: awaiting_user"


def test_every_documented_type_has_a_handler_or_is_quiet() -> None:
    from vf_mcp.summary.handlers import HANDLERS, QUIET_TRACES
    from vf_mcp.voiceflow.traces import _TRACE_MODELS

    shown_elsewhere = {"stream", "channel-action", "dtmf", "realtime-agent"}
    for model in _TRACE_MODELS:
        kind = model.model_fields["type"].default
        assert model in HANDLERS or model in QUIET_TRACES or kind in shown_elsewhere, kind


def test_minimal_keeps_only_messages_choices_and_status() -> None:
    raw = [
        {"type": "text", "payload": {"message": "Hi"}},
        {"type": "x-unknown"},
        {"type": "calendar", "payload": {}, "paths": [{"event": {"type": "done"}}]},
    ]
    result = turn(raw, variables_before={"a": 1}, variables_after={"a": 2})
    text = render_turn(result, "minimal")
    assert text.splitlines()[0] == "Agent: Hi"
    with_image = turn(
        [
            {"type": "visual", "payload": {"image": "https://x/i.png"}},
            {"type": "text", "payload": {"message": "Hi"}},
        ]
    )
    assert "i.png" not in render_turn(with_image, "minimal")
    assert "Agent [image]: https://x/i.png" in render_turn(with_image)
    assert text.splitlines()[-1].startswith("Status: awaiting_action")
    assert len(text.splitlines()) == 2
    assert "Variables: a: 1 -> 2" in render_turn(result)


def test_variable_diff_skips_runtime_bookkeeping_and_knows_unknown() -> None:
    diff = diff_variables(
        {"a": 1, "timestamp": 1, "gone": True}, {"a": 2, "timestamp": 2, "new": "x"}
    )
    assert diff is not None
    assert [(c.name, c.before, c.after) for c in diff.agent] == [
        ("a", 1, 2),
        ("gone", True, None),
        ("new", None, "x"),
    ]
    assert [c.name for c in diff.runtime] == ["timestamp"]
    assert diff_variables({"a": 1}, None) is None
    agent_only = diff_variables(
        {"a": 1, "timestamp": 1}, {"a": 2, "timestamp": 2}, runtime=False
    )  # what a turn below debug asks for: the runtime's changes are never shown there
    assert agent_only is not None
    assert [c.name for c in agent_only.agent] == ["a"] and agent_only.runtime == []


def test_helpers() -> None:
    assert strip_ssml("<speak>a<p>b</p></speak>") == "a b"
    assert describe_media("https://x/a.mp3", "audio").url == "https://x/a.mp3"
    assert describe_media("data:,hello", "image").size_bytes == 5


def test_summary_is_deterministic_across_processes() -> None:
    # Set and dict ordering can differ between interpreter runs (hash seeds), not within one:
    # render the same turn in two processes with different seeds and compare.
    script = (
        "from vf_mcp.summary import render_turn, summarize_turn\n"
        "from vf_mcp.voiceflow import parse_traces\n"
        "raw = [{'type': 'text', 'payload': {'message': 'Same'}}, {'type': 'x-b'}, {'type': 'x-a'},"
        " {'type': 'act', 'payload': {}, 'paths': [{'event': {'type': 'done'}}]}]\n"
        "t = summarize_turn('u', parse_traces(raw), variables_before={'b': 1, 'a': 1},"
        " variables_after={'a': 2, 'b': 2, 'c': 3}, latency_ms=1,"
        " handoff_actions={'h', 'i', 'j'})\n"
        "print(render_turn(t))\n"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", script],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for seed in ("1", "2", "3")
    }
    assert len(outputs) == 1
    assert "Variables: a: 1 -> 2, b: 1 -> 2, c: unset -> 3" in outputs.pop()
