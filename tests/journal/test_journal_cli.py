"""The journal commands as a user runs them: output, files, and one-line errors with exit 2.

The commands run in a throwaway typer app built from the command functions, registered the same
way `controller/cli/__init__.py` registers them.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING

import pytest
import typer
from typer.testing import CliRunner

from controller import localdate
from controller.cli import diary, history, journal_io, report
from controller.journal.blocks import open_wound_reason
from controller.journal.diary import INSPECTION_FINDING
from controller.safety import EndReason
from controller.store import Store
from tests.journal.journal_fixtures import DAY3, Filled

if TYPE_CHECKING:
    from pathlib import Path

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("history")(history.history)
    app.command("report")(report.report)
    app.add_typer(diary.app, name="diary")
    app.add_typer(journal_io.app, name="journal")
    return app


APP = _app()


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(APP, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ")
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


# -- history ------------------------------------------------------------------------------------


def test_history_table_lists_sessions(filled: Filled) -> None:
    code, out, err = run("history", "--db", str(filled.path))
    assert code == 0, err
    assert "gentle" in out
    assert "fault" in out
    assert "5:00" in out  # duration


def test_history_json_since(filled: Filled) -> None:
    code, out, _ = run("history", "--db", str(filled.path), "--json", "--since", DAY3.isoformat())
    assert code == 0
    rows = json.loads(out)
    assert [r["id"] for r in rows] == [filled.session_ids[3], filled.session_ids[2]]
    assert rows[1]["pain_after"] == 2


def test_history_csv(filled: Filled) -> None:
    code, out, _ = run("history", "--db", str(filled.path), "--csv")
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].startswith("id,started,program")
    assert len(lines) == 1 + len(filled.session_ids)


def test_history_of_an_empty_journal(tmp_path: Path) -> None:
    Store.open(tmp_path / "new.sqlite3").close()
    code, out, _ = run("history", "--db", str(tmp_path / "new.sqlite3"))
    assert code == 0
    assert "No sessions recorded" in out


def test_diary_promises_a_caregiver_only_when_mqtt_is_set_up(tmp_path: Path) -> None:
    settings = tmp_path / "soleguard.toml"
    settings.write_text('[mqtt]\nenabled = true\ndevice_id = "bed-7"\n')
    common = ("--db", str(tmp_path / "j.sqlite3"), "--config", str(settings))
    code, out, err = run("diary", "inspect", "--finding", "blister", *common)
    assert code == 0, err
    assert "Your caregiver will be told" in out


def test_a_mistyped_db_is_an_error_and_creates_nothing(tmp_path: Path) -> None:
    typo = tmp_path / "typo.sqlite3"
    code, _, err = run("history", "--db", str(typo))
    assert_one_line_error(code, err, "--db", str(typo), "does not exist")
    assert not typo.exists()
    assert list(tmp_path.iterdir()) == []


def test_import_into_a_missing_folder_is_an_error_and_creates_nothing(tmp_path: Path) -> None:
    export = tmp_path / "journal.json"
    export.write_text("{}")
    target = tmp_path / "nonexistent" / "dir" / "x.sqlite3"
    code, _, err = run("journal", "import", str(export), "--db", str(target))
    assert_one_line_error(code, err, "--db", "does not exist")
    assert not (tmp_path / "nonexistent").exists()


def test_history_csv_rounds_to_hundredths(filled: Filled) -> None:
    code, out, _ = run("history", "--db", str(filled.path), "--csv")
    assert code == 0
    for line in out.strip().splitlines()[1:]:
        for cell in line.split(","):
            whole, _, decimals = cell.partition(".")
            if whole.lstrip("-").isdigit() and decimals.isdigit():
                assert len(decimals) <= 2, line


def test_history_fits_80_columns_without_cutting_a_word(tmp_path: Path) -> None:
    db = tmp_path / "journal.sqlite3"
    with Store.open(db) as store:
        refused = store.start_session(
            started_at=1_717_400_000.0,
            program="standard",
            profile=None,
            scenario=None,
            cutoff_c=40.0,
            pressure_cap_mmhg=60.0,
        )
        store.end_session(
            refused,
            ended_at=1_717_400_000.0,
            ended_by=EndReason.CHECKLIST,
            max_skin_c=None,
            max_pressure_mmhg=0.0,
            time_above_cutoff_s=0.0,
            heat_s=0.0,
        )
        store.record_pain(refused, when="after", score=10)
        store.start_session(
            started_at=1_717_500_000.0,
            program="standard",
            profile=None,
            scenario=None,
            cutoff_c=40.0,
            pressure_cap_mmhg=60.0,
        )
    result = CliRunner().invoke(APP, ["history", "--db", str(db)], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.stderr
    assert "…" not in result.stdout
    for word in ("standard", "checklist", "unfinished", "alarms", "after"):
        assert word in result.stdout


def test_history_uses_the_storage_path_from_settings(filled: Filled, tmp_path: Path) -> None:
    settings = tmp_path / "soleguard.toml"
    settings.write_text(f"[storage]\npath = {json.dumps(str(filled.path))}\n")
    code, out, _ = run("history", "--config", str(settings), "--json")
    assert code == 0
    assert len(json.loads(out)) == len(filled.session_ids)


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("--since", "2024-13-01"), ("--since", "2024-13-01", "YYYY-MM-DD")),
        (("--since", "yesterday"), ("--since",)),
        (("--json", "--csv"), ("--json and --csv",)),
        (("--limit", "0"), ("--limit",)),
    ],
)
def test_history_bad_input(filled: Filled, args: tuple[str, ...], needles: tuple[str, ...]) -> None:
    code, _, err = run("history", "--db", str(filled.path), *args)
    assert_one_line_error(code, err, *needles)


def test_unusable_db_path_and_broken_settings(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, _, err = run("history", "--db", str(blocker / "journal.sqlite3"))
    assert_one_line_error(code, err, "--db", "does not exist")
    settings = tmp_path / "soleguard.toml"
    settings.write_text(f"[storage]\npath = {json.dumps(str(blocker / 'journal.sqlite3'))}\n")
    code, _, err = run("history", "--config", str(settings))
    assert_one_line_error(code, err, "cannot create the journal's folder")
    code, _, err = run("history", "--config", str(tmp_path / "missing.toml"))
    assert_one_line_error(code, err, "missing.toml", "not found")


# -- diary --------------------------------------------------------------------------------------


def test_diary_pain_sleep_note(filled: Filled) -> None:
    db = ("--db", str(filled.path))
    sid = str(filled.session_ids[3])
    assert run("diary", "pain", sid, "--before", "7", "--after", "3", *db)[0] == 0
    assert run("diary", "sleep", "4", "--date", "2024-07-01", *db)[0] == 0
    assert run("diary", "note", "tingling less after the session", "--session", sid, *db)[0] == 0
    record = filled.store.get_session(filled.session_ids[3])
    assert (record.pain_before, record.pain_after) == (7, 3)
    assert filled.store.sleep_entries()[-1].quality == 4
    assert filled.store.notes()[-1].text == "tingling less after the session"


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("pain", "{sid}", "--after", "11"), ("--after", "11", "0..10")),
        (("pain", "{sid}", "--before", "-1"), ("--before", "-1", "0..10")),
        (("pain", "{sid}"), ("--before", "--after")),
        (("pain", "999", "--after", "3"), ("session 999",)),
        (("sleep", "0"), ("sleep quality", "0", "1..5")),
        (("sleep", "6"), ("sleep quality", "6", "1..5")),
        (("sleep", "3", "--date", "03/06/2024"), ("--date", "YYYY-MM-DD")),
        (("note", "  "), ("note", "empty")),
        (("note", "hi", "--session", "999"), ("session 999",)),
        (("inspect",), ("--finding", "--none")),
        (("inspect", "--none", "--finding", "cut"), ("--none and --finding",)),
        (("inspect", "--finding", "bruise"), ("bruise", "not known")),
        (("healed", "cut"), ("finding", "open_wound, ulcer")),
    ],
)
def test_diary_bad_input(filled: Filled, args: tuple[str, ...], needles: tuple[str, ...]) -> None:
    sid = str(filled.session_ids[0])
    before = filled.store.export_tables()
    code, _, err = run("diary", *(a.format(sid=sid) for a in args), "--db", str(filled.path))
    assert_one_line_error(code, err, *needles)
    assert filled.store.export_tables() == before  # nothing half-recorded


def test_pain_with_one_bad_score_records_neither(filled: Filled) -> None:
    sid = filled.session_ids[3]
    code, _, err = run(
        "diary", "pain", str(sid), "--before", "4", "--after", "12", "--db", str(filled.path)
    )
    assert_one_line_error(code, err, "--after")
    assert filled.store.get_session(sid).pain_before is None


def test_inspection_finding_alerts_the_configured_device(tmp_path: Path) -> None:
    settings = tmp_path / "soleguard.toml"
    settings.write_text('[mqtt]\ndevice_id = "bed-7"\n')
    db = tmp_path / "journal.sqlite3"
    common = ("--db", str(db), "--config", str(settings), "--date", "2024-06-03")
    code, out, err = run("diary", "inspect", "--finding", "blister", "-f", "cut", *common)
    assert code == 0, err
    # MQTT is off in these settings: nobody is told, and the user is not led to think so.
    assert "No caregiver is told" in out
    assert "will be told" not in out
    code, out, err = run("diary", "inspect", "--finding", "open-wound", *common)
    assert code == 0, err
    assert "blocked" in out
    with Store.open(db) as store:
        alerts = store.undelivered_alerts()
        assert [(a.device_id, a.code, a.priority) for a in alerts] == [
            ("bed-7", INSPECTION_FINDING, "low"),
            ("bed-7", INSPECTION_FINDING, "low"),
        ]
        assert open_wound_reason(store) is not None
    code, out, _ = run("diary", "healed", "open_wound", *common)
    assert code == 0
    assert "Nothing in the diary blocks sessions now" in out
    code, out, _ = run("diary", "inspect", "--none", *common)
    assert code == 0
    assert "caregiver" not in out
    with Store.open(db) as store:
        assert open_wound_reason(store) is None
        assert store.alert_counts() == (2, 0)


# -- report -------------------------------------------------------------------------------------


def test_report_session_and_weeks(filled: Filled, tmp_path: Path) -> None:
    db = ("--db", str(filled.path))
    out = tmp_path / "session.html"
    code, stdout, err = run("report", str(filled.session_ids[1]), "--out", str(out), *db)
    assert code == 0, err
    assert str(out) in stdout
    assert "SKIN_OVER_CUTOFF" in out.read_text()
    week = tmp_path / "week.png"
    # Wide enough to reach the fixture's days (an empty window has nothing to plot).
    code, _, err = run("report", "--weeks", "520", "--out", str(week), *db)
    assert code == 0, err
    assert week.read_bytes().startswith(PNG_MAGIC)


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("999", "--out", "{tmp}/r.png"), ("session 999",)),
        (("1", "--out", "{tmp}/no/such/folder/r.png"), ("--out", "does not exist")),
        (("1", "--out", "{tmp}/a-file/r.png"), ("--out", "a-file")),
        (("1", "--out", "{tmp}/r.pdf"), ("--out", ".pdf", ".png")),
        (("--out", "{tmp}/r.png"), ("SESSION_ID", "--weeks")),
        (("1", "--weeks", "2", "--out", "{tmp}/r.png"), ("SESSION_ID", "--weeks")),
        (("--weeks", "0", "--out", "{tmp}/r.png"), ("weeks", "1..520")),
    ],
)
def test_report_bad_input(
    filled: Filled, tmp_path: Path, args: tuple[str, ...], needles: tuple[str, ...]
) -> None:
    (tmp_path / "a-file").write_text("")
    argv = [a.format(tmp=tmp_path) for a in args]
    code, _, err = run("report", *argv, "--db", str(filled.path))
    assert_one_line_error(code, err, *needles)


# -- export / import ----------------------------------------------------------------------------


def test_export_import_round_trip(filled: Filled, tmp_path: Path) -> None:
    out = tmp_path / "journal.json"
    code, stdout, err = run("journal", "export", "--out", str(out), "--db", str(filled.path))
    assert code == 0, err
    assert "4 sessions" in stdout
    other = tmp_path / "other.sqlite3"
    code, stdout, err = run("journal", "import", str(out), "--db", str(other))
    assert code == 0, err
    assert "4 sessions" in stdout
    code, stdout, _ = run("journal", "import", str(out), "--db", str(other))
    assert code == 0
    assert "nothing new" in stdout
    with Store.open(other) as store:
        assert store.export_tables() == filled.store.export_tables()
    code, stdout, _ = run("journal", "export", "--csv", str(tmp_path / "csv"), "--db", str(other))
    assert code == 0
    assert (tmp_path / "csv" / "readings.csv").is_file()


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (("export",), ("--out", "--csv")),
        (("export", "--out", "{tmp}/a-file/x.json"), ("a-file", "cannot write")),
        (("import", "{tmp}/missing.json"), ("missing.json", "cannot read")),
        (("import", "{tmp}/a-file"), ("a-file", "not a SoleGuard journal export")),
    ],
)
def test_journal_io_bad_input(
    filled: Filled, tmp_path: Path, args: tuple[str, ...], needles: tuple[str, ...]
) -> None:
    (tmp_path / "a-file").write_text("{}")
    argv = [a.format(tmp=tmp_path) for a in args]
    code, _, err = run("journal", *argv, "--db", str(filled.path))
    assert_one_line_error(code, err, *needles)


def test_report_of_a_refused_session_says_there_is_nothing_to_plot(tmp_path: Path) -> None:
    db = tmp_path / "journal.sqlite3"
    with Store.open(db) as store:
        refused = store.start_session(
            started_at=1_717_400_000.0,
            program="standard",
            profile=None,
            scenario=None,
            cutoff_c=40.0,
            pressure_cap_mmhg=60.0,
        )
        store.end_session(
            refused,
            ended_at=1_717_400_000.0,
            ended_by=EndReason.CHECKLIST,
            max_skin_c=None,
            max_pressure_mmhg=0.0,
            time_above_cutoff_s=0.0,
            heat_s=0.0,
        )
    out = tmp_path / "r.png"
    code, _, err = run("report", str(refused), "--out", str(out), "--db", str(db))
    assert_one_line_error(code, err, f"session {refused}", "refused by the checklist")
    assert not out.exists()


def test_report_of_an_empty_journal_says_there_is_nothing_to_plot(tmp_path: Path) -> None:
    db = tmp_path / "journal.sqlite3"
    Store.open(db).close()
    out = tmp_path / "trend.png"
    code, _, err = run("report", "--weeks", "4", "--out", str(out), "--db", str(db))
    assert_one_line_error(code, err, "--weeks 4", "nothing recorded")
    assert not out.exists()


def test_report_of_sleep_only_draws_a_session_axis_from_zero(tmp_path: Path) -> None:
    from controller.journal.render import _trend_figure  # noqa: PLC0415
    from controller.journal.report_data import trend_report_data  # noqa: PLC0415

    db = tmp_path / "journal.sqlite3"
    with Store.open(db) as store:
        store.record_sleep(DAY3, 4)
        data = trend_report_data(store, weeks=1, today=DAY3)
    figure = _trend_figure(data)
    count_ax = figure.axes[2]
    low, high = count_ax.get_ylim()
    assert low == 0.0
    assert high >= 1.0


@pytest.mark.parametrize(
    "args",
    [
        ("diary", "inspect", "--none", "--date"),
        ("diary", "healed", "open_wound", "--date"),
        ("history", "--since"),
    ],
    ids=["inspect", "healed", "history-since"],
)
def test_a_date_after_today_is_refused(tmp_path: Path, args: tuple[str, ...]) -> None:
    tomorrow = (localdate.today() + dt.timedelta(days=1)).isoformat()
    code, _, err = run(*args, tomorrow, "--db", str(tmp_path / "j.sqlite3"))
    assert_one_line_error(code, err, tomorrow, "after today")
