"""The demo prints its summary with how it ended, whenever the signal comes (issue 11, item 1).

A signal during start-up (here: while the embedded broker starts, held there by a stand-in
``mosquitto`` that never listens) used to end the demo with no summary at all, and a way out
that got stuck was ended by the watchdog without one. A real ``soleguard demo`` process.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3
import sys
from pathlib import Path

import pytest

from tests.e2e.helpers import soleguard, wait_until

# Only a guard against a hung test.
GUARD_S = 60.0
# A stand-in broker: says it started (the marker file), then never listens; `stubborn` also
# ignores SIGTERM, so the demo's orderly way out is stuck and the watchdog has to end it.
FAKE_BROKER = """#!/bin/sh
{trap}
touch "$DEMO_TEST_BROKER_MARK"
exec sleep 60
"""


async def signal_during_start_up(
    home: Path, signum: signal.Signals, *, json_output: bool, stubborn: bool = False
) -> tuple[int, str, str]:
    """Run ``soleguard demo``, signal it once its broker is starting; (status, stdout, stderr)."""
    bin_dir = home / "bin"
    bin_dir.mkdir(parents=True)
    fake = bin_dir / "mosquitto"
    fake.write_text(FAKE_BROKER.format(trap="trap '' TERM" if stubborn else ""))
    fake.chmod(0o755)
    mark = home / "broker-started"
    tmp = home / "tmp"
    tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOLEGUARD_")}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_DATA_HOME=str(home / "data"),
        TMPDIR=str(tmp),
        DEMO_TEST_BROKER_MARK=str(mark),
        PATH=f"{bin_dir}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env['PATH']}",
    )
    args = ["demo", "--speed", "max", "--minutes", "1", *(["--json"] if json_output else [])]
    process = await asyncio.create_subprocess_exec(
        soleguard(),
        *args,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        await wait_until(mark.exists, GUARD_S)
        process.send_signal(signum)
        async with asyncio.timeout(GUARD_S):
            out, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    assert list(tmp.iterdir()) == [], "a temporary folder was left behind"
    return process.returncode, out.decode(), err.decode()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
async def test_a_signal_during_start_up_prints_the_json_summary(
    tmp_path: Path, signum: signal.Signals
) -> None:
    code, out, err = await signal_during_start_up(tmp_path, signum, json_output=True)
    assert code == 128 + signum, err
    summary = json.loads(out)
    assert summary["ended_by"] == signum.name.lower(), out
    assert summary["session_id"] is None, out
    assert "Traceback" not in err, err
    # Nothing was connected: the line must not claim a STOP was sent.
    assert "no session was started" in err, err


async def test_a_signal_during_start_up_prints_the_summary_line_without_json(
    tmp_path: Path,
) -> None:
    code, out, err = await signal_during_start_up(tmp_path, signal.SIGTERM, json_output=False)
    assert code == 143, err
    assert "demo ended by sigterm" in out, out
    assert "Traceback" not in err, err


async def test_a_forced_exit_still_prints_the_summary(tmp_path: Path) -> None:
    code, out, err = await signal_during_start_up(
        tmp_path, signal.SIGTERM, json_output=True, stubborn=True
    )
    assert code == 143, err
    # Usually the broker that ignores SIGTERM holds the orderly way out past the grace period
    # and the watchdog forces the exit; under load the way out can instead cancel that stop
    # again and SIGKILL the broker in time (an orderly end, "stopped by SIGTERM": seen 2-3 in
    # 10 loaded runs). Either way the promise holds: one summary with how the demo ended.
    assert "forced exit" in err or err.startswith("stopped by SIGTERM"), err
    assert json.loads(out)["ended_by"] == "sigterm", out


def open_sessions(journal: Path) -> list[int]:
    if not journal.exists():
        return []
    try:
        with sqlite3.connect(journal, timeout=0.05) as db:
            rows = db.execute("SELECT id FROM sessions WHERE ended_at IS NULL").fetchall()
    except sqlite3.Error:
        return []  # still being created
    return [row[0] for row in rows]


async def test_a_second_signal_mid_session_closes_the_journal_record_with_its_ending(
    tmp_path: Path,
) -> None:
    """Breaker finding 2: the forced exit left the record open, and the next start called it
    `interrupted`. SIGINT and SIGTERM sent together arrive in that order (by number), so the
    SIGTERM is a second signal whatever the load."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOLEGUARD_")}
    env.update(
        HOME=str(tmp_path),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        TMPDIR=str(tmp_path),
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}",
    )
    process = await asyncio.create_subprocess_exec(
        soleguard(),
        *["demo", "--speed", "1", "--minutes", "5", "--json", "--no-mqtt"],
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    journal = tmp_path / "data" / "soleguard" / "demo.sqlite3"
    try:
        await wait_until(lambda: bool(open_sessions(journal)), GUARD_S)
        process.send_signal(signal.SIGINT)
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(GUARD_S):
            out, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 130, err
    assert "second signal" in err.decode(), err
    assert json.loads(out)["ended_by"] == "sigint", out
    with sqlite3.connect(journal) as db:
        endings = db.execute("SELECT ended_by FROM sessions").fetchall()
    assert endings == [("sigint",)]
