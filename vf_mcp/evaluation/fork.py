"""`vf-mcp eval fork RECORDING --at K --out FILE`: a recorded turn becomes the start of a new test.

The recording (`--record DIR`) keeps, for each test, the test as written and the runtime state
after every turn. The fork is a one-test suite: the turns after K with their checks, the test's
own checks and mocks, and `from_state` naming turn K of the recording (relative to FILE, so the
two move together). A first remaining turn that presses a button (`choice`, `button`) is written
as the button's recorded request (`action`), since a test that starts from a state has no earlier
turn whose buttons it could press. Its conversation checks then read the forked turns only.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import JsonValue, ValidationError

from vf_mcp.arguments import OneLineParser
from vf_mcp.domain.turn import Choice
from vf_mcp.errors import ScriptError
from vf_mcp.evaluation.loader import suite_from_data
from vf_mcp.evaluation.recording import Cassette, load_cassette
from vf_mcp.evaluation.reports import write_whole
from vf_mcp.evaluation.script import ScriptTest


def build_parser() -> OneLineParser:
    parser = OneLineParser(
        prog="vf-mcp eval fork",
        description="Write a test that starts at a recorded turn and runs the turns after it.",
    )
    parser.add_argument(
        "recording",
        type=Path,
        metavar="RECORDING",
        help="one test's file of a --record folder (DIR/<suite>/<test>.json), or a folder "
        "holding one test",
    )
    parser.add_argument("--at", type=int, required=True, metavar="K", help="the turn to start at")
    parser.add_argument("--out", type=Path, required=True, metavar="FILE", help="suite to write")
    parser.add_argument(
        "--force", action="store_true", help="replace FILE if it exists (edits in it are lost)"
    )
    return parser


def main(argv: list[str]) -> int:
    """Exit 0 when the suite is written, 2 on bad input (nothing written)."""
    args = build_parser().parse_or_exit_code(argv)
    if isinstance(args, int):
        return args
    try:
        cassette_path = _cassette_path(args.recording)
        text, summary = fork(load_cassette(cassette_path), cassette_path, args.at, args.out)
        if args.out.exists() and not args.force:
            raise ScriptError(
                f"--out {args.out} already exists (a suite written before, perhaps edited since), "
                "so nothing was written; pass --force to replace it, or choose another --out"
            )
        write_whole(args.out, text)
    except ScriptError as exc:
        print(f"vf-mcp eval fork: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(
            f"vf-mcp eval fork: cannot write {args.out} ({exc.strerror or exc}); choose another "
            "path",
            file=sys.stderr,
        )
        return 2
    print(f"vf-mcp eval fork: wrote {args.out}: {summary}; run it with vf-mcp eval {args.out}")
    return 0


def _cassette_path(recording: Path) -> Path:
    """One test's file: `recording` itself, or the only one in a folder the recorder wrote
    (the recording, DIR/<suite>/<test>.json beside DIR/meta.json, or one suite's folder)."""
    if not recording.is_dir():
        return recording
    suite_folders = [p for p in recording.iterdir() if p.is_dir()]
    found = sorted(recording.glob("*/*.json"))
    found += sorted(
        p for p in recording.glob("*.json") if not (suite_folders and p.name == "meta.json")
    )
    if len(found) == 1:
        return found[0]
    example = f"{recording}/<suite>/<test>.json" if suite_folders else f"{recording}/<test>.json"
    if not found:
        raise ScriptError(
            f"{recording} holds no recorded test; give a folder --record wrote, or one test's "
            f"file, e.g. {example}"
        )
    shown = ", ".join(str(p.relative_to(recording)) for p in found[:3])
    more = f" and {len(found) - 3} more" if len(found) > 3 else ""
    raise ScriptError(
        f"{recording} holds {len(found)} recorded tests ({shown}{more}); give one test's file, "
        f"e.g. {example}"
    )


def fork(cassette: Cassette, path: Path, at: int, out: Path) -> tuple[str, str]:
    """The forked suite's YAML, and what it holds in words; `ScriptError` on bad input."""
    where = f"{path} ({cassette.suite} / {cassette.test})"
    if cassette.script is None:
        raise ScriptError(
            f"{where} was recorded before vf-mcp kept the test and its states; record it again "
            "with --record"
        )
    written = cassette.script.test
    try:
        test = ScriptTest.model_validate(written)
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]["msg"]
        raise ScriptError(f"{where}: the recorded test no longer loads ({first})") from None
    if not test.turns:
        raise ScriptError(f"{where} is a simulated test: it has no scripted turns to fork")
    last = min(len(test.turns) - 1, max((s.turn for s in cassette.states), default=0))
    if not 1 <= at <= last:
        raise ScriptError(
            f"--at {at} is out of range for {where}: it has {len(test.turns)} turns and kept the "
            f"state of {len(cassette.states)}, so fork at a turn from 1 to {last} (a turn with "
            "turns after it)"
        )
    if cassette.state_after(at) is None:
        kept = ", ".join(str(t) for t in sorted(s.turn for s in cassette.states) if t <= last)
        raise ScriptError(
            f"--at {at}: {where} did not keep the state after turn {at} (its state could not "
            f"be read, or the turn failed); fork at a kept turn (turns {kept}) or record again"
        )
    turns = [dict(t) for t in _list(written.get("turns"))[at:]]
    turns[0] = _pressed_as_action(turns[0], test, at, cassette, where)
    forked = _forked_test(written, test, turns, at, os.path.relpath(path, out.parent.resolve()))
    suite = {"name": f"{cassette.suite} (forked)", "tests": [forked]}
    suite_from_data(suite, source=str(out), base_dir=out.parent)  # it loads, or this raises
    header = (
        f"# Forked by `vf-mcp eval fork` at turn {at} of\n#   {path}\n"
        "# The turns after it run from the state the runtime held then; checks of the whole\n"
        "# conversation read these turns only.\n"
    )
    body = yaml.safe_dump(suite, sort_keys=False, allow_unicode=True, width=100)
    summary = f"test {forked['id']} from turn {at} of {cassette.test} ({len(turns)} turns)"
    return header + body, summary


