"""Evaluation throughput: `vf-mcp eval --concurrency 20` against a sequential run of one suite.

A generated 100-test suite (one launch turn each, a fresh user per test) runs twice against the
emulator while it adds 200 ms to every turn: once with `--concurrency 1`, once with
`--concurrency 20`. The ideal speed-up is 20x (each test is one slow turn); the report gives the
measured one and its share of the ideal.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks import ROOT
from benchmarks.procs import server_env

TESTS = 100
TURN_LATENCY_MS = 200
CONCURRENCY = 20
TIMEOUT_S = 120

TEST = """\
  - id: launch_{index}
    turns:
      - launch: true
        expect:
          - contains: Acme order assistant
"""


def _suite(path: Path, count: int = TESTS) -> None:
    tests = "".join(TEST.format(index=index) for index in range(count))
    path.write_text(f"name: vf-mcp benchmark suite\non_failure: continue\ntests:\n{tests}")


def _run(suite: Path, runtime_url: str, concurrency: int) -> tuple[float, str | None]:
    started = time.perf_counter()
    run = subprocess.run(
        [sys.executable, "-m", "vf_mcp", "eval", str(suite), "--concurrency", str(concurrency)],
        capture_output=True,
        env=server_env(runtime_url),
        cwd=ROOT,
        timeout=TIMEOUT_S,
    )
    elapsed = time.perf_counter() - started
    if run.returncode != 0:
        lines = (run.stderr or run.stdout).decode(errors="replace").strip().splitlines()
        return elapsed, lines[-1][:160] if lines else f"exit status {run.returncode}"
    return elapsed, None


def measure(runtime_url: str) -> str:
    """A Markdown table: sequential vs concurrent wall time, speed-up and its share of ideal."""
    fault = {"match": {"path_contains": "/interact"}, "times": -1, "latency_ms": TURN_LATENCY_MS}
    with httpx.Client(base_url=runtime_url, timeout=10) as control:
        control.post("/_emulator/faults", json=fault).raise_for_status()
        try:
            with tempfile.TemporaryDirectory(prefix="vf-mcp-bench-eval-") as folder:
                suite = Path(folder) / "suite.yaml"
                _suite(suite)
                single = Path(folder) / "single.yaml"
                _suite(single, 1)
                # Process start and suite loading, paid once per run whatever the concurrency.
                one, error = _run(single, runtime_url, 1)
                fixed = max(0.0, one - TURN_LATENCY_MS / 1000)
                if error is None:
                    sequential, error = _run(suite, runtime_url, 1)
                if error is None:
                    concurrent, error = _run(suite, runtime_url, CONCURRENCY)
        finally:
            control.delete("/_emulator/faults")
    if error is not None:
        return f"not measured: vf-mcp eval failed on the benchmark suite ({error})"
    ideal = min(CONCURRENCY, TESTS)
    speedup = sequential / concurrent
    # The same ratio without the fixed start-up cost, which no concurrency can shorten.
    running = (sequential - fixed) / max(concurrent - fixed, 1e-6)
    share = running / ideal
    return "\n".join(
        [
            f"{TESTS} one-turn tests, the emulator adding {TURN_LATENCY_MS} ms to every turn; "
            f"wall time of `vf-mcp eval`. Start-up (process, imports, suite loading) measured "
            f"on a one-test run: {fixed:.2f} s.",
            "",
            "| run | wall s | speed-up (wall) | speed-up (after start-up) | ideal "
            "| share of ideal | goal: close to ideal |",
            "|---|---|---|---|---|---|---|",
            f"| --concurrency 1 | {sequential:.2f} | 1.00x | 1.00x | 1x | - | - |",
            f"| --concurrency {CONCURRENCY} | {concurrent:.2f} | {speedup:.1f}x | {running:.1f}x | "
            f"{ideal}x | {share:.0%} | {'met' if share >= 0.8 else 'NOT MET'} |",
        ]
    )
