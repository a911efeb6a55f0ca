"""Export and import: JSON round trip without loss, no duplicates, CSV per table."""

from __future__ import annotations

import csv
import json
from typing import TYPE_CHECKING

import pytest

from controller.journal.blocks import open_wound_reason
from controller.journal.errors import JournalError
from controller.journal.export import FORMAT, import_json, read_json, write_csv, write_json
from controller.journal.history import history_rows
from controller.journal.report_data import trend_report_data
from controller.safety import EndReason
from controller.store import InvalidValueError, Store
from controller.store.latch import latch_in_force, record_latch, record_reset
from controller.store.transfer import TABLES
from tests.journal.journal_fixtures import DAY1, DAY2, DAY3, Filled, add_session, at

if TYPE_CHECKING:
    from pathlib import Path


def test_json_round_trip_into_an_empty_journal_is_lossless(filled: Filled, tmp_path: Path) -> None:
    out = tmp_path / "export.json"
    counts = write_json(filled.store, out)
    assert counts["sessions"] == 4
    assert counts["readings"] == sum(len(r) for r in filled.readings.values())
    document = json.loads(out.read_text())
    assert document["format"] == FORMAT

    with Store.open(tmp_path / "other.sqlite3") as other:
        added = import_json(other, out)
        assert added == counts
        assert other.export_tables() == filled.store.export_tables()
        # What the user sees is the same too.
        assert [r | {"id": 0} for r in history_rows(other)] == [
            r | {"id": 0} for r in history_rows(filled.store)
        ]
        assert open_wound_reason(other) == open_wound_reason(filled.store)
        assert other.provider_consulted()
        assert other.last_inspection_date() == filled.store.last_inspection_date()


def test_importing_again_adds_nothing(filled: Filled, tmp_path: Path) -> None:
    out = tmp_path / "export.json"
    write_json(filled.store, out)
    before = filled.store.export_tables()
    added = import_json(filled.store, out)
    assert set(added.values()) == {0}
    assert filled.store.export_tables() == before


def test_import_into_a_journal_with_its_own_sessions(filled: Filled, tmp_path: Path) -> None:
    out = tmp_path / "export.json"
    write_json(filled.store, out)
    with Store.open(tmp_path / "other.sqlite3") as other:
        own_id, own_rows = add_session(other, at(DAY1, 7), pain=(3, 1))
        other.record_sleep(DAY1, 5, recorded_at=1.0)
        import_json(other, out)
        import_json(other, out)
        sessions = other.sessions()
        assert len(sessions) == 5
        assert other.get_session(own_id).pain_before == 3
        assert len(other.readings(own_id)) == len(own_rows)
        # Each imported session got a new local id but kept its readings and alarms.
        for sid, rows in filled.readings.items():
            original = filled.store.get_session(sid)
            [copy] = [s for s in sessions if s.uid == original.uid]
            assert other.readings(copy.id) == rows
            assert copy.alarm_count == original.alarm_count
        assert len(other.undelivered_alerts()) == 0  # the outbox is never imported


def test_a_bad_row_imports_nothing_and_names_the_row(filled: Filled, tmp_path: Path) -> None:
    out = tmp_path / "export.json"
    write_json(filled.store, out)
    document = json.loads(out.read_text())
    document["tables"]["pain"][1]["score"] = 11
    out.write_text(json.dumps(document))
    with Store.open(tmp_path / "other.sqlite3") as other:
        with pytest.raises(InvalidValueError, match="pain row 2"):
            import_json(other, out)
        assert other.sessions() == []


