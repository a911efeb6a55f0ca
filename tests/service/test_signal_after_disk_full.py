"""A session ended by a signal exits with the signal's status even when the disk is full.

The breaker (issue 11): a journal on a small tmpfs filled mid-session, then SIGTERM or Ctrl-C;
``soleguard session``/``run`` exited 1 (the `StoreError` of the records after the session)
instead of 143/130. The promise: a storage fault is one line; the exit status is the signal's.
The disk is made full the portable way, as in ``test_disk_full.py``: SQLite's
``max_page_count`` caps the journal at its size, and every page it has is filled.
"""

from __future__ import annotations

import signal
from typing import TYPE_CHECKING

import pytest

from controller.cli.session import _after_or_signal
from controller.errors import Interrupted
from controller.safety import EndReason
from controller.service.runner import SessionOutcome
from controller.store import Store, StoreError
from controller.treatment.checklist import NO_CONTRAINDICATIONS
from tests.service.support import make_settings

if TYPE_CHECKING:
    from pathlib import Path

# More than enough 600-byte checklists to fill the journal's spare page and free space.
FILLER_ROWS = 10_000


def fill(store: Store) -> None:
    """Cap the journal at its size plus a page, then fill it with checklists until it is full."""
    conn = store._conn
    assert conn is not None
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages + 1}")
    for _ in range(FILLER_ROWS):
        try:
            store.record_checklist(
                None, time=1.0e9, answers={"filler": True}, blocked=True, reason="x" * 600
            )
        except StoreError as exc:
            if "full" not in str(exc):
                raise
            return
    raise AssertionError("the journal never filled")


def outcome(ended_by: EndReason) -> SessionOutcome:
    return SessionOutcome(
        ended_by=ended_by,
        duration_s=90.0,
        max_skin_reading_c=33.4,
        time_above_cutoff_s=0.0,
        max_pressure_mmhg=40.0,
        max_measured_pressure_mmhg=41.0,
        heat_s=90.0,
    )


@pytest.mark.parametrize(
    ("ended_by", "signum"),
    [(EndReason.SIGTERM, signal.SIGTERM), (EndReason.SIGINT, signal.SIGINT)],
    ids=["sigterm", "sigint"],
)
def test_a_full_journal_after_a_signal_keeps_the_signals_exit_status(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], ended_by: EndReason, signum: int
) -> None:
    with Store.open(tmp_path / "journal.sqlite3") as store:
        fill(store)
        with pytest.raises(Interrupted) as raised:
            _after_or_signal(
                make_settings(),
                store,
                outcome(ended_by),
                NO_CONTRAINDICATIONS,
                pain_after=None,
                ask=False,
            )
    assert raised.value.signum == signum
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line]
    assert len(lines) == 1, err  # one line for the storage fault, no traceback
    assert "not saved" in lines[0], lines
    assert "database or disk is full" in lines[0], lines


def test_without_a_signal_a_full_journal_is_still_a_failure(tmp_path: Path) -> None:
    with Store.open(tmp_path / "journal.sqlite3") as store:
        fill(store)
        with pytest.raises(StoreError):
            _after_or_signal(
                make_settings(),
                store,
                outcome(EndReason.USER),
                NO_CONTRAINDICATIONS,
                pain_after=None,
                ask=False,
            )
