"""The journal database: one SQLite file in WAL mode, behind a small synchronous API.

Thread safety: one :class:`Store` holds one connection opened with ``check_same_thread=False`` and
guards every call with an internal lock, so the service may call it from the event loop thread for
tiny writes and from ``asyncio.to_thread`` for larger ones. Each call is one short transaction;
nothing is held open between calls. Other processes (``soleguard history`` while a hub runs) may
open the same file: WAL lets them read while the service writes.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import secrets
import sqlite3
import threading
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Self

from controller import localdate
from controller.safety.decision import priority_rank
from controller.store.backup import checkpoint
from controller.store.errors import InvalidValueError, StoreError, UnknownSessionError
from controller.store.processes import pid_alive
from controller.store.records import (
    ALARM_PRIORITIES,
    ENDED_BY,
    OPEN_WOUND_FINDINGS,
    PAIN_MAX,
    PAIN_MIN,
    PAIN_MOMENTS,
    SLEEP_MAX,
    SLEEP_MIN,
    AlarmRecord,
    AlertHistory,
    ChecklistRecord,
    InspectionRecord,
    NoteRecord,
    OutboxAlert,
    ReadingRow,
    SessionRecord,
    SleepEntry,
)
from controller.store.schema import migrate
from controller.store.transfer import dump_tables, load_tables
from controller.store.validation import check_choice, check_findings, check_int_range

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence
    from types import TracebackType

__all__ = ["DB_FILENAME", "Store", "default_store_path"]

_LOGGER = logging.getLogger(__name__)

DB_FILENAME: Final = "journal.sqlite3"
APP_NAME: Final = "soleguard"
# Why 5 s: another process (a `soleguard history` or an export) may hold the write lock for a
# moment; a writer waits this long before failing. Longer would stall the service's store task
# behind a stuck reader; every write here takes milliseconds.
BUSY_TIMEOUT_S: Final = 5.0
_SYNC_NORMAL: Final = "NORMAL"
_SYNC_FULL: Final = "FULL"
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


def default_store_path() -> Path:
    """``journal.sqlite3`` in the platform's user data directory."""
    import platformdirs  # noqa: PLC0415 (keeps `soleguard --help` fast)

    return Path(platformdirs.user_data_dir(APP_NAME)) / DB_FILENAME


def _session_record(row: Sequence[Any]) -> SessionRecord:
    return SessionRecord(*row[:-1], simulated=bool(row[-1]))  # type: ignore[misc]


def _uid() -> str:
    return uuid.uuid4().hex


def _finite_or_none(value: float | None) -> float | None:
    # A NaN would be stored as NULL by SQLite anyway; make that explicit and cover infinities.
    return value if value is not None and math.isfinite(value) else None


