"""Command-line parsers whose bad input is one line: `PROG: MESSAGE; see PROG --help`, exit 2.

argparse prints its whole usage block before the error; for `vf-mcp eval`, with its many
options, that is nine lines above the one that says what is wrong, which is the line a user
needs (and the one a CI log cuts off last). `--help` still shows the usage in full.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import NoReturn


class OneLineParser(argparse.ArgumentParser):
    """An `ArgumentParser` whose errors are one line on stderr, exit code 2; its subcommands'
    parsers are of this class too (argparse makes them of their parent's class)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message}; see {self.prog} --help\n")

    def parse_or_exit_code(self, argv: Sequence[str]) -> argparse.Namespace | int:
        """The parsed arguments, or the exit code argparse chose (`--help`: 0, bad input: 2),
        for a `main` that returns its code instead of leaving the process."""
        try:
            return self.parse_args(argv)
        except SystemExit as exit_:
            return int(exit_.code or 0)