@pytest.mark.parametrize(
    ("table", "row"),
    [
        ("sleep", {"date": "2099-01-01", "quality": 3, "recorded_at": "2026-11-30T08:00:00+00:00"}),
        (
            "inspections",
            {
                "uid": "future-inspection",
                "date": "2099-12-04",
                "recorded_at": "2026-11-30T08:00:00+00:00",
                "findings": ["none"],
            },
        ),
        (
            "healed",
            {
                "uid": "future-healed",
                "date": "2099-12-03",
                "finding": "open_wound",
                "recorded_at": "2026-11-30T08:00:00+00:00",
            },
        ),
    ],
)
def test_an_import_with_a_diary_date_after_today_is_refused(
    tmp_path: Path, table: str, row: dict[str, object]
) -> None:
    """As everywhere a user gives a date: a record dated in the future would satisfy every later
    daily-inspection check, or lift a wound found today (breaker finding: all three imported)."""
    with (
        Store.open(tmp_path / "j.sqlite3") as store,
        pytest.raises(InvalidValueError, match=rf"{table} row 1: date: .* is after today"),
    ):
        store.import_tables({table: [row]})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not valid JSON"),
        ('{"format": "other"}', "not a SoleGuard journal export"),
        ('{"format": "soleguard-journal", "version": 99, "tables": {}}', "version 99"),
        ('{"format": "soleguard-journal", "version": 1}', "'tables'"),
    ],
)
def test_files_that_are_not_exports(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "x.json"
    path.write_text(text)
    with pytest.raises(JournalError, match=message):
        read_json(path)


def test_missing_session_reference_is_refused(tmp_path: Path) -> None:
    with (
        Store.open(tmp_path / "j.sqlite3") as store,
        pytest.raises(InvalidValueError, match="readings row 1: session_uid"),
    ):
        store.import_tables(
            {
                "readings": [
                    {
                        "session_uid": "nope",
                        "time": 1.0,
                        "skin_c": 30.0,
                        "pressure_mmhg": 0.0,
                        "pressure_cap_mmhg": 60.0,
                        "heater_on": False,
                        "pad_c": None,
                    }
                ]
            }
        )


def test_csv_export_one_file_per_table(filled: Filled, tmp_path: Path) -> None:
    folder = tmp_path / "csv"
    files = write_csv(filled.store, folder)
    assert sorted(f.name for f in files) == sorted(f"{name}.csv" for name in TABLES)
    tables = filled.store.export_tables()
    for name, columns in TABLES.items():
        with (folder / f"{name}.csv").open(newline="") as handle:
            rows = list(csv.reader(handle))
        assert tuple(rows[0]) == columns
        assert len(rows) - 1 == len(tables[name])
    with (folder / "sessions.csv").open(newline="") as handle:
        first = next(csv.DictReader(handle))
    assert float(first["started_at"]) == tables["sessions"][0]["started_at"]
    assert first["profile"] == ""
    with (folder / "notes.csv").open(newline="", encoding="utf-8") as handle:
        assert "ça va" in handle.read()


def test_round_trip_keeps_session_flags_and_a_latch_in_force(
    filled: Filled, tmp_path: Path
) -> None:
    store = filled.store
    # A demo session (simulated), one ended by SIGTERM, one still running in this process, and
    # two latches: one reset, one still in force.
    demo, _ = add_session(store, at(DAY1, 12), ended_by=EndReason.SIGTERM)
    simulated = store.start_session(
        started_at=at(DAY1, 13),
        program="standard",
        profile=None,
        cutoff_c=40.0,
        pressure_cap_mmhg=60.0,
        simulated=True,
    )
    running = store.start_session(
        started_at=at(DAY1, 14),
        program="gentle",
        profile=None,
        cutoff_c=40.0,
        pressure_cap_mmhg=60.0,
    )
    record_latch(store, latched_at=at(DAY1, 12, 3), skin_c=43.2, session_id=demo, message="hot")
    assert record_reset(store, reset_at=at(DAY1, 12, 40), skin_c=35.0)
    record_latch(store, latched_at=at(DAY2, 9, 2), skin_c=44.1, session_id=None, message="hotter")

    out = tmp_path / "export.json"
    counts = write_json(store, out)
    assert counts["latches"] == 2
    with Store.open(tmp_path / "other.sqlite3") as other:
        assert import_json(other, out) == counts
        assert other.export_tables() == store.export_tables()
        copies = {s.uid: s for s in other.sessions(simulated=True)}
        for sid in (demo, simulated, running):
            original = store.get_session(sid)
            copy = copies[original.uid]
            assert copy.simulated == original.simulated
            assert copy.ended_by == original.ended_by
        assert copies[store.get_session(simulated).uid].simulated
        assert copies[store.get_session(demo).uid].ended_by is EndReason.SIGTERM
        # The unfinished session keeps its process: this one is alive, so it stays open.
        assert other.close_interrupted() == []
        assert copies[store.get_session(running).uid].ended_by is None
        # The journal that was latched stays latched, on the same reading.
        latch = latch_in_force(other)
        assert latch is not None
        assert (latch.latched_at, latch.skin_c, latch.message) == (at(DAY2, 9, 2), 44.1, "hotter")
        # Importing again adds no second latch (and no second anything).
        assert set(import_json(other, out).values()) == {0}
        assert len(other.export_tables()["latches"]) == 2


def test_an_export_from_before_the_flags_and_latches_still_imports(
    filled: Filled, tmp_path: Path
) -> None:
    out = tmp_path / "export.json"
    write_json(filled.store, out)
    document = json.loads(out.read_text())
    del document["tables"]["latches"]
    for row in document["tables"]["sessions"]:
        del row["simulated"], row["pid"]
    out.write_text(json.dumps(document))
    with Store.open(tmp_path / "other.sqlite3") as other:
        import_json(other, out)
        assert [s.simulated for s in other.sessions()] == [False] * 4
        assert other.export_tables()["latches"] == []


def test_a_latch_without_a_skin_reading_is_refused_by_row(filled: Filled, tmp_path: Path) -> None:
    record_latch(filled.store, latched_at=at(DAY1, 12), skin_c=43.0, session_id=None, message="x")
    out = tmp_path / "export.json"
    write_json(filled.store, out)
    document = json.loads(out.read_text())
    document["tables"]["latches"][0]["skin_c"] = None
    out.write_text(json.dumps(document))
    with Store.open(tmp_path / "other.sqlite3") as other:
        with pytest.raises(InvalidValueError, match="latches row 1"):
            import_json(other, out)
        assert other.sessions() == []


def test_imported_simulated_sessions_stay_out_of_history_and_reports(
    filled: Filled, tmp_path: Path
) -> None:
    """Breaker finding 3: an export that had demo sessions, imported into the user's journal,
    showed them in `soleguard history` and the weekly report as the user's own."""
    history_before = history_rows(filled.store)
    trend_before = trend_report_data(filled.store, weeks=1, today=DAY3)
    with Store.open(tmp_path / "demo.sqlite3") as demo:
        for hour in (9, 10, 11):
            sid = demo.start_session(
                started_at=at(DAY2, hour),
                program="standard",
                profile=None,
                scenario="normal",
                cutoff_c=40.0,
                pressure_cap_mmhg=40.0,
                simulated=True,
            )
            demo.end_session(
                sid,
                ended_at=at(DAY2, hour, 20),
                ended_by=EndReason.TIMER,
                max_skin_c=39.0,
                max_pressure_mmhg=30.0,
                time_above_cutoff_s=0.0,
                heat_s=600.0,
            )
        out = tmp_path / "demo-export.json"
        write_json(demo, out)
    assert import_json(filled.store, out)["sessions"] == 3
    assert history_rows(filled.store) == history_before
    assert trend_report_data(filled.store, weeks=1, today=DAY3) == trend_before
    # Kept, and shown when asked for.
    assert len(history_rows(filled.store, simulated=True)) == len(history_before) + 3
    with_demo = trend_report_data(filled.store, weeks=1, today=DAY3, simulated=True)
    assert dict(with_demo.sessions_per_day)[DAY2] == dict(trend_before.sessions_per_day)[DAY2] + 3
