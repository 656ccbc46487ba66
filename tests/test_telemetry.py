"""Telemetry: a span per upstream request and the turn/upstream metrics, recorded by the SDK's
in-memory exporter and reader around real turns on the emulator, and never a secret in them.

Every test records to providers of its own (`telemetry.use`), so no global provider is left set.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from opentelemetry import trace
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from tests.canary import CANARY_KEY, CANARY_SECRET
from tests.evaluation_fixtures import JUDGE_KEY, FakeJudge, judge_client, running_judge, verdict
from vf_mcp import telemetry
from vf_mcp.app import open_app
from vf_mcp.cli import run
from vf_mcp.config import Settings
from vf_mcp.conversation import TurnRequest
from vf_mcp.emulator import Emulator, FaultPlan
from vf_mcp.errors import ConfigurationError, ConnectError
from vf_mcp.evaluation.connection import ServiceFactory
from vf_mcp.evaluation.judge import ChatMessage, JudgeSettings, OpenAIChatClient
from vf_mcp.evaluation.runner import run_suites
from vf_mcp.evaluation.script import Suite

pytestmark = pytest.mark.anyio

USER = "telemetry-user-7f3a"
MESSAGE = "where is my order TelemetryUserText91"
VARIABLE_VALUE = "TelemetryVariableValue55"
STREAM_ROUTE = "/v2/project/{projectID}/user/{userID}/interact/stream"


@dataclass
class Recorded:
    spans: InMemorySpanExporter
    metrics: InMemoryMetricReader
    tracer: trace.Tracer

    def finished(self) -> list[ReadableSpan]:
        return list(self.spans.get_finished_spans())

    def points(self, name: str) -> list[Any]:
        """The data points of metric `name`, across every scope that reported it."""
        data = self.metrics.get_metrics_data()
        found: list[Any] = []
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)
        return found

    def strings(self) -> list[str]:
        """Every span name, span and event attribute, and metric attribute, as text."""
        texts: list[str] = []
        for span in self.finished():
            texts.append(span.name)
            for attributes in [span.attributes, *(event.attributes for event in span.events)]:
                texts.extend(f"{k}={v}" for k, v in (attributes or {}).items())
            if span.status.description:
                texts.append(span.status.description)
        data = self.metrics.get_metrics_data()
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    for point in metric.data.data_points:
                        texts.extend(f"{k}={v}" for k, v in (point.attributes or {}).items())
        return texts


@pytest.fixture
def recorded() -> Iterator[Recorded]:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    previous = telemetry.use(telemetry.Telemetry(tracer_provider, meter_provider))
    try:
        yield Recorded(spans, reader, tracer_provider.get_tracer("test"))
    finally:
        telemetry.use(previous)
        tracer_provider.shutdown()
        meter_provider.shutdown()


def quick_retries(settings: Settings) -> Settings:
    return settings.model_copy(update={"max_retries": 2, "retry_deadline": 5.0})


def assert_no_secret(recorded: Recorded, *secrets: str) -> None:
    texts = recorded.strings()
    assert texts
    for secret in (CANARY_KEY, CANARY_SECRET, USER, MESSAGE, VARIABLE_VALUE, *secrets):
        leaks = [text for text in texts if secret in text]
        assert leaks == [], f"{secret!r} is in {leaks}"


async def test_turns_make_upstream_spans_and_metrics_with_route_templates(
    stream_settings: Settings, emulator: Emulator, project_id: str, recorded: Recorded
) -> None:
    # Retry-After 0: the retry happens at once, so the test needs no sleep.
    emulator.faults.add(
        FaultPlan(match={"path_contains": "/interact/stream"}, status=429, retry_after=0)
    )
    async with open_app(quick_retries(stream_settings)) as app:
        service = app.service_for(None)
        with recorded.tracer.start_as_current_span("tools/call interact") as parent:
            await service.interact(TurnRequest(user_id=USER, launch=True))
        await service.interact(
            TurnRequest(user_id=USER, message=MESSAGE, variables={"order_note": VARIABLE_VALUE})
        )
        await service.update_variables(USER, {"order_note": VARIABLE_VALUE})
        await service.get_state(USER)

    spans = recorded.finished()
    upstream = [s for s in spans if s.kind is SpanKind.CLIENT]
    assert [s.name for s in upstream] == [
        f"POST {STREAM_ROUTE}",
        f"POST {STREAM_ROUTE}",
        "PATCH /state/user/{userID}/variables",
        "GET /state/user/{userID}",
    ]
    first = upstream[0]
    assert first.parent is not None
    assert first.parent.span_id == parent.get_span_context().span_id
    assert dict(first.attributes or {}) == {
        "http.request.method": "POST",
        "http.route": STREAM_ROUTE,
        "server.address": "127.0.0.1",
        "vf_mcp.runtime": "legacy",
        "http.response.status_code": 200,
        "vf_mcp.retries": 1,
    }
    assert [e.name for e in first.events] == ["retry"]
    assert (first.events[0].attributes or {})["error.type"] == "RateLimitError"
    assert all((s.attributes or {})["vf_mcp.retries"] == 0 for s in upstream[1:])

    responses = {
        (p.attributes["http.route"], p.attributes["http.response.status_code"]): p.value
        for p in recorded.points("vf_mcp.upstream.responses")
    }
    assert responses == {
        (STREAM_ROUTE, 429): 1,
        (STREAM_ROUTE, 200): 2,
        ("/state/user/{userID}/variables", 200): 1,
        ("/state/user/{userID}", 200): 1,
    }
    [retries] = recorded.points("vf_mcp.upstream.retries")
    assert retries.value == 1 and retries.attributes["error.type"] == "RateLimitError"
    [turns] = recorded.points("vf_mcp.turns")
    assert turns.value == 2
    assert dict(turns.attributes) == {"vf_mcp.runtime": "legacy", "vf_mcp.outcome": "ok"}
    [duration] = recorded.points("vf_mcp.turn.duration")
    assert duration.count == 2 and duration.sum > 0
    assert_no_secret(recorded, project_id)


async def test_v4_spans_never_hold_the_session_key(
    stream_settings: Settings, emulator: Emulator, project_id: str, recorded: Recorded
) -> None:
    v4 = stream_settings.model_copy(update={"api_version": "v4"})
    async with open_app(v4) as app:
        service = app.service_for(None)
        await service.interact(TurnRequest(user_id=USER, launch=True))
        await service.interact(TurnRequest(user_id=USER, message=MESSAGE))
        key = await app.store.session_keys.current_session_key(USER)
    assert key
    names = [s.name for s in recorded.finished()]
    assert names == [
        "POST /v4/project/{projectID}/session",
        "POST /v4/interact/stream",
        "POST /v4/interact/stream",
    ]
    assert all((s.attributes or {})["vf_mcp.runtime"] == "v4" for s in recorded.finished())
    assert_no_secret(recorded, key, project_id)


async def test_a_failed_turn_is_counted_by_its_error_class_only(
    settings: Settings, emulator: Emulator, recorded: Recorded
) -> None:
    refusal = f"slow down {MESSAGE}"
    emulator.faults.add(FaultPlan(status=503, body={"message": refusal}))
    async with open_app(settings) as app:
        with pytest.raises(Exception, match="503") as raised:
            await app.service_for(None).interact(TurnRequest(user_id=USER, message=MESSAGE))
    assert refusal in str(raised.value)
    [span] = recorded.finished()
    assert span.name == "POST /state/user/{userID}/interact"
    assert span.status.status_code is StatusCode.ERROR
    assert (span.attributes or {})["error.type"] == "ServerError"
    assert (span.attributes or {})["http.response.status_code"] == 503
    [turns] = recorded.points("vf_mcp.turns")
    assert turns.attributes["vf_mcp.outcome"] == "error"
    assert turns.attributes["error.type"] == "ServerError"
    assert recorded.points("vf_mcp.upstream.retries") == []
    assert_no_secret(recorded, refusal)


async def test_without_a_provider_nothing_is_recorded() -> None:
    # The process never installs a global provider, so these are the API's no-op proxies.
    quiet = telemetry.Telemetry()
    with quiet.upstream_request("GET", "/state/user/{userID}", "127.0.0.1", "legacy") as call:
        call.answered(200)
        call.retrying(ConnectError("refused"))
        assert not call.span.is_recording()
        assert not call.span.get_span_context().is_valid
    with quiet.turn("legacy"):
        pass


def test_no_otlp_endpoint_installs_nothing() -> None:
    assert telemetry.providers_from_env({}) is None
    endpoint = {telemetry.ENV_OTLP_ENDPOINT: "http://127.0.0.1:9"}
    assert telemetry.providers_from_env({**endpoint, "OTEL_SDK_DISABLED": "true"}) is None


def test_an_otlp_endpoint_builds_sdk_providers_named_vf_mcp() -> None:
    providers = telemetry.providers_from_env({telemetry.ENV_OTLP_ENDPOINT: "http://127.0.0.1:9"})
    assert providers is not None
    try:
        assert isinstance(providers.tracer_provider, TracerProvider)
        assert isinstance(providers.meter_provider, MeterProvider)
        assert providers.tracer_provider.resource.attributes["service.name"] == "vf-mcp"
    finally:
        providers.shutdown()


SDK_MODULES = [
    "opentelemetry.sdk",
    "opentelemetry.sdk.metrics",
    "opentelemetry.sdk.metrics.export",
    "opentelemetry.sdk.resources",
    "opentelemetry.sdk.trace",
    "opentelemetry.sdk.trace.export",
    "opentelemetry.exporter.otlp.proto.http",
    "opentelemetry.exporter.otlp.proto.http.metric_exporter",
    "opentelemetry.exporter.otlp.proto.http.trace_exporter",
]


@pytest.fixture
def without_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    # A None entry makes `import` raise ImportError, as if the package were not installed.
    for name in SDK_MODULES:
        monkeypatch.setitem(sys.modules, name, None)


@pytest.mark.usefixtures("without_the_extra")
def test_an_endpoint_without_the_extra_says_what_to_install() -> None:
    with pytest.raises(ConfigurationError) as raised:
        telemetry.providers_from_env({telemetry.ENV_OTLP_ENDPOINT: "http://127.0.0.1:4318"})
    assert raised.value.message == (
        "OTEL_EXPORTER_OTLP_ENDPOINT is set but the OpenTelemetry SDK is missing: "
        "pip install 'vf-mcp[otel]'"
    )


@pytest.mark.usefixtures("without_the_extra")
def test_serve_refuses_to_start_in_one_line_without_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("VOICEFLOW_API_KEY", CANARY_KEY)
    monkeypatch.setenv(telemetry.ENV_OTLP_ENDPOINT, "http://127.0.0.1:4318")
    monkeypatch.delenv("VF_MCP_STORE_URL", raising=False)
    assert run(["serve"]) == 2
    err = capsys.readouterr().err
    assert err == f"vf-mcp: {telemetry.MISSING_SDK}\n"


def test_telemetry_and_the_client_import_nothing_of_mcp() -> None:
    """The client and what it reports through stay usable by any front end, not only MCP."""
    package = Path(telemetry.__file__).parent
    for module in ("telemetry.py", "retry.py", "voiceflow/client.py"):
        tree = ast.parse((package / module).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.module:
                names.append(node.module)
            assert not [n for n in names if n == "mcp" or n.startswith("mcp.")], module


NESTING = """
import json, sys
import anyio
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)

