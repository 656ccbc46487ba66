"""OAuth resource-server mode: tokens checked by the issuer's RFC 7662 introspection endpoint.

Used only when `VF_MCP_OAUTH_ISSUER` is set; then the SDK publishes protected-resource metadata
that points at that real issuer. Without it, HTTP mode uses static bearer tokens and advertises no
OAuth metadata at all. With `VF_MCP_OAUTH_AUDIENCE`, the SDK also refuses tokens that were not
issued for this server (RFC 8707): the verifier reports the token's `aud` as its resource.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
from mcp.server.auth.provider import AccessToken, TokenVerifier
from mcp.server.auth.settings import AuthSettings
from pydantic import AnyHttpUrl

from vf_mcp.config import Settings

_log = logging.getLogger(__name__)


class IntrospectionVerifier(TokenVerifier):
    """Asks the authorization server whether a token is active (RFC 7662).

    Its connection pool lives as long as the server: the server's lifespan closes it.
    """

    def __init__(
        self,
        introspection_url: str,
        *,
        client_id: str | None,
        client_secret: str | None,
        resource: str | None = None,
    ) -> None:
        self._url = introspection_url
        self._resource = resource
        auth = (client_id, client_secret or "") if client_id else None
        self._http = httpx.AsyncClient(timeout=10, auth=auth)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def verify_token(self, token: str) -> AccessToken | None:
        claims = await self._introspect(token)
        if claims is None or claims.get("active") is not True:
            return None
        expires = claims.get("exp")
        if isinstance(expires, int | float) and expires < time.time():
            return None
        scope = claims.get("scope")
        subject = claims.get("sub")
        return AccessToken(
            token=token,
            client_id=str(claims.get("client_id") or subject or "unknown"),
            scopes=scope.split() if isinstance(scope, str) else [],
            expires_at=int(expires) if isinstance(expires, int | float) else None,
            resource=self._audience(claims.get("aud")),
            subject=subject if isinstance(subject, str) else None,
        )

    async def _introspect(self, token: str) -> dict[str, Any] | None:
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
        return claims if isinstance(claims, dict) else None

    def _audience(self, aud: Any) -> str | None:
        """The audience to report: this server's URL when the token names it among others."""
        audiences = [aud] if isinstance(aud, str) else [a for a in aud or [] if isinstance(a, str)]
        if self._resource is not None and self._resource in audiences:
            return self._resource
        return audiences[0] if audiences else None


def oauth_parts(
    settings: Settings,
) -> tuple[IntrospectionVerifier, AuthSettings] | tuple[None, None]:
    """The SDK's resource-server pieces, or nothing when no issuer is configured."""
    if settings.oauth_issuer is None or settings.oauth_introspection_url is None:
        return None, None
    resource = settings.public_url or "http://127.0.0.1:8765/mcp"
    verifier = IntrospectionVerifier(
        settings.oauth_introspection_url,
        client_id=settings.oauth_client_id,
        client_secret=(
            settings.oauth_client_secret.get_secret_value()
            if settings.oauth_client_secret
            else None
        ),
        resource=resource,
    )
    auth = AuthSettings(
        issuer_url=AnyHttpUrl(settings.oauth_issuer),
        resource_server_url=AnyHttpUrl(resource),
        required_scopes=sorted(settings.oauth_scopes) or None,
        validate_token_resource=settings.oauth_audience,
    )
    return verifier, auth
