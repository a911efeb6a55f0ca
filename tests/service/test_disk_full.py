"""A journal that fills up mid-session: the session goes on and ends as it should.

The disk is made full the portable way: SQLite's ``max_page_count`` caps the journal a few pages
above its size, and every write after that fails with SQLITE_FULL, the same "database or disk is
full" a full SD card gives (checked by hand on a 600 KB tmpfs as the data folder: the same lines,
no traceback). Issue 11 met it as a crash 0.7 s later, with ``sqlite3.OperationalError: cannot
rollback - no transaction is active`` escaping instead of a StoreError.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pytest

from controller.safety import EndReason
from controller.service.simulated import run_simulated_session
from controller.store import Store
from controller.treatment.checklist import NO_CONTRAINDICATIONS
from tests.service.support import make_settings

if TYPE_CHECKING:
    from pathlib import Path

# Room for the session's record and a few seconds of readings, not for a 10-minute session.
SPARE_PAGES = 1


async def test_a_journal_that_fills_mid_session_leaves_the_session_safe(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with Store.open(tmp_path / "journal.sqlite3") as store:
        conn = store._conn
        assert conn is not None
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages + SPARE_PAGES}")
        run = await run_simulated_session(
            make_settings(**{"session.max_minutes": 10.0}),
            answers=NO_CONTRAINDICATIONS,
            store=store,
        )
        readings = store.readings(run.outcome.session_id) if run.outcome.session_id else []
    assert run.outcome.ended_by is EndReason.TIMER
    assert run.outcome.duration_s == pytest.approx(600.0, abs=1.0)
    messages = [record.getMessage() for record in caplog.records]
    full = [m for m in messages if "database or disk is full" in m]
    assert full, "the journal never filled: the test did not test anything"
    assert len(full) <= 2  # said once (and once more if the session's end cannot be written)
    assert not any("cannot rollback" in m for m in messages)
    assert not any(record.exc_info for record in caplog.records)
    assert len(readings) < 600  # the journal did fill before the session's end
