"""Waiting for the journal's write lock in short slices, so a signal is handled meanwhile.

SQLite's own busy wait (``sqlite3.connect(timeout=...)``) sleeps inside C: for its whole length the
main thread runs no Python signal handler, so a Ctrl-C or SIGTERM while another process held the
lock went unseen for up to the busy timeout (5 s), breaking "ended within 2 s of a signal". Each
connection here waits at most `BUSY_SLICE_S` inside SQLite; the rest of the wait is a Python loop,
between whose slices a signal's handler runs within milliseconds.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Final

__all__ = ["BUSY_SLICE_S", "BUSY_WORDS", "execute_waiting", "is_busy"]

# Short enough that a signal is handled at once, long enough that the loop does not spin.
BUSY_SLICE_S: Final = 0.05
# SQLite's words when it gives up on a lock another connection holds (SQLITE_BUSY, SQLITE_LOCKED).
BUSY_WORDS: Final = ("database is locked", "database is busy", "database table is locked")


def is_busy(exc: sqlite3.Error) -> bool:
    """Whether ``exc`` is SQLite giving up on a lock another connection holds."""
    words = str(exc).lower()
    return isinstance(exc, sqlite3.OperationalError) and any(w in words for w in BUSY_WORDS)


def execute_waiting(
    conn: sqlite3.Connection, sql: str, total_s: float, *, stop_on_signal: bool = False
) -> sqlite3.Cursor:
    """``conn.execute(sql)``, retried while the database is locked, for at most ``total_s``.

    ``stop_on_signal``: once a signal has come, stop waiting and raise it as
    `controller.shutdown.Signalled` (start-up, where nothing is written yet that must be kept);
    otherwise the wait goes on (an orderly stop still writes how the session ended), bounded by
    the shutdown watchdog.
    """
    deadline = time.monotonic() + total_s
    while True:
        try:
            return conn.execute(sql)
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or time.monotonic() >= deadline:
                raise
        if stop_on_signal:
            _raise_if_signalled()


def _raise_if_signalled() -> None:
    # Imported here: the store is library code, usable without the command line's shutdown.
    from controller.shutdown import Signalled, received  # noqa: PLC0415

    came = received()
    if came is not None:
        raise Signalled(came)
