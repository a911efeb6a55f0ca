"""Backups of the journal that work while SoleGuard runs, and a restore.

The journal is in WAL mode: committed rows live in ``journal.sqlite3-wal`` until a checkpoint
moves them into ``journal.sqlite3``. A plain file copy of the main file alone, taken while a hub
keeps the journal open or after a process was killed, can therefore miss everything (a new
journal's tables included). Two things fix that:

- :func:`checkpoint` moves the log into the main file; the store calls it when a session ends and
  when it closes, so a nightly file copy of the data folder holds every finished session.
- :func:`backup` makes a consistent single-file copy at any moment with SQLite's online backup
  API, from a read-only connection: writers in other processes go on (WAL readers never block
  them), and the copy is one snapshot, whatever they commit meanwhile.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

# The module, not the name: the database imports this module (a cycle); read at call time.
from controller.store import database as _database
from controller.store.errors import RefusedError, StoreError
from controller.store.processes import pid_alive
from controller.store.schema import SCHEMA_VERSION, schema_version

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["BackupSummary", "backup", "checkpoint", "restore"]

_LOGGER = logging.getLogger(__name__)

# Tables whose presence tells a SoleGuard journal from any other SQLite file.
_JOURNAL_TABLES = frozenset({"sessions", "readings", "schema_version"})


@dataclass(frozen=True, slots=True)
class BackupSummary:
    """What a backup or restore copied: the file written, and its sessions and readings."""

    path: Path
    sessions: int
    readings: int


def checkpoint(conn: sqlite3.Connection) -> bool:
    """Move the write-ahead log into the main database file; return whether all of it moved.

    PASSIVE: never waits and never blocks a writer or a reader. A reader in another process still
    on an older snapshot keeps the newest frames in the log (False); they move at the next one.
    Raises ``sqlite3.Error`` as the connection does.
    """
    busy, log_frames, moved = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    # log_frames is -1 when the database is not in WAL mode: nothing to move.
    complete = bool(busy == 0 and log_frames in (-1, moved))
    if not complete:
        _LOGGER.debug("checkpoint moved %s of %s log frames (busy=%s)", moved, log_frames, busy)
    return complete


def backup(source: Path, out: Path) -> BackupSummary:
    """Copy the journal at ``source`` into the new single file ``out``, consistently, online.

    The copy is written next to ``out`` under a temporary name, checked (``PRAGMA
    quick_check``), switched to a rollback journal so it is complete on its own (no ``-wal``),
    synced and then renamed over ``out``. Raises :class:`StoreError` naming the file when the
    source is missing or not a journal, or ``out`` is the journal itself or a database in use.
    """
    source, out = Path(source), Path(out)
    if not source.is_file():
        raise RefusedError(f"{source}: no journal here to back up")
    if out.exists() and out.resolve() == source.resolve():
        raise RefusedError(f"{out}: is the journal itself; back up to another file")
    if out.is_file() and out.stat().st_size > 0:
        # Replacing an older backup is routine; replacing some other file is never what was meant.
        with _read_only(out) as existing:
            _require_journal(existing, out, hint="choose another file; nothing was written")
    for suffix in ("-wal", "-shm"):
        if Path(f"{out}{suffix}").exists():
            raise RefusedError(
                f"{out}: looks like a database in use ({out.name}{suffix} exists); "
                "back up to a new file"
            )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
        os.close(handle)
    except OSError as exc:
        raise StoreError(f"{out}: cannot write the backup: {exc.strerror or exc}") from exc
    temporary = Path(name)
    try:
        with _read_only(source) as src, _closing(sqlite3.connect(temporary)) as dst:
            _require_journal(src, source)
            # pages=-1: the whole database in one step, so one read transaction (one snapshot).
            src.backup(dst, pages=-1)
            summary = _checked(dst, out)
            dst.execute("PRAGMA journal_mode = DELETE")
        _fsync(temporary)
        temporary.replace(out)
        _fsync(out.parent)
    except sqlite3.Error as exc:
        raise StoreError(f"{source}: backup to {out} failed: {exc}") from exc
    except OSError as exc:
        raise StoreError(f"{out}: cannot write the backup: {exc.strerror or exc}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    return summary


def restore(backup_file: Path, target: Path, *, replace: bool = False) -> BackupSummary:
    """Put the journal in ``backup_file`` at ``target`` (SoleGuard must not be running).

    The backup is checked first. A ``target`` that exists is only overwritten with ``replace``;
    it is written through SQLite's backup API, so its write-ahead log stays consistent with it.
    Raises :class:`StoreError` naming the file at fault.
    """
    backup_file, target = Path(backup_file), Path(target)
    if not backup_file.is_file():
        raise RefusedError(f"{backup_file}: no such backup file")
    if target.exists() and target.stat().st_size > 0 and not replace:
        raise RefusedError(
            f"{target}: a journal is already here; give --replace to overwrite it "
            "(or `soleguard journal export` it first)"
        )
    if target.exists():
        _refuse_if_in_use(target)
    with _read_only(backup_file) as src:
        try:
            _require_journal(src, backup_file)
            result = src.execute("PRAGMA quick_check").fetchone()[0]
            version = schema_version(src)
        except sqlite3.DatabaseError as exc:
            result, version = str(exc), 0
        if result != "ok":
            raise StoreError(f"{backup_file}: the backup is damaged ({result}); nothing restored")
        if version > SCHEMA_VERSION:
            # Restoring it would replace a journal this SoleGuard can open with one it cannot.
            raise StoreError(
                f"{backup_file}: written by a newer SoleGuard (journal schema {version}, this one "
                f"knows up to {SCHEMA_VERSION}); upgrade SoleGuard to restore it; nothing restored"
            )
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with _closing(sqlite3.connect(target, timeout=_database.BUSY_TIMEOUT_S)) as dst:
                src.backup(dst, pages=-1)
                dst.execute("PRAGMA journal_mode = WAL")
                summary = _checked(dst, target)
                checkpoint(dst)
            # The journal holds health data: readable by its owner only, as a backup is.
            target.chmod(0o600)
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"{target}: cannot restore into it ({exc}); move the damaged file aside first"
            ) from exc
        except OSError as exc:
            raise StoreError(f"{target}: cannot restore into it: {exc.strerror or exc}") from exc
    return summary


def _refuse_if_in_use(target: Path) -> None:
    """Refuse to restore over a journal a live SoleGuard process is writing a session into.

    A session row records its process id until it ends; one whose process is alive would go on
    writing into the replaced file and be lost. (An idle SoleGuard holds no such row: the README
    asks to stop SoleGuard before a restore.)
    """
    try:
        with _read_only(target) as conn:
            rows = conn.execute(
                "SELECT id, pid FROM sessions WHERE ended_at IS NULL AND ended_by IS NULL"
            ).fetchall()
    except sqlite3.DatabaseError:
        return  # not a readable journal: nothing of ours runs on it
    for session_id, pid in rows:
        if pid is not None and int(pid) != os.getpid() and pid_alive(int(pid)):
            raise StoreError(
                f"{target}: SoleGuard (process {pid}) is running session {session_id} on this "
                "journal; stop it first, then restore; nothing restored"
            )


@contextlib.contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection]:
    uri = f"file:{quote(os.fspath(path.resolve()))}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=_database.BUSY_TIMEOUT_S)
    except sqlite3.Error as exc:
        raise StoreError(f"{path}: cannot open the journal: {exc}") from exc
    with _closing(conn):
        yield conn


@contextlib.contextmanager
def _closing(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    # sqlite3's own context manager commits but does not close.
    try:
        yield conn
    finally:
        conn.close()


def _require_journal(conn: sqlite3.Connection, path: Path, *, hint: str = "") -> None:
    more = f"; {hint}" if hint else ""
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    except sqlite3.DatabaseError as exc:
        raise RefusedError(f"{path}: not a SoleGuard journal ({exc}){more}") from exc
    if not tables >= _JOURNAL_TABLES:
        raise RefusedError(f"{path}: not a SoleGuard journal (no sessions table){more}")


def _checked(conn: sqlite3.Connection, path: Path) -> BackupSummary:
    result = conn.execute("PRAGMA quick_check").fetchone()[0]
    if result != "ok":
        raise StoreError(f"{path}: the copy does not check out ({result})")
    sessions = conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0]
    readings = conn.execute("SELECT COUNT(*) FROM readings").fetchone()[0]
    return BackupSummary(path, int(sessions), int(readings))


def _fsync(path: Path) -> None:
    """Flush a file (or a folder's entries) to disk; a folder that cannot be opened is skipped."""
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:
        return  # Windows cannot open a folder; its rename is durable enough there
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
