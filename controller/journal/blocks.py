"""What in the journal blocks a session, and how the refusal reads: one place for the rule.

The store only reads and writes rows; this module decides what they mean before a session starts,
for every caller that uses the user's journal (``soleguard session`` and ``run``, the service's
runner, the hub later):

- an over-temperature latch in force (IEC 60601-1-8 latching alarm): no session until an operator's
  **alarm reset** (``soleguard alarm reset``), see :mod:`controller.store.latch`;
- an open wound or ulcer found at an inspection and not recorded healed since (the seed article:
  never massage over an open wound), see :meth:`~controller.store.diary.Diary.open_wounds`;
- no foot inspection dated today: the checklist must then ask for one (:func:`inspection_due`);
  the supervisor refuses a checklist without it, in its own words.

Every refusal a person reads starts with :data:`REFUSED` once (``session refused: ...``), whoever
found the reason.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Final

from controller import localdate
from controller.store.latch import latch_in_force

if TYPE_CHECKING:
    import datetime as dt

    from controller.store import Store
    from controller.store.latch import LatchRecord

__all__ = [
    "REFUSED",
    "inspection_due",
    "latch_reason",
    "open_wound_reason",
    "refusal",
    "session_block_reason",
]

REFUSED: Final = "session refused"


def refusal(reason: str) -> str:
    """The one line a person reads when a session may not start: ``session refused: <reason>``."""
    return f"{REFUSED}: {reason}"


def latch_reason(latch: LatchRecord) -> str:
    """Why a latch in force blocks the session, with when, the reading and the way out.

    ``latch.latched_at`` is wall-clock epoch seconds, shown in local time to the minute;
    ``latch.skin_c`` the reading (degC) that latched it. Raises nothing.
    """
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(latch.latched_at))
    return (
        f"over-temperature latch in force since {when} (skin {latch.skin_c:.1f} °C): no "
        "session until an alarm reset; check the foot for burns, then run "
        "`soleguard alarm reset` once it has cooled"
    )


def open_wound_reason(store: Store, today: dt.date | None = None) -> str | None:
    """Why an open wound or ulcer blocks sessions (each named with its date and the command that
    records it healed), or None. Raises StoreError if the journal cannot be read."""
    wounds = store.open_wounds(today)
    if not wounds:
        return None
    listed = ", ".join(f"{name.replace('_', ' ')} (found {date})" for name, date in wounds)
    commands = " / ".join(f"`soleguard diary healed {name}`" for name, _ in wounds)
    return (
        f"{listed} not yet recorded healed; never massage over an open wound or ulcer. "
        f"Once it has healed, record it with {commands}."
    )


def session_block_reason(store: Store, today: dt.date | None = None) -> str | None:
    """Why the journal allows no session now (a latch in force, then an open wound), or None.

    ``today``: the local date (default) that decides which healing records are believed.
    Raises StoreError if the journal cannot be read.
    """
    latch = latch_in_force(store)
    if latch is not None:
        return latch_reason(latch)
    return open_wound_reason(store, today)


def inspection_due(store: Store, today: dt.date | None = None) -> bool:
    """True when no foot inspection is dated today (the first session of a day asks for one).

    Dated today, not "the latest is today or later": a record dated in the future must not
    stand in for today's inspection. ``today``: the local date (default: today's). Raises
    StoreError if the journal cannot be read.
    """
    return not store.inspected_on(localdate.today() if today is None else today)
