"""Transcripts: the canonical record of a conversation, the book of live ones, and their text.

`models` is the versioned v1 transcript every report, export and prompt is made from; `book` keeps
the transcripts of conversations the server holds turn by turn; `render` gives their plain-text
views. Core, not evaluation: the `transcript` tool, its resource and `handoff` read them, and the
evaluation package builds on them (never the other way round).
"""
