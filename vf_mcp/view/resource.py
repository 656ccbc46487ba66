"""The view's `ui://` resource: the HTML document assembled once from its parts in this package.

The document loads nothing: the stylesheets and scripts are inlined, and the only outside
requests it may make are images from `VF_MCP_VIEW_IMAGE_ORIGINS`, which its CSP declares as
`resourceDomains` (the host builds the frame's Content-Security-Policy from them).
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

from mcp.server.apps import Apps, ResourceCsp

from vf_mcp.chat import chat_css
from vf_mcp.config import Settings

VIEW_URI = "ui://vf-mcp/conversation.html"
VENDORED_BUNDLE = "ext-apps-app.js"
"""The official ext-apps client, built by scripts/vendor-ext-apps (pinned in ext-apps-app.json)."""


def _part(name: str) -> str:
    return files("vf_mcp.view").joinpath(name).read_text(encoding="utf-8")


@cache
def view_html() -> str:
    """The whole document; every part is ours or vendored, so no escaping is needed here."""
    parts = {
        "/*CHAT_CSS*/": chat_css(),
        "/*VIEW_CSS*/": _part("view.css"),
        "/*EXT_APPS*/": _part(VENDORED_BUNDLE),
        "/*VIEW_JS*/": _part("view.js"),
    }
    html = _part("template.html")
    for marker, text in parts.items():
        # No part holds `</script` or `</style` (tests/test_view.py checks), so none ends early.
        html = html.replace(marker, text, 1)
    return html


def view_extension(settings: Settings) -> Apps:
    """The Apps extension serving the view, with the image origins the deployment allows."""
    apps = Apps()
    apps.add_html_resource(
        VIEW_URI,
        view_html(),
        name="conversation",
        title="Conversation with the agent",
        description="The conversation so far, as the agent's web chat shows it, with its buttons "
        "and a reply box",
        csp=ResourceCsp(resource_domains=sorted(settings.view_image_origins)),
        prefers_border=True,
    )
    return apps