def _list(value: JsonValue) -> list[dict[str, JsonValue]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _forked_test(
    written: dict[str, JsonValue],
    test: ScriptTest,
    turns: list[dict[str, JsonValue]],
    at: int,
    recording: str,
) -> dict[str, Any]:
    # The first turn's preset variables are in the saved state already; trials are the run's;
    # the state the recorded test started from is not where the fork starts.
    dropped = ("id", "name", "turns", "variables", "repeat", "from_state", "imported_from")
    kept = {k: v for k, v in written.items() if k not in dropped}
    return {
        "id": f"{test.id}_from_turn_{at}",
        "name": f"{test.title} (from turn {at})",
        "from_state": {"recording": recording, "turn": at},
        "turns": turns,
        **kept,
    }


def _pressed_as_action(
    turn: dict[str, JsonValue], test: ScriptTest, at: int, cassette: Cassette, where: str
) -> dict[str, JsonValue]:
    """A button press of the first forked turn, written as the request the button sends."""
    step = test.turns[at]
    if step.choice is None and step.button is None:
        return turn
    offered = _offered(cassette, at, remembered=step.button is not None)
    pressed = step.choice if step.choice is not None else step.button
    match = next((c for c in offered if _presses(pressed, c)), None)
    if match is None or match.request is None:
        labels = ", ".join(repr(c.label) for c in offered) or "none"
        raise ScriptError(
            f"{where}: turn {at + 1} presses {pressed!r}, which turn {at} did not offer "
            f"(buttons: {labels}); fork at another turn"
        )
    rewritten = {k: v for k, v in turn.items() if k not in ("choice", "button")}
    return {"action": dict(match.request), **rewritten}


def _offered(cassette: Cassette, at: int, *, remembered: bool) -> list[Choice]:
    # `choice` presses the last turn's buttons; `button` (voiceflow-cli) the last ones offered.
    offered = {s.turn: s.choices for s in cassette.states}
    if not remembered:
        return offered.get(at, [])
    return next((offered[t] for t in range(at, 0, -1) if offered.get(t)), [])


def _presses(pressed: str | int | None, choice: Choice) -> bool:
    if isinstance(pressed, int) or (isinstance(pressed, str) and pressed.isdigit()):
        return choice.number == int(pressed)
    return pressed is not None and choice.label.casefold() == pressed.casefold()
