"""Diary rules: inspection findings reach the caregiver; open wounds block until healed."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import pytest

from controller import localdate
from controller.journal import diary
from controller.store import InvalidValueError, Store, UnknownSessionError

if TYPE_CHECKING:
    from pathlib import Path

DAY = dt.date(2024, 6, 3)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(tmp_path / "journal.sqlite3")


def test_a_finding_queues_one_low_caregiver_alert(store: Store) -> None:
    outcome = diary.record_inspection(
        store, date=DAY, findings=["blister", "cut"], device_id="bed-7", now=100.0
    )
    assert outcome.blocking is None
    [alert] = store.undelivered_alerts()
    assert alert == outcome.alert
    assert alert.code == diary.INSPECTION_FINDING
    assert alert.priority == "low"
    assert alert.device_id == "bed-7"
    assert alert.time == 100.0
    assert "blister, cut" in alert.message
    assert [i.findings for i in store.inspections()] == [frozenset({"blister", "cut"})]


def test_nothing_found_raises_no_alert(store: Store) -> None:
    outcome = diary.record_inspection(store, date=DAY, findings=["none"], device_id="home")
    assert outcome.alert is None
    assert store.alert_counts() == (0, 0)
    assert not diary.inspection_due(store, today=DAY)
    assert diary.inspection_due(store, today=DAY + dt.timedelta(days=1))


def test_open_wound_blocks_sessions_until_recorded_healed(store: Store) -> None:
    outcome = diary.record_inspection(
        store, date=DAY, findings=["open_wound"], device_id="home", now=1.0
    )
    assert outcome.blocking is not None
    assert "open wound (found 2024-06-03)" in outcome.blocking
    assert "soleguard diary healed open_wound" in outcome.blocking
    assert outcome.alert is not None
    assert "blocked" in outcome.alert.message
    # A clear inspection the next day does not lift the block: only "healed" does.
    diary.record_inspection(
        store, date=DAY + dt.timedelta(days=1), findings=["none"], device_id="home"
    )
    assert diary.session_block_reason(store) is not None
    assert diary.record_healed(store, date=DAY + dt.timedelta(days=5), finding="open_wound") is None
    assert diary.session_block_reason(store) is None


def test_healed_dated_before_the_finding_does_not_lift_it(store: Store) -> None:
    diary.record_inspection(store, date=DAY, findings=["ulcer"], device_id="home", now=10.0)
    still = diary.record_healed(store, date=DAY - dt.timedelta(days=1), finding="ulcer", now=20.0)
    assert still is not None
    assert "ulcer" in still


def test_ulcer_and_wound_are_healed_separately(store: Store) -> None:
    diary.record_inspection(
        store, date=DAY, findings=["ulcer", "open_wound"], device_id="home", now=1.0
    )
    still = diary.record_healed(store, date=DAY, finding="ulcer", now=2.0)
    assert still is not None
    assert "open wound" in still
    assert "ulcer" not in still.split("not yet")[0]
    # A new ulcer after healing blocks again.
    diary.record_healed(store, date=DAY, finding="open_wound", now=3.0)
    assert diary.session_block_reason(store) is None
    diary.record_inspection(
        store, date=DAY + dt.timedelta(days=3), findings=["ulcer"], device_id="home", now=4.0
    )
    assert diary.session_block_reason(store) is not None


def test_cuts_do_not_block_future_sessions(store: Store) -> None:
    # A cut blocks only the session whose checklist reports it (the supervisor's rule).
    diary.record_inspection(store, date=DAY, findings=["cut", "redness"], device_id="home")
    assert diary.session_block_reason(store) is None


@pytest.mark.parametrize(
    ("findings", "message"),
    [
        (["bruise"], "bruise not known"),
        ([], "at least one"),
        (["none", "cut"], "cannot be combined"),
    ],
)
def test_bad_findings_are_refused(store: Store, findings: list[str], message: str) -> None:
    with pytest.raises(InvalidValueError, match=message):
        diary.record_inspection(store, date=DAY, findings=findings, device_id="home")
    assert store.inspections() == []
    assert store.alert_counts() == (0, 0)


def test_healed_only_for_wounds_and_ulcers(store: Store) -> None:
    with pytest.raises(InvalidValueError, match="finding: 'cut' is not one of open_wound, ulcer"):
        diary.record_healed(store, date=DAY, finding="cut")


@pytest.mark.parametrize("quality", [0, 6, -1])
def test_sleep_out_of_range(store: Store, quality: int) -> None:
    with pytest.raises(InvalidValueError, match=r"sleep quality: .* 1\.\.5"):
        store.record_sleep(DAY, quality)


def test_sleep_is_one_entry_per_morning(store: Store) -> None:
    store.record_sleep(DAY, 2, recorded_at=1.0)
    store.record_sleep(DAY, 4, recorded_at=2.0)
    store.record_sleep(DAY + dt.timedelta(days=1), 5, recorded_at=3.0)
    assert [(e.date, e.quality) for e in store.sleep_entries()] == [
        (DAY, 4),
        (DAY + dt.timedelta(days=1), 5),
    ]
    assert [e.date for e in store.sleep_entries(since=DAY + dt.timedelta(days=1))] == [
        DAY + dt.timedelta(days=1)
    ]


def test_notes(store: Store) -> None:
    store.add_note(5.0, "second")
    store.add_note(1.0, "first")
    assert [n.text for n in store.notes()] == ["first", "second"]
    with pytest.raises(InvalidValueError, match="empty"):
        store.add_note(2.0, "   ")
    with pytest.raises(UnknownSessionError):
        store.add_note(2.0, "text", session_id=3)


def test_a_healed_record_dated_after_today_does_not_lift_a_wound_found_today(
    store: Store,
) -> None:
    today = localdate.today()
    diary.record_inspection(store, date=today, findings=["open_wound"], device_id="home")
    diary.record_healed(store, date=today + dt.timedelta(days=365), finding="open_wound")
    assert diary.session_block_reason(store) is not None


def test_an_inspection_dated_after_today_does_not_count_as_today_s(store: Store) -> None:
    diary.record_inspection(
        store, date=DAY + dt.timedelta(days=30), findings=["none"], device_id="home"
    )
    assert diary.inspection_due(store, today=DAY)