from mcp import Client
from vf_mcp.config import Settings
from vf_mcp.server import build_server

async def main() -> None:
    settings = Settings.validated({"api_key": sys.argv[1], "runtime_url": sys.argv[2]})
    async with Client(build_server(settings)) as client:
        assert not (await client.call_tool("interact", {"launch": True})).is_error

anyio.run(main)
spans = exporter.get_finished_spans()
print(json.dumps([[s.name, s.context.span_id, s.parent and s.parent.span_id] for s in spans]))
"""


def test_upstream_spans_nest_under_the_sdks_tool_call_span(emulator: Emulator) -> None:
    # A global provider can be set once per process: this one lives in a child of its own.
    result = subprocess.run(
        [sys.executable, "-c", NESTING, CANARY_KEY, emulator.url],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    spans = {name: (span_id, parent) for name, span_id, parent in json.loads(result.stdout)}
    tool_span, _ = spans["tools/call interact"]
    assert spans["POST /state/user/{userID}/interact"][1] == tool_span


EXPORTING = """
import os, sys
import anyio
from vf_mcp.app import open_app
from vf_mcp.config import Settings
from vf_mcp.conversation import TurnRequest
from vf_mcp.telemetry import configure_from_env

flush = configure_from_env(os.environ)

async def main() -> None:
    settings = Settings.validated({"api_key": sys.argv[1], "runtime_url": sys.argv[2]})
    async with open_app(settings) as app:
        await app.service_for(None).interact(TurnRequest(user_id=sys.argv[3], message=sys.argv[4]))

