"""The over-temperature latch in the journal: it outlives the session and the process.

IEC 60601-1-8 calls a latching alarm one that stays until an operator's **alarm reset**. The
supervisor holds the latch while it runs; this module keeps it across sessions and restarts: the
service records a latch when the supervisor raises OVER_TEMPERATURE_LATCH, refuses to start a
session while one is in force, and ``soleguard alarm reset`` clears it only with a fresh valid
skin reading below the re-enable threshold (the supervisor judges that reading).

Times are epoch seconds (wall clock), as every journal record.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from controller.store.errors import InvalidValueError
from controller.store.outbox import enqueue

if TYPE_CHECKING:
    from controller.store.records import OutboxAlert
    from controller.store.store import Store

__all__ = ["LatchRecord", "latch_in_force", "record_latch", "record_reset"]


@dataclass(frozen=True, slots=True)
class LatchRecord:
    """One over-temperature latch: when, at what skin reading, in which session, why."""

    id: int
    latched_at: float
    skin_c: float
    session_id: int | None
    message: str


def record_latch(
    store: Store, *, latched_at: float, skin_c: float, session_id: int | None, message: str
) -> int:
    """Record a latch in force (one at a time: an earlier unreset latch is kept). Returns its id.

    Raises :class:`~controller.store.StoreError` if the journal cannot be written,
    :class:`~controller.store.InvalidValueError` for a non-finite time or temperature.
    """
    for name, value in (("latched_at", latched_at), ("skin_c", skin_c)):
        if not math.isfinite(value):
            raise InvalidValueError(f"latch {name}: {value!r} is not a finite number")
    existing = latch_in_force(store)
    if existing is not None:
        return existing.id
    # The store's own transaction helper: this module is part of the store package.
    with store._write(durable=True) as conn:
        cursor = conn.execute(
            "INSERT INTO latches (latched_at, skin_c, session_id, message) VALUES (?, ?, ?, ?)",
            (latched_at, skin_c, session_id, message),
        )
        latch_id = cursor.lastrowid
    assert latch_id is not None  # an INSERT into a rowid table always sets it
    return latch_id


def latch_in_force(store: Store) -> LatchRecord | None:
    """The latch not yet reset, or None. Raises StoreError if the journal cannot be read."""
    with store._read() as conn:
        row = conn.execute(
            "SELECT id, latched_at, skin_c, session_id, message FROM latches "
            "WHERE reset_at IS NULL ORDER BY id LIMIT 1"
        ).fetchone()
    if row is None:
        return None
    return LatchRecord(int(row[0]), float(row[1]), float(row[2]), row[3], str(row[4]))


def record_reset(
    store: Store, *, reset_at: float, skin_c: float, alert: OutboxAlert | None = None
) -> bool:
    """Record the alarm reset of the latch in force; False if none was in force.

    The caller has checked the reading (the supervisor accepted the reset); the journal keeps it.
    ``alert``, if given, is queued for caregivers in the same transaction: a reset is never
    recorded without its alert.
    """
    for name, value in (("reset_at", reset_at), ("skin_c", skin_c)):
        if not math.isfinite(value):
            raise InvalidValueError(f"latch reset {name}: {value!r} is not a finite number")
    with store._write(durable=True) as conn:
        cursor = conn.execute(
            "UPDATE latches SET reset_at = ?, reset_skin_c = ? WHERE reset_at IS NULL",
            (reset_at, skin_c),
        )
        if cursor.rowcount > 0 and alert is not None:
            enqueue(conn, alert)
        return cursor.rowcount > 0
