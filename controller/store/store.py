"""The journal: :class:`Store` is the database with all its parts.

Each part is a module: :mod:`.database` (the file, migrations, transactions), :mod:`.sessions`
(sessions, readings, alarms, checklist, pain), :mod:`.outbox` (caregiver alerts) and :mod:`.diary`;
:mod:`.latch`, :mod:`.backup` and :mod:`.transfer` work on a :class:`Store`. Thread safety and
transactions: see :mod:`controller.store.database`.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

from controller.store.database import DB_FILENAME, default_store_path
from controller.store.diary import Diary
from controller.store.errors import StoreError
from controller.store.outbox import Outbox
from controller.store.sessions import Sessions
from controller.store.transfer import dump_tables, load_tables

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

__all__ = ["DB_FILENAME", "Store", "default_store_path"]


class Store(Sessions, Outbox, Diary):
    """The journal database: :meth:`open` it, then use it as a context manager or :meth:`close`."""

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
