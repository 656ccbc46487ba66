"""No caller can exhaust the server or push out another's data: suites are read within bounds, the
store is bounded in bytes and per caller, and the tests directory is a wall."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.services import redis_server
from vf_mcp.domain.conversation import ConversationMemory
from vf_mcp.domain.run import RunRecord
from vf_mcp.domain.transcript import Transcript, TranscriptTurn, UserAction
from vf_mcp.errors import ScriptError
from vf_mcp.evaluation.loader import load_script
from vf_mcp.evaluation.reading import MAX_SIZE, parse_text
from vf_mcp.store.memory import (
    InMemoryLeases,
    InMemoryMemory,
    InMemoryRuns,
    InMemoryTranscripts,
)

pytestmark = pytest.mark.anyio
A, B = "t0123456789ab", "tfedcba987654"


def bomb(levels: int) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels)]
    return "name: b\ntests: [{id: t, turns: [{launch: true}]}]\nvariables:\n" + "\n".join(
        "  " + line for line in lines
    )


def test_an_alias_bomb_is_refused_before_anything_walks_it() -> None:
    text = bomb(12)  # 10^12 values once expanded, from under 800 bytes
    started = time.perf_counter()
    with pytest.raises(ScriptError, match=f"more than {MAX_SIZE:,} values and characters once"):
        parse_text(text, "<inline>")
    assert time.perf_counter() - started < 2  # refused before the walk: milliseconds, not minutes
    assert len(text.encode()) < 800


def test_a_long_anchored_string_repeated_by_aliases_is_refused_too() -> None:
    # 150 KB once, a thousand times over: 150 MB to validate, from a text under 160 KB.
    long = "x" * 150_000
    levels = ["a0: &a0 " + long] + [
        f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 4)
    ]
    text = "name: b\ntests: [{id: t, turns: [{launch: true}]}]\nvariables:\n" + "\n".join(
        "  " + line for line in levels
    )
    assert len(text) < 160_000
    with pytest.raises(ScriptError, match="values and characters once its YAML aliases"):
        parse_text(text, "<inline>")


def test_aliases_and_merge_keys_within_bounds_still_work() -> None:
    [suite] = load_script(
        "name: merged\n"
        "tests:\n- id: one\n  turns: [&d {launch: true}]\n- id: two\n  turns: [{<<: *d}]\n"
    )
    assert [t.turns[0].launch for t in suite.tests] == [True, True]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a: &a [*a]", "refers to a value that contains it"),
        ("x:" + " [" * 80 + " ]" * 80, "nested deeper than 64 levels"),
    ],
)
def test_self_reference_and_deep_nesting_are_refused_in_one_line(text: str, problem: str) -> None:
    with pytest.raises(ScriptError, match=problem):
        parse_text(text, "<inline>")


def test_a_link_inside_the_tests_directory_cannot_read_a_suite_from_outside(
    tmp_path: Path,
) -> None:
    outside = tmp_path / "outside.yaml"
    outside.write_text("name: stolen\ntests: [{id: t, turns: [{launch: true}]}]\n")
    tests = tmp_path / "tests"
    (tests / "folder.yaml").mkdir(parents=True)  # a directory whose name reads as a suite file
    (tests / "folder.yaml" / "link.yaml").symlink_to(outside)
    (tests / "bundle.yaml").mkdir()
    (tests / "bundle.yaml" / "suite.yaml").symlink_to(outside)
    for name in ("folder.yaml", "bundle.yaml"):
        with pytest.raises(ScriptError, match="is outside the tests directory"):
            load_script(name, tests_dir=tests)


def test_a_suite_file_over_the_size_bound_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text("name: big\n# " + "x" * 1_100_000 + "\ntests: []\n")
    with pytest.raises(ScriptError, match="more than a suite file may be"):
        load_script("big.yaml", tests_dir=tmp_path)


def memory(size: int) -> ConversationMemory:
    return ConversationMemory(variables={"blob": "x" * size})


async def test_one_caller_filling_the_store_evicts_only_its_own_conversations() -> None:
    store = InMemoryMemory(max_conversations=100, max_bytes=10_000_000)
    await store.save("alice-1", memory(10), owner=A)
    for n in range(1_100):
        await store.save(f"mallory-{n}", memory(10), owner=B)
    assert await store.load("alice-1") is not None
    assert await store.load("mallory-0") is None  # Mallory's own oldest went
    assert await store.load("mallory-1099") is not None


async def test_memory_is_bounded_in_bytes_with_the_biggest_holder_paying() -> None:
    store = InMemoryMemory(max_conversations=10_000, max_bytes=1_000_000)
    await store.save("alice", memory(60_000), owner=A)
    for n in range(100):
        await store.save(f"mallory-{n}", memory(60_000), owner=B)
    assert await store.load("alice") is not None
    kept = [n for n in range(100) if await store.load(f"mallory-{n}") is not None]
    assert 0 < len(kept) < 16 and kept[-1] == 99


def turn(size: int) -> TranscriptTurn:
    return TranscriptTurn(index=1, user=UserAction(kind="message", text="y" * size))


def head(user_id: str) -> Transcript:
    return Transcript(
        suite="live",
        test_id=user_id,
        name=user_id,
        user_id=user_id,
        started_at=datetime.now(UTC),
        outcome="passed",
    )


async def test_transcripts_are_bounded_per_caller_and_in_bytes() -> None:
    book = InMemoryTranscripts(max_conversations=1000, transcript_max_bytes=200_000)
    await book.append(f"{A}/a/mine", head("mine"), turn(10))
    for n in range(1_100):
        await book.append(f"{B}/a/{n}", head(str(n)), turn(10))
    for _ in range(100):
        await book.append(f"{B}/a/long", head("long"), turn(60_000))
    assert await book.load(f"{A}/a/mine") is not None
    long = await book.load(f"{B}/a/long")
    assert long is not None
    assert len(long.model_dump_json()) < 200_000 + 70_000
    assert [t.index for t in long.turns] == [98, 99, 100]  # the numbers show what went


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as url:
        yield url


async def test_a_redis_transcript_is_bounded_in_bytes(redis_url: str) -> None:
    from vf_mcp.store.redis import redis_store

    store = redis_store(redis_url, ttl_seconds=60, transcript_max_bytes=200_000)
    try:
        await store.transcripts.forget(f"{A}/a/long")
        for _ in range(40):
            await store.transcripts.append(f"{A}/a/long", head("long"), turn(60_000))
        long = await store.transcripts.load(f"{A}/a/long")
    finally:
        await store.aclose()
    assert long is not None
    assert [t.index for t in long.turns] == [38, 39, 40]


async def test_turn_leases_are_kept_no_longer_than_their_ttl_past_use() -> None:
    leases = InMemoryLeases()
    for n in range(1000):
        await leases.take(f"conversation-{n}", "turn", -1)  # lapsed as soon as held
    await leases.take("now", "turn", 60)
    assert len(leases) == 1
    assert await leases.holder("now") == "turn"
    assert await leases.holder("conversation-0") is None


async def test_runs_of_one_caller_never_push_out_anothers() -> None:
    runs = InMemoryRuns(max_runs=10)

    def record(run_id: str) -> RunRecord:
        return RunRecord(run_id=run_id, agent="a", state="finished", worker="w")

    await runs.save(f"{A}/mine", record("mine"))
    for n in range(50):
        await runs.save(f"{B}/{n}", record(str(n)))
    assert await runs.load(f"{A}/mine") is not None
    assert await runs.load(f"{B}/0") is None


def test_a_credential_split_across_streamed_chunks_is_masked_once_joined() -> None:
    from vf_mcp.redaction import remember_secrets
    from vf_mcp.summary import summarize_turn
    from vf_mcp.voiceflow.traces import parse_traces

    token = "tokenAAAAAAAAAAAAAAAA"
    remember_secrets([token])
    pieces = ["My key is VF.DM.0123456789ab", "cdef01234567.Secret", " and ", "tokenAAAA", "AAAA"]
    pieces.append("AAAAAAAA.")
    traces = parse_traces(
        [{"type": "completion", "payload": {"state": "start"}}]
        + [{"type": "completion", "payload": {"state": "content", "content": p}} for p in pieces]
        + [{"type": "completion", "payload": {"state": "end"}}]
    )
    result = summarize_turn(
        "u", traces, variables_before=None, variables_after=None, latency_ms=1,
        handoff_actions=(),
    )  # fmt: skip
    assert [m.text for m in result.messages] == ["My key is VF.DM.*** and ***."]


def test_a_credential_split_across_streamed_reasoning_pieces_is_masked_in_the_kept_pieces() -> None:
    from vf_mcp.voiceflow.traces import mask_split_credentials, parse_traces

    pieces = ["Thinking: the key VF.DM.0123", "456789abcdef01234567.Sec", "ret is set."]
    traces = parse_traces(
        [{"type": "reasoning", "payload": {"state": "start"}}]
        + [{"type": "reasoning", "payload": {"state": "content", "content": p}} for p in pieces]
        + [{"type": "reasoning", "payload": {"state": "end"}}]
    )
    kept = [t.raw["payload"].get("content") or "" for t in mask_split_credentials(traces)]
    assert "".join(kept) == "Thinking: the key VF.DM.*** is set."


async def test_an_append_retried_after_it_ran_is_not_recorded_twice(redis_url: str) -> None:
    from vf_mcp.store.redis import redis_store

    memory_book = InMemoryTranscripts()
    store = redis_store(redis_url, ttl_seconds=60)
    try:
        for book in (memory_book, store.transcripts):
            await book.forget(f"{A}/a/retried")
            for append_id in ("first", "first", "second"):  # "first" retried once
                await book.append(f"{A}/a/retried", head("r"), turn(10), append_id=append_id)
            found = await book.load(f"{A}/a/retried")
            assert found is not None and [t.index for t in found.turns] == [1, 2], book
    finally:
        await store.aclose()


async def test_one_caller_opening_sessions_never_ends_anothers() -> None:
    from vf_mcp.callers import namespace_in, oauth_namespace
    from vf_mcp.voiceflow.sessions import InMemorySessionKeys

    keys = InMemorySessionKeys(max_users=100, owner_of=namespace_in)
    await keys.set_session_key(f"{A}.alice", None, "key-a")
    for n in range(1_000):  # Mallory's user ids may even look like Alice's namespace
        await keys.set_session_key(f"{B}.{A}.m{n}", None, f"key-{n}")
    assert await keys.get_session_key(f"{A}.alice", None) == "key-a"
    assert namespace_in(f"support.{B}.{A}.x") == B and namespace_in("plain") == "-"
    assert oauth_namespace("alice") != oauth_namespace(None, "alice")  # subject vs client id
