"""The alert outbox the bridge needs: the smallest protocol ``controller.store.Store`` satisfies.

An alert is written to the outbox before it is published and marked delivered only when the broker
acknowledged it (PUBACK), so an alert raised while the broker is down is published after the
reconnect and never lost. Parameters are positional-only where the bridge passes them by position
and keyword-only where it names them, so any store with those names fits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeVar

from controller.caregiver.models import AlertLike

__all__ = ["AlertOutbox", "AlertT"]

AlertT = TypeVar("AlertT", bound=AlertLike)


class AlertOutbox(Protocol[AlertT]):
    def enqueue_alert(self, alert: AlertT, /) -> object:
        """Store the alert durably; the same id twice is a no-op."""

    def undelivered_alerts(self, *, device_id: str | None, limit: int) -> Sequence[AlertT]:
        """Alerts not yet acknowledged by the broker, oldest first."""

    def mark_alert_delivered(self, alert_id: str, /, *, at: float) -> object:
        """Record the broker's acknowledgement."""
