"""A signal while a command ends still gets SoleGuard's way out, never the default action.

Python's finalization resets the signal handlers to the default action, and a signal during the
exit functions raised into them: a Ctrl-C or SIGTERM as a command ended gave status -2 or -15
without a word, or a traceback, and a second signal was never said to force the exit (issue 11,
breaker finding 6). ``ending_process.py`` holds a real process in that window.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest

from tests.e2e.helpers import wait_until

SCRIPT = Path(__file__).with_name("ending_process.py")
# Only a guard against a hung test.
GUARD_S = 60.0


async def end_with(signals: list[signal.Signals]) -> tuple[int, str]:
    """Run the process, send ``signals`` once it is ending, then let it finish."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(SCRIPT),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        async with asyncio.timeout(GUARD_S):
            line = await process.stdout.readline()
        assert line == b"ending\n", line
        for signum in signals:
            process.send_signal(signum)
            # The handler has run once the process is back waiting on stdin; the next signal
            # (or the line) must not overtake it, and no sleep can promise that.
            await wait_until(lambda: _sleeping_in_read(process.pid))
        process.stdin.write(b"go on\n")
        async with asyncio.timeout(GUARD_S):
            out, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, out.decode() + err.decode()


def _sleeping_in_read(pid: int) -> bool:
    """True when the process is blocked (state S) rather than running or dead."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # gone: nothing more to wait for
    return stat.rsplit(")", 1)[1].split()[0] in ("S", "Z")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
async def test_a_signal_as_the_command_ends_is_said_with_its_status(
    signum: signal.Signals,
) -> None:
    code, output = await end_with([signum])
    assert code == 128 + signum, output
    assert "Traceback" not in output, output
    assert "as the command ended" in output, output


async def test_a_second_signal_as_the_command_ends_forces_the_exit_and_says_so() -> None:
    code, output = await end_with([signal.SIGTERM, signal.SIGTERM])
    assert code == 128 + signal.SIGTERM, output
    assert "second signal: forced exit after SIGTERM" in output, output
    assert "Traceback" not in output, output
