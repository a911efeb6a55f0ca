"""The journal database: one SQLite file in WAL mode, its migrations, and one transaction per call.

Thread safety: one :class:`Database` holds one connection opened with ``check_same_thread=False``
and guards every call with an internal lock, so the service may call it from the event loop thread
for tiny writes and from ``asyncio.to_thread`` for larger ones. Each call is one short transaction;
nothing is held open between calls. Other processes (``soleguard history`` while a hub runs) may
open the same file: WAL lets them read while the service writes.

The rows themselves are kept by the parts built on this class: :mod:`.sessions`, :mod:`.outbox`
and :mod:`.diary`; :class:`controller.store.Store` is all of them together.
"""

from __future__ import annotations

import logging
import math
import secrets
import shutil
import sqlite3
import threading
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Final, Self

from controller.store.backup import checkpoint
from controller.store.errors import RefusedError, StoreError, UnknownSessionError
from controller.store.locking import BUSY_SLICE_S, BUSY_WORDS, execute_waiting
from controller.store.schema import migrate

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import TracebackType

__all__ = ["APP_NAME", "BUSY_TIMEOUT_S", "DB_FILENAME", "Database", "default_store_path"]

_LOGGER = logging.getLogger(__name__)

DB_FILENAME: Final = "journal.sqlite3"
APP_NAME: Final = "soleguard"
# Why 5 s: another process (a `soleguard history` or an export) may hold the write lock for a
# moment; a writer waits this long before failing. Longer would stall the service's store task
# behind a stuck reader; every write here takes milliseconds.
BUSY_TIMEOUT_S: Final = 5.0
_SYNC_NORMAL: Final = "NORMAL"
_SYNC_FULL: Final = "FULL"


def default_store_path() -> Path:
    """``journal.sqlite3`` in the platform's user data directory."""
    import platformdirs  # noqa: PLC0415 (keeps `soleguard --help` fast)

    return Path(platformdirs.user_data_dir(APP_NAME)) / DB_FILENAME


def new_uid() -> str:
    """A row's uid: a uuid4 in hex, how an export names the row on any machine."""
    return uuid.uuid4().hex


def finite_or_none(value: float | None) -> float | None:
    """``value``, or None for a NaN or an infinity (SQLite would store a NaN as NULL anyway)."""
    return value if value is not None and math.isfinite(value) else None


# What a journal that cannot be opened says, by SQLite's words for the fault: what is wrong and
# what the user can do about it, in one line.
_OPEN_FAULTS: Final = (
    (
        ("database or disk is full",),
        "the disk is full; free some space, or choose another data folder "
        "(storage.path in the settings)",
    ),
    (
        BUSY_WORDS,
        "the journal is locked by another program (another SoleGuard command?); "
        "let it finish or close it, then try again",
    ),
    (
        ("file is not a database", "malformed", "corrupt"),
        "the journal is damaged; restore a backup (`soleguard journal restore FILE`), "
        "or move the file aside to start a new journal",
    ),
    (
        ("readonly", "read-only", "unable to open", "disk i/o error", "permission"),
        "the journal cannot be opened for writing; check the file's permissions and the disk, "
        "or choose another data folder (storage.path in the settings)",
    ),
)


def open_fault(target: Path, exc: sqlite3.Error) -> StoreError:
    """The one line for a journal at ``target`` that SQLite could not open or set up.

    A runtime fault, not a usage error (exit status 1): names the file, the fault and the fix,
    with SQLite's own words in brackets.
    """
    words = str(exc)
    lowered = words.lower()
    if ("i/o error" in lowered or "unable to open" in lowered) and _nearly_full(target.parent):
        # A full disk often reaches SQLite as "disk I/O error" (the -shm file cannot grow).
        lowered = f"database or disk is full; {lowered}"
    for markers, line in _OPEN_FAULTS:
        if any(marker in lowered for marker in markers):
            return StoreError(f"{target}: {line} ({words})")
    return StoreError(f"{target}: cannot use the journal database: {words}")


# Less free space than this where the journal lives is a full disk: a new journal with its
# write-ahead log and index needs about 100 KiB; a session adds about 100 KiB more.
NEARLY_FULL_BYTES: Final = 1024 * 1024


def _nearly_full(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < NEARLY_FULL_BYTES
    except OSError:
        return False


def _begin_at_start_up(conn: sqlite3.Connection) -> None:
    execute_waiting(conn, "BEGIN IMMEDIATE", BUSY_TIMEOUT_S, stop_on_signal=True)


class Database:
    """The journal file: :meth:`open` it, then use it as a context manager or :meth:`close`.

    Every read or write raises `StoreError` (naming the file) when SQLite fails or the journal
    is closed; values outside their range raise `InvalidValueError` (naming the field and the
    allowed values) before anything is written. Times are epoch seconds, dates local dates.
    Safe to share between threads: one connection, used under one lock.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path) -> None:
        self._conn: sqlite3.Connection | None = conn
        self._lock = threading.Lock()
        self.path = path

    # -- lifecycle -------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path | None = None) -> Self:
        """Open (creating if needed) the journal at ``path``, else in the user data directory.

        Brings the schema up to date (`controller.store.schema.migrate`). Raises `StoreError`
        for a folder where the file should be, a file that is not a journal, or a schema
        newer than this version knows.
        """
        target = default_store_path() if path is None else Path(path)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            # The path is the user's to fix (storage.path, --db): a usage error everywhere.
            raise RefusedError(
                f"{target}: cannot create the journal's folder: {exc.strerror or exc}"
            ) from exc
        if target.is_dir():
            raise RefusedError(f"{target}: is a folder, not a journal database file")
        try:
            conn = sqlite3.connect(
                target, timeout=BUSY_SLICE_S, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise open_fault(target, exc) from exc
        try:
            # Start-up: a signal while another process holds the lock ends the wait (nothing is
            # written yet); see controller.store.locking.
            mode = execute_waiting(
                conn, "PRAGMA journal_mode = WAL", BUSY_TIMEOUT_S, stop_on_signal=True
            ).fetchone()[0]
            if mode != "wal":
                _LOGGER.warning("%s: WAL mode unavailable, journal mode is %s", target, mode)
            conn.execute("PRAGMA foreign_keys = ON")
            # NORMAL: in WAL mode a commit survives a crash of the process but may be lost in a
            # power cut; fine for readings and diary entries, and it makes a write about 0.03 ms
            # instead of about 4 ms. Writes that must survive a power cut (the alert outbox) ask
            # for FULL on their own transaction (`_write(durable=True)`).
            conn.execute(f"PRAGMA synchronous = {_SYNC_NORMAL}")
            migrate(conn, begin=_begin_at_start_up)
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise open_fault(target, exc) from exc
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
                # In slices: a signal on the main thread is handled while the lock is awaited.
                execute_waiting(conn, "BEGIN IMMEDIATE", BUSY_TIMEOUT_S)
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
