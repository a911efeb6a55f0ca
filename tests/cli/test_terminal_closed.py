"""Closing the terminal under a running demo ends it as SIGHUP's way out (issue 11's break 2).

Closing a terminal sends SIGHUP and makes every later write to it fail (EIO). The live view's next
redraw then failed first, and that error was reported as a command failure: "error:
Input/output error", status 1 instead of 129 and "stopped by SIGHUP", and the session, cancelled
with the view, was now and then left open in the journal. A real ``soleguard demo`` in a real
pseudo-terminal, whose master side the test closes as a terminal window does.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import sqlite3
import subprocess
import sys
import termios
import time
from typing import TYPE_CHECKING

from tests.cli.terminal import isolated_env

if TYPE_CHECKING:
    from pathlib import Path

# Only a guard against a hung test.
GUARD_S = 60.0
# The promise of the README's "Ways out and exit status".
ENDED_WITHIN_S = 2.0


def _own_terminal() -> None:
    # In the child: the pseudo-terminal on stdin becomes its controlling terminal, as a shell's.
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def read_until(fd: int, marker: bytes) -> bytes:
    seen = b""
    deadline = time.monotonic() + GUARD_S
    while marker not in seen:
        assert time.monotonic() < deadline, f"never drew {marker!r}: {seen[-400:]!r}"
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            seen += os.read(fd, 65536)
    return seen


def test_closing_the_terminal_ends_the_demo_as_sighup_and_closes_its_session(
    tmp_path: Path,
) -> None:
    env = isolated_env(tmp_path)
    master, slave = os.openpty()
    err_path = tmp_path / "stderr"
    with err_path.open("w") as err:
        demo = subprocess.Popen(
            [sys.executable, "-m", "controller", "demo", "--speed", "1", "--minutes", "5"],
            env=env,
            stdin=slave,
            stdout=slave,
            stderr=err,
            start_new_session=True,
            preexec_fn=_own_terminal,  # noqa: PLW1509 (no threads are started before it runs)
        )
    os.close(slave)
    try:
        # The live view is drawn and the session runs: the heater has been switched on.
        read_until(master, b"heater")
        os.close(master)
        closed = time.monotonic()
        status = demo.wait(GUARD_S)
        took = time.monotonic() - closed
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert (status, err_path.read_text().splitlines()) == (129, ["stopped by SIGHUP"])
    assert took < ENDED_WITHIN_S, f"ended {took:.1f} s after the terminal closed"
    journal = tmp_path / "data" / "soleguard" / "demo.sqlite3"
    with contextlib.closing(sqlite3.connect(journal)) as conn:
        rows = conn.execute("SELECT ended_by, ended_at IS NOT NULL FROM sessions").fetchall()
    assert rows == [("sighup", 1)]
