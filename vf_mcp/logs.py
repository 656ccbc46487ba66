"""Process logging, configured once by us before the MCP SDK can install its own.

`MCPServer` calls `logging.basicConfig(INFO)` with rich's handler, which prints every httpx request
URL and wraps long lines (a wrapped key escapes a text search). `logging.basicConfig` does nothing
once the root logger has a handler, so installing ours first keeps stderr plain, one line per
record, and masked.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

from vf_mcp.redaction import redact

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class RedactingFormatter(logging.Formatter):
    """Formats a record on one line and masks anything shaped like a Voiceflow key.

    Masking the finished line (not just `msg`) also covers arguments, exception text and
    tracebacks, including text that came from upstream.
    """

    def format(self, record: logging.LogRecord) -> str:
        text = redact(super().format(record))
        # One record, one line: an embedded newline would let a log reader split a secret.
        return text.replace("\r", "\\r").replace("\n", "\\n")


def configure_logging(level: str = "WARNING", stream: TextIO | None = None) -> logging.Handler:
    """Install the one stderr handler on the root logger, replacing any earlier one."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(RedactingFormatter(_FORMAT))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # httpx logs every request URL at INFO; those are operator noise and carry user ids.
    for noisy in ("httpx", "httpcore", "httpx2", "httpcore2"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    return handler
