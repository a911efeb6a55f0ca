"""A journal that cannot be used at the start: one line with the fault and the fix, status 1.

Every command that opens the journal says the same for the same cause (issue 11, breaker
findings 4 and 5): the journal commands said status 2 (usage) where `session` and
`alarm reset` said 1, none said what to do, and a disk full while the journal was being set up
read "cannot rollback - no transaction is active".
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

import pytest

from controller.cli import exit_codes
from controller.cli.errors import describe
from controller.store import Store, StoreError
from tests.cli.test_one_line_errors import assert_one_line, soleguard

if TYPE_CHECKING:
    from pathlib import Path

CHECKLIST = (
    "open_wound = false\nulcer = false\ninfection = false\nsevere_inflammation = false\n"
    "inspected_today = true\nprovider_consulted = true\n"
)
# Every command that opens the user's journal (or, for the demo, its own next to it).
COMMANDS: list[tuple[str, list[str]]] = [
    ("history", ["history"]),
    ("diary", ["diary", "inspect", "--none"]),
    ("report", ["report", "--weeks", "1", "--out", "{home}/r.png"]),
    ("export", ["journal", "export", "--out", "{home}/x.json"]),
    ("session", ["session", "--checklist", "{home}/checklist.toml", "--no-live"]),
    ("alarm reset", ["alarm", "reset"]),
    ("demo", ["demo", "--speed", "max", "--minutes", "1", "--json", "--no-mqtt"]),
]


def damaged_home(home: Path) -> None:
    folder = home / "data" / "soleguard"
    folder.mkdir(parents=True)
    for name in ("journal.sqlite3", "demo.sqlite3"):
        (folder / name).write_bytes(b"not a database, a damaged file " * 300)
    (home / "checklist.toml").write_text(CHECKLIST)


@pytest.mark.parametrize(("label", "args"), COMMANDS, ids=[label for label, _ in COMMANDS])
def test_a_damaged_journal_is_one_line_with_the_fix_and_status_1(
    tmp_path: Path, label: str, args: list[str]
) -> None:
    damaged_home(tmp_path)
    result = soleguard(tmp_path, *(a.format(home=tmp_path) for a in args))
    assert_one_line(result, exit_codes.FAILED, "damaged", "soleguard journal restore")


def test_a_locked_journal_is_one_line_with_the_fix_and_status_1(tmp_path: Path) -> None:
    path = tmp_path / "data" / "soleguard" / "journal.sqlite3"
    path.parent.mkdir(parents=True)
    Store.open(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        result = soleguard(tmp_path, "history")
    finally:
        holder.close()
    assert_one_line(result, exit_codes.FAILED, "locked", "try again")


def test_a_disk_full_while_the_journal_is_set_up_names_the_fault_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk made full the portable way (as tests/service/test_disk_full.py does): SQLite's
    ``max_page_count`` on the journal's own connection, so creating its tables hits SQLITE_FULL,
    the same "database or disk is full" a full SD card gives."""
    connect = sqlite3.connect

    def capped(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn: sqlite3.Connection = connect(*args, **kwargs)
        conn.execute("PRAGMA max_page_count = 2")
        return conn

    monkeypatch.setattr(sqlite3, "connect", capped)
    with pytest.raises(StoreError) as caught:
        Store.open(tmp_path / "journal.sqlite3")
    line, code = describe(caught.value)
    assert "cannot rollback" not in line
    assert "the disk is full" in line
    assert "free some space" in line
    assert code == exit_codes.FAILED
