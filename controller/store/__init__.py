"""The SQLite journal: sessions, readings, alarms, checklist, pain, the alert outbox and the diary.

Open it with ``Store.open(path)`` (``None``: the platform's user data directory); every method is
synchronous, short, and safe to call from several threads (see :mod:`controller.store.database`).
"""

from controller.store.errors import (
    InvalidValueError,
    RefusedError,
    StoreError,
    UnknownSessionError,
)
from controller.store.records import (
    ALARM_PRIORITIES,
    ENDED_BY,
    FINDINGS,
    OPEN_WOUND_FINDINGS,
    AlarmRecord,
    ChecklistRecord,
    InspectionRecord,
    NoteRecord,
    OutboxAlert,
    ReadingRow,
    SessionRecord,
    SleepEntry,
)
from controller.store.schema import SCHEMA_VERSION
from controller.store.store import DB_FILENAME, Store, default_store_path

__all__ = [
    "ALARM_PRIORITIES",
    "DB_FILENAME",
    "ENDED_BY",
    "FINDINGS",
    "OPEN_WOUND_FINDINGS",
    "SCHEMA_VERSION",
    "AlarmRecord",
    "ChecklistRecord",
    "InspectionRecord",
    "InvalidValueError",
    "NoteRecord",
    "OutboxAlert",
    "ReadingRow",
    "RefusedError",
    "SessionRecord",
    "SleepEntry",
    "Store",
    "StoreError",
    "UnknownSessionError",
    "default_store_path",
]
