"""The alert outbox: every caregiver alert is written before it is published (at least once).

Each alarm condition is one alert (``condition_id``), raised, updated and cleared, each its own
message; a message is delivered on the broker's PUBACK and acknowledged when a caregiver client
showed it to a person. An escalation needs a new acknowledgement (IEC 60601-1-8).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from controller.safety.decision import priority_rank
from controller.store.database import Database
from controller.store.records import ALARM_PRIORITIES, AlertHistory, OutboxAlert
from controller.store.validation import check_choice

if TYPE_CHECKING:
    import sqlite3

__all__ = ["Outbox", "enqueue"]

_LOGGER = logging.getLogger(__name__)


def enqueue(conn: sqlite3.Connection, alert: OutboxAlert) -> None:
    """Insert ``alert`` inside the caller's transaction (so a record and its alert go together)."""
    # No session check that could fail: an alert is never refused; a stale id becomes NULL.
    session_id = alert.session_id
    if session_id is not None and (
        conn.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone() is None
    ):
        _LOGGER.warning("alert %s: session %s unknown, stored without it", alert.id, session_id)
        session_id = None
    conn.execute(
        "INSERT INTO alert_outbox (id, device_id, time, priority, code, message, session_id, "
        "condition_id, event, occurrences) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT DO NOTHING",
        (
            alert.id,
            alert.device_id,
            alert.time,
            alert.priority,
            alert.code,
            alert.message,
            session_id,
            alert.condition_id,
            alert.event,
            alert.occurrences,
        ),
    )


