"""The conversation as a chat: one HTML component (markup and stylesheet) that the HTML report of
an evaluation run and the MCP App view of a live conversation both show."""

from vf_mcp.chat.markup import chat_css, image_source, link_target
from vf_mcp.chat.render import ChatOptions, render_chat

__all__ = ["ChatOptions", "chat_css", "image_source", "link_target", "render_chat"]
