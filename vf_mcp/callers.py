"""Who is calling: each HTTP token (or OAuth subject) gets its own namespace of conversations.

The namespace is a short, stable, non-reversible name derived from the caller's credential; the
same `user_id` from two callers names two conversations upstream, in the store and in the
transcripts. stdio has one caller and no namespace.

A request has one identity, decided once: the token gate (`vf_mcp.web.BearerTokenGate`) puts the
namespace of the token it verified into the ASGI scope, the MCP SDK's OAuth middleware puts the
verified user there, and every front end (MCP tools, A2A, runs, the view) asks `caller_namespace`
and nothing else. Reading a header again somewhere else is how two parts came to disagree about
who was calling (one read the first Authorization header, another the last).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import MutableMapping
from typing import Any

from vf_mcp.errors import ConfigurationError

CALLER_SCOPE_KEY = "vf_mcp.caller"
"""The ASGI scope key the token gate sets to the verified caller's namespace."""


def namespace_for(identity: str) -> str:
    """A short, stable, non-reversible name for a caller's token or OAuth subject."""
    return "t" + hashlib.sha256(identity.encode()).hexdigest()[:12]


def oauth_namespace(subject: str | None, client_id: str | None = None) -> str | None:
    """An OAuth caller's namespace: its subject, else (a client acting for itself) its client
    id, told apart so a client id can never equal a user's subject and share its namespace."""
    if subject:
        return namespace_for(f"oauth-subject:{subject}")
    return namespace_for(f"oauth-client:{client_id}") if client_id else None


_NAMESPACE_IN_ID = re.compile(r"(?:^|[./])(t[0-9a-f]{12})\.")


def namespace_in(upstream_id: str) -> str:
    """The caller a runtime user id belongs to: its first namespace segment (`scoped` writes the
    namespace before the caller's own `user_id`, so a `user_id` shaped like another caller's
    namespace comes after it); "-" when callers are not told apart."""
    found = _NAMESPACE_IN_ID.search(upstream_id)
    return found.group(1) if found else "-"


def set_caller(scope: MutableMapping[str, Any], namespace: str) -> None:
    """Record the caller the gate verified for this request."""
    scope[CALLER_SCOPE_KEY] = namespace


def caller_namespace(scope: MutableMapping[str, Any], *, tokens: bool, oauth: bool) -> str | None:
    """The namespace of the caller verified for this request; None when callers are not told
    apart (no tokens, no OAuth).

    With tokens or OAuth configured a request always has one: the gates refuse any other before
    a front end sees it, so a request without one here is a wiring fault, refused rather than
    served as nobody (which would let its `user_id` name another caller's conversation).
    """
    if oauth:
        from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser

        user = scope.get("user")
        if isinstance(user, AuthenticatedUser):
            access = user.access_token
            namespace = oauth_namespace(access.subject, access.client_id)
            if namespace is not None:
                return namespace
    elif tokens and isinstance(found := scope.get(CALLER_SCOPE_KEY), str):
        return found
    if tokens or oauth:
        raise ConfigurationError(
            "This request reached vf-mcp without a verified caller although credentials are "
            "required; it was refused. Report it: the server's authentication gate is not in "
            "front of this route"
        )
    return None
