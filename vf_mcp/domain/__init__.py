"""The domain: the data every part of vf-mcp reads, as pydantic models that import nothing else of
vf_mcp (the `layers` contract in pyproject keeps it so).

`turn`: one turn with the agent (`TurnResult` and its messages, choices, cards, media, custom
actions, variable changes); `transcript`: the versioned transcript built from turns, and the suite
and run results made of transcripts; `run`: a run's kept record; `conversation`: what is kept
about a conversation between calls; `errors`: the kinds of error a caller can meet.
"""
