"""The diary: sleep, notes, daily foot inspections and wounds recorded healed (issue 6).

Only rows: what follows from them (an open wound blocks sessions, the wording a person reads) is
:mod:`controller.journal.blocks`.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import time

from controller import localdate
from controller.store.database import Database, new_uid
from controller.store.errors import InvalidValueError
from controller.store.outbox import enqueue
from controller.store.records import (
    ALARM_PRIORITIES,
    OPEN_WOUND_FINDINGS,
    SLEEP_MAX,
    SLEEP_MIN,
    InspectionRecord,
    NoteRecord,
    OutboxAlert,
    SleepEntry,
)
from controller.store.validation import check_choice, check_findings, check_int_range

__all__ = ["Diary"]


class Diary(Database):
    """The diary tables of the journal."""

    # -- diary (issue 6) -------------------------------------------------------------------------

    def record_sleep(
        self, date: dt.date, quality: int, *, recorded_at: float | None = None
    ) -> None:
        """Sleep quality 1-5 for the night ending on the morning of ``date``; again corrects it."""
        check_int_range("sleep quality", quality, SLEEP_MIN, SLEEP_MAX)
        stamp = time.time() if recorded_at is None else recorded_at
        with self._write() as conn:
            conn.execute(
                "INSERT INTO sleep (date, quality, recorded_at) VALUES (?, ?, ?) "
                "ON CONFLICT (date) DO UPDATE SET quality = excluded.quality, "
                "recorded_at = excluded.recorded_at",
                (date.isoformat(), quality, stamp),
            )

    def sleep_entries(self, since: dt.date | None = None) -> list[SleepEntry]:
        """Sleep-quality entries from ``since`` (a local date; None: all), oldest first."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT date, quality, recorded_at FROM sleep WHERE date >= ? ORDER BY date",
                ("" if since is None else since.isoformat(),),
            ).fetchall()
        return [SleepEntry(dt.date.fromisoformat(d), q, r) for d, q, r in rows]

    def add_note(self, time: float, text: str, session_id: int | None = None) -> None:
        """Journal a note at ``time`` (epoch s).

        Raises `InvalidValueError` for an empty text, `UnknownSessionError` for an unknown session.
        """
        if not text.strip():
            raise InvalidValueError("note: the text is empty")
        with self._write() as conn:
            self._require_session(conn, session_id)
            conn.execute(
                "INSERT INTO notes (uid, time, text, session_id) VALUES (?, ?, ?, ?)",
                (new_uid(), time, text, session_id),
            )

    def notes(self, since: float | None = None) -> list[NoteRecord]:
        """Notes from ``since`` (epoch s; None: all), oldest first."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT time, text, session_id FROM notes WHERE time >= ? ORDER BY time, id",
                (-math.inf if since is None else since,),
            ).fetchall()
        return [NoteRecord(*row) for row in rows]

    def record_inspection(
        self,
        date: dt.date,
        findings: frozenset[str],
        *,
        recorded_at: float | None = None,
        alert: OutboxAlert | None = None,
    ) -> None:
        """Log a daily foot inspection; ``findings`` from :data:`FINDINGS`, or ``{"none"}``.

        ``alert``, if given, is enqueued in the same transaction, so a finding is never logged
        without its caregiver alert (see :func:`controller.journal.diary.record_inspection`).
        """
        found = check_findings(findings)
        if alert is not None:
            check_choice("priority", alert.priority, ALARM_PRIORITIES)
        stamp = time.time() if recorded_at is None else recorded_at
        with self._write(durable=alert is not None) as conn:
            conn.execute(
                "INSERT INTO inspections (uid, date, recorded_at, findings) VALUES (?, ?, ?, ?)",
                (new_uid(), date.isoformat(), stamp, json.dumps(sorted(found))),
            )
            if alert is not None:
                enqueue(conn, alert)

    def inspections(self, since: dt.date | None = None) -> list[InspectionRecord]:
        """Foot inspections from ``since`` (a local date; None: all), oldest first."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT date, findings, recorded_at FROM inspections WHERE date >= ? "
                "ORDER BY date, recorded_at, id",
                ("" if since is None else since.isoformat(),),
            ).fetchall()
        return [
            InspectionRecord(dt.date.fromisoformat(d), frozenset(json.loads(f)), r)
            for d, f, r in rows
        ]

    def record_healed(
        self, date: dt.date, finding: str, *, recorded_at: float | None = None
    ) -> None:
        """Record that an open wound or ulcer found earlier has healed (as of ``date``)."""
        check_choice("finding", finding, OPEN_WOUND_FINDINGS)
        stamp = time.time() if recorded_at is None else recorded_at
        with self._write() as conn:
            conn.execute(
                "INSERT INTO healed (uid, date, finding, recorded_at) VALUES (?, ?, ?, ?)",
                (new_uid(), date.isoformat(), finding, stamp),
            )

    def inspected_on(self, day: dt.date) -> bool:
        """True if a foot inspection is dated ``day`` (the checklist's or the diary's)."""
        start = dt.datetime.combine(day, dt.time()).timestamp()
        end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time()).timestamp()
        with self._read() as conn:
            checklist = conn.execute(
                "SELECT 1 FROM checklists WHERE inspected = 1 AND time >= ? AND time < ? LIMIT 1",
                (start, end),
            ).fetchone()
            diary = conn.execute(
                "SELECT 1 FROM inspections WHERE date = ? LIMIT 1", (day.isoformat(),)
            ).fetchone()
        return checklist is not None or diary is not None

    def last_inspection_date(self) -> dt.date | None:
        """The local date of the latest foot inspection (checklist or diary), if any."""
        with self._read() as conn:
            checklist_time = conn.execute(
                "SELECT MAX(time) FROM checklists WHERE inspected = 1"
            ).fetchone()[0]
            diary_date = conn.execute("SELECT MAX(date) FROM inspections").fetchone()[0]
        dates = []
        if checklist_time is not None:
            dates.append(localdate.date_of(checklist_time))
        if diary_date is not None:
            dates.append(dt.date.fromisoformat(diary_date))
        return max(dates, default=None)

    def open_wounds(self, today: dt.date | None = None) -> list[tuple[str, dt.date]]:
        """(finding, date found) of each open wound or ulcer not recorded healed since, by name.

        A finding is open when its latest inspection (by date, then time recorded) comes after
        the latest healing record for that finding. A healing record dated after ``today``
        (default: the local date) is not believed: a wound found today stays open whatever a
        later-dated record says.
        """
        today = localdate.today() if today is None else today
        found_open: list[tuple[str, dt.date]] = []
        with self._read() as conn:
            for finding in sorted(OPEN_WOUND_FINDINGS):
                found = conn.execute(
                    "SELECT i.date, i.recorded_at FROM inspections i, json_each(i.findings) f "
                    "WHERE f.value = ? ORDER BY i.date DESC, i.recorded_at DESC LIMIT 1",
                    (finding,),
                ).fetchone()
                if found is None:
                    continue
                healed = conn.execute(
                    "SELECT date, recorded_at FROM healed WHERE finding = ? AND date <= ? "
                    "ORDER BY date DESC, recorded_at DESC LIMIT 1",
                    (finding, today.isoformat()),
                ).fetchone()
                if healed is None or tuple(healed) < tuple(found):
                    found_open.append((finding, dt.date.fromisoformat(found[0])))
        return found_open
