"""Backups that work (issue 18, item 3): a plain copy of the journal file holds every finished
session, and ``soleguard journal backup`` makes a consistent copy at any time, even while another
process writes or after it was killed; ``soleguard journal restore`` puts it back without loss."""

from __future__ import annotations

import os
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from typing import TYPE_CHECKING, Any

import pytest

from controller.errors import StoreError
from controller.safety import EndReason
from controller.store import Store
from controller.store.backup import backup, restore

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

# Bounds every wait on the writer process; it reports within milliseconds when the machine is idle.
REPORT_TIMEOUT_S = 60.0
ENDED_SESSIONS = 3
READINGS_PER_SESSION = 30

# A hub's journal writer: finished sessions, then one that keeps recording until it is killed.
# It prints a line only after the commit it describes, so every line is a promise of data.
WRITER = f"""
import sys
from controller.store import ReadingRow, Store

store = Store.open(sys.argv[1])
t = 1.7e9

def session():
    return store.start_session(
        started_at=t, program="standard", profile=None, cutoff_c=40.0, pressure_cap_mmhg=60.0
    )

def reading(i):
    return ReadingRow(time=t + i, skin_c=35.0 + i % 5, pressure_mmhg=40.0,
                      pressure_cap_mmhg=60.0, heater_on=i % 2 == 0, pad_c=39.0)

for _ in range({ENDED_SESSIONS}):
    sid = session()
    store.add_readings(sid, [reading(i) for i in range({READINGS_PER_SESSION})])
    store.end_session(sid, ended_at=t + 60, ended_by="timer", max_skin_c=39.0,
                      max_pressure_mmhg=40.0, time_above_cutoff_s=0.0, heat_s=30.0)
    print("ended", sid, flush=True)
sid = session()
n = 0
while True:
    store.add_readings(sid, [reading(n)])
    n += 1
    print("running", sid, n, flush=True)
"""


