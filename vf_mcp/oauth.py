"""OAuth resource-server mode: tokens checked by the issuer's RFC 7662 introspection endpoint.

Used only when `VF_MCP_OAUTH_ISSUER` is set; then the SDK publishes protected-resource metadata
that points at that real issuer. Without it, HTTP mode uses static bearer tokens and advertises no
OAuth metadata at all.
"""

from __future__ import annotations

import logging
import time

import httpx
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.settings import AuthSettings
from pydantic import AnyHttpUrl

from vf_mcp.config import Settings

_log = logging.getLogger(__name__)


class IntrospectionVerifier(TokenVerifier):
    """Asks the authorization server whether a token is active (RFC 7662)."""

    def __init__(
        self, introspection_url: str, *, client_id: str | None, client_secret: str | None
    ) -> None:
        self._url = introspection_url
        auth = (client_id, client_secret or "") if client_id else None
        self._http = httpx.AsyncClient(timeout=10, auth=auth)

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            response = await self._http.post(self._url, data={"token": token})
        except httpx.HTTPError as exc:
            _log.warning("token introspection failed: %s", type(exc).__name__)
            return None
        if response.status_code != 200:
            _log.warning("token introspection answered %s", response.status_code)
            return None
        try:
            claims = response.json()
        except ValueError:
            return None
        if not isinstance(claims, dict) or claims.get("active") is not True:
            return None
        expires = claims.get("exp")
        if isinstance(expires, int | float) and expires < time.time():
            return None
        scope = claims.get("scope")
        return AccessToken(
            token=token,
            client_id=str(claims.get("client_id") or claims.get("sub") or "unknown"),
            scopes=scope.split() if isinstance(scope, str) else [],
            expires_at=int(expires) if isinstance(expires, int | float) else None,
            subject=claims.get("sub") if isinstance(claims.get("sub"), str) else None,
        )


def oauth_parts(settings: Settings) -> tuple[TokenVerifier, AuthSettings] | tuple[None, None]:
    """The SDK's resource-server pieces, or nothing when no issuer is configured."""
    if settings.oauth_issuer is None or settings.oauth_introspection_url is None:
        return None, None
    verifier = IntrospectionVerifier(
        settings.oauth_introspection_url,
        client_id=settings.oauth_client_id,
        client_secret=(
            settings.oauth_client_secret.get_secret_value()
            if settings.oauth_client_secret
            else None
        ),
    )
    auth = AuthSettings(
        issuer_url=AnyHttpUrl(settings.oauth_issuer),
        resource_server_url=AnyHttpUrl(settings.public_url or "http://127.0.0.1:8765/mcp"),
        required_scopes=sorted(settings.oauth_scopes) or None,
        validate_token_resource=False,
    )
    return verifier, auth
