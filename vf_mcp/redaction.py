"""Masking of Voiceflow credentials in any text that leaves the process.

Everything the server prints, logs or returns passes through `redact` at the last moment, so a key
that slipped into an upstream error body or an exception message is still never shown.
"""

from __future__ import annotations

import re

# Dialog-manager keys look like `VF.DM.<24 hex>.<secret>`; workspace (`VF.WS.`) keys are masked
# too, since they are credentials just the same. The secret part may contain `-` and `_`.
_KEY_PATTERN = re.compile(r"VF\.(?:DM|WS)\.[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)*")
MASK = "VF.DM.***"
# v4 session keys are opaque; the socket docs call them JWTs, so JWT-shaped strings are masked too.
_JWT_PATTERN = re.compile(r"eyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{4,}")
JWT_MASK = "<session key>"


def redact(text: str) -> str:
    """Return `text` with anything shaped like a Voiceflow API key or a JWT masked."""
    if "VF." in text:
        text = _KEY_PATTERN.sub(MASK, text)
    if "eyJ" in text:
        text = _JWT_PATTERN.sub(JWT_MASK, text)
    return text


def contains_key(text: str) -> bool:
    """Whether `text` holds something shaped like a Voiceflow API key."""
    return bool(_KEY_PATTERN.search(text))
