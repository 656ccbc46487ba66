"""Evaluation of Voiceflow agents: scripts, voiceflow-cli imports, judge, reports, record/replay.

One responsibility per module: `script` and `checkmodels` (the suite format), `loader` and
`voiceflow_cli` (reading suites), `checks`, `trajectory`, `assertions` and `grounding` (checking
turns and conversations), `turns`, `mocks`, `judge`, `simulator`, `testrun`, `runner` and `trials`
(running them), `baseline` (comparing runs), `connection` (the services a run talks through),
`recording` (record/replay), `reports` and `exports` (output), `prompts`, `api` (what the MCP
server calls) and `cli` (`vf-mcp eval`). It builds on the core
(`vf_mcp.conversation`, `vf_mcp.transcripts`); nothing in the core imports it.
"""
