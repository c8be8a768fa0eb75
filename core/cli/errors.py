"""How a command ends when it cannot do its job: one line on stderr and an exit code."""
from __future__ import annotations

EXIT_FAILED = 1  # the command ran and could not do its job (bad data, unreadable model, nothing analysed)
EXIT_USAGE = 2  # what was asked for cannot start (a missing folder or model for `batch`; argparse's own errors)
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT


class CommandError(Exception):
    """An expected problem, said in one line, with the exit code it ends the command with."""

    def __init__(self, message: str, code: int = EXIT_FAILED):
        super().__init__(message)
        self.code = code
