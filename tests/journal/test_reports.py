"""Reports: the plotted series checked from the data the report used; files really written."""

from __future__ import annotations

import base64
import datetime as dt
import re
from typing import TYPE_CHECKING

import pytest

from controller.journal.errors import JournalError, OutputError
from controller.journal.render import write_report
from controller.journal.report_data import session_report_data, trend_report_data
from controller.store import InvalidValueError, Store, UnknownSessionError
from tests.journal.journal_fixtures import (
    CAP_MMHG,
    CUTOFF_C,
    DAY1,
    DAY2,
    DAY3,
    SESSION_S,
    Filled,
    at,
)

if TYPE_CHECKING:
    from pathlib import Path

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_session_series_follow_the_stored_readings(filled: Filled) -> None:
    sid = filled.session_ids[1]
    rows = filled.readings[sid]
    data = session_report_data(filled.store, sid, latch_c=43.0)
    assert data.t_s == tuple(float(n) for n in range(SESSION_S))
    assert data.skin_c == tuple(r.skin_c for r in rows)
    assert data.skin_c[:3] == (None, None, None)  # sensor warm-up gaps stay gaps
    assert data.heater_on == tuple(r.heater_on for r in rows)
    assert data.pressure_mmhg == tuple(r.pressure_mmhg for r in rows)
    assert set(data.pressure_cap_mmhg) == {CAP_MMHG}
    assert max(data.pressure_mmhg) <= CAP_MMHG
    assert data.cutoff_c == CUTOFF_C
    assert data.latch_c == 43.0
    assert [(a.t_s, a.code, a.priority) for a in data.alarms] == [
        (120.0, "SKIN_OVER_CUTOFF", "high"),
        (121.5, "SENSOR_STALE", "medium"),
    ]
    # The synthetic curve heats to 38 °C and then cycles; the heater must be seen switching.
    assert True in data.heater_on
    assert False in data.heater_on
    assert data.heater_on_s == sum(r.heater_on for r in rows[:-1])
    assert f"Session {sid}" in data.title
    assert "gentle" in data.title


def test_unknown_session(filled: Filled) -> None:
    with pytest.raises(UnknownSessionError, match="session 999"):
        session_report_data(filled.store, 999)


def test_trend_series_over_one_week(filled: Filled) -> None:
    data = trend_report_data(filled.store, weeks=1, today=DAY3)
    assert data.first_day == DAY3 - dt.timedelta(days=6)
    assert data.last_day == DAY3
    assert len(data.sessions_per_day) == 7
    counts = dict(data.sessions_per_day)
    assert (counts[DAY1], counts[DAY2], counts[DAY3]) == (1, 1, 2)
    assert sum(counts.values()) == 4
    # Sessions with no pain score are left out; a missing "after" stays missing.
    assert [(p.session_id, p.before, p.after) for p in data.pain] == [
        (filled.session_ids[0], 6, 4),
        (filled.session_ids[1], 5, None),
        (filled.session_ids[2], 5, 2),
    ]
    assert data.sleep == ((DAY2, 2), (DAY3, 4))
    # DAY2: "none" in the morning, blister and redness in the evening -> the findings.
    assert data.findings_per_day == (
        (DAY1, frozenset({"none"})),
        (DAY2, frozenset({"blister", "redness"})),
    )
    assert data.weeks == 1
    assert "1 week)" in data.title


def test_trend_window_excludes_days_outside_it(filled: Filled) -> None:
    data = trend_report_data(filled.store, weeks=1, today=DAY2)
    assert dict(data.sessions_per_day).get(DAY3) is None
    assert sum(n for _, n in data.sessions_per_day) == 2
    assert data.sleep == ((DAY2, 2),)
    later = trend_report_data(filled.store, weeks=1, today=DAY3 + dt.timedelta(days=7))
    assert sum(n for _, n in later.sessions_per_day) == 0
    assert later.pain == ()


@pytest.mark.parametrize("weeks", [0, -1, 521])
def test_weeks_out_of_range(filled: Filled, weeks: int) -> None:
    with pytest.raises(InvalidValueError, match=r"weeks: .* 1\.\.520"):
        trend_report_data(filled.store, weeks=weeks, today=DAY3)


@pytest.mark.parametrize("suffix", [".png", ".svg", ".html"])
def test_session_report_files(filled: Filled, tmp_path: Path, suffix: str) -> None:
    data = session_report_data(filled.store, filled.session_ids[1])
    out = tmp_path / f"session{suffix}"
    write_report(data, out)
    payload = out.read_bytes()
    if suffix == ".png":
        assert payload.startswith(PNG_MAGIC)
    elif suffix == ".svg":
        text = payload.decode()
        assert "<svg" in text
        # Titles, units and legends are text in the SVG; matplotlib writes glyphs as paths
        # but keeps each text as a comment.
        for words in ("Skin temperature", "pressure (mmHg)", "heater cut-off 40.0", "latch 43.0"):
            assert words in text, words
    else:
        text = payload.decode()
        assert "SKIN_OVER_CUTOFF" in text
        assert "<table>" in text
        match = re.search(r"data:image/png;base64,([A-Za-z0-9+/=]+)", text)
        assert match is not None
        assert base64.b64decode(match.group(1)).startswith(PNG_MAGIC)
    assert not list(tmp_path.glob(".session*"))  # no temporary file left behind


def test_trend_report_files(filled: Filled, tmp_path: Path) -> None:
    data = trend_report_data(filled.store, weeks=2, today=DAY3)
    write_report(data, tmp_path / "weeks.png")
    assert (tmp_path / "weeks.png").read_bytes().startswith(PNG_MAGIC)
    write_report(data, tmp_path / "weeks.html")
    html = (tmp_path / "weeks.html").read_text()
    assert "blister, redness" in html
    assert DAY1.isoformat() in html


def test_empty_journal_still_gives_a_readable_report(tmp_path: Path) -> None:
    with Store.open(tmp_path / "empty.sqlite3") as store:
        sid = store.start_session(
            started_at=at(DAY1, 9),
            program="gentle",
            profile=None,
            cutoff_c=39.0,
            pressure_cap_mmhg=30.0,
        )
        write_report(session_report_data(store, sid), tmp_path / "s.png")
        write_report(trend_report_data(store, weeks=1, today=DAY1), tmp_path / "t.svg")
    assert (tmp_path / "s.png").stat().st_size > 0
    assert "<svg" in (tmp_path / "t.svg").read_text()


def test_bad_output_paths(filled: Filled, tmp_path: Path) -> None:
    data = session_report_data(filled.store, filled.session_ids[0])
    with pytest.raises(JournalError, match=r"unknown format '\.pdf'"):
        write_report(data, tmp_path / "r.pdf")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(OutputError, match="cannot write"):
        write_report(data, blocker / "r.png")
