"""``{variable}`` substitution for agent-file strings, as Voiceflow's canvas does it."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _as_text(value: Any, *, money: bool) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        # Slate text (messages, card and carousel descriptions) shows non-integers with two
        # decimals, as the runtime's variable sanitiser does: 2.5 reads "2.50".
        if value.is_integer():
            return str(int(value))
        return f"{value:.2f}" if money else repr(value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def render(text: str, variables: Mapping[str, Any], *, slate: bool = False) -> str:
    """Fill ``{name}`` placeholders; unknown names stay literal so stray braces survive.

    ``slate`` formats numbers the way slate text does (see :func:`_as_text`); titles, URLs and
    payload strings get the plain form.
    """

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in variables:
            return match.group(0)
        return _as_text(variables[name], money=slate)

    return _PLACEHOLDER.sub(replace, text)


def render_value(value: Any, variables: Mapping[str, Any], *, raw_placeholders: bool = True) -> Any:
    """Render every string inside a JSON-like value.

    With ``raw_placeholders`` a string that is exactly one placeholder becomes the variable's raw
    value (so a `set` can copy numbers, objects or null). Without it every string stays a
    string, as the runtime fills custom-action payloads (``"{order_cost}"`` -> ``"16"``).
    """
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value)
        if raw_placeholders and whole is not None:
            return variables.get(whole.group(1))
        return render(value, variables)
    if isinstance(value, dict):
        return {
            key: render_value(item, variables, raw_placeholders=raw_placeholders)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [render_value(item, variables, raw_placeholders=raw_placeholders) for item in value]
    return value
