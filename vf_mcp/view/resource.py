"""The view's `ui://` resource: the HTML document assembled once from its parts in this package.

The document loads nothing: the stylesheets and scripts are inlined, and the only outside
requests it may make are images from `VF_MCP_VIEW_IMAGE_ORIGINS`, which its CSP declares as
`resourceDomains` (the host builds the frame's Content-Security-Policy from them).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from importlib.resources import files

from mcp.server.apps import APP_MIME_TYPE, Apps, ResourceCsp
from mcp.server.mcpserver.resources import FunctionResource

VIEW_URI = "ui://vf-mcp/conversation.html"
VENDORED_BUNDLE = "ext-apps-app.js"
"""The official ext-apps client, built by scripts/vendor-ext-apps (pinned in ext-apps-app.json)."""


def _part(name: str) -> str:
    return files("vf_mcp.view").joinpath(name).read_text(encoding="utf-8")


@cache
def view_html() -> str:
    """The whole document; every part is ours or vendored, so no escaping is needed here."""
    from vf_mcp.chat import chat_css  # read on the first view, not at start

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


def view_extension(image_origins: Iterable[str]) -> Apps:
    """The Apps extension serving the view, with the image origins the deployment allows
    (`VF_MCP_VIEW_IMAGE_ORIGINS`).

    The document is assembled on its first read (`Apps.add_html_resource` would take it built):
    a start that no host asks for the view never reads the bundle or loads the chat renderer.
    """
    apps = Apps()
    csp = ResourceCsp(resource_domains=sorted(image_origins))
    apps.add_resource(
        FunctionResource(
            uri=VIEW_URI,
            name="conversation",
            title="Conversation with the agent",
            description="The conversation so far, as the agent's web chat shows it, with its "
            "buttons and a reply box",
            mime_type=APP_MIME_TYPE,
            meta={
                "ui": {
                    "csp": csp.model_dump(by_alias=True, exclude_none=True),
                    "prefersBorder": True,
                }
            },
            fn=view_html,
        )
    )
    return apps
