"""The alert outbox the bridge needs: the smallest protocol ``controller.store.Store`` satisfies.

An alert is written to the outbox before it is published and marked delivered only when the broker
acknowledged it (PUBACK), so an alert raised while the broker is down is published after the
reconnect and never lost. Parameters are positional-only where the bridge passes them by position
and keyword-only where it names them, so any store with those names fits.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Protocol, TypeVar

from controller.caregiver.commands import is_bounded_text
from controller.caregiver.models import AlertLike

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["MAX_ACK_ID_CHARS", "AlertOutbox", "AlertT", "parse_ack"]

AlertT = TypeVar("AlertT", bound=AlertLike)


class AlertOutbox(Protocol[AlertT]):
    """What the bridge needs of a durable alert outbox (the journal, or its in-memory fallback)."""

    def enqueue_alert(self, alert: AlertT, /) -> object:
        """Store the alert durably; the same id twice is a no-op."""

    def undelivered_alerts(self, *, device_id: str | None, limit: int) -> Sequence[AlertT]:
        """Alerts not yet acknowledged by the broker, oldest first."""

    def unacknowledged_alerts(self, *, device_id: str) -> Sequence[AlertT]:
        """The newest message of each published condition neither cleared nor acknowledged
        since its priority last rose, oldest first: what a new process announces again."""

    def mark_alert_delivered(self, alert_id: str, /, *, at: float) -> object:
        """Record the broker's acknowledgement."""

    def record_alert_ack(self, condition_id: str, /, *, client: str, at: float) -> bool:
        """Record that a caregiver client showed the alert to a person; False if unknown."""


# Why 64: condition ids are 32 hex digits; client names are account or app names.
MAX_ACK_ID_CHARS = 64


def parse_ack(payload: bytes) -> tuple[str, str] | str:
    """An ``alert/ack`` message: ``{"id": CONDITION_ID, "client": NAME}`` (``client`` optional).

    Returns (condition id, client) or, for anything else, one line saying what is wrong.
    """
    if len(payload) > 1024:
        return f"payload is {len(payload)} bytes: at most 1024 allowed"
    try:
        data = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return 'payload must be UTF-8 JSON: {"id": ALERT_ID, "client": NAME}'
    if not isinstance(data, dict):
        return 'payload must be a JSON object: {"id": ALERT_ID, "client": NAME}'
    cid, who = data.get("id"), data.get("client", "unnamed")
    if not is_bounded_text(cid, MAX_ACK_ID_CHARS):
        return f"id must be the alert's id, valid UTF-8 text of 1-{MAX_ACK_ID_CHARS} characters"
    if not is_bounded_text(who, MAX_ACK_ID_CHARS):
        return f"client must be valid UTF-8 text of 1-{MAX_ACK_ID_CHARS} characters"
    return cid, who
