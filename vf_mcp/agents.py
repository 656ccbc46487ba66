"""Several Voiceflow agents behind one server, named in a small config file.

The file (`VF_MCP_AGENTS_FILE`, YAML or JSON) names each agent with its project, environment,
runtime URL, API generation and the environment variable that holds its key; keys never live in
the file. Without a file there is one agent, `default`, configured by the VOICEFLOW_* variables.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from vf_mcp.config import ENV_AGENTS_FILE, Settings
from vf_mcp.errors import ConfigurationError

DEFAULT_AGENT = "default"
AGENT_NAME_PATTERN = r"^[a-z0-9][a-z0-9_\-]{0,39}$"


class AgentEntry(BaseModel):
    """One agent in the agents file."""

    model_config = ConfigDict(extra="forbid")

    api_key_env: str = Field(description="Name of the environment variable holding its key")
    project_id: str | None = None
    environment: str | None = None
    runtime_url: str | None = None
    api_version: Literal["legacy", "v4"] | None = None
    description: str = ""


class AgentsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    default: str | None = None
    agents: dict[str, AgentEntry]

    @field_validator("agents")
    @classmethod
    def _names(cls, agents: dict[str, AgentEntry]) -> dict[str, AgentEntry]:
        if not agents:
            raise ValueError("name at least one agent under `agents`")
        for name in agents:
            if not re.match(AGENT_NAME_PATTERN, name):
                raise ValueError(
                    f"agent name {name!r} must be lowercase letters, digits, _ or - (max 40)"
                )
        return agents


class Agent(BaseModel):
    """An agent the server can talk to: its name, description and full settings."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str = ""
    settings: Settings


class AgentDirectory(BaseModel):
    model_config = ConfigDict(frozen=True)

    agents: dict[str, Agent]
    default: str

    @property
    def names(self) -> list[str]:
        return sorted(self.agents)

    def describe(self) -> str:
        return ", ".join(
            f"{name}{' (' + a.description + ')' if a.description else ''}"
            for name, a in sorted(self.agents.items())
        )


def single_agent(settings: Settings) -> AgentDirectory:
    return AgentDirectory(
        agents={DEFAULT_AGENT: Agent(name=DEFAULT_AGENT, settings=settings)}, default=DEFAULT_AGENT
    )


def load_agents(path: Path, base: Settings, environ: Mapping[str, str]) -> AgentDirectory:
    """Read the agents file; each agent inherits `base` and overrides what its entry sets.

    Each agent's key is read from the variable of `environ` its entry names.
    """
    parsed = _read_agents_file(path)
    default = parsed.default or next(iter(parsed.agents))
    if default not in parsed.agents:
        raise ConfigurationError(
            f"{path}: default agent {default!r} is not one of {', '.join(parsed.agents)}"
        )
    missing = [
        f"{entry.api_key_env} (agent {name})"
        for name, entry in parsed.agents.items()
        if not environ.get(entry.api_key_env, "").strip()
    ]
    if missing:
        raise ConfigurationError(
            f"{path} names keys that are not set: {', '.join(missing)}; export them"
        )
    base_fields = base.model_dump(exclude={"api_key"}, exclude_none=True)
    agents = {
        name: Agent(
            name=name,
            description=entry.description,
            settings=Settings.validated({**base_fields, **_overrides(entry, environ)}),
        )
        for name, entry in parsed.agents.items()
    }
    return AgentDirectory(agents=agents, default=default)


def _read_agents_file(path: Path) -> AgentsFile:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(
            f"{ENV_AGENTS_FILE}={str(path)!r} cannot be read ({exc.strerror}); fix the path"
        ) from None
    import yaml  # only a deployment with an agents file pays for the YAML parser

    try:
        raw = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigurationError(
            f"{path} is not valid YAML/JSON: {str(exc).splitlines()[0]}"
        ) from None
    if isinstance(raw, dict):
        for name, entry in (raw.get("agents") or {}).items():
            if isinstance(entry, dict) and ("api_key" in entry or "apiKey" in entry):
                raise ConfigurationError(
                    f"{path}: agent {name!r} holds a key; keys never live in this file: set "
                    "`api_key_env` to the name of an environment variable that holds it"
                )
    try:
        return AgentsFile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors(include_input=False, include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigurationError(f"{path}: {where}: {first['msg']}") from None


def _overrides(entry: AgentEntry, environ: Mapping[str, str]) -> dict[str, object]:
    chosen = {
        "project_id": entry.project_id,
        "environment": entry.environment,
        "runtime_url": entry.runtime_url,
        "api_version": entry.api_version,
    }
    return {
        "api_key": environ[entry.api_key_env].strip(),
        **{name: value for name, value in chosen.items() if value},
    }


def agents_from_settings(settings: Settings, environ: Mapping[str, str]) -> AgentDirectory:
    if settings.agents_file is None:
        return single_agent(settings)
    return load_agents(settings.agents_file, settings, environ)
