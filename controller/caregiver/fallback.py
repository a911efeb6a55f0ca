"""The alert outbox with a bounded memory for alerts the journal cannot take.

The outbox is the journal (SQLite): an alert is written there before it is published. When the
journal fails (disk full, I/O error, corrupt pages, a lock held too long), a caregiver must still
hear of the alert: it is kept here, in memory, bounded, and published like the stored ones. The
fault itself is reported once per episode, as an alert of its own (``JOURNAL_FAULT``), and the
bridge never sees the journal's errors, so it keeps its broker connection (a bridge that dropped
it on every outbox error silenced every alert while the broker was fine).

Thread-safe: the session stores alerts from its worker threads, the bridge reads and marks them
from its own thread.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from controller.errors import StoreError
from controller.safety import Priority
from controller.store import OutboxAlert

if TYPE_CHECKING:
    from collections.abc import Sequence

    from controller.store import Store

__all__ = ["FALLBACK_CAPACITY", "JOURNAL_FAULT", "FallbackOutbox"]

_LOGGER = logging.getLogger(__name__)

# Why 1,000: a session raises tens of alerts at most; a thousand is hours of a failing journal
# with every alarm condition flapping, and a few hundred kilobytes. Beyond it the oldest go first
# (the newest say most about now).
FALLBACK_CAPACITY = 1000
# The alert that reports the fault itself (IEC 60601-1-8 technical alarm condition).
JOURNAL_FAULT = "JOURNAL_FAULT"


class FallbackOutbox:
    """``Store``'s alert outbox (`controller.caregiver.outbox.AlertOutbox`) plus a memory."""

    def __init__(self, store: Store, device_id: str, *, capacity: int = FALLBACK_CAPACITY) -> None:
        self.store = store
        self.device_id = device_id
        self.capacity = capacity
        self._memory: OrderedDict[str, OutboxAlert] = OrderedDict()
        self._lock = threading.Lock()
        self._faulty = False
        self.dropped = 0

    # -- the outbox protocol ----------------------------------------------------------------------

    def enqueue_alert(self, alert: OutboxAlert, /) -> None:
        """Store ``alert``; if the journal cannot, keep it in memory (never raises StoreError)."""
        try:
            self.store.enqueue_alert(alert)
        except StoreError as exc:
            self.keep(alert, exc)
            return
        self._healthy()

    def undelivered_alerts(self, *, device_id: str | None, limit: int) -> Sequence[OutboxAlert]:
        """The alerts kept in memory, then the journal's; oldest first within each."""
        with self._lock:
            kept = [a for a in self._memory.values() if device_id in (None, a.device_id)]
        try:
            stored = self.store.undelivered_alerts(device_id=device_id, limit=limit)
        except StoreError as exc:
            self._fault(exc)
            stored = []
        known = {alert.id for alert in kept}
        return [*kept, *(a for a in stored if a.id not in known)][:limit]

    def mark_alert_delivered(self, alert_id: str, /, *, at: float) -> None:
        """Mark ``alert_id`` delivered at ``at`` (epoch s), in memory if kept there, else stored."""
        with self._lock:
            if self._memory.pop(alert_id, None) is not None:
                return
        try:
            self.store.mark_alert_delivered(alert_id, at=at)
        except StoreError as exc:
            # Published but not recorded as such: it may go out again (at least once).
            self._fault(exc)

    def record_alert_ack(self, condition_id: str, /, *, client: str, at: float) -> bool:
        """Record a caregiver's acknowledgement; False if unknown or the journal cannot."""
        try:
            return self.store.record_alert_ack(condition_id, client=client, at=at)
        except StoreError as exc:
            self._fault(exc)
            return False

    def unacknowledged_alerts(self, *, device_id: str) -> Sequence[OutboxAlert]:
        """The journal's published, unacknowledged, uncleared conditions (none if it cannot)."""
        try:
            return self.store.unacknowledged_alerts(device_id=device_id)
        except StoreError as exc:
            self._fault(exc)
            return []

    def __getattr__(self, name: str) -> Any:
        # Anything else the bridge asks of its outbox is the journal's.
        return getattr(self.store, name)

    # -- the memory -----------------------------------------------------------------------------

    def keep(self, alert: OutboxAlert, error: BaseException | None = None) -> None:
        """Keep an alert the journal could not take (bounded: the oldest is dropped first)."""
        with self._lock:
            self._memory[alert.id] = alert
            while len(self._memory) > self.capacity:
                self._memory.popitem(last=False)
                self.dropped += 1
        _LOGGER.error(
            "alert %s (%s) kept in memory: the journal cannot store it (%s)",
            alert.id,
            alert.code,
            error,
        )
        if error is not None:
            self._fault(error)

    def kept(self) -> int:
        """How many alerts wait in memory."""
        with self._lock:
            return len(self._memory)

    def _fault(self, error: BaseException) -> None:
        with self._lock:
            if self._faulty:
                return
            self._faulty = True
            report = OutboxAlert(
                id=uuid.uuid4().hex,
                device_id=self.device_id,
                time=time.time(),
                priority=Priority.MEDIUM,
                code=JOURNAL_FAULT,
                message=(
                    f"The journal cannot be written ({str(error)[:160]}); alerts are kept in "
                    "memory and still published. Free disk space or check the journal's disk."
                ),
                session_id=None,
            )
            self._memory[report.id] = report
        _LOGGER.error("journal fault: %s", error)

    def _healthy(self) -> None:
        with self._lock:
            was, self._faulty = self._faulty, False
        if was:
            _LOGGER.warning("journal: writing again")
