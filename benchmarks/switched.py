"""vf-mcp with parts of a turn switched off, to measure what each part costs.

``VF_MCP_BENCH_OFF=schema,record,structured python -m benchmarks.switched`` serves like
``python -m vf_mcp`` with those parts gone:

- ``schema``: no output schema is published, so the client has nothing to check a result against.
- ``record``: the turn is not added to the caller's transcript.
- ``structured``: the result carries its text only, no structured content (needs ``schema``: a
  client refuses a result without the structured content its tool's schema promises).

Only for `benchmarks.pieces`: a server without these parts breaks vf-mcp's contract. Each switch
replaces a module attribute the turn looks up when it runs; one that no longer exists fails at
start, so a refactor cannot turn a switch into a silent no-op.
"""

from __future__ import annotations

import os
from typing import Any

from mcp.types import CallToolResult, TextContent

SWITCHES = frozenset({"schema", "record", "structured"})
ENV_OFF = "VF_MCP_BENCH_OFF"


def switched_off() -> frozenset[str]:
    off = frozenset(part for part in os.environ.get(ENV_OFF, "").split(",") if part)
    if unknown := off - SWITCHES:
        raise SystemExit(f"{ENV_OFF} names unknown parts ({', '.join(sorted(unknown))})")
    if "structured" in off and "schema" not in off:
        raise SystemExit(f"{ENV_OFF}: `structured` needs `schema` off too")
    return off


def _replace(module: Any, name: str, value: Any) -> None:
    getattr(module, name)  # AttributeError when a refactor moved it: the switch would do nothing
    setattr(module, name, value)


def switch_off(off: frozenset[str]) -> None:
    from vf_mcp.tools import conversation, registry, schemas

    if "schema" in off:
        published = schemas.published_schemas
        _replace(registry, "published_schemas", lambda: dict.fromkeys(published()))
    if "record" in off:

        async def unrecorded(call: Any, agent: Any, outcome: Any) -> Any:
            return outcome

        _replace(conversation, "record_turn", unrecorded)
    if "structured" in off:

        def text_only(text: str, model: Any) -> CallToolResult:
            return CallToolResult(content=[TextContent(type="text", text=text)])

        _replace(conversation, "result", text_only)


def main() -> None:
    switch_off(switched_off())
    from vf_mcp import main as serve

    serve()


if __name__ == "__main__":
    main()
