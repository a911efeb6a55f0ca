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
    assert "forced exit" in err, err
    assert json.loads(out)["ended_by"] == "sigterm", out
