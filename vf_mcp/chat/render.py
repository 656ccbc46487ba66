"""Transcript turns to chat markup, escaped on the server side.

The markup is templates/chat.html.jinja, rendered with autoescape, so everything the agent or the
user said reaches the page as text; a URL reaches an attribute only when it is `http(s):` (links)
or `https:` from an allowed origin (images): a `javascript:` or `data:` URL is shown as text. No
markup carries script or inline handlers, so the same fragment is safe in a report opened from
disk and in a host's sandboxed frame. Jinja2 is imported on the first render, not with this module
(the MCP App view's resource reads `chat_css` at start-up).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from vf_mcp.domain.transcript import TranscriptTurn


@dataclass(frozen=True)
class ChatOptions:
    """How a chat is shown: which images load, and whether its buttons act. (The report adds each
    turn's checks by calling the template's macro with a `{% call %}` block.)"""

    image_origins: frozenset[str] = frozenset()  # https origins whose images are shown
    interactive: bool = False  # the last turn's buttons can be pressed (`data-choice`)


def render_chat(turns: Sequence[TranscriptTurn], options: ChatOptions | None = None) -> str:
    """The conversation as one `<div class="vf-chat">`, oldest turn first
    (templates/chat.html.jinja)."""
    from vf_mcp.chat.templating import environment

    chat = environment().get_template("chat.html.jinja")
    return chat.render(turns=turns, options=options or ChatOptions())
