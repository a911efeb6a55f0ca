"""The journal as plain tables, for export and import (``soleguard journal export/import``).

Rows refer to sessions by their ``uid`` (a uuid4 hex made when the session started), never by the
local integer id, so a journal can be imported into another database that has sessions of its own.
Each row that can repeat carries its own ``uid``; import inserts only rows it does not have yet, so
importing the same file twice, or a file exported from this very database, adds nothing. Where a
value is keyed by date or session (sleep, pain, acknowledgements) the local value wins.

Sessions keep how they ended, whether they were simulated (the demo) and the process that ran them
(an unfinished session is closed as interrupted at the next start only once that process is
gone). The over-temperature latches travel too: a latched journal stays latched after a move,
since an alarm reset, not a change of machine, is what clears a latch (IEC 60601-1-8).

The alert outbox is not part of the journal: its delivery state belongs to one machine, and an
import must never make another machine publish old alerts again.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any, Final

from controller import localdate
from controller.errors import shown
from controller.store.errors import InvalidValueError
from controller.store.validation import check_findings

__all__ = ["TABLES", "dump_tables", "load_tables"]

# Table name -> exported columns, in the order the CSV export writes them. `session_uid` stands for
# the session a row belongs to.
TABLES: Final[Mapping[str, tuple[str, ...]]] = {
    "sessions": (
        "uid",
        "started_at",
        "program",
        "profile",
        "scenario",
        "cutoff_c",
        "pressure_cap_mmhg",
        "ended_at",
        "ended_by",
        "max_skin_c",
        "max_pressure_mmhg",
        "time_above_cutoff_s",
        "heat_s",
        "simulated",
        "pid",
    ),
    "readings": (
        "session_uid",
        "time",
        "skin_c",
        "pressure_mmhg",
        "pressure_cap_mmhg",
        "heater_on",
        "pad_c",
    ),
    "alarms": ("uid", "session_uid", "time", "code", "priority", "message"),
    "checklists": ("uid", "session_uid", "time", "answers", "blocked", "reason", "inspected"),
    "pain": ("session_uid", "moment", "score"),
    "acknowledgements": ("name", "time"),
    "sleep": ("date", "quality", "recorded_at"),
    "notes": ("uid", "session_uid", "time", "text"),
    "inspections": ("uid", "date", "recorded_at", "findings"),
    "healed": ("uid", "date", "finding", "recorded_at"),
    # No uid of its own: a latch is known by the moment it latched (and the reading), which is
    # how an import recognises one it already has.
    "latches": ("session_uid", "latched_at", "skin_c", "message", "reset_at", "reset_skin_c"),
}

# Columns a file from an older SoleGuard lacks, and what such a row means without them: not
# simulated, no process known (the next start closes it as interrupted if it is unfinished).
_DEFAULTS: Final[Mapping[str, Any]] = {"simulated": False, "pid": None}

_SELECT: Final[Mapping[str, str]] = {
    "sessions": "SELECT uid, started_at, program, profile, scenario, cutoff_c, pressure_cap_mmhg, "
    "ended_at, ended_by, max_skin_c, max_pressure_mmhg, time_above_cutoff_s, heat_s, "
    "simulated, pid FROM sessions ORDER BY started_at, id",
    "readings": "SELECT s.uid, r.time, r.skin_c, r.pressure_mmhg, r.pressure_cap_mmhg, "
    "r.heater_on, r.pad_c FROM readings r JOIN sessions s ON s.id = r.session_id "
    "ORDER BY s.started_at, s.id, r.time",
    "alarms": "SELECT a.uid, s.uid, a.time, a.code, a.priority, a.message FROM alarms a "
    "LEFT JOIN sessions s ON s.id = a.session_id ORDER BY a.time, a.uid",
    "checklists": "SELECT c.uid, s.uid, c.time, c.answers, c.blocked, c.reason, c.inspected "
    "FROM checklists c LEFT JOIN sessions s ON s.id = c.session_id ORDER BY c.time, c.uid",
    "pain": "SELECT s.uid, p.moment, p.score FROM pain p JOIN sessions s ON s.id = p.session_id "
    "ORDER BY s.started_at, s.id, p.moment DESC",
    "acknowledgements": "SELECT name, time FROM acknowledgements ORDER BY name",
    "sleep": "SELECT date, quality, recorded_at FROM sleep ORDER BY date",
    "notes": "SELECT n.uid, s.uid, n.time, n.text FROM notes n "
    "LEFT JOIN sessions s ON s.id = n.session_id ORDER BY n.time, n.uid",
    "inspections": "SELECT uid, date, recorded_at, findings FROM inspections "
    "ORDER BY date, recorded_at, uid",
    "healed": "SELECT uid, date, finding, recorded_at FROM healed ORDER BY date, recorded_at, uid",
    "latches": "SELECT s.uid, l.latched_at, l.skin_c, l.message, l.reset_at, l.reset_skin_c "
    "FROM latches l LEFT JOIN sessions s ON s.id = l.session_id ORDER BY l.latched_at, l.id",
}

_INSERT_VALUES: Final[Mapping[str, str]] = {
    "sessions": "INSERT INTO sessions (uid, started_at, program, profile, scenario, "
    "cutoff_c, pressure_cap_mmhg, ended_at, ended_by, max_skin_c, max_pressure_mmhg, "
    "time_above_cutoff_s, heat_s, simulated, pid) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    "readings": "INSERT INTO readings (session_id, time, skin_c, pressure_mmhg, "
    "pressure_cap_mmhg, heater_on, pad_c) VALUES (?, ?, ?, ?, ?, ?, ?)",
    "alarms": "INSERT INTO alarms (uid, session_id, time, code, priority, message) "
    "VALUES (?, ?, ?, ?, ?, ?)",
    "checklists": "INSERT INTO checklists (uid, session_id, time, answers, blocked, "
    "reason, inspected) VALUES (?, ?, ?, ?, ?, ?, ?)",
    "pain": "INSERT INTO pain (session_id, moment, score) VALUES (?, ?, ?)",
    "acknowledgements": "INSERT INTO acknowledgements (name, time) VALUES (?, ?)",
    "sleep": "INSERT INTO sleep (date, quality, recorded_at) VALUES (?, ?, ?)",
    "notes": "INSERT INTO notes (uid, session_id, time, text) VALUES (?, ?, ?, ?)",
    "inspections": "INSERT INTO inspections (uid, date, recorded_at, findings) VALUES (?, ?, ?, ?)",
    "healed": "INSERT INTO healed (uid, date, finding, recorded_at) VALUES (?, ?, ?, ?)",
}

# DO NOTHING on a duplicate key only; unlike INSERT OR IGNORE it does not silently skip a row
# that breaks a CHECK constraint (a pain score of 11 must be an error, not a lost row).
_INSERT: Final[Mapping[str, str]] = {
    **{name: f"{statement} ON CONFLICT DO NOTHING" for name, statement in _INSERT_VALUES.items()},
    # The latches table has no unique key to conflict on: a latch already present (same moment,
    # same reading) is skipped here, so importing twice adds nothing and a local reset stands.
    "latches": "INSERT INTO latches (session_id, latched_at, skin_c, message, reset_at, "
    "reset_skin_c) SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE NOT EXISTS "
    "(SELECT 1 FROM latches WHERE latched_at = ?2 AND skin_c = ?3)",
}

_BOOLEAN_COLUMNS: Final = frozenset({"heater_on", "blocked", "inspected", "simulated"})
_NUMBER_COLUMNS: Final = frozenset(
    {"started_at", "cutoff_c", "pressure_cap_mmhg", "time", "pressure_mmhg", "recorded_at"}
    | {"latched_at"}
)
_OPTIONAL_NUMBER_COLUMNS: Final = frozenset(
    {"ended_at", "max_skin_c", "max_pressure_mmhg", "time_above_cutoff_s", "heat_s"}
    | {"skin_c", "pad_c", "reset_at", "reset_skin_c"}
)
_INTEGER_COLUMNS: Final = frozenset({"score", "quality"})
_OPTIONAL_INTEGER_COLUMNS: Final = frozenset({"pid"})
_OPTIONAL_TEXT_COLUMNS: Final = frozenset({"profile", "scenario", "ended_by", "reason"})
_DATE_COLUMNS: Final = frozenset({"date"})
_JSON_COLUMNS: Final = frozenset({"answers", "findings"})


def dump_tables(conn: sqlite3.Connection) -> dict[str, list[dict[str, Any]]]:
    """Every journal table as a list of rows (dicts), booleans and JSON columns decoded."""
    tables: dict[str, list[dict[str, Any]]] = {}
    for name, columns in TABLES.items():
        rows = []
        for values in conn.execute(_SELECT[name]):
            row = dict(zip(columns, values, strict=True))
            for column in _BOOLEAN_COLUMNS.intersection(row):
                row[column] = bool(row[column])
            for column in _JSON_COLUMNS.intersection(row):
                row[column] = json.loads(row[column])
            rows.append(row)
        tables[name] = rows
    return tables


def load_tables(
    conn: sqlite3.Connection,
    tables: Mapping[str, Sequence[Mapping[str, Any]]],
    *,
    today: dt.date | None = None,
) -> dict[str, int]:
    """Insert the rows not present yet; return how many new rows each table got.

    The caller owns the transaction (all or nothing). A malformed row, or a diary date after
    ``today`` (default: the local calendar's today), raises :class:`InvalidValueError` naming the
    table, the row number and the problem.
    """
    if today is None:
        today = localdate.today()
    unknown = set(tables) - set(TABLES)
    if unknown:
        raise InvalidValueError(f"import: unknown table(s) {', '.join(sorted(unknown))}")
    added: dict[str, int] = {}
    session_ids: dict[str, int] = {}
    for name, columns in TABLES.items():
        count = 0
        for index, row in enumerate(tables.get(name, ())):
            try:
                values = _values(conn, name, columns, row, session_ids, today)
                cursor = conn.execute(_INSERT[name], values)
            except (KeyError, TypeError, ValueError, sqlite3.IntegrityError) as exc:
                detail = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
                raise InvalidValueError(f"import: {name} row {index + 1}: {detail}") from exc
            count += max(cursor.rowcount, 0)
        added[name] = count
    return added


def _values(
    conn: sqlite3.Connection,
    table: str,
    columns: tuple[str, ...],
    row: Mapping[str, Any],
    session_ids: dict[str, int],
    today: dt.date,
) -> tuple[Any, ...]:
    if not isinstance(row, Mapping):
        raise TypeError(f"expected an object, got {type(row).__name__}")
    values: list[Any] = []
    for column in columns:
        if column == "session_uid" or column in _DEFAULTS:
            value = row.get(column, _DEFAULTS.get(column))
        else:
            value = row[column]
        if column == "session_uid":
            value = _session_id(conn, value, session_ids, required=table in {"readings", "pain"})
        elif column in _BOOLEAN_COLUMNS:
            if not isinstance(value, bool):
                raise TypeError(f"{column}: {shown(value)} is not true or false")
            value = int(value)
        elif column in _NUMBER_COLUMNS or column in _OPTIONAL_NUMBER_COLUMNS:
            optional = column in _OPTIONAL_NUMBER_COLUMNS
            is_number = isinstance(value, int | float) and not isinstance(value, bool)
            if not (is_number or (optional and value is None)):
                raise TypeError(f"{column}: {shown(value)} is not a number")
        elif column in _INTEGER_COLUMNS or column in _OPTIONAL_INTEGER_COLUMNS:
            optional = column in _OPTIONAL_INTEGER_COLUMNS
            is_integer = isinstance(value, int) and not isinstance(value, bool)
            if not (is_integer or (optional and value is None)):
                raise TypeError(f"{column}: {shown(value)} is not a whole number")
        elif column in _DATE_COLUMNS:
            if not isinstance(value, str):
                raise TypeError(f"{column}: {shown(value)} is not a YYYY-MM-DD date")
            try:
                parsed = dt.date.fromisoformat(value)
            except ValueError:
                # Python's own message echoes the whole text: say what is allowed instead.
                raise TypeError(f"{column}: {shown(value)} is not a YYYY-MM-DD date") from None
            if parsed > today:
                # As everywhere a user gives a date: a record from the future would satisfy (or
                # lift) every later check, e.g. a daily inspection or a healed wound.
                raise ValueError(f"{column}: {value} is after today ({today.isoformat()})")
            value = parsed.isoformat()
        elif column == "findings":
            if not isinstance(value, list):
                raise TypeError(f"findings: {shown(value)} is not a list")
            value = json.dumps(sorted(check_findings(value)))
        elif column == "answers":
            if not isinstance(value, Mapping):
                raise TypeError(f"answers: {shown(value)} is not an object")
            value = json.dumps(dict(value), sort_keys=True)
        elif (value is not None or column not in _OPTIONAL_TEXT_COLUMNS) and not isinstance(
            value, str
        ):
            raise TypeError(f"{column}: {shown(value)} is not text")
        values.append(value)
    return tuple(values)


def _session_id(
    conn: sqlite3.Connection, uid: object, cache: dict[str, int], *, required: bool
) -> int | None:
    if uid is None:
        if required:
            raise ValueError("session_uid: missing")
        return None
    if not isinstance(uid, str):
        raise TypeError(f"session_uid: {uid!r} is not a string")
    if uid not in cache:
        row = conn.execute("SELECT id FROM sessions WHERE uid = ?", (uid,)).fetchone()
        if row is None:
            raise ValueError(f"session_uid: {uid!r} names no session in the file or the journal")
        cache[uid] = int(row[0])
    return cache[uid]
