"""The exit status of every ``soleguard`` command, in one place (the README shows this table).

| status | meaning |
| --- | --- |
| 0 | done (`sim` and `monitor`: also when stopped by Ctrl-C, SIGTERM or SIGHUP, their normal end) |
| 1 | runtime failure: device or broker not reached, session refused, journal locked/damaged/full |
| 2 | usage or configuration: a bad option, value, settings file, environment variable or path |
| 129 | ended by SIGHUP (128 + 1) |
| 130 | ended by Ctrl-C / SIGINT (128 + 2) |
| 143 | ended by SIGTERM (128 + 15) |

A signal's status is the shell's convention, 128 + the signal's number, so scripts and process
managers read it the same way as for any other program.
"""

from __future__ import annotations

from typing import Final

__all__ = ["DONE", "FAILED", "REFUSED", "SIGNAL_BASE", "USAGE", "for_error", "for_signal"]

DONE: Final = 0
FAILED: Final = 1
# A refused session is a runtime outcome, not a usage error: the user's input was valid.
REFUSED: Final = FAILED
USAGE: Final = 2
SIGNAL_BASE: Final = 128


def for_error(exc: BaseException) -> int:
    """The status of a command ended by ``exc``: `USAGE` for what the user gave the command (a
    bad option, setting or value, an unknown session, an input file it cannot use), `FAILED`
    for everything else, a journal that is locked, damaged or on a full disk included.

    Every command maps its errors through here, so the same cause gives the same status.
    """
    # Imported here: this module is the table, imported by everything, and light on purpose.
    from controller.errors import ConfigError  # noqa: PLC0415
    from controller.journal.errors import JournalError  # noqa: PLC0415
    from controller.store.errors import (  # noqa: PLC0415
        InvalidValueError,
        RefusedError,
        UnknownSessionError,
    )

    given = (ConfigError, JournalError, InvalidValueError, RefusedError, UnknownSessionError)
    if isinstance(exc, given):
        return USAGE
    return FAILED


def for_signal(signum: int) -> int:
    """``128 + signum``: 129 SIGHUP, 130 Ctrl-C, 143 SIGTERM."""
    return SIGNAL_BASE + signum
