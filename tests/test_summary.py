"""The trace summarizer: what a model reads for each documented trace type and status."""

from __future__ import annotations

from typing import Any

import pytest

from vf_mcp.summary import (
    TurnResult,
    describe_media,
    diff_variables,
    render_turn,
    strip_ssml,
    summarize_turn,
)
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
        "Choices: 1) Track an order  2) Talk to a person\n"
        "Status: awaiting_user · user_id u-1 · 12 ms"
    )
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
    assert "Agent [card]: Mug — A nice mug — image https://x/m.png" in text


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
    assert "awaiting_user (no-reply after 30 s)" in render_turn(
        turn([{"type": "no-reply", "payload": {"timeout": 30}}])
    )
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
        {"type": "flow", "payload": {"diagramID": "d"}},
    ]
    standard = turn(raw)
    assert standard.unknown_traces == {"flow": 1, "x-custom-widget": 2}
    assert standard.traces is None
    assert "Not shown: flow x1, x-custom-widget x2" in render_turn(standard)
    debug = turn(raw, verbosity="debug")
    assert debug.traces == raw


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
    assert "Variables: a: 1 → 2" in render_turn(result)


def test_variable_diff_skips_runtime_bookkeeping_and_knows_unknown() -> None:
    changes = diff_variables(
        {"a": 1, "timestamp": 1, "gone": True}, {"a": 2, "timestamp": 2, "new": "x"}
    )
    assert [(c.name, c.before, c.after) for c in changes or []] == [
        ("a", 1, 2),
        ("gone", True, None),
        ("new", None, "x"),
    ]
    assert diff_variables({"a": 1}, None) is None


def test_helpers() -> None:
    assert strip_ssml("<speak>a<p>b</p></speak>") == "a b"
    assert describe_media("https://x/a.mp3", "audio").url == "https://x/a.mp3"
    assert describe_media("data:,hello", "image").size_bytes == 5


def test_summary_is_deterministic() -> None:
    raw = [{"type": "text", "payload": {"message": "Same"}}, {"type": "x"}]
    assert render_turn(turn(raw)) == render_turn(turn(raw))
