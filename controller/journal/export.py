"""The whole journal to JSON (and back) or to CSV files, to move machines or give to a clinician.

The JSON document::

    {"format": "soleguard-journal", "version": 1, "schema_version": 3,
     "exported_at": "2024-06-03T09:15:00+02:00", "tables": {"sessions": [...], ...}}

``tables`` is :meth:`Store.export_tables`: rows refer to sessions by ``uid``, so an import into a
database with sessions of its own neither collides nor duplicates (see
:mod:`controller.store.transfer`). Floats are written with Python's shortest round-trip repr, so an
export, import and export again give the same tables. The CSV export writes one file per table
with the same columns; JSON-valued columns (checklist answers, findings) hold JSON text there.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import TYPE_CHECKING, Any, Final

from controller.errors import shown
from controller.journal.errors import JournalError, OutputError
from controller.journal.render import write_atomically
from controller.store import SCHEMA_VERSION, Store
from controller.store.transfer import TABLES

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "export_document",
    "import_document",
    "import_json",
    "read_json",
    "write_csv",
    "write_json",
]

FORMAT: Final = "soleguard-journal"
FORMAT_VERSION: Final = 1


def export_document(store: Store) -> dict[str, Any]:
    """The whole journal as one JSON-ready document: format, versions and every table's rows."""
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "schema_version": SCHEMA_VERSION,
        "exported_at": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "tables": store.export_tables(),
    }


def write_json(store: Store, out: Path) -> dict[str, int]:
    """Write the journal to ``out`` as JSON, whole or not at all; return the rows per table.

    Raises OutputError (a JournalError) naming ``out`` when it cannot be written, StoreError when
    the journal cannot be read.
    """
    document = export_document(store)
    text = json.dumps(document, indent=1, ensure_ascii=False, allow_nan=False)
    write_atomically(out, text.encode())
    return {name: len(rows) for name, rows in document["tables"].items()}


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def write_csv(store: Store, folder: Path) -> list[Path]:
    """Write one ``<table>.csv`` per table into ``folder`` (created if needed); return the paths.

    Cells: empty for NULL, ``true``/``false``, JSON for nested values, ``repr`` of floats (no
    precision lost). Raises OutputError naming the folder or file that cannot be written.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{folder}: cannot create the folder: {exc.strerror or exc}") from exc
    tables = store.export_tables()
    written = []
    for name, columns in TABLES.items():
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        for row in tables[name]:
            writer.writerow([_cell(row[column]) for column in columns])
        path = folder / f"{name}.csv"
        write_atomically(path, buffer.getvalue().encode())
        written.append(path)
    return written


def read_json(path: Path) -> dict[str, Any]:
    """Read and check an export file; return the document (its ``tables`` a dict).

    Raises JournalError, one line naming the file and what is wrong: unreadable, not UTF-8, not
    JSON, not a SoleGuard export, another format version, or no ``tables`` object.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise JournalError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise JournalError(f"{path}: not a SoleGuard journal export (not UTF-8 text)") from exc
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise JournalError(f"{path}: not valid JSON: {exc}") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise JournalError(f"{path}: not a SoleGuard journal export (no format {FORMAT!r})")
    version = document.get("version")
    if version != FORMAT_VERSION:
        raise JournalError(
            f"{path}: export format version {shown(version)}; this SoleGuard reads {FORMAT_VERSION}"
        )
    if not isinstance(document.get("tables"), dict):
        raise JournalError(f"{path}: 'tables' is missing or not an object")
    return document


def import_document(store: Store, document: dict[str, Any]) -> dict[str, int]:
    """Add the rows of an exported ``document`` not in ``store`` yet, all or nothing.

    Returns the count of new rows per table. Raises `JournalError` (one line) for a table that is
    not a list of rows, and whatever `Store.import_tables` raises for rows it refuses.
    """
    tables = document["tables"]
    for name, rows in tables.items():
        if not isinstance(rows, list):
            raise JournalError(f"import: table {shown(name)} is not a list of rows")
    return store.import_tables(tables)


def import_json(store: Store, path: Path) -> dict[str, int]:
    """Add what ``path`` holds and the journal lacks; return the new rows per table.

    Raises what `read_json` and `import_document` raise.
    """
    return import_document(store, read_json(path))
