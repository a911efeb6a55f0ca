"""History queries on a journal with a few synthetic sessions."""

from __future__ import annotations

import csv
import io
import json

from controller.journal.history import HISTORY_COLUMNS, history_rows, rows_to_csv, rows_to_json
from tests.journal.journal_fixtures import DAY2, DAY3, SESSION_S, Filled


def test_rows_newest_first_with_outcome_alarms_and_pain(filled: Filled) -> None:
    rows = history_rows(filled.store)
    assert [r["id"] for r in rows] == list(reversed(filled.session_ids))
    second = next(r for r in rows if r["id"] == filled.session_ids[1])
    assert second["program"] == "gentle"
    assert second["ended_by"] == "fault"
    assert second["alarms"] == 2
    assert second["duration_s"] == SESSION_S
    assert (second["pain_before"], second["pain_after"]) == (5, None)
    assert second["started"].startswith(DAY2.isoformat() + "T09:00:00")
    expected_max = max(r.skin_c for r in filled.readings[second["id"]] if r.skin_c is not None)
    assert second["max_skin_c"] == expected_max


def test_since_is_a_local_date(filled: Filled) -> None:
    rows = history_rows(filled.store, since=DAY3)
    assert [r["id"] for r in rows] == [filled.session_ids[3], filled.session_ids[2]]
    assert history_rows(filled.store, since=DAY3, limit=1)[0]["id"] == filled.session_ids[3]


def test_json_and_csv_carry_the_same_rows(filled: Filled) -> None:
    rows = history_rows(filled.store)
    assert json.loads(rows_to_json(rows)) == rows
    parsed = list(csv.DictReader(io.StringIO(rows_to_csv(rows))))
    assert tuple(parsed[0]) == HISTORY_COLUMNS
    assert [int(r["id"]) for r in parsed] == [r["id"] for r in rows]
    assert parsed[-1]["pain_before"] == "6"
    assert parsed[0]["pain_before"] == ""  # not recorded: empty, not "None"