class Writer:
    """The writer process, and what it has promised so far."""

    def __init__(self, journal: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", WRITER, str(journal)],
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.ended: list[int] = []
        self.running: tuple[int, int] | None = None  # session id, readings committed

    def wait_for(self, readings: int) -> None:
        """Read reports until the running session has committed ``readings`` readings."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + REPORT_TIMEOUT_S
        while self.running is None or self.running[1] < readings:
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([self.process.stdout], [], [], max(remaining, 0.0))
            assert ready, f"the writer reported nothing for {REPORT_TIMEOUT_S} s"
            self._take(self.process.stdout.readline())

    def kill(self) -> None:
        """SIGKILL, then the reports it printed before dying (each one committed)."""
        self.process.send_signal(signal.SIGKILL)
        assert self.process.stdout is not None
        self.process.wait(timeout=REPORT_TIMEOUT_S)
        # Through the same reader that `wait_for` used: `communicate()` with a timeout reads the
        # pipe's descriptor directly, skipping what this reader had buffered, so it could start
        # mid-line (an empty first "line" failed the test under load).
        rest = self.process.stdout.read()
        # The last line may be cut short by the kill: only whole lines are promises.
        for line in rest.split("\n")[:-1]:
            self._take(line)
        assert self.process.returncode == -signal.SIGKILL

    def _take(self, line: str) -> None:
        assert line, "the writer ended early"
        kind, *numbers = line.split()
        if kind == "ended":
            self.ended.append(int(numbers[0]))
        elif kind == "running":
            self.running = (int(numbers[0]), int(numbers[1]))


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[Writer]:
    process = Writer(tmp_path / "journal.sqlite3")
    try:
        yield process
    finally:
        if process.process.poll() is None:
            process.process.kill()
            process.process.communicate(timeout=REPORT_TIMEOUT_S)


def _rows(path: Path) -> dict[str, Any]:
    """What a file alone holds: its sessions (id, ended_by) and readings per session."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        if "sessions" not in tables:
            return {"sessions": [], "readings": {}}
        sessions = conn.execute("SELECT id, ended_by FROM sessions ORDER BY id").fetchall()
        readings = dict(
            conn.execute("SELECT session_id, COUNT(*) FROM readings GROUP BY session_id")
        )
        return {"sessions": sessions, "readings": readings}
    finally:
        conn.close()


def _plain_copy(journal: Path, into: Path) -> Path:
    """What a file backup of the data folder takes: the main file only, as it is now."""
    shutil.copyfile(journal, into)
    return into


def _cli_backup(journal: Path, out: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("SOLEGUARD")}
    command = ["journal", "backup", "--db", str(journal), "--out", str(out)]
    result = subprocess.run(
        [sys.executable, "-m", "controller", *command],
        capture_output=True,
        text=True,
        timeout=REPORT_TIMEOUT_S,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "backed up" in result.stdout


def test_copies_and_backups_while_running_and_after_sigkill_lose_nothing(
    tmp_path: Path, writer: Writer
) -> None:
    journal = tmp_path / "journal.sqlite3"
    finished = [(sid, "timer") for sid in range(1, ENDED_SESSIONS + 1)]
    writer.wait_for(readings=20)

    # 1. While the hub writes: a plain copy holds every finished session (checkpointed) ...
    copy = _rows(_plain_copy(journal, tmp_path / "copy-running.sqlite3"))
    assert copy["sessions"][:ENDED_SESSIONS] == finished
    assert all(copy["readings"][sid] == READINGS_PER_SESSION for sid, _ in finished)
    # ... and `journal backup`, from another process, is a whole consistent snapshot.
    assert writer.running is not None
    promised = writer.running[1]
    _cli_backup(journal, tmp_path / "backup-running.sqlite3")
    assert not (tmp_path / "backup-running.sqlite3-wal").exists()
    online = _rows(tmp_path / "backup-running.sqlite3")
    running_id = writer.running[0]
    assert online["sessions"] == [*finished, (running_id, None)]
    assert online["readings"][running_id] >= promised
    writer.wait_for(readings=promised + 20)  # the writer went on meanwhile

    # 2. Killed mid-session: the plain copy still holds the finished sessions ...
    writer.kill()
    assert writer.running is not None
    committed = writer.running[1]
    copy = _rows(_plain_copy(journal, tmp_path / "copy-killed.sqlite3"))
    assert copy["sessions"][:ENDED_SESSIONS] == finished
    # ... and `journal backup` holds everything the dead process committed.
    _cli_backup(journal, tmp_path / "backup-killed.sqlite3")
    rescued = _rows(tmp_path / "backup-killed.sqlite3")
    assert rescued["sessions"] == [*finished, (running_id, None)]
    assert rescued["readings"][running_id] >= committed

    # 3. Restored on a new machine: the same journal, row for row.
    restored = tmp_path / "new-machine" / "journal.sqlite3"
    restore(tmp_path / "backup-killed.sqlite3", restored)
    with Store.open(restored) as new, Store.open(journal) as original:
        assert new.export_tables() == original.export_tables()
        assert len(new.readings(running_id)) == rescued["readings"][running_id]


def test_a_plain_copy_holds_a_session_as_soon_as_it_has_ended(tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite3"
    with Store.open(journal) as store:
        sid = store.start_session(
            started_at=1.7e9, program="standard", profile=None, cutoff_c=40.0, pressure_cap_mmhg=60
        )
        # Still running: the log holds it, the main file does not (not even the tables).
        assert _rows(_plain_copy(journal, tmp_path / "during.sqlite3"))["sessions"] == []
        store.end_session(
            sid,
            ended_at=1.7e9 + 60,
            ended_by=EndReason.TIMER,
            max_skin_c=None,
            max_pressure_mmhg=None,
            time_above_cutoff_s=0.0,
            heat_s=0.0,
        )
        assert _rows(_plain_copy(journal, tmp_path / "after.sqlite3"))["sessions"] == [
            (sid, "timer")
        ]


def test_backup_refuses_to_overwrite_the_journal_or_a_database_in_use(tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite3"
    other = tmp_path / "other.sqlite3"
    with Store.open(journal), Store.open(other):
        with pytest.raises(StoreError, match="is the journal itself"):
            backup(journal, journal)
        with pytest.raises(StoreError, match=r"database in use \(other\.sqlite3-wal exists\)"):
            backup(journal, other)
    with pytest.raises(StoreError, match="no journal here"):
        backup(tmp_path / "missing.sqlite3", tmp_path / "b.sqlite3")
    text = tmp_path / "notes.txt"
    text.write_text("not a database at all, just some words " * 100)
    with pytest.raises(StoreError, match="not a SoleGuard journal"):
        backup(text, tmp_path / "b.sqlite3")
    assert not (tmp_path / "b.sqlite3").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_restore_never_overwrites_a_journal_unasked(tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite3"
    with Store.open(journal) as store:
        store.add_note(1.7e9, "kept")
    backup(journal, tmp_path / "b.sqlite3")
    with Store.open(journal) as store:
        store.add_note(1.7e9 + 1, "newer than the backup")
    with pytest.raises(StoreError, match="--replace"):
        restore(tmp_path / "b.sqlite3", journal)
    restore(tmp_path / "b.sqlite3", journal, replace=True)
    with Store.open(journal) as store:
        assert [note.text for note in store.notes()] == ["kept"]


def test_a_damaged_backup_is_refused(tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite3"
    with Store.open(journal):
        pass
    backup(journal, tmp_path / "b.sqlite3")
    data = bytearray((tmp_path / "b.sqlite3").read_bytes())
    data[4096 : 4096 * 3] = b"\xff" * (4096 * 2)  # pages 2-3: the schema's tables
    (tmp_path / "b.sqlite3").write_bytes(bytes(data))
    with pytest.raises(StoreError, match=r"b\.sqlite3"):
        restore(tmp_path / "b.sqlite3", tmp_path / "restored.sqlite3")


def test_the_commands_say_what_they_did_in_one_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner  # noqa: PLC0415

    from controller.cli import app  # noqa: PLC0415

    journal = tmp_path / "journal.sqlite3"
    with Store.open(journal) as store:
        store.add_note(1.7e9, "kept")
    runner = CliRunner()
    out = tmp_path / "backups" / "2026-11-30.sqlite3"
    made = runner.invoke(app, ["journal", "backup", "--db", str(journal), "--out", str(out)])
    assert made.exit_code == 0, made.output
    assert made.output == f"Journal {journal} backed up to {out}: 0 sessions, 0 readings.\n"
    refused = runner.invoke(app, ["journal", "restore", str(out), "--db", str(journal)])
    assert refused.exit_code == 2
    assert refused.output.startswith(f"error: {journal}: a journal is already here; give --replace")
    assert len(refused.output.splitlines()) == 1


def test_restore_refuses_a_journal_a_running_session_writes_into(tmp_path: Path) -> None:
    """A live SoleGuard writing a session would go on writing into the replaced file: refused."""
    journal = tmp_path / "journal.sqlite3"
    with Store.open(journal) as store:
        store.add_note(1.7e9, "kept")
    backup(journal, tmp_path / "b.sqlite3")
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with Store.open(journal) as store:
            sid = store.start_session(
                started_at=1.7e9,
                program="standard",
                profile=None,
                cutoff_c=40,
                pressure_cap_mmhg=60,
            )
        # As if that other process had started the session (sessions record their writer).
        with sqlite3.connect(journal) as conn:
            conn.execute("UPDATE sessions SET pid = ? WHERE id = ?", (other.pid, sid))
        with pytest.raises(StoreError, match=rf"process {other.pid}\) is running session {sid}"):
            restore(tmp_path / "b.sqlite3", journal, replace=True)
    finally:
        other.kill()
        other.wait()
    restore(tmp_path / "b.sqlite3", journal, replace=True)  # its writer is gone: allowed
    with Store.open(journal) as store:
        assert [note.text for note in store.notes()] == ["kept"]


def test_restore_refuses_a_backup_from_a_newer_soleguard(tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite3"
    with Store.open(journal) as store:
        store.add_note(1.7e9, "mine")
    future = tmp_path / "future.sqlite3"
    backup(journal, future)
    with sqlite3.connect(future) as conn:
        conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (999, 0)")
    with pytest.raises(StoreError, match=r"newer SoleGuard \(journal schema 999"):
        restore(future, journal, replace=True)
    with Store.open(journal) as store:  # untouched, and still opens
        assert [note.text for note in store.notes()] == ["mine"]


def test_backup_replaces_an_older_backup_but_never_another_file(tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite3"
    with Store.open(journal) as store:
        store.add_note(1.7e9, "first")
    out = tmp_path / "nightly.sqlite3"
    backup(journal, out)
    with Store.open(journal) as store:
        store.add_note(1.7e9 + 1, "second")
    backup(journal, out)  # last night's backup: replaced
    restored = tmp_path / "restored.sqlite3"
    restore(out, restored)
    assert restored.stat().st_mode & 0o777 == 0o600
    with Store.open(restored) as store:
        assert [note.text for note in store.notes()] == ["first", "second"]
    notes = tmp_path / "notes.txt"
    notes.write_text("my own notes, not a journal\n")
    with pytest.raises(StoreError, match=r"notes\.txt: not a SoleGuard journal .*another file"):
        backup(journal, notes)
    assert notes.read_text() == "my own notes, not a journal\n"
