"""OpenTelemetry spans and metrics for turns and upstream requests, and their OTLP export.

Everything goes through the OpenTelemetry API, which is a no-op until a provider is installed, so a
server without telemetry pays for a non-recording span and a few no-op calls per request. The
instruments are created once, here. `configure_from_env` installs the SDK's providers with OTLP
HTTP exporters when `OTEL_EXPORTER_OTLP_ENDPOINT` is set; the SDK is the `otel` extra.

No attribute ever holds a key, token, user id, user text, variable value, header or query string:
upstream spans are named by route templates, and errors by their class name only (a message may
quote the runtime, or the user). Calls to a model (the judge) follow OpenTelemetry's GenAI
semantic conventions (`GEN_AI_*` below); their prompts and replies are recorded only when asked
(`model_call(..., content=True)`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from opentelemetry import metrics, trace
from opentelemetry.trace import SpanKind, StatusCode

from vf_mcp import __version__
from vf_mcp.errors import ConfigurationError

if TYPE_CHECKING:
    # The SDK is the `otel` extra: imported at run time only when an OTLP endpoint is set.
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider

INSTRUMENTATION_NAME = "vf-mcp"
ENV_OTLP_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
MISSING_SDK = (
    f"{ENV_OTLP_ENDPOINT} is set but the OpenTelemetry SDK is missing: pip install 'vf-mcp[otel]'"
)
Attributes = dict[str, str | int]

# OpenTelemetry's GenAI semantic conventions (gen-ai-spans; `gen_ai.provider.name` replaced
# `gen_ai.system`). Spelled out here: the Python package that names them ships with the SDK, which
# is optional, and marks them as moved to the GenAI conventions' own repository.
GEN_AI_OPERATION_NAME = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_REQUEST_TEMPERATURE = "gen_ai.request.temperature"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_RESPONSE_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_INPUT_MESSAGES = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES = "gen_ai.output.messages"
GEN_AI_TOKEN_TYPE = "gen_ai.token.type"


class Telemetry:
    """The tracer and the instruments, from the global providers unless others are given."""

    def __init__(
        self,
        tracer_provider: trace.TracerProvider | None = None,
        meter_provider: metrics.MeterProvider | None = None,
    ) -> None:
        # Without providers these are the API's proxies: they start exporting as soon as
        # `configure_from_env` (or an embedding application) installs real ones.
        self.tracer = trace.get_tracer(
            INSTRUMENTATION_NAME, __version__, tracer_provider=tracer_provider
        )
        meter = metrics.get_meter(INSTRUMENTATION_NAME, __version__, meter_provider=meter_provider)
        self.turns = meter.create_counter(
            "vf_mcp.turns", unit="{turn}", description="Conversation turns, by outcome"
        )
        self.turn_duration = meter.create_histogram(
            "vf_mcp.turn.duration",
            unit="s",
            description="Time the Voiceflow runtime took to answer a turn, retries included",
        )
        self.upstream_responses = meter.create_counter(
            "vf_mcp.upstream.responses",
            unit="{response}",
            description="HTTP responses from upstream services, by status code and route",
        )
        self.model_tokens = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Tokens a model call spent, by gen_ai.token.type (input, output)",
        )
        self.upstream_retries = meter.create_counter(
            "vf_mcp.upstream.retries",
            unit="{retry}",
            description="Upstream requests sent again after a failure, by route and cause",
        )

    @contextmanager
    def upstream_request(
        self, method: str, route: str, server_address: str, runtime: str | None
    ) -> Iterator[UpstreamCall]:
        """A client span around one logical upstream request, its retries included."""
        attributes: Attributes = {
            "http.request.method": method,
            "http.route": route,
            "server.address": server_address,
        }
        if runtime is not None:
            attributes["vf_mcp.runtime"] = runtime
        with self.tracer.start_as_current_span(
            f"{method} {route}",
            kind=SpanKind.CLIENT,
            attributes=attributes,
            # The SDK's own recording would store the message, which may quote the runtime.
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            call = UpstreamCall(self, span, attributes)
            try:
                yield call
            except BaseException as exc:
                span.set_attribute("error.type", type(exc).__qualname__)
                span.set_status(StatusCode.ERROR)
                raise
            finally:
                span.set_attribute("vf_mcp.retries", call.retries)

    @contextmanager
    def turn(self, runtime: str) -> Iterator[None]:
        """Count one turn and time it; an error is counted by its class name."""
        attributes: Attributes = {"vf_mcp.runtime": runtime}
        started = time.perf_counter()
        try:
            yield
        except BaseException as exc:
            attributes["vf_mcp.outcome"] = "error"
            attributes["error.type"] = type(exc).__qualname__
            raise
        else:
            attributes["vf_mcp.outcome"] = "ok"
        finally:
            self.turn_duration.record(time.perf_counter() - started, attributes)
            self.turns.add(1, attributes)

    @contextmanager
    def model_call(
        self,
        *,
        provider: str,
        model: str,
        server_address: str,
        server_port: int | None = None,
        temperature: float | None = None,
        messages: list[dict[str, str]] | None = None,
    ) -> Iterator[ModelCall]:
        """A GenAI client span (`chat {model}`) around one chat completion, its retries included.

        `messages` (the prompt) is recorded only when given: prompts quote the conversation.
        """
        attributes: dict[str, str | int | float] = {
            GEN_AI_OPERATION_NAME: "chat",
            GEN_AI_PROVIDER_NAME: provider,
            GEN_AI_REQUEST_MODEL: model,
            "server.address": server_address,
        }
        if server_port is not None:
            attributes["server.port"] = server_port
        if temperature is not None:
            attributes[GEN_AI_REQUEST_TEMPERATURE] = temperature
        if messages is not None:
            attributes[GEN_AI_INPUT_MESSAGES] = _gen_ai_messages(messages)
        with self.tracer.start_as_current_span(
            f"chat {model}",
            kind=SpanKind.CLIENT,
            attributes=attributes,
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            call = ModelCall(self, span, {GEN_AI_PROVIDER_NAME: provider,
                                          GEN_AI_REQUEST_MODEL: model})  # fmt: skip
            try:
                yield call
            except BaseException as exc:
                span.set_attribute("error.type", type(exc).__qualname__)
                span.set_status(StatusCode.ERROR)
                raise


def _gen_ai_messages(messages: list[dict[str, str]]) -> str:
    """Messages in the conventions' shape: role and parts, as one JSON string."""
    shaped = [
        {"role": m["role"], "parts": [{"type": "text", "content": m["content"]}]} for m in messages
    ]
    return json.dumps(shaped, ensure_ascii=False)


