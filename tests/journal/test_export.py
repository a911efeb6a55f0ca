"""Export and import: JSON round trip without loss, no duplicates, CSV per table."""

from __future__ import annotations

import csv
import json
from typing import TYPE_CHECKING

import pytest

from controller.journal.errors import JournalError
from controller.journal.export import FORMAT, import_json, read_json, write_csv, write_json
from controller.journal.history import history_rows
from controller.store import InvalidValueError, Store
from controller.store.transfer import TABLES
from tests.journal.journal_fixtures import DAY1, Filled, add_session, at

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
        assert other.open_wound_blocking() == filled.store.open_wound_blocking()
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
