"""``{variable}`` substitution for agent-file strings, as Voiceflow's canvas does it."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SSML_TAG = re.compile(
    r"</?(?:speak|break|emphasis|prosody|say-as|sub|voice|audio|p|s|phoneme|lang|mark|amazon:[\w-]+)"
    r"(?:\s[^<>]*)?/?>",
    re.IGNORECASE,
)


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render(text: str, variables: Mapping[str, Any]) -> str:
    """Fill ``{name}`` placeholders; unknown names stay literal so stray braces survive."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        return _as_text(variables[name]) if name in variables else match.group(0)

    return _PLACEHOLDER.sub(replace, text)


def render_value(value: Any, variables: Mapping[str, Any]) -> Any:
    """Render every string inside a JSON-like value.

    A string that is exactly one placeholder becomes the variable's raw value (so a payload can
    carry numbers, objects or null, not just their text).
    """
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value)
        if whole is not None:
            return variables.get(whole.group(1))
        return render(value, variables)
    if isinstance(value, dict):
        return {key: render_value(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [render_value(item, variables) for item in value]
    return value


def strip_ssml(text: str) -> str:
    return _SSML_TAG.sub("", text)
