"""Schema versions: new files, old files brought forward, and files from a newer SoleGuard."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

import pytest

from controller.errors import StoreError
from controller.journal.blocks import open_wound_reason
from controller.safety import EndReason
from controller.store import SCHEMA_VERSION, Store
from controller.store.schema import MIGRATIONS, migrate, schema_version

if TYPE_CHECKING:
    from pathlib import Path


def _autocommit(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


def test_version_one_database_with_data_is_migrated_forward(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    conn = _autocommit(path)
    assert migrate(conn, MIGRATIONS[:1]) == 1
    conn.execute(
        "INSERT INTO sessions (uid, started_at, program, cutoff_c, pressure_cap_mmhg) "
        "VALUES ('abc', 1000.0, 'gentle', 40.0, 30.0)"
    )
    # An ended session as the first version wrote it: the reason as plain text.
    conn.execute(
        "INSERT INTO sessions (uid, started_at, program, cutoff_c, pressure_cap_mmhg, "
        "ended_at, ended_by) VALUES ('def', 2000.0, 'standard', 40.0, 30.0, 3200.0, 'checklist')"
    )
    conn.close()

    with Store.open(path) as store:
        session, ended = sorted(store.sessions(), key=lambda record: record.started_at)
        assert session.program == "gentle"
        assert session.uid == "abc"
        assert session.ended_by is None
        # The old row's reason reads as the one vocabulary (the CLI tells a refusal by it).
        assert ended.ended_by is EndReason.CHECKLIST
        # Tables of later versions now exist and work.
        assert store.alert_counts() == (0, 0)
        assert open_wound_reason(store) is None
    assert schema_version(_autocommit(path)) == SCHEMA_VERSION


def test_only_pending_migrations_run(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    conn = _autocommit(path)
    steps = (("CREATE TABLE a (x INTEGER)",), ("CREATE TABLE b (y INTEGER)",))
    assert migrate(conn, steps[:1]) == 1
    conn.execute("INSERT INTO a VALUES (7)")
    assert migrate(conn, steps) == 2
    assert migrate(conn, steps) == 2  # idempotent
    assert conn.execute("SELECT x FROM a").fetchall() == [(7,)]


def test_failed_migration_leaves_the_previous_version(tmp_path: Path) -> None:
    conn = _autocommit(tmp_path / "db.sqlite3")
    steps = (("CREATE TABLE a (x INTEGER)",), ("CREATE TABLE b (y)", "THIS IS NOT SQL"))
    with pytest.raises(sqlite3.OperationalError):
        migrate(conn, steps)
    assert schema_version(conn) == 1
    tables = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "b" not in tables


def test_a_newer_schema_is_refused_with_advice(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    Store.open(path).close()
    conn = _autocommit(path)
    conn.execute("INSERT INTO schema_version VALUES (?, 0)", (SCHEMA_VERSION + 1,))
    conn.close()
    with pytest.raises(StoreError, match="newer SoleGuard"):
        Store.open(path)
