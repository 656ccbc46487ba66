"""Settings read once from the environment, declared in one table.

Each field of `Settings` names the environment variable it is read from, its description and the
default shown to people: the same declaration drives reading (`Settings.from_env`), the one-line
errors that name the variable to fix, the README's configuration table (`settings_table`) and the
MCP Registry manifest's variables (checked by tests/test_distribution.py). Only the CLI reads the
process environment; everything below it is handed a `Settings`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.config import JsonDict

from vf_mcp.errors import ConfigurationError
from vf_mcp.redaction import remember_secrets

DEFAULT_RUNTIME_URL = "https://general-runtime.voiceflow.com"
DEFAULT_ANALYTICS_URL = "https://analytics-api.voiceflow.com"
DEFAULT_ENVIRONMENT = "development"
DEFAULT_HANDOFF_ACTIONS = ("handoff", "talk_to_agent")
DEFAULT_SUMMARY_MAX_CHARS = 8000
# About a minute of turns at a couple of seconds each: what one tool call may take before clients
# (Claude Code: ~60 s) give up on it. Bigger suites go through run handles (`start_run`).
DEFAULT_RUN_CONVERSATION_MAX_TURNS = 30
DEFAULT_MAX_RUNS = 4
MIN_SUMMARY_MAX_CHARS = 500

# VF.DM.<id>.<secret>: the docs' shape; the id is 24 hex upstream, any alphanumerics here.
_DM_KEY = re.compile(r"^VF\.DM\.[A-Za-z0-9]+\.[A-Za-z0-9_\-]+$")
# The Analytics API takes a project key or a workspace key, depending on the tenant.
_ANALYTICS_KEY = re.compile(r"^VF\.(?:DM|WS)\.[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)*$")

# https://host[:port], what a CSP source and `vf_mcp.chat.image_source` compare against.
_HTTPS_ORIGIN = re.compile(r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?$")

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

ENV_API_KEY = "VOICEFLOW_API_KEY"
ENV_PROJECT_ID = "VOICEFLOW_PROJECT_ID"
ENV_ENVIRONMENT = "VOICEFLOW_ENVIRONMENT"
ENV_API_VERSION = "VOICEFLOW_API_VERSION"
ENV_RUNTIME_URL = "VOICEFLOW_RUNTIME_URL"
ENV_ANALYTICS_URL = "VOICEFLOW_ANALYTICS_URL"
ENV_ANALYTICS_API_KEY = "VOICEFLOW_ANALYTICS_API_KEY"
ENV_TIMEOUT = "VOICEFLOW_TIMEOUT"
ENV_CONNECT_TIMEOUT = "VOICEFLOW_CONNECT_TIMEOUT"
ENV_MAX_RETRIES = "VOICEFLOW_MAX_RETRIES"
ENV_RETRY_DEADLINE = "VOICEFLOW_RETRY_DEADLINE"
ENV_LOG_LEVEL = "VF_MCP_LOG_LEVEL"
ENV_HANDOFF_ACTIONS = "VF_MCP_HANDOFF_ACTIONS"
ENV_SUMMARY_MAX_CHARS = "VF_MCP_SUMMARY_MAX_CHARS"
ENV_STREAM = "VF_MCP_STREAM"
ENV_VIEW_IMAGE_ORIGINS = "VF_MCP_VIEW_IMAGE_ORIGINS"
ENV_AUTH_TOKENS = "VF_MCP_AUTH_TOKENS"
ENV_ALLOWED_HOSTS = "VF_MCP_ALLOWED_HOSTS"
ENV_TOOLS = "VF_MCP_TOOLS"
ENV_READ_ONLY = "VF_MCP_READ_ONLY"
ENV_STORE_URL = "VF_MCP_STORE_URL"
ENV_STORE_TTL = "VF_MCP_STORE_TTL"
ENV_STORE_MAX_MB = "VF_MCP_STORE_MAX_MB"
ENV_TRANSCRIPT_MAX_KB = "VF_MCP_TRANSCRIPT_MAX_KB"
ENV_HTTP_MAX_CONNECTIONS = "VF_MCP_HTTP_MAX_CONNECTIONS"
ENV_HTTP_READ_TIMEOUT = "VF_MCP_HTTP_READ_TIMEOUT"
ENV_AGENTS_FILE = "VF_MCP_AGENTS_FILE"
ENV_TESTS_DIR = "VF_MCP_TESTS_DIR"
ENV_RUN_CONVERSATION_MAX_TURNS = "VF_MCP_RUN_CONVERSATION_MAX_TURNS"
ENV_MAX_RUNS = "VF_MCP_MAX_RUNS"
ENV_JUDGE_URL = "VF_MCP_JUDGE_URL"
ENV_JUDGE_MODEL = "VF_MCP_JUDGE_MODEL"
ENV_JUDGE_API_KEY = "VF_MCP_JUDGE_API_KEY"
ENV_JUDGE_TIMEOUT = "VF_MCP_JUDGE_TIMEOUT"
ENV_JUDGE_TRACE_CONTENT = "VF_MCP_JUDGE_TRACE_CONTENT"
ENV_OAUTH_ISSUER = "VF_MCP_OAUTH_ISSUER"
ENV_OAUTH_INTROSPECTION_URL = "VF_MCP_OAUTH_INTROSPECTION_URL"
ENV_OAUTH_CLIENT_ID = "VF_MCP_OAUTH_CLIENT_ID"
ENV_OAUTH_CLIENT_SECRET = "VF_MCP_OAUTH_CLIENT_SECRET"
ENV_OAUTH_SCOPES = "VF_MCP_OAUTH_SCOPES"
ENV_OAUTH_AUDIENCE = "VF_MCP_OAUTH_AUDIENCE"
ENV_PUBLIC_URL = "VF_MCP_PUBLIC_URL"
ENV_SHUTDOWN_TIMEOUT = "VF_MCP_SHUTDOWN_TIMEOUT"
ENV_SHUTDOWN_DRAIN = "VF_MCP_SHUTDOWN_DRAIN"
ENV_A2A = "VF_MCP_A2A"
ENV_A2A_NAME = "VF_MCP_A2A_NAME"
ENV_A2A_DESCRIPTION = "VF_MCP_A2A_DESCRIPTION"
DEFAULT_A2A_NAME = "Voiceflow agent"
DEFAULT_A2A_DESCRIPTION = "A Voiceflow conversational agent: talk to it turn by turn"


def setting(default: Any, env: str, description: str, *, shown: str = "", **rules: Any) -> Any:
    """A field read from `env`; `shown` is the default as the README table gives it."""
    extra: JsonDict = {"env": env, "shown": shown or _shown(default)}
    return Field(default, description=description, json_schema_extra=extra, **rules)


def _shown(default: Any) -> str:
    if default is None or default == () or default == frozenset():
        return "unset"
    if isinstance(default, frozenset | tuple):
        return ",".join(sorted(default))
    if isinstance(default, bool):
        return str(default).lower()
    if isinstance(default, float) and default.is_integer():
        return str(int(default))
    return str(default)


class Settings(BaseModel):
    """Everything vf-mcp needs; secrets are `SecretStr`, never in a repr, error or log line."""

    model_config = ConfigDict(frozen=True)

    api_key: SecretStr | None = setting(
        None,
        ENV_API_KEY,
        "The agent's Dialog Manager API key, `VF.DM.…`. Keys of another shape (`VF.WS.…`) are "
        "refused at start. Not needed for `demo` and `emulator`.",
        shown="(required to serve)",
    )
    project_id: str | None = setting(
        None,
        ENV_PROJECT_ID,
        "The agent's project ID (agent settings). Needed by the streaming interact, v4 and "
        "session-event endpoints. When set, turns stream over SSE and the server sends MCP "
        "progress notifications as the agent answers.",
    )
    environment: str | None = setting(
        None,
        ENV_ENVIRONMENT,
        "`development`, `staging`, `production`, any environment alias or a version ID. Each "
        "tool call can override it with `environment`. On v4, unset lets the project's traffic "
        "split pick.",
        shown="development",
    )
    api_version: Literal["legacy", "v4"] = setting(
        "legacy",
        ENV_API_VERSION,
        "Which runtime generation to use: `legacy` (`/state/user/…/interact` and the v2 "
        "stream) or `v4` (sessions started with the key, then `/v4/interact[/stream]` with a "
        "session key, renewed transparently). The tools and results are the same on both.",
    )
    runtime_url: str = setting(
        DEFAULT_RUNTIME_URL,
        ENV_RUNTIME_URL,
        "The runtime's base URL: a private cloud (`https://general-runtime.<cloud>.voiceflow."
        "com`), a self-hosted runtime, or the emulator.",
    )
    analytics_url: str = setting(
        DEFAULT_ANALYTICS_URL,
        ENV_ANALYTICS_URL,
        "The Analytics API's base URL (transcripts, properties, evaluations: `vf-mcp eval "
        "import`): a private cloud (`https://analytics-api.<cloud>.voiceflow.com`) or the "
        "emulator.",
    )
    analytics_api_key: SecretStr | None = setting(
        None,
        ENV_ANALYTICS_API_KEY,
        "The key the Analytics API takes, `VF.DM.…` or a workspace key `VF.WS.…`. Unset: "
        f"`{ENV_API_KEY}`.",
        shown="(the API key)",
    )
    timeout: float = setting(
        30.0,
        ENV_TIMEOUT,
        "Seconds to wait for an answer (for a streamed turn: the longest silence between two "
        "events).",
        gt=0,
        le=600,
    )
    connect_timeout: float = setting(
        10.0, ENV_CONNECT_TIMEOUT, "Seconds to wait for a connection.", gt=0, le=120
    )
    max_retries: int = setting(
        3,
        ENV_MAX_RETRIES,
        "Retries of a failed runtime or judge call, only where repeating it is safe (see "
        "Security and reliability); `0` turns them off.",
        ge=0,
        le=10,
    )
    retry_deadline: float = setting(
        30.0,
        ENV_RETRY_DEADLINE,
        "No retry is started once this many seconds have passed since the first attempt.",
        gt=0,
        le=600,
    )
    log_level: LogLevel = setting(
        "WARNING",
        ENV_LOG_LEVEL,
        "Log level on stderr: `DEBUG`, `INFO`, `WARNING`, `ERROR`. Lines are plain, one per "
        "record, and anything shaped like a key is masked.",
    )
    handoff_actions: frozenset[str] = setting(
        frozenset(DEFAULT_HANDOFF_ACTIONS),
        ENV_HANDOFF_ACTIONS,
        "Custom action names that mean the agent handed the conversation off (status `handoff`).",
    )
    summary_max_chars: int = setting(
        DEFAULT_SUMMARY_MAX_CHARS,
        ENV_SUMMARY_MAX_CHARS,
        "The longest text one turn's summary may be; a longer turn says what it left out, and "
        "the structured content keeps everything.",
        ge=MIN_SUMMARY_MAX_CHARS,
    )
    stream: bool | None = setting(
        None,
        ENV_STREAM,
        "`false` sends turns to the plain interact endpoint even with a project ID; `true` "
        "insists on the v2 stream (no fallback on a runtime without it). Unset: stream when a "
        "project ID is set, and fall back once the runtime turns out to lack the route.",
        shown="auto",
    )
    view_image_origins: frozenset[str] = setting(
        frozenset(),
        ENV_VIEW_IMAGE_ORIGINS,
        "MCP App view: `https://` origins (`https://cdn.example.com`) whose images the "
        "conversation view shows (its CSP allows only these); other images show as a link.",
    )
    auth_tokens: tuple[SecretStr, ...] = setting(
        (),
        ENV_AUTH_TOKENS,
        "HTTP only: comma-separated bearer tokens (16+ characters). Required to bind a "
        "non-loopback address.",
    )
    allowed_hosts: tuple[str, ...] = setting(
        (),
        ENV_ALLOWED_HOSTS,
        "HTTP only: host names clients use besides `127.0.0.1`/`localhost` (DNS-rebinding "
        "protection stays on).",
    )
    tools: frozenset[str] | None = setting(
        None, ENV_TOOLS, "Comma-separated allow-list of tools to expose.", shown="all"
    )
    read_only: bool = setting(
        False,
        ENV_READ_ONLY,
        "`1` exposes only the tools that change nothing (`get_state`, `transcript`, `get_run`, "
        "`import_transcripts`).",
    )
    store_url: SecretStr | None = setting(
        None,
        ENV_STORE_URL,
        "`redis://…` store shared by several workers and kept across restarts (needs "
        "`vf-mcp[redis]`).",
        shown="in memory",
    )
    store_ttl: float = setting(
        86_400.0,
        ENV_STORE_TTL,
        "Seconds the server keeps what it remembers about a conversation (buttons, variables, "
        "v4 session, transcript).",
        gt=0,
    )
    store_max_mb: int = setting(
        512,
        ENV_STORE_MAX_MB,
        "Megabytes the in-process store may hold (conversation memory a quarter, transcripts "
        "half, suite runs a quarter). Past it the caller holding the most loses its least "
        "recently used conversations first, so one caller never evicts another's. With Redis, "
        "bound it with Redis's own `maxmemory`.",
        ge=8,
        le=1_048_576,
    )
    transcript_max_kb: int = setting(
        4096,
        ENV_TRANSCRIPT_MAX_KB,
        "Kilobytes one live transcript keeps, in process or in Redis: past it the oldest turns "
        "go (the newest always stays; turns keep their numbers, so a reader sees what is gone).",
        ge=16,
        le=1_048_576,
    )
    http_max_connections: int = setting(
        1000,
        ENV_HTTP_MAX_CONNECTIONS,
        "HTTP connections a worker holds at once; one more is answered 503 at once.",
        ge=1,
        le=1_000_000,
    )
    http_read_timeout: float = setting(
        10.0,
        ENV_HTTP_READ_TIMEOUT,
        "Seconds a client has to send a request's headers, and again its body; a slower "
        "connection is closed (408 once the headers arrived), so slow clients cannot hold "
        "connections open.",
        gt=0,
        le=600,
    )
    agents_file: Path | None = setting(
        None,
        ENV_AGENTS_FILE,
        "Several agents behind one server: a YAML/JSON file naming each agent's project, "
        "environment, runtime URL, API generation and the environment variable holding its key "
        "(see `examples/agents.yaml`). Every tool then takes `agent`, and `handoff` moves a "
        "conversation between agents.",
    )
    tests_dir: Path | None = setting(
        None,
        ENV_TESTS_DIR,
        "Directory `run_conversation` reads suite files from when given a file name (nothing "
        "outside it is read).",
    )
    run_conversation_max_turns: int = setting(
        DEFAULT_RUN_CONVERSATION_MAX_TURNS,
        ENV_RUN_CONVERSATION_MAX_TURNS,
        "The most turns a suite may script (each test's turns times its trials; a simulated "
        "user's at its cap) for `run_conversation` to run it in one call, which clients cut off "
        "after a minute or so; a bigger suite is refused with a pointer to `start_run`, which "
        "runs it in the background with no such limit.",
        ge=1,
        le=100_000,
    )
    max_runs: int = setting(
        DEFAULT_MAX_RUNS,
        ENV_MAX_RUNS,
        "The most `start_run` runs one caller (HTTP token, OAuth subject) has going at once on "
        "one worker; one more is refused until one finishes or `cancel_run` stops it. Counted "
        "per worker: behind N workers a caller may have up to N times as many.",
        ge=1,
        le=1000,
    )
    judge_url: str | None = setting(
        None,
        ENV_JUDGE_URL,
        "An OpenAI-compatible chat-completions endpoint (base URL) that grades judged criteria "
        "and plays simulated users. Needs the next one.",
    )
    judge_model: str | None = setting(None, ENV_JUDGE_MODEL, "The judge's model name.")
    judge_api_key: SecretStr | None = setting(
        None, ENV_JUDGE_API_KEY, "The judge's key, sent as `Authorization: Bearer`."
    )
    judge_timeout: float = setting(
        60.0, ENV_JUDGE_TIMEOUT, "Seconds per judge request.", gt=0, le=600
    )
    judge_trace_content: bool = setting(
        False,
        ENV_JUDGE_TRACE_CONTENT,
        "`1` records the judge's prompts and replies on its OpenTelemetry spans "
        "(`gen_ai.input.messages`, `gen_ai.output.messages`); they quote the conversation.",
    )
    oauth_issuer: str | None = setting(
        None,
        ENV_OAUTH_ISSUER,
        "HTTP only: an OAuth issuer; turns on the SDK's resource-server mode (tokens checked by "
        "introspection, protected-resource metadata published). Needs the introspection URL "
        "and the public URL.",
    )
    oauth_introspection_url: str | None = setting(
        None,
        ENV_OAUTH_INTROSPECTION_URL,
        "The issuer's RFC 7662 introspection endpoint.",
    )
    oauth_client_id: str | None = setting(
        None, ENV_OAUTH_CLIENT_ID, "Client id the server authenticates to introspection with."
    )
    oauth_client_secret: SecretStr | None = setting(None, ENV_OAUTH_CLIENT_SECRET, "Its secret.")
    oauth_scopes: frozenset[str] = setting(
        frozenset(), ENV_OAUTH_SCOPES, "Scopes every OAuth token must carry."
    )
    oauth_audience: bool = setting(
        False,
        ENV_OAUTH_AUDIENCE,
        "`true` also checks that each token was issued for this server (its `aud` claim holds "
        "the public URL: RFC 8707 resource indicators).",
    )
    public_url: str | None = setting(
        None,
        ENV_PUBLIC_URL,
        "The MCP endpoint URL clients use, e.g. `https://mcp.example.com/mcp` (the OAuth "
        "resource); the A2A cards name the same origin (`https://mcp.example.com/a2a/…`).",
    )
    shutdown_timeout: float | None = setting(
        None,
        ENV_SHUTDOWN_TIMEOUT,
        "HTTP: seconds a worker stopped with SIGTERM lets calls in flight finish before it "
        "abandons them (and exits 1); at least `VOICEFLOW_TIMEOUT`.",
        shown="VOICEFLOW_TIMEOUT + VOICEFLOW_CONNECT_TIMEOUT",
        gt=0,
        le=3600,
    )
    shutdown_drain: float = setting(
        0.0,
        ENV_SHUTDOWN_DRAIN,
        "HTTP: seconds a worker stopped with SIGTERM keeps serving while `/healthz` answers "
        "503, so a load balancer moves new calls elsewhere before the worker stops taking them; "
        "set it above the balancer's health-check interval times its fall count.",
        ge=0,
        le=300,
    )
    a2a: bool = setting(
        True,
        ENV_A2A,
        "HTTP only: `false` turns off the A2A agent (Agent Card at "
        "`/.well-known/agent-card.json`, JSON-RPC at `/a2a/<agent>`) served beside `/mcp`.",
    )
    a2a_name: str = setting(
        DEFAULT_A2A_NAME,
        ENV_A2A_NAME,
        "The A2A Agent Card's name for the one agent (with `VF_MCP_AGENTS_FILE`, each card "
        "is named after its agent).",
        min_length=1,
        max_length=100,
    )
    a2a_description: str = setting(
        DEFAULT_A2A_DESCRIPTION,
        ENV_A2A_DESCRIPTION,
        "The A2A Agent Card's description for the one agent (with `VF_MCP_AGENTS_FILE`, each "
        "agent's `description`).",
        min_length=1,
        max_length=2000,
    )

    # -- derived -----------------------------------------------------------------------------------

    @property
    def default_environment(self) -> str:
        """The environment legacy calls use when a call names none."""
        return self.environment or DEFAULT_ENVIRONMENT

    @property
    def v4_environment(self) -> str | None:
        """The environment a v4 session starts in: the configured one, or None (traffic split)."""
        return self.environment

    @property
    def shutdown_deadline(self) -> float:
        """Seconds a stopping worker waits for calls in flight: never less than one answer."""
        if self.shutdown_timeout is not None:
            return self.shutdown_timeout
        return self.timeout + self.connect_timeout

    @property
    def oauth(self) -> bool:
        """Whether HTTP mode is an OAuth resource server of a configured issuer."""
        return self.oauth_issuer is not None

    def require_analytics_key(self) -> str:
        """The Analytics API's key (its own, else the runtime's), or what to set."""
        key = self.analytics_api_key or self.api_key
        if key is None:
            raise ConfigurationError(
                f"Neither {ENV_ANALYTICS_API_KEY} nor {ENV_API_KEY} is set: export the agent's "
                "VF.DM. key (or a workspace VF.WS. key with analytics access)"
            )
        return key.get_secret_value()

    def require_api_key(self) -> str:
        """The key's value, or a `ConfigurationError` that says what to set."""
        if self.api_key is None:
            raise ConfigurationError(
                f"{ENV_API_KEY} is not set: export your agent's Dialog Manager API key "
                "(VF.DM....), or run `vf-mcp demo` to try vf-mcp against the bundled emulator"
            )
        return self.api_key.get_secret_value()

    # -- reading -----------------------------------------------------------------------------------

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Read every declared variable from `environ`; empty values count as unset.

        Raises `ConfigurationError` with one line naming each variable to fix.
        """
        raw = {
            name: value
            for name in cls.model_fields
            if (value := environ.get(env_name(name), "").strip())
        }
        return cls.validated(raw)

    @classmethod
    def validated(cls, raw: Mapping[str, object]) -> Settings:
        """Build settings, turning pydantic's multi-line errors into one `ConfigurationError`."""
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            problems = [_problem(error) for error in exc.errors(include_url=False)]
            raise ConfigurationError("; ".join(problems)) from None

    # -- parsing the environment's strings ----------------------------------------------------

    @field_validator(
        "handoff_actions", "tools", "oauth_scopes", "view_image_origins", mode="before"
    )
    @classmethod
    def _name_set(cls, value: Any) -> Any:
        return frozenset(_split(value)) if isinstance(value, str) else value

    @field_validator("auth_tokens", "allowed_hosts", mode="before")
    @classmethod
    def _name_list(cls, value: Any) -> Any:
        return tuple(_split(value)) if isinstance(value, str) else value

    @field_validator("api_version", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.strip().upper() if isinstance(value, str) else value

    @field_validator("environment")
    @classmethod
    def _environment(cls, env: str | None) -> str | None:
        return (env or "").strip() or None

    # -- checks ------------------------------------------------------------------------------

    @field_validator("api_key")
    @classmethod
    def _dialog_manager_key(cls, key: SecretStr | None) -> SecretStr | None:
        if key is None:
            return None
        value = key.get_secret_value().strip()
        if not value:
            return None
        if not _DM_KEY.match(value):
            # Never echo the value: a pasted workspace key is still a secret.
            raise ValueError(
                f"{ENV_API_KEY} is not a Voiceflow Dialog Manager API key (those look like "
                "'VF.DM.<id>.<secret>'); copy the agent's key from Voiceflow > Agent > "
                "Integrations > API keys"
            )
        return SecretStr(value)

    @field_validator("auth_tokens")
    @classmethod
    def _strong_tokens(cls, tokens: tuple[SecretStr, ...]) -> tuple[SecretStr, ...]:
        if any(len(t.get_secret_value()) < 16 for t in tokens):
            raise ValueError(
                f"{ENV_AUTH_TOKENS} holds a token shorter than 16 characters; use long random "
                "tokens, e.g. from `python -c 'import secrets; print(secrets.token_urlsafe(32))'`"
            )
        return tokens

    @field_validator("store_url")
    @classmethod
    def _redis_url(cls, url: SecretStr | None) -> SecretStr | None:
        if url is not None and not url.get_secret_value().startswith(("redis://", "rediss://")):
            raise ValueError(f"{ENV_STORE_URL} must be a redis:// or rediss:// URL")
        return url

    @field_validator("view_image_origins")
    @classmethod
    def _https_origins(cls, origins: frozenset[str]) -> frozenset[str]:
        # An origin, not a URL: the CSP and the view compare scheme://host[:port] exactly.
        normalized = frozenset(origin.rstrip("/") for origin in origins)
        if bad := sorted(o for o in normalized if not _HTTPS_ORIGIN.match(o)):
            raise ValueError(
                f"{ENV_VIEW_IMAGE_ORIGINS} holds {', '.join(bad)}, which is not an https origin; "
                "list origins like https://cdn.example.com (no path)"
            )
        return normalized

    @field_validator("runtime_url", "analytics_url")
    @classmethod
    def _http_url(cls, url: str, info: ValidationInfo) -> str:
        url = url.strip().rstrip("/")
        if not url.startswith(("http://", "https://")):
            env, example = (
                (ENV_RUNTIME_URL, DEFAULT_RUNTIME_URL)
                if info.field_name == "runtime_url"
                else (ENV_ANALYTICS_URL, DEFAULT_ANALYTICS_URL)
            )
            raise ValueError(f"{env} must be an http(s) URL such as {example}")
        return url

    @field_validator("analytics_api_key")
    @classmethod
    def _analytics_key(cls, key: SecretStr | None) -> SecretStr | None:
        value = key.get_secret_value().strip() if key is not None else ""
        if not value:
            return None
        if not _ANALYTICS_KEY.match(value):
            raise ValueError(
                f"{ENV_ANALYTICS_API_KEY} is not a Voiceflow API key (those start with 'VF.DM.' "
                "or 'VF.WS.'); copy one from Voiceflow > Agent > Integrations > API keys"
            )
        return SecretStr(value)

    @field_validator("judge_url")
    @classmethod
    def _judge_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        url = url.strip().rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ValueError(
                f"{ENV_JUDGE_URL} must be an http(s) URL, e.g. https://api.openai.com/v1"
            )
        return url

    @model_validator(mode="after")
    def _complete(self) -> Settings:
        if self.judge_url is not None and not self.judge_model:
            raise ValueError(
                f"{ENV_JUDGE_URL} is set but {ENV_JUDGE_MODEL} is not: name the judge's model, "
                "e.g. gpt-4o-mini"
            )
        if self.oauth_issuer is not None and self.oauth_introspection_url is None:
            raise ValueError(
                f"{ENV_OAUTH_ISSUER} is set but {ENV_OAUTH_INTROSPECTION_URL} is not: set the "
                "issuer's RFC 7662 token introspection endpoint"
            )
        if self.oauth_issuer is not None and self.public_url is None:
            raise ValueError(
                f"{ENV_OAUTH_ISSUER} is set but {ENV_PUBLIC_URL} is not: set the URL clients use "
                "for the MCP endpoint, e.g. https://mcp.example.com/mcp"
            )
        if self.shutdown_timeout is not None and self.shutdown_timeout < self.timeout:
            raise ValueError(
                f"{ENV_SHUTDOWN_TIMEOUT} ({self.shutdown_timeout:g} s) is shorter than "
                f"{ENV_TIMEOUT} ({self.timeout:g} s), so a stopping worker could cut a turn that "
                f"is still within its timeout: set it to at least {self.timeout:g}"
            )
        return self

    @model_validator(mode="after")
    def _remember_secrets(self) -> Settings:
        # Wherever settings are read, their credentials are masked from then on, whatever text
        # carries them (an agent repeating its key, an error quoting a token).
        remember_secrets(self.secret_values())
        return self

    def secret_values(self) -> list[str]:
        """Every credential these settings hold, as plain text (for masking, never showing)."""
        found: list[str] = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            values = value if isinstance(value, tuple) else (value,)
            found += [v.get_secret_value() for v in values if isinstance(v, SecretStr)]
        return found


def env_name(field: str) -> str:
    """The environment variable a `Settings` field is read from."""
    extra = Settings.model_fields[field].json_schema_extra
    assert isinstance(extra, dict)
    return str(extra["env"])


def env_names() -> dict[str, str]:
    """Every variable `Settings` reads, by field name, in declaration order."""
    return {name: env_name(name) for name in Settings.model_fields}


def settings_table() -> str:
    """The README's configuration table, made from the declarations above."""
    rows = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for field in Settings.model_fields.values():
        extra = field.json_schema_extra
        assert isinstance(extra, dict)
        rows.append(f"| `{extra['env']}` | {extra['shown']} | {field.description} |")
    return "\n".join(rows)


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.replace(" ", ",").split(",") if item.strip()]


