"""Closing the terminal under a running demo ends it as SIGHUP's way out (issue 11's break 2).

Closing a terminal sends SIGHUP and makes every later write to it fail (EIO). The live view's next
redraw then failed first, and that error was reported as a command failure: "error:
Input/output error", status 1 instead of 129 and "stopped by SIGHUP", and the session, cancelled
with the view, was now and then left open in the journal. A real ``soleguard demo`` in a real
pseudo-terminal, whose master side the test closes as a terminal window does.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import sqlite3
import sys
import time
from typing import TYPE_CHECKING

from tests.cli.terminal import isolated_env
from tests.starvation import RunqueueWait

if TYPE_CHECKING:
    from pathlib import Path

# Only a guard against a hung test.
GUARD_S = 60.0
# The promise of the README's "Ways out and exit status".
ENDED_WITHIN_S = 2.0
# This test sees the exit through its own event loop on a shared, loaded machine.
OBSERVATION_SLACK_S = 0.5


# Run first in the child (a session of its own): the pseudo-terminal on stdin becomes its
# controlling terminal, as a shell's, then the demo replaces it. A command rather than a
# `preexec_fn`, which is not safe in a test process that may run threads.
OWN_TERMINAL = (
    "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])"
)


def read_until(fd: int, marker: bytes) -> bytes:
    seen = b""
    deadline = time.monotonic() + GUARD_S
    while marker not in seen:
        assert time.monotonic() < deadline, f"never drew {marker!r}: {seen[-400:]!r}"
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            seen += os.read(fd, 65536)
    return seen


async def test_closing_the_terminal_ends_the_demo_as_sighup_and_closes_its_session(
    tmp_path: Path,
) -> None:
    env = isolated_env(tmp_path)
    master, slave = os.openpty()
    err_path = tmp_path / "stderr"
    command = ["-m", "controller", "demo", "--speed", "1", "--minutes", "5"]
    with err_path.open("w") as err:
        demo = await asyncio.create_subprocess_exec(
            sys.executable,
            *["-c", OWN_TERMINAL, *command],
            env=env,
            stdin=slave,
            stdout=slave,
            stderr=err,
            start_new_session=True,
        )
    os.close(slave)
    try:
        # The live view is drawn and the session runs: the heater has been switched on.
        await asyncio.to_thread(read_until, master, b"heater")
        async with RunqueueWait(demo.pid).watching() as starved:
            os.close(master)
            closed = time.monotonic()
            async with asyncio.timeout(GUARD_S):
                status = await demo.wait()
            took = time.monotonic() - closed
    finally:
        if demo.returncode is None:
            demo.kill()
            await demo.wait()
    assert (status, err_path.read_text().splitlines()) == (129, ["stopped by SIGHUP"])
    # The promise is the program's: time the machine gave it no CPU is not counted.
    own = took - starved.seconds
    assert own < ENDED_WITHIN_S + OBSERVATION_SLACK_S, (
        f"ended {took:.1f} s after the terminal closed, {starved.seconds:.1f} s of it waiting "
        "for a CPU"
    )
    journal = tmp_path / "data" / "soleguard" / "demo.sqlite3"
    with contextlib.closing(sqlite3.connect(journal)) as conn:
        rows = conn.execute("SELECT ended_by, ended_at IS NOT NULL FROM sessions").fetchall()
    assert rows == [("sighup", 1)]
