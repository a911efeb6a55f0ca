"""Diary rules: an inspection finding tells the caregiver, an open wound blocks sessions.

The store keeps the entries; this module decides what follows from them. An inspection that finds
anything (cut, blister, redness, swelling, open wound, ulcer) raises a low-priority caregiver alert
through the outbox, written in the same transaction as the inspection. An open wound or ulcer then
blocks every session until the person records it healed (the seed article: never massage over an
open wound); what blocks a session and its wording is :mod:`controller.journal.blocks`.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from controller.journal.blocks import inspection_due, open_wound_reason, session_block_reason
from controller.safety import Finding, Priority
from controller.store import OPEN_WOUND_FINDINGS, OutboxAlert, Store
from controller.store.validation import check_findings

if TYPE_CHECKING:
    import datetime as dt
    from collections.abc import Iterable

__all__ = [
    "INSPECTION_FINDING",
    "InspectionOutcome",
    "inspection_due",
    "record_healed",
    "record_inspection",
    "session_block_reason",
]

_LOGGER = logging.getLogger(__name__)

# Alert code on the caregiver `alert` topic for an inspection that found something.
INSPECTION_FINDING: Final = "INSPECTION_FINDING"
# IEC 60601-1-8 "low": worth a caregiver's attention, no immediate danger (no session is running).
INSPECTION_PRIORITY: Final = Priority.LOW


@dataclass(frozen=True, slots=True)
class InspectionOutcome:
    """What recording an inspection led to: the alert queued (if any) and a session block."""

    findings: frozenset[str]
    alert: OutboxAlert | None
    blocking: str | None


def _describe(findings: Iterable[str]) -> str:
    return ", ".join(name.replace("_", " ") for name in sorted(findings))


def record_inspection(
    store: Store,
    *,
    date: dt.date,
    findings: Iterable[str],
    device_id: str,
    now: float | None = None,
) -> InspectionOutcome:
    """Log the day's foot inspection; a finding queues a low-priority caregiver alert.

    ``findings``: names of :class:`~controller.safety.Finding` (``{"none"}`` alone when nothing
    was found); ``now``: wall-clock epoch seconds of the record and the alert (default
    ``time.time()``). The inspection and its alert are written in one transaction. Returns the
    findings, the alert queued (None for "none") and what now blocks sessions, if anything.
    Raises InvalidValueError (a StoreError and ValueError) naming the field for unknown, empty or
    mixed findings, StoreError if the journal cannot be written.
    """
    found = check_findings(findings)
    stamp = time.time() if now is None else now
    alert = None
    if found != {Finding.NONE}:
        message = f"Foot inspection on {date.isoformat()} found: {_describe(found)}."
        if found & OPEN_WOUND_FINDINGS:
            message += " Sessions are blocked until it is recorded healed."
        alert = OutboxAlert(
            id=uuid.uuid4().hex,
            device_id=device_id,
            time=stamp,
            priority=INSPECTION_PRIORITY,
            code=INSPECTION_FINDING,
            message=message,
            session_id=None,
        )
        _LOGGER.info("%s: inspection finding queued as alert %s", device_id, alert.id)
    store.record_inspection(date, found, recorded_at=stamp, alert=alert)
    return InspectionOutcome(found, alert, _blocked_note(store))


def _blocked_note(store: Store) -> str | None:
    reason = open_wound_reason(store)
    return None if reason is None else f"sessions are blocked: {reason}"


def record_healed(
    store: Store, *, date: dt.date, finding: str, now: float | None = None
) -> str | None:
    """Record an open wound or ulcer healed; return what still blocks sessions, if anything.

    ``finding``: ``open_wound`` or ``ulcer``; ``date``: the local date it healed; ``now``:
    wall-clock epoch seconds of the record (default ``time.time()``). Raises InvalidValueError
    naming the field for another finding, StoreError if the journal cannot be written.
    """
    store.record_healed(date, finding, recorded_at=now)
    return _blocked_note(store)
