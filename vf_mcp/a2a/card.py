"""Each agent's A2A Agent Card: who it is, where it answers, and the security actually enforced.

The card is public (it holds no secret: never the API key, never a token). It lists the one
JSON-RPC endpoint twice, as A2A v1.0 and as v0.3, since the endpoint speaks both. Its interface
URL is made per request from `VF_MCP_PUBLIC_URL`'s origin, else from the address the server is
bound to (`vf_mcp.a2a.app.base_url`), so a card always names the endpoint that served it.
"""

from __future__ import annotations

from typing import Final

from a2a.types import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    HTTPAuthSecurityScheme,
    OAuth2SecurityScheme,
    OAuthFlows,
    SecurityRequirement,
    SecurityScheme,
    StringList,
)
from a2a.utils.constants import PROTOCOL_VERSION_0_3, PROTOCOL_VERSION_1_0, TransportProtocol

from vf_mcp import __version__
from vf_mcp.agents import Agent, AgentDirectory
from vf_mcp.config import ENV_AUTH_TOKENS, Settings

A2A_PREFIX: Final = "/a2a"
MODES: Final = ["text/plain", "application/json"]
SKILL_ID: Final = "converse"


def rpc_path(agent: str) -> str:
    """Where agent `agent` answers JSON-RPC; its card is below it, at the well-known path."""
    return f"{A2A_PREFIX}/{agent}"


def agent_card(
    agent: Agent, directory: AgentDirectory, settings: Settings, *, base: str, converses: bool
) -> AgentCard:
    """The card of `agent`; `converses` is False in read-only mode (no skill is published)."""
    several = len(directory.agents) > 1
    schemes, requirements = _security(settings)
    return AgentCard(
        name=agent.name if several else settings.a2a_name,
        description=(agent.description if several else "") or settings.a2a_description,
        version=__version__,
        # One endpoint, both dialects (`vf_mcp.a2a.app`): v1.0 first, the one v1.0 clients pick;
        # the v0.3 entry is what gives the rendered card v0.3's `url` and `protocolVersion`.
        supported_interfaces=[
            AgentInterface(
                url=base + rpc_path(agent.name),
                protocol_binding=TransportProtocol.JSONRPC.value,
                protocol_version=version,
            )
            for version in (PROTOCOL_VERSION_1_0, PROTOCOL_VERSION_0_3)
        ],
        capabilities=AgentCapabilities(
            streaming=True, push_notifications=False, extended_agent_card=False
        ),
        security_schemes=schemes,
        security_requirements=requirements,
        default_input_modes=MODES,
        default_output_modes=MODES,
        skills=[_skill()] if converses else [],
    )


def _skill() -> AgentSkill:
    return AgentSkill(
        id=SKILL_ID,
        name="Converse",
        description=(
            "Hold a conversation with the agent, one message per turn. A message in a new "
            "context starts the conversation (its text, if any, is the first turn). Send text, "
            'or a data part: {"choice": "<button label or number>"}, {"action": {<Voiceflow '
            'action>}} or {"variables": {...}}. The task waits for input (input-required) '
            "while the agent does, and completes when the conversation ends or is handed off."
        ),
        tags=["voiceflow", "conversation", "chat"],
        examples=["Hi", '{"choice": "Track an order"}', '{"action": {"type": "done"}}'],
        input_modes=MODES,
        output_modes=MODES,
    )


def _security(
    settings: Settings,
) -> tuple[dict[str, SecurityScheme], list[SecurityRequirement]]:
    """The scheme `vf_mcp.http` enforces: the OAuth issuer's tokens, the static tokens, or none
    (loopback without tokens)."""
    if settings.oauth_issuer is not None:
        issuer = settings.oauth_issuer.rstrip("/")
        scheme = SecurityScheme(
            oauth2_security_scheme=OAuth2SecurityScheme(
                description=f"OAuth 2.0 access tokens issued by {issuer}, sent as "
                "'Authorization: Bearer <token>' and checked by introspection",
                # RFC 8414: the issuer's metadata names its flows and endpoints.
                oauth2_metadata_url=f"{issuer}/.well-known/oauth-authorization-server",
                flows=OAuthFlows(),
            )
        )
        name, scopes = "oauth", sorted(settings.oauth_scopes)
    elif settings.auth_tokens:
        scheme = SecurityScheme(
            http_auth_security_scheme=HTTPAuthSecurityScheme(
                scheme="Bearer",
                description=f"One of the tokens the operator set in {ENV_AUTH_TOKENS}",
            )
        )
        name, scopes = "bearer", []
    else:
        return {}, []
    return {name: scheme}, [SecurityRequirement(schemes={name: StringList(list=scopes)})]
