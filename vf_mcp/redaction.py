"""Masking of credentials in any text that enters or leaves the process.

Everything the server prints, logs or returns passes through `redact` at the last moment, so a key
that slipped into an upstream error body or an exception message is still never shown. What the
runtime answers passes through `mask_secrets` as it is read, so an agent that says the server's
key (or a caller's token) shows the mask in every result, transcript, view and report after it:
one place on the way in, instead of one per way out.

Besides the shapes below, the exact credentials this process holds are masked: they are
remembered once (`remember_secrets`) where settings are read, since a token may have any shape.

A streamed answer arrives in pieces, each masked as it is read, so a credential cut across two
pieces passes that check; `mask_across` masks it once the pieces are all in.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence

# Dialog-manager keys look like `VF.DM.<24 hex>.<secret>`; workspace (`VF.WS.`) keys are masked
# too, since they are credentials just the same. The secret part may contain `-` and `_`. A mask
# followed by more key characters is the rest of a key cut across two streamed pieces, the first
# masked as it was read (`mask_across`): it is taken as one key with it.
_KEY_SHAPE = r"VF\.(?:DM|WS)\.[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)*"
_KEY = re.compile(_KEY_SHAPE)
_KEY_REST = r"(?:[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)*|(?:\.[A-Za-z0-9_\-]+)+)"
_KEY_PATTERN = re.compile(rf"{_KEY_SHAPE}|VF\.(?:DM|WS)\.\*\*\*{_KEY_REST}")
MASK = "VF.DM.***"
# v4 session keys are opaque; the socket docs call them JWTs, so JWT-shaped strings are masked too.
_JWT_PATTERN = re.compile(r"eyJ[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{4,}\.[A-Za-z0-9_\-]{4,}")
JWT_MASK = "<session key>"
SECRET_MASK = "***"
MIN_SECRET_LENGTH = 8
"""Shorter values are not remembered: masking every "abc" would garble text, and no credential
the settings accept is that short."""

_secrets: list[str] = []
"""Longest first: a value that holds another is masked whole, not around the shorter one."""


def remember_secrets(values: Iterable[str | None]) -> None:
    """Mask these exact values from now on, wherever they appear (keys, tokens, passwords)."""
    known = set(_secrets)
    for value in values:
        if value and len(value) >= MIN_SECRET_LENGTH:
            known |= _written_forms(value)
    _secrets[:] = sorted(known, key=len, reverse=True)


def _written_forms(secret: str) -> set[str]:
    """The secret and the ways a JSON encoder may write it inside a string: the runtime's body
    is masked before it is parsed, and there a `"` or `\\` in a token is escaped, and `/` or
    anything beyond ASCII may be (`\\/`, `\\u00fc`)."""
    escaped = json.dumps(secret, ensure_ascii=False)[1:-1]
    ascii_only = json.dumps(secret)[1:-1]
    return {
        secret,
        escaped,
        ascii_only,
        escaped.replace("/", "\\/"),
        ascii_only.replace("/", "\\/"),
    }


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


def mask_across(pieces: Sequence[str]) -> list[str]:
    """The pieces of one text (a streamed answer's chunks) with every credential that runs
    across two or more of them masked, Voiceflow-key shapes and remembered values alike (JWTs
    kept, as in `mask_secrets`). The mask stands where the credential starts; the rest of its
    characters leave the pieces they fell in, so joining the pieces reads as one masked text."""
    joined = "".join(pieces)
    spans = _credential_spans(joined)
    if not spans:
        return list(pieces)
    masked: list[str] = []
    start = 0
    for piece in pieces:
        end = start + len(piece)
        parts: list[str] = []
        position = start
        for span_start, span_end, mask in spans:
            if span_end <= start or span_start >= end:
                continue
            parts.append(joined[position : max(span_start, start)])
            if span_start >= start:
                parts.append(mask)
            position = min(span_end, end)
        parts.append(joined[position:end])
        masked.append("".join(parts))
        start = end
    return masked


def _credential_spans(text: str) -> list[tuple[int, int, str]]:
    """Where credentials stand in `text`: (start, end, mask), in order, overlaps merged."""
    found = [(m.start(), m.end(), MASK) for m in _KEY_PATTERN.finditer(text)]
    for secret in _secrets:
        at = text.find(secret)
        while at != -1:
            found.append((at, at + len(secret), SECRET_MASK))
            at = text.find(secret, at + 1)
    merged: list[tuple[int, int, str]] = []
    # At one start, the longest span first, and a key shape before a remembered value: a
    # Voiceflow key reads as one (`VF.DM.***`), as `_mask_known` shows it.
    for start, end, mask in sorted(found, key=lambda s: (s[0], -s[1], s[2] != MASK)):
        if merged and start < merged[-1][1]:
            last_start, last_end, last_mask = merged[-1]
            merged[-1] = (last_start, max(last_end, end), last_mask)
        else:
            merged.append((start, end, mask))
    return merged


def contains_key(text: str) -> bool:
    """Whether `text` holds something shaped like a Voiceflow API key."""
    return bool(_KEY.search(text))
