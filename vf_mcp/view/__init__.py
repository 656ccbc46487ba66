"""The MCP App view of a conversation: one self-contained HTML document (the chat component, the
vendored ext-apps client and a small script) that hosts speaking the Apps extension show beside
`interact` and `handoff` results. `resource` builds and registers it; `gate` keeps it out of
sight of clients that did not negotiate the extension."""

from vf_mcp.view.gate import apps_gate
from vf_mcp.view.resource import VIEW_URI, view_extension, view_html

__all__ = ["VIEW_URI", "apps_gate", "view_extension", "view_html"]