@dataclass
class ModelCall:
    """What the chat client reports about one model call's answer."""

    telemetry: Telemetry
    span: trace.Span
    attributes: Attributes

    def answered(
        self,
        *,
        response_model: str | None,
        input_tokens: int | None,
        output_tokens: int | None,
        finish_reason: str | None,
        reply: str | None = None,
    ) -> None:
        """The answer's facts; `reply` (the model's words) only when content is recorded."""
        if response_model:
            self.span.set_attribute(GEN_AI_RESPONSE_MODEL, response_model)
        if finish_reason:
            self.span.set_attribute(GEN_AI_RESPONSE_FINISH_REASONS, [finish_reason])
        usage = (
            (GEN_AI_USAGE_INPUT_TOKENS, "input", input_tokens),
            (GEN_AI_USAGE_OUTPUT_TOKENS, "output", output_tokens),
        )
        for name, kind, count in usage:
            if count is not None:
                self.span.set_attribute(name, count)
                self.telemetry.model_tokens.record(
                    count, {**self.attributes, GEN_AI_TOKEN_TYPE: kind}
                )
        if reply is not None:
            shaped = _gen_ai_messages([{"role": "assistant", "content": reply}])
            self.span.set_attribute(GEN_AI_OUTPUT_MESSAGES, shaped)


@dataclass
class UpstreamCall:
    """What `send_with_retries` reports about one logical request while it runs."""

    telemetry: Telemetry
    span: trace.Span
    attributes: Attributes
    retries: int = field(default=0)

    def answered(self, status_code: int) -> None:
        self.span.set_attribute("http.response.status_code", status_code)
        self.telemetry.upstream_responses.add(
            1, {**self.attributes, "http.response.status_code": status_code}
        )

    def retrying(self, error: BaseException) -> None:
        self.retries += 1
        cause = type(error).__qualname__
        self.span.add_event("retry", {"error.type": cause, "vf_mcp.retry": self.retries})
        self.telemetry.upstream_retries.add(1, {**self.attributes, "error.type": cause})


_current = Telemetry()


def current() -> Telemetry:
    return _current


def use(telemetry: Telemetry) -> Telemetry:
    """Report to `telemetry` from now on (tests, embedding applications); returns the previous."""
    global _current
    previous, _current = _current, telemetry
    return previous


@dataclass(frozen=True)
class Providers:
    """The SDK providers `providers_from_env` built; `shutdown` flushes what is still queued."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider

    def shutdown(self) -> None:
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()


def providers_from_env(environ: Mapping[str, str]) -> Providers | None:
    """SDK providers exporting over OTLP HTTP, or None when no OTLP endpoint is configured.

    The exporters read the rest of OpenTelemetry's own variables (headers, per-signal endpoints,
    timeouts) from the process environment, as every OpenTelemetry SDK does.
    """
    if not environ.get(ENV_OTLP_ENDPOINT) or environ.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return None
    try:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        raise ConfigurationError(MISSING_SDK) from None
    resource = Resource.create(
        {
            "service.name": environ.get("OTEL_SERVICE_NAME") or INSTRUMENTATION_NAME,
            "service.version": __version__,
        }
    )
    # Shut down by the caller, not at interpreter exit: a second shutdown only logs a warning.
    tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    meter_provider = MeterProvider(
        resource=resource,
        metric_readers=[PeriodicExportingMetricReader(OTLPMetricExporter())],
        shutdown_on_exit=False,
    )
    return Providers(tracer_provider, meter_provider)


def configure_from_env(environ: Mapping[str, str]) -> Callable[[], None]:
    """Install OTLP-exporting providers globally when configured; returns what flushes them.

    The MCP SDK's tool-call spans use the global tracer too, so upstream spans nest under them.
    """
    providers = providers_from_env(environ)
    if providers is None:
        return lambda: None
    trace.set_tracer_provider(providers.tracer_provider)
    metrics.set_meter_provider(providers.meter_provider)
    return providers.shutdown
