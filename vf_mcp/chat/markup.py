"""What the chat's templates call (`templating` puts it in their globals) and the pages around
them read: the status labels, the stylesheet, and the only URLs a link or an image may carry.

Apart from `render`, so the Jinja2 environment can import these while `render` imports the
environment, each one way.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from urllib.parse import urlsplit

STATUS_LABELS = {
    "awaiting_user": "Waiting for the user",
    "awaiting_action": "Waiting for the host to answer a custom action",
    "ended": "The conversation ended",
    "handoff": "Handed off to a person",
    "error": "The turn failed",
}


@cache
def chat_css() -> str:
    """The component's stylesheet, read once."""
    return files("vf_mcp.chat").joinpath("chat.css").read_text(encoding="utf-8")


def link_target(url: str | None) -> str | None:
    """`url` when it is safe as a link (`http:` or `https:` with a host), else None."""
    if not url:
        return None
    parts = urlsplit(url.strip())
    return url.strip() if parts.scheme in ("http", "https") and parts.netloc else None


def image_source(url: str | None, origins: frozenset[str]) -> str | None:
    """`url` when the page may load it: `https:` and from one of `origins`."""
    target = link_target(url)
    if target is None:
        return None
    parts = urlsplit(target)
    origin = f"{parts.scheme}://{parts.netloc}"
    return target if parts.scheme == "https" and origin in origins else None