_PLAIN = {
    "int_parsing": "is not a whole number",
    "int_from_float": "is not a whole number",
    "float_parsing": "is not a number",
    "bool_parsing": "is not true or false (use 1/0, true/false, yes/no)",
}
_BOUNDS = {
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
}


def _problem(error: Any) -> str:
    """One clause naming the variable, what was wrong, and (for bounds and choices) what is not."""
    message = str(error["msg"]).removeprefix("Value error, ")
    loc = error["loc"]
    if not loc or str(loc[0]) not in Settings.model_fields:
        return message
    env = env_name(str(loc[0]))
    if env in message:
        return message
    given = error.get("input")
    secret = "SecretStr" in str(Settings.model_fields[str(loc[0])].annotation)
    shown = "" if secret else f"={given!r}"
    kind = error["type"]
    extra = Settings.model_fields[str(loc[0])].json_schema_extra
    default = extra.get("shown", "") if isinstance(extra, dict) else ""
    if kind in _PLAIN:
        return f"{env}{shown} {_PLAIN[kind]}; leave it unset for the default ({default})"
    if kind in _BOUNDS:
        return f"{env}{shown} {_BOUNDS[kind].format(**error.get('ctx', {}))}"
    if kind == "literal_error":
        return f"{env}{shown} must be one of {error.get('ctx', {}).get('expected', '')}"
    return f"{env}: {message}"
