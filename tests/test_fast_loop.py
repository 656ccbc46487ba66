"""`pytest --fast`, the edit-test loop (tests/fast_loop.py), run on a sample of its own."""

from __future__ import annotations

import pytest

SAMPLE = """
import subprocess
import sys


def test_200_concurrent_conversations_under_faults():  # listed as slow, by name
    pass


def test_in_process():
    pass


def test_a_new_one_that_starts_a_process():
    subprocess.run([sys.executable, "-c", "pass"], check=True)
"""


@pytest.fixture
def run(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    # Only the plugin under test: loading every installed one would make this a slow test.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    return pytester


def test_fast_leaves_out_the_listed_tests_and_fails_one_that_starts_a_process(
    run: pytest.Pytester,
) -> None:
    run.makepyfile(test_load=SAMPLE)
    fast = run.runpytest_inprocess("-p", "tests.fast_loop", "--fast")
    fast.assert_outcomes(passed=1, failed=1, deselected=1)
    fast.stdout.fnmatch_lines(
        ["*test_a_new_one_that_starts_a_process starts a process (*add it to SLOW in tests/*"]
    )
    # Without --fast every test is chosen (collected only: the fast loop runs this test too).
    everything = run.runpytest_inprocess("-p", "tests.fast_loop", "--collect-only", "-q")
    everything.stdout.fnmatch_lines(["3 tests collected*"])
    marked = run.runpytest_inprocess("-p", "tests.fast_loop", "--collect-only", "-q", "-m", "slow")
    marked.stdout.fnmatch_lines(["*::test_200_concurrent_conversations_under_faults", "1/3 *"])


def test_a_listed_test_that_no_longer_exists_is_refused(run: pytest.Pytester) -> None:
    run.makepyfile(test_load="def test_renamed():\n    pass\n")
    result = run.runpytest_inprocess("-p", "tests.fast_loop", "--fast")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*lists tests that no longer exist: test_load.py::test_200_concurrent_conversations*"]
    )
