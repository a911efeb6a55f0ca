"""The session history as rows: for the rich table, ``--json`` and ``--csv``."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from collections.abc import Sequence

    from controller.store import SessionRecord, Store

__all__ = ["HISTORY_COLUMNS", "history_rows", "local_midnight", "rows_to_csv", "rows_to_json"]

# Machine-readable columns, in the order `--csv` writes them.
HISTORY_COLUMNS: Final = (
    "id",
    "started",
    "program",
    "profile",
    "scenario",
    "duration_s",
    "ended_by",
    "max_skin_c",
    "cutoff_c",
    "time_above_cutoff_s",
    "max_pressure_mmhg",
    "pressure_cap_mmhg",
    "heat_s",
    "alarms",
    "pain_before",
    "pain_after",
)


def local_midnight(date: dt.date) -> float:
    """Epoch seconds of the start of ``date`` in the local time zone."""
    return dt.datetime.combine(date, dt.time.min).astimezone().timestamp()


def _row(record: SessionRecord) -> dict[str, Any]:
    started = dt.datetime.fromtimestamp(record.started_at).astimezone()
    return {
        "id": record.id,
        "started": started.isoformat(timespec="seconds"),
        "program": record.program,
        "profile": record.profile,
        "scenario": record.scenario,
        "duration_s": record.duration_s,
        "ended_by": record.ended_by,
        "max_skin_c": record.max_skin_c,
        "cutoff_c": record.cutoff_c,
        "time_above_cutoff_s": record.time_above_cutoff_s,
        "max_pressure_mmhg": record.max_pressure_mmhg,
        "pressure_cap_mmhg": record.pressure_cap_mmhg,
        "heat_s": record.heat_s,
        "alarms": record.alarm_count,
        "pain_before": record.pain_before,
        "pain_after": record.pain_after,
    }


def history_rows(
    store: Store,
    *,
    since: dt.date | None = None,
    limit: int | None = None,
    simulated: bool = False,
) -> list[dict[str, Any]]:
    """Sessions started on or after ``since`` (local date), newest first, as plain dicts.

    At most ``limit`` rows (None: all). Keys are `HISTORY_COLUMNS`; ``started`` is local ISO
    8601 time with its offset, units in the key names (s, degC ``_c``, mmHg). Simulated sessions
    (the demo's) only with ``simulated``. Raises StoreError if the journal cannot be read.
    """
    records = store.sessions(
        None if since is None else local_midnight(since), limit, simulated=simulated
    )
    return [_row(record) for record in records]


def rows_to_json(rows: Sequence[dict[str, Any]]) -> str:
    """The history rows as an indented JSON array (non-ASCII text kept as is)."""
    return json.dumps(list(rows), indent=2, ensure_ascii=False)


def rows_to_csv(rows: Sequence[dict[str, Any]]) -> str:
    """The history rows as CSV with a header line (`HISTORY_COLUMNS`)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=HISTORY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_cell(v) for k, v in row.items()})
    return buffer.getvalue()


# Two decimals: 0.01 °C is the resolution our Health Thermometer codec keeps (the IEEE-11073 FLOAT
# of a Temperature Measurement can carry a finer exponent; controller/protocol/hts.py rounds it to
# 0.01), and more than any sensor, pump or clock here resolves (58.40147018273746 mmHg claims a
# precision nothing measured).
CSV_DECIMALS = 2


def _csv_cell(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, float):
        return round(value, CSV_DECIMALS)
    return value
