"""Settings read once from the environment, with the names every doc and client relies on."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from vf_mcp.errors import ConfigurationError

DEFAULT_RUNTIME_URL = "https://general-runtime.voiceflow.com"
DEFAULT_ENVIRONMENT = "development"
DEFAULT_HANDOFF_ACTIONS = ("handoff", "talk_to_agent")

# VF.DM.<id>.<secret>: the docs' shape; the id is 24 hex upstream, any alphanumerics here.
_DM_KEY = re.compile(r"^VF\.DM\.[A-Za-z0-9]+\.[A-Za-z0-9_\-]+$")

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

ENV_API_KEY = "VOICEFLOW_API_KEY"
ENV_PROJECT_ID = "VOICEFLOW_PROJECT_ID"
ENV_ENVIRONMENT = "VOICEFLOW_ENVIRONMENT"
ENV_API_VERSION = "VOICEFLOW_API_VERSION"
ENV_RUNTIME_URL = "VOICEFLOW_RUNTIME_URL"
ENV_TIMEOUT = "VOICEFLOW_TIMEOUT"
ENV_CONNECT_TIMEOUT = "VOICEFLOW_CONNECT_TIMEOUT"
ENV_MAX_RETRIES = "VOICEFLOW_MAX_RETRIES"
ENV_RETRY_DEADLINE = "VOICEFLOW_RETRY_DEADLINE"
ENV_LOG_LEVEL = "VF_MCP_LOG_LEVEL"
ENV_HANDOFF_ACTIONS = "VF_MCP_HANDOFF_ACTIONS"
ENV_AUTH_TOKENS = "VF_MCP_AUTH_TOKENS"
ENV_ALLOWED_HOSTS = "VF_MCP_ALLOWED_HOSTS"
ENV_TOOLS = "VF_MCP_TOOLS"
ENV_READ_ONLY = "VF_MCP_READ_ONLY"
ENV_STORE_URL = "VF_MCP_STORE_URL"
ENV_STORE_TTL = "VF_MCP_STORE_TTL"
ENV_OAUTH_ISSUER = "VF_MCP_OAUTH_ISSUER"
ENV_OAUTH_INTROSPECTION_URL = "VF_MCP_OAUTH_INTROSPECTION_URL"
ENV_OAUTH_CLIENT_ID = "VF_MCP_OAUTH_CLIENT_ID"
ENV_OAUTH_CLIENT_SECRET = "VF_MCP_OAUTH_CLIENT_SECRET"
ENV_OAUTH_SCOPES = "VF_MCP_OAUTH_SCOPES"
ENV_PUBLIC_URL = "VF_MCP_PUBLIC_URL"
ENV_TESTS_DIR = "VF_MCP_TESTS_DIR"
ENV_STREAM = "VF_MCP_STREAM"
ENV_AGENTS_FILE = "VF_MCP_AGENTS_FILE"
ENV_SUMMARY_MAX_CHARS = "VF_MCP_SUMMARY_MAX_CHARS"
DEFAULT_SUMMARY_MAX_CHARS = 8000
MIN_SUMMARY_MAX_CHARS = 500


class Settings(BaseModel):
    """Everything vf-mcp needs to reach one Voiceflow agent.

    The key is a `SecretStr`, so it never shows in a repr, a validation error or a log line.
    """

    model_config = ConfigDict(frozen=True)

    api_key: SecretStr | None = None
    project_id: str | None = None
    environment: str | None = None
    """The configured environment; None means `development` on legacy, the traffic split on v4."""
    api_version: Literal["legacy", "v4"] = "legacy"
    runtime_url: str = DEFAULT_RUNTIME_URL
    timeout: float = Field(default=30.0, gt=0, le=600)
    connect_timeout: float = Field(default=10.0, gt=0, le=120)
    max_retries: int = Field(default=3, ge=0, le=10)
    retry_deadline: float = Field(default=30.0, gt=0, le=600)
    log_level: LogLevel = "WARNING"
    handoff_actions: frozenset[str] = frozenset(DEFAULT_HANDOFF_ACTIONS)
    auth_tokens: tuple[SecretStr, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    tools: frozenset[str] | None = None
    read_only: bool = False
    store_url: SecretStr | None = None
    store_ttl: float = Field(default=86_400.0, gt=0)
    oauth_issuer: str | None = None
    oauth_introspection_url: str | None = None
    oauth_client_id: str | None = None
    oauth_client_secret: SecretStr | None = None
    oauth_scopes: frozenset[str] = frozenset()
    public_url: str | None = None
    tests_dir: Path | None = None
    """Where run_conversation finds suite files given by name."""
    agents_file: Path | None = None
    """Several agents behind one server (see vf_mcp.agents); None: one agent from VOICEFLOW_*."""
    stream: bool | None = None
    """Stream turns over SSE; None (the default) streams whenever a project id is configured."""
    summary_max_chars: int = Field(default=DEFAULT_SUMMARY_MAX_CHARS, ge=MIN_SUMMARY_MAX_CHARS)
    """The longest text a turn's summary may be; the structured content always has everything."""

    @property
    def default_environment(self) -> str:
        """The environment legacy calls use when a call names none."""
        return self.environment or DEFAULT_ENVIRONMENT

    @property
    def v4_environment(self) -> str | None:
        """The environment a v4 session starts in: the configured one, or None (traffic split)."""
        return self.environment

    @property
    def oauth(self) -> bool:
        """Whether HTTP mode is an OAuth resource server of a configured issuer."""
        return self.oauth_issuer is not None

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

    @model_validator(mode="after")
    def _oauth_complete(self) -> Settings:
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
        return self

    @field_validator("runtime_url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        url = url.strip().rstrip("/")
        if not url.startswith(("http://", "https://")):
            raise ValueError(
                f"{ENV_RUNTIME_URL} must be an http(s) URL such as {DEFAULT_RUNTIME_URL}"
            )
        return url

    @field_validator("environment")
    @classmethod
    def _environment(cls, env: str | None) -> str | None:
        return (env or "").strip() or None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read the settings from `environ` (default: the process environment).

        Raises `ConfigurationError` with one line per problem, naming the variable to fix.
        """
        env = os.environ if environ is None else environ
        raw: dict[str, object] = {}
        if value := env.get(ENV_API_KEY):
            raw["api_key"] = value
        if value := env.get(ENV_PROJECT_ID, "").strip():
            raw["project_id"] = value
        if value := env.get(ENV_ENVIRONMENT, "").strip():
            raw["environment"] = value
        if value := env.get(ENV_API_VERSION, "").strip():
            raw["api_version"] = value.lower()
        if value := env.get(ENV_RUNTIME_URL):
            raw["runtime_url"] = value
        for name, field in (
            (ENV_TIMEOUT, "timeout"),
            (ENV_CONNECT_TIMEOUT, "connect_timeout"),
            (ENV_RETRY_DEADLINE, "retry_deadline"),
            (ENV_STORE_TTL, "store_ttl"),
        ):
            if value := env.get(name, "").strip():
                try:
                    raw[field] = float(value)
                except ValueError:
                    raise ConfigurationError(
                        f"{name}={value!r} is not a number of seconds; set it to e.g. 30"
                    ) from None
        if value := env.get(ENV_MAX_RETRIES, "").strip():
            if not value.isdigit():
                raise ConfigurationError(
                    f"{ENV_MAX_RETRIES}={value!r} is not a whole number; set it to e.g. 3 (0: off)"
                )
            raw["max_retries"] = int(value)
        if value := env.get(ENV_SUMMARY_MAX_CHARS, "").strip():
            if not value.isdigit() or int(value) < MIN_SUMMARY_MAX_CHARS:
                raise ConfigurationError(
                    f"{ENV_SUMMARY_MAX_CHARS}={value!r} is not a whole number of at least "
                    f"{MIN_SUMMARY_MAX_CHARS}; set it to e.g. {DEFAULT_SUMMARY_MAX_CHARS}"
                )
            raw["summary_max_chars"] = int(value)
        if value := env.get(ENV_LOG_LEVEL, "").strip():
            raw["log_level"] = value.upper()
        if value := env.get(ENV_HANDOFF_ACTIONS, "").strip():
            raw["handoff_actions"] = _names(value)
        if value := env.get(ENV_AUTH_TOKENS, "").strip():
            raw["auth_tokens"] = tuple(_names(value, ordered=True))
        if value := env.get(ENV_ALLOWED_HOSTS, "").strip():
            raw["allowed_hosts"] = tuple(_names(value, ordered=True))
        if value := env.get(ENV_TOOLS, "").strip():
            raw["tools"] = _names(value)
        if value := env.get(ENV_READ_ONLY, "").strip():
            raw["read_only"] = value.lower() in ("1", "true", "yes", "on")
        if value := env.get(ENV_STREAM, "").strip():
            raw["stream"] = value.lower() in ("1", "true", "yes", "on")
        if value := env.get(ENV_STORE_URL, "").strip():
            raw["store_url"] = value
        for name, field in (
            (ENV_OAUTH_ISSUER, "oauth_issuer"),
            (ENV_OAUTH_INTROSPECTION_URL, "oauth_introspection_url"),
            (ENV_OAUTH_CLIENT_ID, "oauth_client_id"),
            (ENV_OAUTH_CLIENT_SECRET, "oauth_client_secret"),
            (ENV_PUBLIC_URL, "public_url"),
            (ENV_TESTS_DIR, "tests_dir"),
            (ENV_AGENTS_FILE, "agents_file"),
        ):
            if value := env.get(name, "").strip():
                raw[field] = value
        if value := env.get(ENV_OAUTH_SCOPES, "").strip():
            raw["oauth_scopes"] = frozenset(value.replace(",", " ").split())
        return cls.validated(raw)

    @classmethod
    def validated(cls, raw: Mapping[str, object]) -> Settings:
        """Build settings, turning pydantic's multi-line errors into one `ConfigurationError`."""
        from pydantic import ValidationError

        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            problems = []
            for error in exc.errors(include_input=False, include_url=False):
                message = str(error["msg"]).removeprefix("Value error, ")
                loc = error["loc"]
                name = _ENV_NAMES.get(str(loc[0]), str(loc[0])) if loc else ""
                problems.append(message if name in message else f"{name}: {message}")
            raise ConfigurationError("; ".join(problems)) from None

    def require_api_key(self) -> str:
        """The key's value, or a `ConfigurationError` that says what to set."""
        if self.api_key is None:
            raise ConfigurationError(
                f"{ENV_API_KEY} is not set: export your agent's Dialog Manager API key "
                "(VF.DM....), or run `vf-mcp demo` to try vf-mcp against the bundled emulator"
            )
        return self.api_key.get_secret_value()


def _names(value: str, *, ordered: bool = False) -> Any:
    items = [item.strip() for item in value.split(",") if item.strip()]
    return items if ordered else frozenset(items)


_ENV_NAMES = {
    "api_key": ENV_API_KEY,
    "project_id": ENV_PROJECT_ID,
    "environment": ENV_ENVIRONMENT,
    "api_version": ENV_API_VERSION,
    "runtime_url": ENV_RUNTIME_URL,
    "timeout": ENV_TIMEOUT,
    "connect_timeout": ENV_CONNECT_TIMEOUT,
    "log_level": ENV_LOG_LEVEL,
    "handoff_actions": ENV_HANDOFF_ACTIONS,
    "max_retries": ENV_MAX_RETRIES,
    "retry_deadline": ENV_RETRY_DEADLINE,
    "auth_tokens": ENV_AUTH_TOKENS,
    "allowed_hosts": ENV_ALLOWED_HOSTS,
    "tools": ENV_TOOLS,
    "read_only": ENV_READ_ONLY,
    "store_url": ENV_STORE_URL,
    "store_ttl": ENV_STORE_TTL,
    "oauth_issuer": ENV_OAUTH_ISSUER,
    "oauth_introspection_url": ENV_OAUTH_INTROSPECTION_URL,
    "oauth_client_id": ENV_OAUTH_CLIENT_ID,
    "oauth_client_secret": ENV_OAUTH_CLIENT_SECRET,
    "oauth_scopes": ENV_OAUTH_SCOPES,
    "public_url": ENV_PUBLIC_URL,
    "tests_dir": ENV_TESTS_DIR,
    "stream": ENV_STREAM,
    "agents_file": ENV_AGENTS_FILE,
    "summary_max_chars": ENV_SUMMARY_MAX_CHARS,
}
