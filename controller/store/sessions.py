"""Sessions and what belongs to them: readings, alarms, the checklist, pain, the acknowledgement."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import sqlite3
from typing import TYPE_CHECKING, Any, Final

from controller.safety import EndReason
from controller.store.database import Database, finite_or_none, new_uid
from controller.store.errors import InvalidValueError, UnknownSessionError
from controller.store.processes import pid_alive
from controller.store.records import (
    ALARM_PRIORITIES,
    ENDED_BY,
    PAIN_MAX,
    PAIN_MIN,
    PAIN_MOMENTS,
    AlarmRecord,
    ChecklistRecord,
    ReadingRow,
    SessionRecord,
)
from controller.store.validation import check_choice, check_int_range

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["Sessions"]

_LOGGER = logging.getLogger(__name__)
# Closes unfinished session ?1 as ?2 with what is known: it ended at its last reading (else its
# start), with the highest skin temperature and pressure its readings show. Used by the next
# start (`close_interrupted`) and by a forced exit (`close_forced`).
_CLOSE_WITH_WHAT_IS_KNOWN = (
    "UPDATE sessions SET ended_by = ?2, "
    "ended_at = COALESCE((SELECT MAX(time) FROM readings WHERE session_id = ?1), started_at), "
    "max_skin_c = (SELECT MAX(skin_c) FROM readings WHERE session_id = ?1), "
    "max_pressure_mmhg = (SELECT MAX(pressure_mmhg) FROM readings WHERE session_id = ?1) "
    "WHERE id = ?1 AND ended_at IS NULL"
)

# Acknowledgement names in the `acknowledgements` table.
_ACK_PROVIDER: Final = "provider_consulted"

_SESSION_COLUMNS: Final = (
    "s.id, s.uid, s.started_at, s.program, s.profile, s.scenario, s.cutoff_c, "
    "s.pressure_cap_mmhg, s.ended_at, s.ended_by, s.max_skin_c, s.max_pressure_mmhg, "
    "s.time_above_cutoff_s, s.heat_s, "
    "(SELECT COUNT(*) FROM alarms a WHERE a.session_id = s.id), "
    "(SELECT score FROM pain p WHERE p.session_id = s.id AND p.moment = 'before'), "
    "(SELECT score FROM pain p WHERE p.session_id = s.id AND p.moment = 'after'), "
    "s.simulated"
)


def _session_record(row: Sequence[Any]) -> SessionRecord:
    record = SessionRecord(*row[:-1], simulated=bool(row[-1]))  # type: ignore[misc]
    # The journal holds the reason's text (the CHECK constraint keeps it one of `EndReason`).
    ended_by = None if record.ended_by is None else EndReason(record.ended_by)
    return dataclasses.replace(record, ended_by=ended_by)


class Sessions(Database):
    """The session tables of the journal (see :class:`~controller.store.database.Database`)."""

    # -- sessions --------------------------------------------------------------------------------

    def start_session(
        self,
        *,
        started_at: float,
        program: str,
        profile: str | None,
        scenario: str | None = None,
        cutoff_c: float,
        pressure_cap_mmhg: float,
        simulated: bool = False,
    ) -> int:
        """Record a session's start (epoch seconds); returns its id.

        ``simulated``: against simulated devices (the demo). The session is tied to this process
        (its pid), so that `close_interrupted` at a later start can tell whether it died.
        """
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO sessions (uid, started_at, program, profile, scenario, cutoff_c, "
                "pressure_cap_mmhg, simulated, pid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    new_uid(),
                    started_at,
                    program,
                    profile,
                    scenario,
                    cutoff_c,
                    pressure_cap_mmhg,
                    int(simulated),
                    os.getpid(),
                ),
            )
            session_id = cursor.lastrowid
        assert session_id is not None  # an INSERT into a rowid table always sets it
        return session_id

    def end_session(
        self,
        session_id: int,
        *,
        ended_at: float,
        ended_by: EndReason,
        max_skin_c: float | None,
        max_pressure_mmhg: float | None,
        time_above_cutoff_s: float,
        heat_s: float,
    ) -> None:
        """Record how session ``session_id`` ended: time (epoch s), reason, maxima, seconds.

        Raises `InvalidValueError` for an ``ended_by`` outside `ENDED_BY` and
        `UnknownSessionError` for an unknown session; a second end replaces the first (logged).
        """
        check_choice("ended_by", ended_by, ENDED_BY)
        with self._write() as conn:
            row = conn.execute(
                "SELECT ended_at FROM sessions WHERE id = ?", (session_id,)
            ).fetchone()
            if row is None:
                raise UnknownSessionError(session_id)
            if row[0] is not None:
                _LOGGER.warning(
                    "session %s: ended again; the later outcome replaces it", session_id
                )
            conn.execute(
                "UPDATE sessions SET ended_at = ?, ended_by = ?, max_skin_c = ?, "
                "max_pressure_mmhg = ?, time_above_cutoff_s = ?, heat_s = ? WHERE id = ?",
                (
                    ended_at,
                    ended_by,
                    finite_or_none(max_skin_c),
                    finite_or_none(max_pressure_mmhg),
                    time_above_cutoff_s,
                    heat_s,
                    session_id,
                ),
            )
        with self._lock:
            self._checkpoint(self._live())

    def close_forced(self, session_id: int, *, ended_by: EndReason, timeout_s: float) -> bool:
        """Close session ``session_id`` as ``ended_by`` on a forced exit; True if closed.

        Called from the shutdown watchdog's thread while the journal's own connection may be
        held by a writer that will never finish: a connection of its own, waiting at most
        ``timeout_s`` seconds for the lock. What is known is kept, as `close_interrupted` does.
        A session already closed is left as it is. Never raises (best effort on the way out;
        if it fails, the next start closes the session as ``interrupted``).
        """
        if ended_by not in ENDED_BY:
            return False
        try:
            conn = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None)
        except sqlite3.Error:
            return False
        try:
            cursor = conn.execute(
                _CLOSE_WITH_WHAT_IS_KNOWN,
                (session_id, ended_by),
            )
            return cursor.rowcount == 1
        except sqlite3.Error:
            return False
        finally:
            conn.close()

    def close_interrupted(self) -> list[int]:
        """Close every unfinished session whose process is gone as ``interrupted``.

        What is known is kept: it ended at its last reading (else its start), with the highest
        skin temperature and pressure its readings show. Sessions of a process still running
        (another hub process on the same journal) are left alone. Returns the ids closed.
        """
        with self._write() as conn:
            rows = conn.execute(
                "SELECT id, pid FROM sessions WHERE ended_at IS NULL AND ended_by IS NULL"
            ).fetchall()
            dead = [sid for sid, pid in rows if pid is None or not pid_alive(int(pid))]
            for session_id in dead:
                conn.execute(
                    _CLOSE_WITH_WHAT_IS_KNOWN,
                    (session_id, EndReason.INTERRUPTED),
                )
        for session_id in dead:
            _LOGGER.warning("journal: session %s was interrupted (its process died)", session_id)
        return dead

    def get_session(self, session_id: int) -> SessionRecord:
        """The session ``session_id``; raises `UnknownSessionError` if there is none."""
        with self._read() as conn:
            row = conn.execute(
                f"SELECT {_SESSION_COLUMNS} FROM sessions s WHERE s.id = ?", (session_id,)
            ).fetchone()
        if row is None:
            raise UnknownSessionError(session_id)
        return _session_record(row)

    def sessions(
        self, since: float | None = None, limit: int | None = None, *, simulated: bool = False
    ) -> list[SessionRecord]:
        """Sessions started at or after ``since`` (epoch s), newest first.

        Sessions against simulated devices (the demo's, or imported from a journal that had
        them) are left out unless ``simulated``: they are not the user's, and every reader of
        the user's history and reports goes through here.
        """
        query = f"SELECT {_SESSION_COLUMNS} FROM sessions s WHERE s.started_at >= ? "
        if not simulated:
            query += "AND s.simulated = 0 "
        query += "ORDER BY s.started_at DESC, s.id DESC LIMIT ?"
        with self._read() as conn:
            rows = conn.execute(
                query, (-math.inf if since is None else since, -1 if limit is None else limit)
            ).fetchall()
        return [_session_record(row) for row in rows]

    # -- readings and alarms ---------------------------------------------------------------------

    def add_readings(self, session_id: int, rows: Sequence[ReadingRow]) -> None:
        """Append readings; a second reading at the same time of the same session is ignored."""
        with self._write() as conn:
            self._require_session(conn, session_id)
            conn.executemany(
                "INSERT INTO readings (session_id, time, skin_c, pressure_mmhg, "
                "pressure_cap_mmhg, heater_on, pad_c) VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                [
                    (
                        session_id,
                        r.time,
                        finite_or_none(r.skin_c),
                        r.pressure_mmhg,
                        r.pressure_cap_mmhg,
                        int(r.heater_on),
                        finite_or_none(r.pad_c),
                    )
                    for r in rows
                ],
            )

    def readings(self, session_id: int) -> list[ReadingRow]:
        """The readings of a session, oldest first (°C, mmHg, epoch s)."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT time, skin_c, pressure_mmhg, pressure_cap_mmhg, heater_on, pad_c "
                "FROM readings WHERE session_id = ? ORDER BY time",
                (session_id,),
            ).fetchall()
        return [
            ReadingRow(t, skin, p, cap, bool(heater), pad) for t, skin, p, cap, heater, pad in rows
        ]

    def add_alarm(
        self, session_id: int | None, *, time: float, code: str, priority: str, message: str
    ) -> None:
        """Journal an alarm at ``time`` (epoch s); ``session_id`` None: outside any session.

        Raises `InvalidValueError` for a priority outside `ALARM_PRIORITIES` and
        `UnknownSessionError` for an unknown session.
        """
        check_choice("priority", priority, ALARM_PRIORITIES)
        with self._write() as conn:
            self._require_session(conn, session_id)
            conn.execute(
                "INSERT INTO alarms (uid, session_id, time, code, priority, message) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (new_uid(), session_id, time, code, priority, message),
            )

    def alarms(self, session_id: int | None) -> list[AlarmRecord]:
        """The alarms of a session, oldest first; ``None``: alarms raised outside any session."""
        with self._read() as conn:
            rows = conn.execute(
                "SELECT session_id, time, code, priority, message FROM alarms "
                "WHERE session_id IS ? ORDER BY time, id",
                (session_id,),
            ).fetchall()
        return [AlarmRecord(*row) for row in rows]

    # -- checklist, acknowledgement, pain --------------------------------------------------------

    def record_checklist(
        self,
        session_id: int | None,
        *,
        time: float,
        answers: Mapping[str, bool | str],
        blocked: bool,
        reason: str | None,
    ) -> None:
        """Store the checklist as answered.

        ``answers["inspected_today"] is True`` marks the day's foot inspection as done (see
        :meth:`last_inspection_date`); ``answers["provider_consulted"] is True`` records the
        one-time acknowledgement as :meth:`record_provider_consulted` does.
        """
        try:
            encoded = json.dumps(dict(answers), sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise InvalidValueError(f"answers: cannot be stored as JSON: {exc}") from exc
        inspected = answers.get("inspected_today") is True
        with self._write() as conn:
            self._require_session(conn, session_id)
            conn.execute(
                "INSERT INTO checklists (uid, session_id, time, answers, blocked, reason, "
                "inspected) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (new_uid(), session_id, time, encoded, int(blocked), reason, int(inspected)),
            )
            if answers.get("provider_consulted") is True:
                conn.execute(
                    "INSERT INTO acknowledgements (name, time) VALUES (?, ?) "
                    "ON CONFLICT DO NOTHING",
                    (_ACK_PROVIDER, time),
                )

    def checklists(self, session_id: int | None = None) -> list[ChecklistRecord]:
        """Checklists of a session (``None``: every checklist), oldest first."""
        query = "SELECT session_id, time, answers, blocked, reason FROM checklists"
        params: tuple[Any, ...] = ()
        if session_id is not None:
            query += " WHERE session_id = ?"
            params = (session_id,)
        with self._read() as conn:
            rows = conn.execute(query + " ORDER BY time, id", params).fetchall()
        return [
            ChecklistRecord(sid, t, json.loads(answers), bool(blocked), reason)
            for sid, t, answers, blocked, reason in rows
        ]

    def provider_consulted(self) -> bool:
        """True once the user has recorded consulting their care provider."""
        with self._read() as conn:
            row = conn.execute(
                "SELECT 1 FROM acknowledgements WHERE name = ?", (_ACK_PROVIDER,)
            ).fetchone()
        return row is not None

    def record_provider_consulted(self, time: float) -> None:
        """The one-time acknowledgement; recording it again keeps the first time."""
        with self._write() as conn:
            conn.execute(
                "INSERT INTO acknowledgements (name, time) VALUES (?, ?) ON CONFLICT DO NOTHING",
                (_ACK_PROVIDER, time),
            )

    def record_pain(self, session_id: int, *, when: str, score: int) -> None:
        """Pain 0-10 before or after a session; recording it again corrects it."""
        check_choice("when", when, PAIN_MOMENTS)
        check_int_range(f"pain {when}", score, PAIN_MIN, PAIN_MAX)
        with self._write() as conn:
            self._require_session(conn, session_id)
            conn.execute(
                "INSERT INTO pain (session_id, moment, score) VALUES (?, ?, ?) "
                "ON CONFLICT (session_id, moment) DO UPDATE SET score = excluded.score",
                (session_id, when, score),
            )
