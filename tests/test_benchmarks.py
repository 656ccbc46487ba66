"""The benchmarks' own promises that a refactor could break silently (they are not timed tests:
`benchmarks/` runs apart). A part switched off must still find what it replaces, or the
"Where the added time goes" table would compare vf-mcp with itself."""

from __future__ import annotations

import subprocess
import sys

from benchmarks.profile_turn import OTHER_VF, SDK, part_of
from tests.processes import ROOT

SWITCH_ALL_OFF = (
    "from benchmarks.switched import switch_off; "
    "switch_off(frozenset({'schema', 'record', 'structured'}))"
)


def test_every_benchmark_switch_still_finds_what_it_replaces() -> None:
    # A fresh Python: switching off replaces module attributes for good.
    ran = subprocess.run(
        [sys.executable, "-c", SWITCH_ALL_OFF], capture_output=True, text=True, cwd=ROOT
    )
    assert ran.returncode == 0, ran.stderr


def test_a_switch_without_its_schema_is_refused_in_one_line() -> None:
    ran = subprocess.run(
        [sys.executable, "-m", "benchmarks.switched"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"VF_MCP_BENCH_OFF": "structured", "PATH": ""},
    )
    assert ran.returncode == 1
    assert ran.stderr.strip() == "VF_MCP_BENCH_OFF: `structured` needs `schema` off too"


def test_a_sample_goes_to_its_innermost_vf_mcp_frame_past_the_entry_points() -> None:
    entry = ["<module> (vf_mcp/__main__.py:3)", "_serve (vf_mcp/cli.py:226)"]
    gate = "apps_gate.<locals>.gate (vf_mcp/view/gate.py:50)"
    assert part_of([*entry, gate, "run (mcp/server/runner.py:1)"]) == SDK
    summary = "summarize_turn (vf_mcp/summary/builder.py:37)"
    assert part_of([*entry, "interact (vf_mcp/tools/conversation.py:82)", summary]) == (
        "summary and its text"
    )
    assert part_of(
        [*entry, "record_turn (vf_mcp/tools/conversation.py:101)", "put (vf_mcp/bounded.py:70)"]
    ) == ("transcript record")
    assert part_of([*entry, "_checked (vf_mcp/conversation/service.py:82)"]) == OTHER_VF
