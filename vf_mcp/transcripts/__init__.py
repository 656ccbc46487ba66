"""Transcripts: the canonical record of a conversation, the book of live ones, and their text.

The transcript itself is a domain model (`vf_mcp.domain.transcript`, schema v2); here `records`
makes a turn's record from what the turn produced, `book` keeps the transcripts of conversations
the server holds turn by turn, `schema` writes the shipped JSON Schema and `render` gives their
plain-text views. Core, not evaluation: the `transcript` tool, its resource and `handoff` read
them, and the evaluation package builds on them (never the other way round).
"""