anyio.run(main)
flush()
"""


class _Collector(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[str, list[tuple[str, bytes]]]]:
    """An OTLP/HTTP collector on loopback that keeps what it is sent."""
    received: list[tuple[str, bytes]] = []
    handler = type("Collector", (_Collector,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_configured_endpoint_gets_the_spans_and_metrics_over_otlp_at_shutdown(
    emulator: Emulator, collector: tuple[str, list[tuple[str, bytes]]]
) -> None:
    endpoint, received = collector
    env = {**os.environ, telemetry.ENV_OTLP_ENDPOINT: endpoint, "OTEL_SERVICE_NAME": "vf-mcp-test"}
    subprocess.run(
        [sys.executable, "-c", EXPORTING, CANARY_KEY, emulator.url, USER, MESSAGE],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    # The batch processor and the periodic reader export only at the flush before exit.
    paths = sorted(path for path, _ in received)
    assert paths == ["/v1/metrics", "/v1/traces"]
    traces = ExportTraceServiceRequest.FromString(dict(received)["/v1/traces"])
    [resource_spans] = traces.resource_spans
    service = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert service["service.name"] == "vf-mcp-test"
    names = [s.name for scope in resource_spans.scope_spans for s in scope.spans]
    assert names == ["POST /state/user/{userID}/interact"]
    metrics = ExportMetricsServiceRequest.FromString(dict(received)["/v1/metrics"])
    exported = {
        m.name for r in metrics.resource_metrics for s in r.scope_metrics for m in s.metrics
    }
    assert {"vf_mcp.turns", "vf_mcp.turn.duration", "vf_mcp.upstream.responses"} <= exported
    # What left the process, byte for byte, holds none of it.
    for secret in (CANARY_SECRET, USER, MESSAGE):
        assert all(secret.encode() not in body for _, body in received), secret


CRITERION = "The agent offers to track an order"
TRACED = {
    "name": "Traced",
    "tests": [
        {
            "id": "greets",
            "repeat": 2,
            "turns": [{"launch": True, "expect": [{"judge": CRITERION}]}],
        },
        {
            "id": "tracks",
            "turns": [
                {"launch": True},
                {"choice": "Track an order", "expect": [{"contains": "no such words"}]},
            ],
        },
    ],
}


def chain(span: Any, by_id: dict[int, Any]) -> list[str]:
    """The names from `span` up to its root."""
    names = [span.name]
    while span.parent is not None:
        span = by_id[span.parent.span_id]
        names.append(span.name)
    return names


async def test_a_run_is_one_trace_nested_run_suite_test_trial_turn_and_judge(
    settings: Settings, recorded: Recorded
) -> None:
    judge = FakeJudge([("Criterion:", verdict(True))], usage=(120, 7))
    with running_judge(judge) as url:
        async with judge_client(url) as chat:
            # Tests run at once: each trial must still hang under its own test.
            result = await run_suites(
                [Suite.model_validate(TRACED)], ServiceFactory(settings), judge=chat, concurrency=3
            )
    assert [t.outcome for t in result.transcripts] == ["passed", "passed", "failed"]
    spans = recorded.finished()
    assert len({s.context.trace_id for s in spans}) == 1
    by_id = {s.context.span_id: s for s in spans}
    [root] = [s for s in spans if s.parent is None]
    assert root.name == "eval run" and root.status.status_code is StatusCode.ERROR
    assert dict(root.attributes or {}) == {
        "vf_mcp.eval.suites": 1,
        "vf_mcp.eval.tests.failed": 1,
        "vf_mcp.eval.tests.passed": 2,
        "vf_mcp.eval.turns_sent": 4,
        "vf_mcp.eval.judge.calls": 2,
        "vf_mcp.eval.judge.input_tokens": 240,
        "vf_mcp.eval.judge.output_tokens": 14,
        "vf_mcp.eval.outcome": "failed",
    }
    tests = {s.attributes["vf_mcp.eval.test"]: s for s in spans if s.name == "eval test"}
    assert tests["greets"].attributes["vf_mcp.eval.trials"] == 2
    assert tests["greets"].attributes["vf_mcp.eval.outcome"] == "passed"
    assert tests["tracks"].attributes["vf_mcp.eval.outcome"] == "failed"
    trials = [s for s in spans if s.name == "eval trial"]
    assert sorted(by_id[t.parent.span_id].attributes["vf_mcp.eval.test"] for t in trials) == [
        "greets", "greets", "tracks"
    ]  # fmt: skip
    failed = next(t for t in trials if t.attributes["vf_mcp.eval.test"] == "tracks")
    assert failed.attributes["vf_mcp.eval.checks.failed"] == 1
    assert failed.attributes["vf_mcp.eval.turns"] == 2
    turn = [s for s in spans if s.name == "eval turn"]
    assert len(turn) == 4
    http = next(s for s in spans if s.name == "POST /state/user/{userID}/interact")
    assert chain(http, by_id) == [
        "POST /state/user/{userID}/interact", "eval turn", "eval trial", "eval test",
        "eval suite", "eval run",
    ]  # fmt: skip
    judged = [s for s in spans if s.name == "chat fake-judge"]
    assert len(judged) == 2
    assert chain(judged[0], by_id)[1:] == ["eval trial", "eval test", "eval suite", "eval run"]
    assert judged[0].kind is SpanKind.CLIENT
    attributes = dict(judged[0].attributes or {})
    assert attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "fake-judge",
        "gen_ai.request.temperature": 0.0,
        "server.address": "127.0.0.1",
        "server.port": int(url.rsplit(":", 1)[1].split("/")[0]),
        "gen_ai.response.model": "fake-judge",
        "gen_ai.response.finish_reasons": ("stop",),
        "gen_ai.usage.input_tokens": 120,
        "gen_ai.usage.output_tokens": 7,
    }
    # The judge's HTTP request hangs under its GenAI span.
    assert any(by_id[s.parent.span_id].name == "chat fake-judge" for s in spans if s.parent)
    tokens = recorded.points("gen_ai.client.token.usage")
    assert sorted((p.attributes["gen_ai.token.type"], p.sum) for p in tokens) == [
        ("input", 240), ("output", 14)
    ]  # fmt: skip
    # No prompt, no reply, no key: the criterion is text the prompt quotes.
    assert_no_secret(recorded, CRITERION, JUDGE_KEY, "scripted", "Track an order")


async def test_judge_prompts_and_replies_go_on_spans_only_when_asked(
    recorded: Recorded,
) -> None:
    judge = FakeJudge([("ping", "pong")], usage=(3, 1))
    with running_judge(judge) as url:
        for asked in (False, True):
            settings = JudgeSettings(url=url, model="m", trace_content=asked)
            async with OpenAIChatClient(settings) as chat:
                await chat.complete([ChatMessage(role="user", content="ping")], purpose="test")
    quiet, told = [dict(s.attributes or {}) for s in recorded.finished() if s.name == "chat m"]
    assert "gen_ai.input.messages" not in quiet and "gen_ai.output.messages" not in quiet
    assert json.loads(str(told["gen_ai.input.messages"])) == [
        {"role": "user", "parts": [{"type": "text", "content": "ping"}]}
    ]
    assert json.loads(str(told["gen_ai.output.messages"])) == [
        {"role": "assistant", "parts": [{"type": "text", "content": "pong"}]}
    ]


def spans_of(received: list[tuple[str, bytes]]) -> list[Any]:
    return [
        span
        for path, body in received
        if path == "/v1/traces"
        for r in ExportTraceServiceRequest.FromString(body).resource_spans
        for scope in r.scope_spans
        for span in scope.spans
    ]


def test_vf_mcp_eval_sends_one_trace_per_run_to_an_otlp_receiver(
    emulator: Emulator, collector: tuple[str, list[tuple[str, bytes]]], tmp_path: Path
) -> None:
    endpoint, received = collector
    suite = tmp_path / "traced.json"
    suite.write_text(json.dumps(TRACED), encoding="utf-8")
    judge = FakeJudge([("Criterion:", verdict(True))], usage=(120, 7))
    with running_judge(judge) as url:
        env = {
            **os.environ,
            telemetry.ENV_OTLP_ENDPOINT: endpoint,
            "VOICEFLOW_API_KEY": CANARY_KEY,
            "VOICEFLOW_RUNTIME_URL": emulator.url,
            "VF_MCP_JUDGE_URL": url,
            "VF_MCP_JUDGE_MODEL": "fake-judge",
            "VF_MCP_JUDGE_API_KEY": JUDGE_KEY,
        }
        env.pop("VOICEFLOW_PROJECT_ID", None)
        done = subprocess.run([sys.executable, "-m", "vf_mcp", "eval", str(suite)], env=env,
                              capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1, done.stderr  # `tracks` fails on purpose
    assert "judge: 254 tokens (240 in, 14 out, 2 calls)" in done.stdout
    assert judge.authorizations == [f"Bearer {JUDGE_KEY}"] * 2  # the key was sent to the judge
    spans = spans_of(received)
    assert len({s.trace_id for s in spans}) == 1
    by_id = {s.span_id: s for s in spans}
    parents = {s.name: by_id[s.parent_span_id].name for s in spans if s.parent_span_id}
    assert parents["eval suite"] == "eval run"
    assert parents["eval test"] == "eval suite"
    assert parents["eval trial"] == "eval test"
    assert parents["eval turn"] == "eval trial"
    assert parents["chat fake-judge"] == "eval trial"
    assert parents["POST /state/user/{userID}/interact"] == "eval turn"
    [root] = [s for s in spans if not s.parent_span_id]
    assert root.name == "eval run"
    judged = next(s for s in spans if s.name == "chat fake-judge")
    attributes = {a.key: a.value for a in judged.attributes}
    assert attributes["gen_ai.operation.name"].string_value == "chat"
    assert attributes["gen_ai.request.model"].string_value == "fake-judge"
    assert attributes["gen_ai.usage.input_tokens"].int_value == 120
    assert attributes["gen_ai.usage.output_tokens"].int_value == 7
    assert [
        v.string_value for v in attributes["gen_ai.response.finish_reasons"].array_value.values
    ] == ["stop"]
    # What left the process, byte for byte, holds neither key, nor any prompt.
    for secret in (CANARY_KEY, CANARY_SECRET, JUDGE_KEY, CRITERION):
        assert all(secret.encode() not in body for _, body in received), secret
