"""`vf-mcp eval --export FORMAT=PATH`: each export format, where it writes, and how to run it.

promptfoo and DeepEval take one file each; voiceflow-cli takes a folder (its `suite.yaml` and a
file per test). Each target knows how to check its path before a run (so a run is never lost to a
path that cannot be written) and how to write the run's export there.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from vf_mcp.domain.transcript import RunResult

ExportFormat = Literal["promptfoo", "deepeval", "voiceflow-cli"]
FORMATS: Final[tuple[ExportFormat, ...]] = ("promptfoo", "deepeval", "voiceflow-cli")


@dataclass(frozen=True)
class ExportTarget:
    format: ExportFormat
    path: Path

    @property
    def is_folder(self) -> bool:
        return self.format == "voiceflow-cli"

    def problem(self) -> str | None:
        """What keeps the export from being written at `path`, in one line, or None."""
        flag = f"--export {self.format}={self.path}"
        if self.is_folder and self.path.exists() and not self.path.is_dir():
            return f"{flag}: {self.path} is a file; voiceflow-cli exports a folder, give its path"
        if not self.is_folder and self.path.is_dir():
            return f"{flag}: {self.path} is a folder; give the file to write"
        return None

    def write(self, run: RunResult) -> list[str]:
        """Write the export; the tests it could not express in this format, by name."""
        from vf_mcp.evaluation.exports import to_deepeval, to_promptfoo, to_voiceflow_cli

        if self.format == "promptfoo":
            promptfoo = to_promptfoo(run)
            _write(self.path, promptfoo.to_yaml())
            return promptfoo.skipped
        if self.format == "deepeval":
            deepeval = to_deepeval(run)
            _write(self.path, deepeval.to_json())
            return deepeval.skipped
        folder = to_voiceflow_cli(run)
        for name, text in folder.files.items():
            _write(self.path / name, text)
        return folder.skipped


def export_target(text: str) -> ExportTarget:
    """`FORMAT=PATH`, as argparse's `type`: a wrong one is refused in one line."""
    kind, sep, path = text.partition("=")
    if not sep or not path or kind not in FORMATS:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give FORMAT=PATH, FORMAT one of {', '.join(FORMATS)} "
            "(e.g. --export promptfoo=promptfooconfig.yaml)"
        )
    return ExportTarget(format=kind, path=Path(path))


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
