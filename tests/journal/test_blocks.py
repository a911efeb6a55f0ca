"""What in the journal blocks a session, said once in one line, before any question is asked."""

from __future__ import annotations

import datetime as dt
import time
from importlib import import_module
from typing import TYPE_CHECKING

import typer
from typer.testing import CliRunner

from controller import localdate
from controller.journal import blocks
from controller.store import Store
from controller.store.latch import record_latch, record_reset

if TYPE_CHECKING:
    from pathlib import Path

# The package exports the `session` command under the module's name: fetch the module itself.
session_cli = import_module("controller.cli.session")

TODAY = localdate.today()


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command("session")(session_cli.session)
    app.command("run")(session_cli.run)
    return app


def _settings(tmp_path: Path) -> tuple[Path, Path]:
    db = tmp_path / "journal.sqlite3"
    config = tmp_path / "soleguard.toml"
    config.write_text(f'[storage]\npath = "{db}"\n')
    return db, config


def _latch(store: Store) -> None:
    record_latch(store, latched_at=time.time() - 600, skin_c=43.4, session_id=None, message="hot")


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(_app(), list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def _assert_refused_in_one_line(code: int, out: str, err: str, *needles: str) -> None:
    assert code == 1, (out, err)
    assert "Traceback" not in out + err
    # Nothing was asked: the refusal comes before the checklist.
    assert "checklist" not in out
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("session refused: "), lines[0]
    assert lines[0].count("session refused") == 1
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def test_a_latched_journal_refuses_a_session_before_the_checklist(tmp_path: Path) -> None:
    db, config = _settings(tmp_path)
    with Store.open(db) as store:
        _latch(store)
    code, out, err = _run("session", "--config", str(config), "--no-live")
    _assert_refused_in_one_line(
        code, out, err, "over-temperature latch in force", "43.4 °C", "soleguard alarm reset"
    )
    # `run` (the hub, no prompts) is held by the same rule, even with a checklist file.
    answers = tmp_path / "answers.toml"
    answers.write_text("inspected_today = true\n")
    code, out, err = _run("run", "--config", str(config), "--checklist", str(answers))
    _assert_refused_in_one_line(code, out, err, "over-temperature latch in force")


def test_an_open_wound_refuses_a_session_naming_the_wound_and_the_fix(tmp_path: Path) -> None:
    db, config = _settings(tmp_path)
    with Store.open(db) as store:
        store.record_inspection(TODAY, frozenset({"open_wound"}))
    code, out, err = _run("session", "--config", str(config), "--no-live")
    _assert_refused_in_one_line(
        code,
        out,
        err,
        f"open wound (found {TODAY.isoformat()})",
        "`soleguard diary healed open_wound`",
    )


def test_the_latch_is_named_first_and_a_reset_leaves_the_wound(tmp_path: Path) -> None:
    with Store.open(tmp_path / "journal.sqlite3") as store:
        assert blocks.session_block_reason(store) is None
        store.record_inspection(TODAY, frozenset({"ulcer"}))
        _latch(store)
        reason = blocks.session_block_reason(store)
        assert reason is not None
        assert reason.startswith("over-temperature latch in force")
        assert record_reset(store, reset_at=time.time(), skin_c=35.0)
        reason = blocks.session_block_reason(store)
        assert reason is not None
        assert reason.startswith(f"ulcer (found {TODAY.isoformat()})")
        # A healing record dated after today is not believed.
        store.record_healed(TODAY + dt.timedelta(days=1), "ulcer")
        assert blocks.session_block_reason(store) is not None
        store.record_healed(TODAY, "ulcer")
        assert blocks.session_block_reason(store) is None


def test_the_refusal_wording_is_said_once() -> None:
    assert blocks.refusal("a reason") == "session refused: a reason"
