"""Who is calling: each HTTP token (or OAuth subject) gets its own namespace of conversations.

The namespace is a short, stable, non-reversible name derived from the caller's credential; the
same `user_id` from two callers names two conversations upstream, in the store and in the
transcripts. stdio has one caller and no namespace.
"""

from __future__ import annotations

import hashlib


def namespace_for(identity: str) -> str:
    """A short, stable, non-reversible name for a caller's token or OAuth subject."""
    return "t" + hashlib.sha256(identity.encode()).hexdigest()[:12]


def bearer_namespace(authorization: str) -> str | None:
    """The namespace of the bearer token in an Authorization header, if there is one."""
    scheme, _, token = authorization.strip().partition(" ")
    token = token.strip() if scheme.lower() == "bearer" else ""
    return namespace_for(token) if token else None


def oauth_namespace(subject: str | None) -> str | None:
    return namespace_for(f"oauth:{subject}") if subject else None