class Outbox(Database):
    """The alert outbox tables of the journal."""

    # -- alert outbox (issue 5) ------------------------------------------------------------------

    def enqueue_alert(self, alert: OutboxAlert) -> None:
        """Write an alert before it is published; the same id twice is a no-op."""
        check_choice("priority", alert.priority, ALARM_PRIORITIES)
        with self._write(durable=True) as conn:
            enqueue(conn, alert)

    def undelivered_alerts(
        self, device_id: str | None = None, limit: int = 100
    ) -> list[OutboxAlert]:
        """Alerts not yet marked delivered, in enqueue order (of one device, or of all)."""
        query = (
            "SELECT id, device_id, time, priority, code, message, session_id, condition_id, "
            "event, occurrences FROM alert_outbox WHERE delivered_at IS NULL"
        )
        params: tuple[Any, ...] = ()
        if device_id is not None:
            query += " AND device_id = ?"
            params = (device_id,)
        with self._read() as conn:
            rows = conn.execute(query + " ORDER BY seq LIMIT ?", (*params, limit)).fetchall()
        return [OutboxAlert(*row) for row in rows]

    def mark_alert_delivered(self, alert_id: str, *, at: float) -> None:
        """Mark an alert delivered (on PUBACK); a second mark keeps the first time."""
        with self._write() as conn:
            cursor = conn.execute(
                "UPDATE alert_outbox SET delivered_at = ? WHERE id = ? AND delivered_at IS NULL",
                (at, alert_id),
            )
            if cursor.rowcount == 0 and (
                conn.execute("SELECT 1 FROM alert_outbox WHERE id = ?", (alert_id,)).fetchone()
                is None
            ):
                _LOGGER.warning("alert %s: marked delivered but was never enqueued", alert_id)

    def record_alert_ack(self, condition_id: str, *, client: str, at: float) -> bool:
        """Record that caregiver ``client`` showed alert ``condition_id`` to a person.

        Returns False (and records nothing) for an id this journal never raised; a second
        acknowledgement by the same client keeps the first time.
        """
        with self._write() as conn:
            known = conn.execute(
                "SELECT 1 FROM alert_outbox WHERE condition_id = ? OR id = ? LIMIT 1",
                (condition_id, condition_id),
            ).fetchone()
            if known is None:
                return False
            # An escalation (priority rose) after this client's earlier ack needs a new ack: then
            # the newer time is kept, so the journal shows the escalation acknowledged too.
            since = _needs_ack_since(_condition_rows(conn, condition_id))
            conn.execute(
                "INSERT INTO alert_acks (condition_id, client, time) VALUES (?, ?, ?) "
                "ON CONFLICT (condition_id, client) DO UPDATE SET time = excluded.time "
                "WHERE alert_acks.time < ? AND excluded.time >= ?",
                (condition_id, client, at, since, since),
            )
        return True

    def unacknowledged_alerts(self, *, device_id: str) -> list[OutboxAlert]:
        """The newest message of each of ``device_id``'s conditions that was published and is
        neither cleared nor acknowledged since its priority last rose, oldest first.

        A new process re-announces these (IEC 60601-1-8: a high-priority alarm signal repeats
        until someone responds), so a restart never silences an unacknowledged alert.
        """
        with self._read() as conn:
            open_ids = [
                row[0]
                for row in conn.execute(
                    "SELECT cid FROM (SELECT COALESCE(condition_id, id) AS cid, event, "
                    "MAX(seq) FROM alert_outbox WHERE device_id = ? GROUP BY cid) "
                    "WHERE event != 'cleared' ORDER BY 1",
                    (device_id,),
                ).fetchall()
            ]
            found: list[tuple[int, OutboxAlert]] = []
            for cid in open_ids:
                rows = _condition_rows(conn, cid)
                since = _needs_ack_since(rows)
                if since == float("inf"):
                    continue  # never published: the undelivered backlog sends it
                acked = conn.execute(
                    "SELECT MAX(time) FROM alert_acks WHERE condition_id = ?", (cid,)
                ).fetchone()[0]
                if acked is None or acked < since:
                    seq, alert, _ = rows[-1]
                    found.append((seq, alert))
        return [alert for _, alert in sorted(found, key=lambda pair: pair[0])]

    def alert_history(self, *, limit: int = 1000) -> list[AlertHistory]:
        """The newest outbox messages, oldest first, each with when it was raised, published
        (the broker's PUBACK) and acknowledged by a caregiver client (epoch seconds)."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT o.id, COALESCE(o.condition_id, o.id) AS cid, o.event, o.code, "
                "o.priority, o.time, o.delivered_at, "
                "(SELECT MIN(a.time) FROM alert_acks a WHERE a.condition_id = "
                "COALESCE(o.condition_id, o.id)), "
                "(SELECT GROUP_CONCAT(a.client, char(10)) FROM alert_acks a "
                "WHERE a.condition_id = COALESCE(o.condition_id, o.id)) "
                "FROM alert_outbox o ORDER BY o.seq DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [
            AlertHistory(
                id=row[0],
                condition_id=row[1],
                event=row[2],
                code=row[3],
                priority=row[4],
                raised_at=row[5],
                published_at=row[6],
                acknowledged_at=row[7],
                acknowledged_by=tuple(sorted(row[8].split("\n"))) if row[8] else (),
            )
            for row in reversed(rows)
        ]

    def alert_counts(self) -> tuple[int, int]:
        """(alerts raised, alerts delivered) over the whole outbox."""
        with self._read() as conn:
            raised, delivered = conn.execute(
                "SELECT COUNT(*), COUNT(delivered_at) FROM alert_outbox"
            ).fetchone()
        return int(raised), int(delivered)


def _condition_rows(
    conn: sqlite3.Connection, condition_id: str
) -> list[tuple[int, OutboxAlert, float | None]]:
    """(seq, message, delivered_at) of every outbox message of one condition, in order."""
    rows = conn.execute(
        "SELECT seq, id, device_id, time, priority, code, message, session_id, condition_id, "
        "event, occurrences, delivered_at FROM alert_outbox "
        "WHERE condition_id = ? OR (condition_id IS NULL AND id = ?) ORDER BY seq",
        (condition_id, condition_id),
    ).fetchall()
    return [(row[0], OutboxAlert(*row[1:11]), row[11]) for row in rows]


def _needs_ack_since(rows: list[tuple[int, OutboxAlert, float | None]]) -> float:
    """When (delivered_at, the bridge's clock) the condition last rose in priority, counting
    its first message as a rise: an ack older than this does not cover it. ``inf`` when that
    message is not published yet."""
    since = float("inf")
    top = -1
    for _, alert, delivered_at in rows:
        rank = priority_rank(alert.priority)
        if rank > top:
            top = rank
            since = float("inf") if delivered_at is None else delivered_at
    return since
