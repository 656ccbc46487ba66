"""`vf-mcp demo`: a short conversation with the example agent, through the MCP tools.

It starts the bundled emulator on loopback, connects the official MCP client to the server in
memory, and prints what a model would read turn by turn. No API key or network needed.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any, TextIO

import anyio

from vf_mcp.config import Settings
from vf_mcp.logs import configure_logging

# Any key of the right shape opens the emulator; it is never sent anywhere else.
DEMO_API_KEY = "VF.DM.000000000000000000000000.demo"

DEMO_SCRIPT: tuple[tuple[str, dict[str, Any]], ...] = (
    ("launch", {"launch": True}),
    ('pick "track an order" (a button, by label)', {"choice": "track an order"}),
    ('say "1001"', {"message": "1001"}),
    ("pick button 2", {"choice": 2}),
)


async def _converse(settings: Settings, out: TextIO) -> int:
    from mcp import Client

    from vf_mcp.server import build_server

    server = build_server(settings)
    user_id: str | None = None
    async with Client(server) as client:
        for description, arguments in DEMO_SCRIPT:
            call: Mapping[str, Any] = {**arguments, **({"user_id": user_id} if user_id else {})}
            result = await client.call_tool("interact", dict(call))
            print(f"> {description}", file=out)
            for block in result.content:
                print(getattr(block, "text", ""), file=out)
            print(file=out)
            if result.is_error or not result.structured_content:
                return 1
            user_id = result.structured_content["user_id"]
    return 0


def run_demo(*, stream: bool = True, out: TextIO | None = None) -> int:
    from vf_mcp.emulator import default_agent, running_emulator

    out = out or sys.stdout
    configure_logging("WARNING")
    agent = default_agent()
    with running_emulator([agent]) as emulator:
        settings = Settings(
            api_key=DEMO_API_KEY,  # type: ignore[arg-type]
            runtime_url=emulator.url,
            project_id=agent.project_id if stream else None,
        )
        mode = "streaming" if stream else "plain"
        print(
            f"vf-mcp demo: {agent.name!r} on the bundled emulator at {emulator.url} ({mode} "
            "interact), through the MCP tools. Each block is what the model reads.\n",
            file=out,
        )
        return anyio.run(_converse, settings, out)
