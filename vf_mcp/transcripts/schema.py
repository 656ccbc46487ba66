"""The transcript's JSON Schema, shipped beside the code as `schemas/transcript-v2.json`.

`transcript-v1.json` stays for reference: v1 files still load (`vf_mcp.domain.transcript` upgrades
them as they are read), but only v2 is written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vf_mcp.domain.transcript import Transcript

SCHEMA_PATH = Path(__file__).parent / "schemas" / "transcript-v2.json"
SCHEMA_V1_PATH = Path(__file__).parent / "schemas" / "transcript-v1.json"
SCHEMA_ID = (
    "https://github.com/vf-mcp/vf-mcp/blob/main/vf_mcp/transcripts/schemas/transcript-v2.json"
)


def transcript_json_schema() -> dict[str, Any]:
    """The JSON Schema of a v2 transcript, as shipped in `schemas/transcript-v2.json`."""
    schema = Transcript.model_json_schema(mode="serialization")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
    }


def render_schema() -> str:
    return json.dumps(transcript_json_schema(), indent=2, ensure_ascii=False) + "\n"


def write_schema() -> Path:
    """Regenerate the shipped schema file after a deliberate change to the v2 models."""
    SCHEMA_PATH.parent.mkdir(parents=True, exist_ok=True)
    SCHEMA_PATH.write_text(render_schema(), encoding="utf-8")
    return SCHEMA_PATH
