"""The Jinja2 environment the chat and the pages built around it render with.

Imported only when something is rendered (`render_chat`, the HTML report), never at start-up: a
server that shows no chat never loads Jinja2. Autoescape is on for every template, so markup comes
only from the templates themselves; an undefined name is an error, never an empty string.
"""

from __future__ import annotations

import json
from functools import cache

from jinja2 import ChoiceLoader, Environment, PackageLoader, StrictUndefined
from markupsafe import Markup
from pydantic import JsonValue

from vf_mcp.chat.markup import STATUS_LABELS, chat_css, image_source, link_target
from vf_mcp.voiceflow.variables import is_unset


@cache
def environment(*packages: str) -> Environment:
    """The chat's templates (`chat.html.jinja`), with those of `packages` beside them: a page of
    another package imports the chat's macros from here."""
    loader = ChoiceLoader([PackageLoader(name) for name in (*packages, "vf_mcp.chat")])
    # auto_reload off: the templates ship with the package, so no file is checked per render.
    env = Environment(
        loader=loader,
        autoescape=True,
        undefined=StrictUndefined,
        auto_reload=False,
        keep_trailing_newline=True,
    )
    env.globals.update(
        link_target=link_target,
        image_source=image_source,
        status_labels=STATUS_LABELS,
        chat_css=lambda: Markup(chat_css()),  # our own stylesheet, never escaped
    )
    env.filters.update(before=_before, short=_short)
    return env


def _before(value: JsonValue) -> str:
    # The runtime's `0` for a declared variable means "never set", as the summaries say.
    return "unset" if is_unset(value) else _short(value)


def _short(value: JsonValue, limit: int = 60) -> str:
    text = "unset" if value is None else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"
