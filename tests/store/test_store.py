"""The journal store on a real SQLite file: what the service and the user get back."""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
import threading
from typing import TYPE_CHECKING

import pytest

from controller import localdate
from controller.errors import StoreError
from controller.safety import EndReason
from controller.store import (
    SCHEMA_VERSION,
    InvalidValueError,
    ReadingRow,
    Store,
    UnknownSessionError,
)

if TYPE_CHECKING:
    from pathlib import Path

T0 = 1_717_000_000.0  # 2024-05-29, an arbitrary fixed epoch


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(tmp_path / "journal.sqlite3")


def _session(store: Store, started_at: float = T0) -> int:
    return store.start_session(
        started_at=started_at,
        program="standard",
        profile="diabetic",
        scenario=None,
        cutoff_c=40.0,
        pressure_cap_mmhg=60.0,
    )


def test_open_creates_folders_and_uses_wal(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "journal.sqlite3"
    with Store.open(path) as store:
        assert store.journal_mode == "wal"
    assert path.is_file()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    versions = [v for (v,) in conn.execute("SELECT version FROM schema_version ORDER BY version")]
    assert versions == list(range(1, SCHEMA_VERSION + 1))


def test_open_an_empty_file_migrates_it(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    path.write_bytes(b"")
    with Store.open(path) as store:
        assert store.sessions() == []
        sid = _session(store)
    with Store.open(path) as store:
        assert store.get_session(sid).program == "standard"


def test_unwritable_location_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(StoreError, match="cannot create the journal's folder"):
        Store.open(blocker / "journal.sqlite3")


def test_a_file_that_is_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    path.write_bytes(b"this is a text file, not SQLite" * 100)
    with pytest.raises(StoreError, match="not a database"):
        Store.open(path)


def test_default_path_is_in_the_user_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    with Store.open(None) as store:
        assert store.path == tmp_path / "data" / "soleguard" / "journal.sqlite3"
    assert store.path.is_file()


def test_closed_store_refuses_calls(store: Store) -> None:
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.sessions()
    store.close()  # closing twice is harmless


def test_session_round_trip_with_alarms_and_pain(store: Store) -> None:
    sid = _session(store)
    store.add_alarm(sid, time=T0 + 5, code="SKIN_OVER_CUTOFF", priority="high", message="hot")
    store.add_alarm(sid, time=T0 + 9, code="SENSOR_STALE", priority="medium", message="stale")
    store.record_pain(sid, when="before", score=6)
    store.record_pain(sid, when="after", score=3)
    store.end_session(
        sid,
        ended_at=T0 + 1200,
        ended_by=EndReason.TIMER,
        max_skin_c=40.2,
        max_pressure_mmhg=59.5,
        time_above_cutoff_s=1.5,
        heat_s=900.0,
    )
    record = store.get_session(sid)
    assert record.started_at == T0
    assert record.profile == "diabetic"
    assert record.ended_by is EndReason.TIMER
    assert record.duration_s == 1200
    assert record.max_skin_c == 40.2
    assert record.max_pressure_mmhg == 59.5
    assert record.time_above_cutoff_s == 1.5
    assert record.heat_s == 900.0
    assert record.alarm_count == 2
    assert (record.pain_before, record.pain_after) == (6, 3)
    assert [a.code for a in store.alarms(sid)] == ["SKIN_OVER_CUTOFF", "SENSOR_STALE"]


def test_an_unfinished_session_has_no_duration(store: Store) -> None:
    record = store.get_session(_session(store))
    assert record.ended_at is None
    assert record.duration_s is None
    assert record.alarm_count == 0
    assert record.pain_before is None


def test_sessions_newest_first_since_and_limit(store: Store) -> None:
    ids = [_session(store, T0 + 3600 * i) for i in range(5)]
    assert [s.id for s in store.sessions()] == ids[::-1]
    assert [s.id for s in store.sessions(since=T0 + 3600 * 3)] == [ids[4], ids[3]]
    assert [s.id for s in store.sessions(limit=2)] == [ids[4], ids[3]]


def test_readings_round_trip_in_time_order(store: Store) -> None:
    sid = _session(store)
    rows = [
        ReadingRow(T0 + 2, 34.5, 40.0, 60.0, True, 41.0),
        ReadingRow(T0 + 1, None, 20.0, 60.0, False, None),
        ReadingRow(T0 + 3, float("nan"), 0.0, 60.0, False, float("inf")),
    ]
    store.add_readings(sid, rows)
    store.add_readings(sid, rows[:1])  # a replayed batch adds nothing
    assert store.readings(sid) == [
        ReadingRow(T0 + 1, None, 20.0, 60.0, False, None),
        ReadingRow(T0 + 2, 34.5, 40.0, 60.0, True, 41.0),
        ReadingRow(T0 + 3, None, 0.0, 60.0, False, None),
    ]


def test_unknown_session_is_named(store: Store) -> None:
    with pytest.raises(UnknownSessionError, match="session 42"):
        store.get_session(42)
    with pytest.raises(UnknownSessionError):
        store.add_readings(42, [ReadingRow(T0, 30.0, 0.0, 60.0, False, None)])
    with pytest.raises(UnknownSessionError):
        store.record_pain(42, when="after", score=2)
    with pytest.raises(UnknownSessionError):
        store.end_session(
            42,
            ended_at=T0,
            ended_by=EndReason.USER,
            max_skin_c=None,
            max_pressure_mmhg=None,
            time_above_cutoff_s=0.0,
            heat_s=0.0,
        )


@pytest.mark.parametrize("score", [-1, 11, 2.5, True])
def test_pain_out_of_range_names_field_and_range(store: Store, score: object) -> None:
    sid = _session(store)
    with pytest.raises(InvalidValueError, match=r"pain after: .* 0\.\.10"):
        store.record_pain(sid, when="after", score=score)  # type: ignore[arg-type]
    assert store.get_session(sid).pain_after is None


def test_pain_can_be_corrected(store: Store) -> None:
    sid = _session(store)
    store.record_pain(sid, when="before", score=7)
    store.record_pain(sid, when="before", score=5)
    assert store.get_session(sid).pain_before == 5


@pytest.mark.parametrize("reason", list(EndReason))
def test_every_end_reason_is_kept_as_its_wire_text(
    store: Store, tmp_path: Path, reason: EndReason
) -> None:
    # The journal's CHECK constraint and `EndReason` must hold the same reasons: a session
    # ended by one the journal refused would stay "unfinished" in the history.
    sid = _session(store)
    store.end_session(
        sid,
        ended_at=T0 + 60,
        ended_by=reason,
        max_skin_c=None,
        max_pressure_mmhg=None,
        time_above_cutoff_s=0.0,
        heat_s=0.0,
    )
    assert store.get_session(sid).ended_by is reason
    # Byte for byte the text older versions wrote and other readers (exports, tools) expect.
    with contextlib.closing(sqlite3.connect(tmp_path / "journal.sqlite3")) as raw:
        [[text]] = raw.execute("SELECT ended_by FROM sessions WHERE id = ?", (sid,))
    assert type(text) is str
    assert text == reason.value


def test_bad_choices_are_refused(store: Store) -> None:
    sid = _session(store)
    with pytest.raises(InvalidValueError, match="priority"):
        store.add_alarm(sid, time=T0, code="X", priority="urgent", message="m")
    with pytest.raises(InvalidValueError, match="ended_by"):
        store.end_session(
            sid,
            ended_at=T0,
            ended_by="boredom",  # type: ignore[arg-type]  # bad input on purpose
            max_skin_c=None,
            max_pressure_mmhg=None,
            time_above_cutoff_s=0.0,
            heat_s=0.0,
        )
    with pytest.raises(InvalidValueError, match="when"):
        store.record_pain(sid, when="during", score=1)


def test_checklist_marks_inspection_day_and_provider(store: Store) -> None:
    assert store.last_inspection_date() is None
    assert not store.provider_consulted()
    store.record_checklist(
        None,
        time=T0,
        answers={"open_wound": False, "inspected_today": False},
        blocked=False,
        reason=None,
    )
    assert store.last_inspection_date() is None
    sid = _session(store, T0 + 60)
    store.record_checklist(
        sid,
        time=T0 + 30,
        answers={"open_wound": False, "inspected_today": True, "provider_consulted": True},
        blocked=False,
        reason=None,
    )
    assert store.last_inspection_date() == localdate.date_of(T0 + 30)
    assert store.provider_consulted()
    [record] = store.checklists(sid)
    assert record.answers == {
        "open_wound": False,
        "inspected_today": True,
        "provider_consulted": True,
    }


def test_blocked_checklist_is_kept_with_its_reason(store: Store) -> None:
    store.record_checklist(
        None, time=T0, answers={"ulcer": True}, blocked=True, reason="skin ulcer reported"
    )
    [record] = store.checklists()
    assert record.blocked
    assert record.reason == "skin ulcer reported"
    assert record.session_id is None


def test_diary_inspection_counts_as_the_days_inspection(store: Store) -> None:
    store.record_inspection(dt.date(2024, 6, 3), frozenset({"none"}))
    assert store.last_inspection_date() == dt.date(2024, 6, 3)


def test_provider_acknowledgement_is_one_time(store: Store) -> None:
    store.record_provider_consulted(T0)
    store.record_provider_consulted(T0 + 10)
    assert store.provider_consulted()
    assert store.export_tables()["acknowledgements"] == [{"name": "provider_consulted", "time": T0}]


def test_store_survives_concurrent_threads(store: Store) -> None:
    sid = _session(store)
    errors: list[BaseException] = []

    def write(offset: int) -> None:
        try:
            for i in range(50):
                store.add_readings(
                    sid, [ReadingRow(T0 + offset * 1000 + i, 33.0, 0, 60, False, None)]
                )
                store.sessions()
        except BaseException as exc:  # collected and re-raised by the test thread
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(store.readings(sid)) == 200


def test_a_second_process_sees_committed_writes(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite3"
    with Store.open(path) as writer, Store.open(path) as reader:
        sid = _session(writer)
        assert reader.get_session(sid).program == "standard"
