"""Masking of credentials in any text that enters or leaves the process.

Everything the server prints, logs or returns passes through `redact` at the last moment, so a key
that slipped into an upstream error body or an exception message is still never shown. What the
runtime answers passes through `mask_secrets` as it is read, so an agent that says the server's
key (or a caller's token) shows the mask in every result, transcript, view and report after it:
one place on the way in, instead of one per way out.

Besides the shapes below, the exact credentials this process holds are masked: they are
remembered once (`remember_secrets`) where settings are read, since a token may have any shape.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

# Dialog-manager keys look like `VF.DM.<24 hex>.<secret>`; workspace (`VF.WS.`) keys are masked
# too, since they are credentials just the same. The secret part may contain `-` and `_`.
_KEY_PATTERN = re.compile(r"VF\.(?:DM|WS)\.[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)*")
MASK = "VF.DM.***"
# v4 session keys are opaque; the socket docs call them JWTs, so JWT-shaped strings are masked too.
_JWT_PATTERN = re.compile(r"eyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{4,}")
JWT_MASK = "<session key>"
SECRET_MASK = "***"
MIN_SECRET_LENGTH = 8
"""Shorter values are not remembered: masking every "abc" would garble text, and no credential
the settings accept is that short."""

_secrets: set[str] = set()


def remember_secrets(values: Iterable[str | None]) -> None:
    """Mask these exact values from now on, wherever they appear (keys, tokens, passwords)."""
    _secrets.update(v for v in values if v and len(v) >= MIN_SECRET_LENGTH)


def _mask_known(text: str) -> str:
    # The key shape first, so a Voiceflow key reads as one (`VF.DM.***`) whether remembered or not.
    if "VF." in text:
        text = _KEY_PATTERN.sub(MASK, text)
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, SECRET_MASK)
    return text


def redact(text: str) -> str:
    """Return `text` with the credentials this process holds, and anything shaped like a
    Voiceflow API key or a JWT, masked."""
    text = _mask_known(text)
    if "eyJ" in text:
        text = _JWT_PATTERN.sub(JWT_MASK, text)
    return text


def mask_secrets(text: str) -> str:
    """Return `text` with the credentials this process holds and Voiceflow-key shapes masked,
    but JWTs kept: what the runtime answers carries the v4 session key the client must read."""
    return _mask_known(text)


def contains_key(text: str) -> bool:
    """Whether `text` holds something shaped like a Voiceflow API key."""
    return bool(_KEY_PATTERN.search(text))
