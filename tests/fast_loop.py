"""`pytest --fast` (`scripts/test --fast`): the edit-test loop, in-process tests only.

Left out, by measurement (`pytest --durations=0`): the tests that start processes (vf-mcp itself,
redis-server, HAProxy, Chromium, Node, DeepEval's Python, pip and uv), and those that take a
second or more in this process. They carry the `slow` mark, given here with why; without
`--fast` (and in CI) everything runs, so `-m "not slow"` is the same choice without the guard.

The guard: in the fast loop a test that starts a process fails and names this file, so a new
test of that kind lands on the list instead of slowing the loop down unnoticed.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

EVERY_TEST = "every test"

SLOW_FIXTURES = {
    "redis_url": "starts redis-server",
    "built": "builds the sdist and wheel and installs them in a fresh virtualenv",
}

SLOW: dict[str, dict[str, str]] = {
    "test_a2a_js.py": {EVERY_TEST: "Node: the A2A JavaScript SDK"},
    "test_a2a_js_errors.py": dict.fromkeys(
        (
            "test_the_javascript_sdk_shows_the_servers_line",
            "test_a_second_message_while_a_turn_runs_sends_nothing_and_the_first_is_answered",
            "test_what_is_refused_reaches_no_runtime",
            "test_the_card_stays_public_and_names_its_bearer_scheme",
            "test_nothing_a_javascript_client_reads_holds_the_key",
        ),
        "Node: the A2A JavaScript SDK; vf-mcp over HTTP",
    ),
    "test_benchmarks.py": dict.fromkeys(
        (
            "test_every_benchmark_switch_still_finds_what_it_replaces",
            "test_a_switch_without_its_schema_is_refused_in_one_line",
        ),
        "a fresh Python: a switch replaces module attributes for good",
    ),
    "test_clients.py": {EVERY_TEST: "Node: the TypeScript SDK, the Inspector, conformance"},
    "test_view_browser.py": {EVERY_TEST: "Chromium"},
    "test_promptfoo_export.py": {EVERY_TEST: "Node 22: promptfoo"},
    "test_load_balanced.py": {EVERY_TEST: "HAProxy and vf-mcp workers"},
    "test_children.py": {EVERY_TEST: "Python children and grandchildren"},
    "test_transports.py": {EVERY_TEST: "vf-mcp over stdio and HTTP"},
    "test_caller_isolation.py": {EVERY_TEST: "vf-mcp over HTTP, redis-server"},
    "test_client_errors.py": {EVERY_TEST: "Node: the TypeScript SDK and the Inspector; vf-mcp"},
    "test_a2a_serving.py": {
        "test_vf_mcp_a2a_serves_the_agent_alone": "vf-mcp a2a",
        "test_http_serves_a2a_beside_mcp_unless_turned_off": "vf-mcp --transport http",
        "test_a_stdio_start_does_not_load_the_a2a_sdk": "a fresh Python",
        "test_any_worker_answers_any_task_through_one_redis": "redis-server",
    },
    "test_cli.py": {
        "test_help_and_version_need_no_configuration": "vf-mcp",
        "test_serving_without_a_key_fails_with_one_line_that_says_what_to_set": "vf-mcp",
        "test_a_key_of_the_wrong_shape_is_refused_without_being_shown": "vf-mcp",
        "test_a_bad_summary_budget_stops_the_start_in_one_line": "vf-mcp",
        "test_http_on_a_public_address_is_refused": "vf-mcp",
        "test_demo_talks_to_the_example_agent_with_no_key": "vf-mcp demo",
        "test_every_start_up_misconfiguration_is_one_line_and_exit_2": "vf-mcp",
        "test_bad_emulator_options_are_refused_without_a_traceback": "vf-mcp emulator",
        "test_a_stdio_start_loads_only_what_serving_stdio_needs": "a fresh Python",
        "test_a_stdio_start_builds_no_result_model_before_its_first_call": "a fresh Python",
        "test_an_http_start_loads_the_a2a_sdk_only_when_a2a_is_on": "a fresh Python",
    },
    "test_cli_errors.py": {
        "test_every_serving_command_refuses_a_busy_port_before_announcing_itself": "vf-mcp",
    },
    "test_distribution.py": {
        "test_troubleshooting_quotes_the_start_errors_users_see": "vf-mcp",
        "test_wheel_and_sdist_carry_the_package_its_data_and_the_ownership_line": "build",
        "test_the_installed_wheel_runs": "the installed wheel",
        "test_uvx_runs_the_wheel": "uvx",
    },
    "test_emulator_parity.py": {
        "test_bad_option_values_on_the_command_line": "vf-mcp emulator",
        "test_the_command_line_serves_the_chosen_modes": "vf-mcp emulator",
    },
    "test_evaluation_reports.py": {
        "test_deepeval_export_has_the_conversational_test_case_shape": "DeepEval's Python",
    },
    "test_exports_cli.py": {
        "test_one_run_writes_every_export_live_and_from_its_recording": "DeepEval's Python",
    },
    "test_evaluation_cli.py": {"test_ctrl_c_keeps_the_tests_that_finished": "vf-mcp eval"},
    "test_evaluation_server.py": {
        "test_vf_mcp_eval_passes_and_fails_with_a_readable_report": "vf-mcp eval",
    },
    "test_html_report.py": {
        EVERY_TEST: "Chromium (the report, loaded once per module)",
    },
    "test_runs.py": {
        "test_a_finished_run_outlives_its_worker_and_a_killed_workers_run_reads_lost": "workers",
    },
    "test_scale_out.py": {
        "test_one_conversation_and_its_transcript_across_workers_and_restarts": "redis, workers",
        "test_a_redis_restart_leaves_no_answered_turn_unrecorded": "redis-server, vf-mcp",
    },
    "test_security.py": {
        "test_canary_key_never_leaves_the_server_over_http": "vf-mcp",
        "test_canary_key_never_leaves_the_server_over_stdio": "vf-mcp",
        "test_each_token_has_its_own_conversations": "vf-mcp",
        "test_http_tokens_are_required_and_no_oauth_metadata_is_advertised": "vf-mcp",
        "test_oauth_resource_server_mode_only_with_a_configured_issuer": "vf-mcp",
        "test_public_bind_with_tokens_starts_and_is_guarded": "vf-mcp",
        "test_allowed_hosts_keep_dns_rebinding_protection_on": "vf-mcp",
    },
    "test_shutdown.py": {
        "test_sigterm_lets_the_turn_in_flight_finish_and_exits_0": "vf-mcp",
        "test_a_turn_cut_at_the_deadline_is_reported_by_exit_code_1": "vf-mcp",
        "test_sigterm_with_a_drain_fails_the_health_check_while_still_serving": "vf-mcp",
        "test_sigterm_with_idle_sdk_clients_connected_exits_0_within_the_drain": "vf-mcp, Node",
    },
    "test_summary.py": {"test_summary_is_deterministic_across_processes": "fresh Pythons"},
    "test_builtin_variables.py": {
        "test_the_emulator_imports_nothing_of_the_client": "a fresh Python",
    },
    "test_chat.py": {"test_jinja2_is_loaded_by_the_first_render_never_by_a_start": "fresh Pythons"},
    "test_telemetry.py": {
        "test_upstream_spans_nest_under_the_sdks_tool_call_span": "a fresh Python",
        "test_a_configured_endpoint_gets_the_spans_and_metrics_over_otlp_at_shutdown": "Python",
        "test_vf_mcp_eval_sends_one_trace_per_run_to_an_otlp_receiver": "vf-mcp eval",
    },
    "test_view.py": {
        "test_a_legacy_http_client_of_unknown_support_is_not_offered_the_view_tools": "vf-mcp",
    },
    "test_view_vendor.py": {
        "test_the_script_rebuilds_the_vendored_file_from_the_installed_packages": "Node",
    },
    "test_v4.py": {"test_session_keys_never_leave_the_server": "vf-mcp over stdio"},
    # In this process, but a second or more (measured alone on a 2-core machine).
    "test_load.py": {"test_200_concurrent_conversations_under_faults": "about 60 s"},
    "test_reliability.py": {
        "test_cancelled_tool_call_closes_the_upstream_stream_at_once": "6 s",
        "test_stream_idle_timeout_is_between_events_not_total": "3 s",
        "test_property_trace_parser_never_escapes_the_error_hierarchy": "3 s of examples",
        "test_retry_gives_up_at_the_deadline_and_says_so": "1 s",
    },
    "test_server.py": {
        "test_progress_arrives_before_the_result_on_a_slow_streamed_answer": "2.5 s each",
    },
    "test_in_flight.py": {
        "test_a_second_turn_while_one_runs_on_another_worker_is_refused_in_one_line": "1.5 s",
    },
}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fast",
        action="store_true",
        help="the edit-test loop: leave out the tests marked slow (processes, browsers, Node, "
        "Redis, HAProxy, or a second or more in process); see tests/fast_loop.py",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "slow: starts a process, or takes a second or more (tests/fast_loop.py)"
    )


def why_slow(item: pytest.Item) -> str | None:
    listed = SLOW.get(item.path.name, {})
    name = getattr(item, "originalname", item.name)
    reason = listed.get(EVERY_TEST) or listed.get(name)
    fixtures = getattr(item, "fixturenames", ())
    return reason or next((SLOW_FIXTURES[f] for f in fixtures if f in SLOW_FIXTURES), None)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    fast, slow = [], []
    for item in items:
        if (reason := why_slow(item)) is not None:
            item.add_marker(pytest.mark.slow(reason=reason))
            slow.append(item)
        else:
            fast.append(item)
    _refuse_stale_entries(config, items)
    if config.getoption("fast") and slow:
        config.hook.pytest_deselected(items=slow)
        items[:] = fast


def _refuse_stale_entries(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A renamed slow test would drop off the list unnoticed: every name must still exist in
    the files collected whole (a `file::test` argument collects only part of one)."""
    if any("::" in str(arg) for arg in config.args):
        return
    names: dict[str, set[str]] = {}
    for item in items:
        names.setdefault(item.path.name, set()).add(getattr(item, "originalname", item.name))
    stale = [
        f"{file}::{test}"
        for file, tests in SLOW.items()
        if file in names
        for test in tests
        if test != EVERY_TEST and test not in names[file]
    ]
    if stale:
        raise pytest.UsageError(
            f"tests/fast_loop.py lists tests that no longer exist: {', '.join(stale)}; "
            "update SLOW to their new names"
        )


@pytest.fixture(autouse=True)
def _in_process_only(request: pytest.FixtureRequest) -> Iterator[None]:
    """The guard described above, on in the fast loop only."""
    if not request.config.getoption("fast"):
        yield
        return
    original = subprocess.Popen.__init__

    def refuse(self: subprocess.Popen[Any], args: Any, *rest: Any, **options: Any) -> None:
        pytest.fail(
            f"{request.node.nodeid} starts a process ({str(args)[:80]}), which the fast loop "
            "leaves out: add it to SLOW in tests/fast_loop.py",
            pytrace=False,
        )

    subprocess.Popen.__init__ = refuse  # type: ignore[method-assign]
    try:
        yield
    finally:
        subprocess.Popen.__init__ = original  # type: ignore[method-assign]