class Store:
    """The journal database: :meth:`open` it, then use it as a context manager or :meth:`close`."""

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn: sqlite3.Connection | None = conn
        self._lock = threading.Lock()
        self.path = path

    # -- lifecycle -------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path | None = None) -> Self:
        """Open (creating if needed) the journal at ``path``, else in the user data directory."""
        target = default_store_path() if path is None else Path(path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(
                f"{target}: cannot create the journal's folder: {exc.strerror or exc}"
            ) from exc
        if target.is_dir():
            raise StoreError(f"{target}: is a folder, not a journal database file")
        try:
            conn = sqlite3.connect(
                target, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StoreError(f"{target}: cannot open the journal database: {exc}") from exc
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":
                _LOGGER.warning("%s: WAL mode unavailable, journal mode is %s", target, mode)
            conn.execute("PRAGMA foreign_keys = ON")
            # NORMAL: in WAL mode a commit survives a crash of the process but may be lost in a
            # power cut; fine for readings and diary entries, and it makes a write about 0.03 ms
            # instead of about 4 ms. Writes that must survive a power cut (the alert outbox) ask
            # for FULL on their own transaction (`_write(durable=True)`).
            conn.execute(f"PRAGMA synchronous = {_SYNC_NORMAL}")
            migrate(conn)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise StoreError(f"{target}: cannot use the journal database: {exc}") from exc
        except StoreError as exc:
            conn.close()
            raise StoreError(f"{target}: {exc}") from exc
        return cls(conn, target)

    def close(self) -> None:
        """Close the database connection (a second close is a no-op)."""
        with self._lock:
            if self._conn is not None:
                self._checkpoint(self._conn)
                try:
                    self._conn.execute("PRAGMA optimize")
                except sqlite3.Error as exc:
                    _LOGGER.debug("%s: optimize on close failed: %s", self.path, exc)
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        """Finished work into the main file, so a plain copy of it is a whole journal."""
        try:
            checkpoint(conn)
        except sqlite3.Error as exc:
            # Only a copy of the file alone is worse off: the data is safe in the log.
            _LOGGER.warning("%s: checkpoint failed: %s", self.path, exc)

    @property
    def journal_mode(self) -> str:
        """SQLite's journal mode of the open database ("wal" unless the file system refused it)."""
        with self._read() as conn:
            return str(conn.execute("PRAGMA journal_mode").fetchone()[0])

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._live()
            try:
                yield conn
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: reading the journal failed: {exc}") from exc

    @contextmanager
    def _write(self, *, durable: bool = False) -> Iterator[sqlite3.Connection]:
        """One write transaction: committed on success, rolled back on any error.

        ``durable``: the commit is synced to disk (survives a power cut), and with it every
        earlier commit still only in the write-ahead log.
        """
        with self._lock:
            conn = self._live()
            try:
                if durable:
                    conn.execute(f"PRAGMA synchronous = {_SYNC_FULL}")
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                self._relax(conn, durable)
                raise StoreError(f"{self.path}: cannot write the journal: {exc}") from exc
            try:
                yield conn
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._rollback(conn)
                raise StoreError(f"{self.path}: writing the journal failed: {exc}") from exc
            except BaseException:
                self._rollback(conn)
                raise
            finally:
                self._relax(conn, durable)

    def _rollback(self, conn: sqlite3.Connection) -> None:
        # After SQLITE_FULL or an I/O error SQLite may already have rolled the transaction back
        # itself; a second ROLLBACK then raises "no transaction is active", which must not
        # replace the StoreError that says what really happened.
        if not conn.in_transaction:
            return
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            _LOGGER.warning("%s: rollback failed: %s", self.path, exc)

    def _relax(self, conn: sqlite3.Connection, durable: bool) -> None:
        if durable:
            try:
                conn.execute(f"PRAGMA synchronous = {_SYNC_NORMAL}")
            except sqlite3.Error as exc:
                _LOGGER.warning("%s: cannot restore synchronous=NORMAL: %s", self.path, exc)

    def _live(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError(f"{self.path}: the journal is closed")
        return self._conn

    @staticmethod
    def _require_session(conn: sqlite3.Connection, session_id: int | None) -> None:
        if session_id is None:
            return
        if conn.execute("SELECT 1 FROM sessions WHERE id = ?", (session_id,)).fetchone() is None:
            raise UnknownSessionError(session_id)

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
                    _uid(),
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
        ended_by: str,
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
                    _finite_or_none(max_skin_c),
                    _finite_or_none(max_pressure_mmhg),
                    time_above_cutoff_s,
                    heat_s,
                    session_id,
                ),
            )
        with self._lock:
            self._checkpoint(self._live())

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
                    "UPDATE sessions SET ended_by = 'interrupted', "
                    "ended_at = COALESCE((SELECT MAX(time) FROM readings WHERE session_id = ?1),"
                    " started_at), "
                    "max_skin_c = (SELECT MAX(skin_c) FROM readings WHERE session_id = ?1), "
                    "max_pressure_mmhg = "
                    " (SELECT MAX(pressure_mmhg) FROM readings WHERE session_id = ?1) "
                    "WHERE id = ?1",
                    (session_id,),
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

    def sessions(self, since: float | None = None, limit: int | None = None) -> list[SessionRecord]:
        """Sessions started at or after ``since`` (epoch s), newest first."""
        query = f"SELECT {_SESSION_COLUMNS} FROM sessions s WHERE s.started_at >= ? "
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
                        _finite_or_none(r.skin_c),
                        r.pressure_mmhg,
                        r.pressure_cap_mmhg,
                        int(r.heater_on),
                        _finite_or_none(r.pad_c),
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
                (_uid(), session_id, time, code, priority, message),
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
                (_uid(), session_id, time, encoded, int(blocked), reason, int(inspected)),
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

    # -- alert outbox (issue 5) ------------------------------------------------------------------

    def enqueue_alert(self, alert: OutboxAlert) -> None:
        """Write an alert before it is published; the same id twice is a no-op."""
        check_choice("priority", alert.priority, ALARM_PRIORITIES)
        with self._write(durable=True) as conn:
            self._enqueue(conn, alert)

    @staticmethod
    def _enqueue(conn: sqlite3.Connection, alert: OutboxAlert) -> None:
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

    def installation_id(self) -> str:
        """An id made once for this journal (``sg-`` and 10 hex digits) and kept ever after."""
        with self._write(durable=True) as conn:
            conn.execute(
                "INSERT INTO installation (key, value) VALUES ('device_id', ?) "
                "ON CONFLICT DO NOTHING",
                (f"sg-{secrets.token_hex(5)}",),
            )
            row = conn.execute("SELECT value FROM installation WHERE key = 'device_id'").fetchone()
        return str(row[0])

    def alert_counts(self) -> tuple[int, int]:
        """(alerts raised, alerts delivered) over the whole outbox."""
        with self._read() as conn:
            raised, delivered = conn.execute(
                "SELECT COUNT(*), COUNT(delivered_at) FROM alert_outbox"
            ).fetchone()
        return int(raised), int(delivered)

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
                (_uid(), time, text, session_id),
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
                (_uid(), date.isoformat(), stamp, json.dumps(sorted(found))),
            )
            if alert is not None:
                self._enqueue(conn, alert)

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
                (_uid(), date.isoformat(), finding, stamp),
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

    def open_wound_blocking(self, today: dt.date | None = None) -> str | None:
        """A message if an open wound or ulcer is recorded and not yet recorded healed, else None.

        A finding is open when its latest inspection (by date, then time recorded) comes after
        the latest healing record for that finding. A healing record dated after ``today``
        (default: the local date) is not believed: a wound found today blocks whatever a
        later-dated record says.
        """
        today = localdate.today() if today is None else today
        open_findings: list[tuple[str, str]] = []
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
                    open_findings.append((finding, found[0]))
        if not open_findings:
            return None
        listed = ", ".join(
            f"{name.replace('_', ' ')} (found {date})" for name, date in open_findings
        )
        commands = " / ".join(f"`soleguard diary healed {name}`" for name, _ in open_findings)
        return (
            f"sessions are blocked: {listed} not yet recorded healed; never massage over an open "
            f"wound or ulcer. Once it has healed, record it with {commands}."
        )

    # -- export and import -----------------------------------------------------------------------

    def export_tables(self) -> dict[str, list[dict[str, Any]]]:
        """The whole journal (not the alert outbox) as tables of rows; see :mod:`.transfer`."""
        with self._lock:
            conn = self._live()
            try:
                # One read transaction: a consistent snapshot even while the service writes.
                conn.execute("BEGIN")
                try:
                    return dump_tables(conn)
                finally:
                    conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise StoreError(f"{self.path}: reading the journal failed: {exc}") from exc

    def import_tables(self, tables: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, int]:
        """Add the rows of an export not present yet, all or nothing; counts of new rows."""
        with self._write() as conn:
            return load_tables(conn, tables)


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
