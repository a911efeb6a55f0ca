"""A session whose process died is closed at the next start as interrupted, with what is known."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

from controller.safety import EndReason
from controller.store import ReadingRow, Store

if TYPE_CHECKING:
    from pathlib import Path

# Realistic epoch seconds, not 0.
T0 = 1_790_000_000.0


def dead_pid() -> int:
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(child.stdout)


def start(store: Store, at: float) -> int:
    return store.start_session(
        started_at=at, program="standard", profile=None, cutoff_c=40.0, pressure_cap_mmhg=60.0
    )


def test_a_dead_process_s_session_is_closed_as_interrupted_and_a_live_one_kept(
    tmp_path: Path,
) -> None:
    with Store.open(tmp_path / "journal.sqlite3") as store:
        killed = start(store, T0)
        store.add_readings(
            killed,
            [
                ReadingRow(T0 + 1.0, 33.0, 20.0, 60.0, True, 38.0),
                ReadingRow(T0 + 61.0, 36.5, 45.0, 60.0, True, 39.0),
            ],
        )
        conn = store._conn
        assert conn is not None
        conn.execute("UPDATE sessions SET pid = ? WHERE id = ?", (dead_pid(), killed))
        running = start(store, T0 + 100.0)  # this process's own, still running

        assert store.close_interrupted() == [killed]

        record = store.get_session(killed)
        assert record.ended_by is EndReason.INTERRUPTED
        assert record.ended_at == T0 + 61.0  # its last reading: what is known
        assert record.max_skin_c == 36.5
        assert record.max_pressure_mmhg == 45.0
        assert store.get_session(running).ended_by is None
        assert store.close_interrupted() == []
