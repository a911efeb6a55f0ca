"""Journal errors (reports, export, import), under the root :class:`SoleGuardError`."""

from __future__ import annotations

from controller.errors import SoleGuardError

__all__ = ["JournalError", "OutputError"]


class JournalError(SoleGuardError):
    """A journal operation was given input it cannot use; the message names the input.

    A command ended by one exits with status 2, a usage error: the input is the user's to fix
    (`controller.cli.exit_codes.for_error`). A journal that cannot be read or written is a
    `StoreError` instead.
    """


class OutputError(JournalError):
    """A report or export could not be written where the user asked (its folder cannot be
    created, or the file cannot be written: the OS error's text); the message names the path.
    Status 2, as its parent."""
