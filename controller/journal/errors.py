"""Journal errors (reports, export, import), under the root :class:`SoleGuardError`."""

from __future__ import annotations

from controller.errors import SoleGuardError

__all__ = ["JournalError", "OutputError"]


class JournalError(SoleGuardError):
    """A journal operation was given input it cannot use; the message names the input."""


class OutputError(JournalError):
    """A report or export could not be written where the user asked."""
