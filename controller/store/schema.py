"""The journal's schema, as forward migrations, and the code that applies them.

Each migration is a tuple of SQL statements; migration ``n`` (1-based) takes a database from
version ``n - 1`` to ``n`` in one transaction, and the table ``schema_version`` records each step.
Migrations are never edited once released: a change is a new migration appended at the end. A
database written by a newer SoleGuard (a version above the last one known here) is refused rather
than guessed at.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from typing import TYPE_CHECKING

from controller.errors import StoreError

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migrate", "schema_version"]

Migration = tuple[str, ...]

_V1_SESSIONS: Migration = (
    """
    CREATE TABLE sessions (
        id INTEGER PRIMARY KEY,
        uid TEXT NOT NULL UNIQUE,
        started_at REAL NOT NULL,
        program TEXT NOT NULL,
        profile TEXT,
        scenario TEXT,
        cutoff_c REAL NOT NULL,
        pressure_cap_mmhg REAL NOT NULL,
        ended_at REAL,
        ended_by TEXT CHECK (ended_by IN ('timer', 'user', 'caregiver', 'fault', 'checklist')),
        max_skin_c REAL,
        max_pressure_mmhg REAL,
        time_above_cutoff_s REAL,
        heat_s REAL
    )
    """,
    "CREATE INDEX sessions_started_at ON sessions (started_at)",
    """
    CREATE TABLE readings (
        session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        time REAL NOT NULL,
        skin_c REAL,
        pressure_mmhg REAL NOT NULL,
        pressure_cap_mmhg REAL NOT NULL,
        heater_on INTEGER NOT NULL CHECK (heater_on IN (0, 1)),
        pad_c REAL,
        PRIMARY KEY (session_id, time)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE alarms (
        id INTEGER PRIMARY KEY,
        uid TEXT NOT NULL UNIQUE,
        session_id INTEGER REFERENCES sessions (id) ON DELETE CASCADE,
        time REAL NOT NULL,
        code TEXT NOT NULL,
        priority TEXT NOT NULL CHECK (priority IN ('high', 'medium', 'low')),
        message TEXT NOT NULL
    )
    """,
    "CREATE INDEX alarms_session ON alarms (session_id, time)",
    """
    CREATE TABLE checklists (
        id INTEGER PRIMARY KEY,
        uid TEXT NOT NULL UNIQUE,
        session_id INTEGER REFERENCES sessions (id) ON DELETE CASCADE,
        time REAL NOT NULL,
        answers TEXT NOT NULL,
        blocked INTEGER NOT NULL CHECK (blocked IN (0, 1)),
        reason TEXT,
        inspected INTEGER NOT NULL CHECK (inspected IN (0, 1))
    )
    """,
    "CREATE INDEX checklists_inspected ON checklists (inspected, time)",
    """
    CREATE TABLE pain (
        session_id INTEGER NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        moment TEXT NOT NULL CHECK (moment IN ('before', 'after')),
        score INTEGER NOT NULL CHECK (score BETWEEN 0 AND 10),
        PRIMARY KEY (session_id, moment)
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE acknowledgements (
        name TEXT PRIMARY KEY,
        time REAL NOT NULL
    ) WITHOUT ROWID
    """,
)

_V2_OUTBOX: Migration = (
    # AUTOINCREMENT: `seq` must keep growing even if delivered alerts are pruned one day, so that
    # enqueue order is never confused with a reused rowid.
    """
    CREATE TABLE alert_outbox (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        device_id TEXT NOT NULL,
        time REAL NOT NULL,
        priority TEXT NOT NULL CHECK (priority IN ('high', 'medium', 'low')),
        code TEXT NOT NULL,
        message TEXT NOT NULL,
        session_id INTEGER REFERENCES sessions (id) ON DELETE SET NULL,
        delivered_at REAL
    )
    """,
    """
    CREATE INDEX alert_outbox_undelivered ON alert_outbox (device_id, seq)
    WHERE delivered_at IS NULL
    """,
)

_V3_DIARY: Migration = (
    """
    CREATE TABLE sleep (
        date TEXT PRIMARY KEY,
        quality INTEGER NOT NULL CHECK (quality BETWEEN 1 AND 5),
        recorded_at REAL NOT NULL
    ) WITHOUT ROWID
    """,
    """
    CREATE TABLE notes (
        id INTEGER PRIMARY KEY,
        uid TEXT NOT NULL UNIQUE,
        time REAL NOT NULL,
        text TEXT NOT NULL,
        session_id INTEGER REFERENCES sessions (id) ON DELETE SET NULL
    )
    """,
    """
    CREATE TABLE inspections (
        id INTEGER PRIMARY KEY,
        uid TEXT NOT NULL UNIQUE,
        date TEXT NOT NULL,
        recorded_at REAL NOT NULL,
        findings TEXT NOT NULL
    )
    """,
    "CREATE INDEX inspections_date ON inspections (date)",
    """
    CREATE TABLE healed (
        id INTEGER PRIMARY KEY,
        uid TEXT NOT NULL UNIQUE,
        date TEXT NOT NULL,
        finding TEXT NOT NULL,
        recorded_at REAL NOT NULL
    )
    """,
)

_LATCHES: Migration = (
    # The over-temperature latch outlives the session and the process (issue 10): a row with no
    # reset is a latch in force; an alarm reset fills reset_at and the reading that allowed it.
    """
    CREATE TABLE latches (
        id INTEGER PRIMARY KEY,
        latched_at REAL NOT NULL,
        skin_c REAL NOT NULL,
        session_id INTEGER REFERENCES sessions (id) ON DELETE SET NULL,
        message TEXT NOT NULL,
        reset_at REAL,
        reset_skin_c REAL
    )
    """,
    "CREATE INDEX latches_in_force ON latches (reset_at)",
)

_ALERT_CONDITIONS: Migration = (
    # One alarm condition is one alert (`condition_id`), raised, updated and cleared: each of
    # those is its own outbox message (`event`), published at least once.
    "ALTER TABLE alert_outbox ADD COLUMN condition_id TEXT",
    """
    ALTER TABLE alert_outbox ADD COLUMN event TEXT NOT NULL DEFAULT 'raised'
        CHECK (event IN ('raised', 'updated', 'cleared'))
    """,
    "ALTER TABLE alert_outbox ADD COLUMN occurrences INTEGER NOT NULL DEFAULT 1",
    "CREATE INDEX alert_outbox_condition ON alert_outbox (condition_id)",
    # A caregiver client showed the alert to a person: delivered in the sense that matters.
    """
    CREATE TABLE alert_acks (
        condition_id TEXT NOT NULL,
        client TEXT NOT NULL,
        time REAL NOT NULL,
        PRIMARY KEY (condition_id, client)
    ) WITHOUT ROWID
    """,
    # Facts about this installation, written once (the default MQTT device id).
    """
    CREATE TABLE installation (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    ) WITHOUT ROWID
    """,
)

_SESSION_COPY_COLUMNS = (
    "id, uid, started_at, program, profile, scenario, cutoff_c, pressure_cap_mmhg, ended_at, "
    "ended_by, max_skin_c, max_pressure_mmhg, time_above_cutoff_s, heat_s"
)

# Issue 11, a true journal: how a session really ended (a signal; ``interrupted`` when its
# process died and the next start closed it), whether it was simulated (the demo: kept out of
# the user's history and reports), and the process that runs it (so the next start can tell a
# dead process's session from one still running in another process). SQLite cannot change a
# CHECK constraint in place: the table is rebuilt (sqlite.org/lang_altertable.html, "making other
# kinds of table schema changes"); `migrate` runs with foreign keys off, so the readings and
# alarms that reference it are kept.
_SESSION_ENDINGS: Migration = (
    """
    CREATE TABLE sessions_v4 (
        id INTEGER PRIMARY KEY,
        uid TEXT NOT NULL UNIQUE,
        started_at REAL NOT NULL,
        program TEXT NOT NULL,
        profile TEXT,
        scenario TEXT,
        cutoff_c REAL NOT NULL,
        pressure_cap_mmhg REAL NOT NULL,
        ended_at REAL,
        ended_by TEXT CHECK (ended_by IN ('timer', 'user', 'caregiver', 'fault', 'checklist',
                                          'sigint', 'sigterm', 'sighup', 'interrupted')),
        max_skin_c REAL,
        max_pressure_mmhg REAL,
        time_above_cutoff_s REAL,
        heat_s REAL,
        simulated INTEGER NOT NULL DEFAULT 0 CHECK (simulated IN (0, 1)),
        pid INTEGER
    )
    """,
    f"INSERT INTO sessions_v4 ({_SESSION_COPY_COLUMNS}) "
    f"SELECT {_SESSION_COPY_COLUMNS} FROM sessions",
    "DROP TABLE sessions",
    "ALTER TABLE sessions_v4 RENAME TO sessions",
    "CREATE INDEX sessions_started_at ON sessions (started_at)",
)

# 1: sessions, readings, alarms, checklist, pain (issue 4); 2: alert outbox (issue 5);
# 3: diary (issue 6); then the over-temperature latch (issue 10); then alert conditions,
# acknowledgements and the installation id (issue 12); then session endings and simulated
# sessions (issue 11).
MIGRATIONS: tuple[Migration, ...] = (
    _V1_SESSIONS,
    _V2_OUTBOX,
    _V3_DIARY,
    _LATCHES,
    _ALERT_CONDITIONS,
    _SESSION_ENDINGS,
)
SCHEMA_VERSION = len(MIGRATIONS)

_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    version INTEGER PRIMARY KEY,
    applied_at REAL NOT NULL
)
"""


def schema_version(conn: sqlite3.Connection) -> int:
    """The version a database is at; 0 for a new (or empty) file."""
    exists = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
    ).fetchone()
    if exists is None:
        return 0
    row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_version").fetchone()
    return int(row[0])


def _begin(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN IMMEDIATE")


def migrate(
    conn: sqlite3.Connection,
    migrations: Sequence[Migration] = MIGRATIONS,
    *,
    begin: Callable[[sqlite3.Connection], None] = _begin,
) -> int:
    """Bring the database up to ``len(migrations)``; return the version it is at.

    ``conn`` must be in autocommit mode (``isolation_level=None``): each step runs in its own
    ``BEGIN IMMEDIATE`` transaction, so two processes opening the same new file do not both apply
    it, and a failed step leaves the database at the previous version. Foreign keys are off while
    it runs (a rebuilt table must not cascade-delete what refers to it) and checked before each
    commit; they are as they were afterwards. ``begin`` starts each step's transaction (the
    journal's waits for the lock in slices, so a signal is handled meanwhile).
    """
    enforced = bool(conn.execute("PRAGMA foreign_keys").fetchone()[0])
    conn.execute("PRAGMA foreign_keys = OFF")
    try:
        return _migrate(conn, migrations, begin)
    finally:
        conn.execute(f"PRAGMA foreign_keys = {'ON' if enforced else 'OFF'}")


def _migrate(
    conn: sqlite3.Connection,
    migrations: Sequence[Migration],
    begin: Callable[[sqlite3.Connection], None],
) -> int:
    conn.execute(_VERSION_TABLE)
    target = len(migrations)
    while True:
        begin(conn)
        try:
            current = schema_version(conn)
            if current > target:
                raise StoreError(
                    f"the journal is at schema version {current}, written by a newer SoleGuard; "
                    f"this one knows up to version {target}: upgrade SoleGuard to open it"
                )
            if current == target:
                conn.execute("COMMIT")
                return current
            for statement in migrations[current]:
                conn.execute(statement)
            broken = conn.execute("PRAGMA foreign_key_check").fetchone()
            if broken is not None:
                raise StoreError(f"schema step {current + 1} broke a reference: {tuple(broken)}")
            conn.execute(
                "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                (current + 1, time.time()),
            )
            conn.execute("COMMIT")
        except BaseException:
            # After SQLITE_FULL or an I/O error SQLite has already rolled back: a second ROLLBACK
            # raised "no transaction is active" over the error that says what happened.
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise
