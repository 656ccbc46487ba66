"""The A2A front end: each Voiceflow agent as an Agent2Agent (A2A v1.0) agent.

Beside `vf_mcp/tools/` (the MCP front end) and over the same `App`: `card` describes an agent,
`parts` turns A2A messages into turns and turn outcomes into A2A parts, `errors` is the one map
from vf-mcp's errors and turn statuses to A2A task states and SDK errors, `tasks` keeps tasks and
answered messages in vf-mcp's store, `executor` runs turns for the SDK, `handler` adds the
guarantees MCP gives (read-only, no message run twice, cancel forgets), and `app` serves it all
over HTTP. Nothing here is imported on a stdio start: the SDK loads only when A2A is served.
"""
