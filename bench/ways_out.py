"""Signal -> exit time of ``soleguard sim``, ``monitor`` and ``demo`` (issue 11's promise: <= 2 s).

Each run starts the command as a user would (the installed ``soleguard`` script, in a process
group of its own, its temporary folder private), waits until it is up (``sim``: it printed its
devices; ``monitor`` and ``demo``: a fixed moment after start, as they say nothing while up off a
terminal), sends SIGINT, SIGTERM or SIGHUP (seeded) to the group and measures the
wall time until the process has exited. Prints median, p99, min and max per command, with the
machine and its load.

    .venv/bin/python bench/ways_out.py [--runs 10] [--seed 1] [--commands sim,monitor,demo]

``monitor`` needs a broker: a private mosquitto is started on a free port (skipped without one).
"""

from __future__ import annotations

import argparse
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent)]

from _common import machine_line, spread  # noqa: E402

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# Guards only: a run that takes longer is reported as a hang, never waited out on success.
UP_GUARD_S = 60.0
EXIT_GUARD_S = 30.0
# `monitor` and `demo` print nothing while up off a terminal: they are signalled this long after
# start (the demo's session is running by then on this machine; its pairing takes about 2 s).
QUIET_UP_S = 4.0


def _soleguard() -> str:
    found = shutil.which("soleguard", path=str(Path(sys.executable).parent))
    if found is None:
        raise SystemExit("the soleguard console script is not installed next to this Python")
    return found


def _wait_for_line(process: subprocess.Popen[bytes], marker: bytes) -> None:
    assert process.stdout is not None
    deadline = time.monotonic() + UP_GUARD_S
    buffer = b""
    while marker not in buffer:
        left = deadline - time.monotonic()
        if left <= 0 or process.poll() is not None:
            raise RuntimeError(f"not up: {buffer[-300:]!r}")
        ready, _, _ = select.select([process.stdout], [], [], left)
        if ready:
            chunk = os.read(process.stdout.fileno(), 4096)
            if not chunk:
                raise RuntimeError(f"ended before it was up: {buffer[-300:]!r}")
            buffer += chunk


def one(command: str, signum: int, broker: str | None) -> tuple[float, int]:
    """(seconds from signal to exit, exit status) of one run."""
    args = {
        "sim": ["sim", "--port", "0", "--no-readout"],
        "monitor": ["monitor", "--broker", broker or ""],
        "demo": ["demo", "--speed", "1", "--minutes", "5", "--no-mqtt"],
    }[command]
    with tempfile.TemporaryDirectory(prefix="bench-ways-out-") as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SOLEGUARD_")}
        env.update(HOME=home, TMPDIR=home, XDG_CONFIG_HOME=f"{home}/cfg")
        env.update(XDG_DATA_HOME=f"{home}/data", COLUMNS="120")
        process = subprocess.Popen(
            [_soleguard(), *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        try:
            if command == "sim":
                _wait_for_line(process, b"scenario:")
            else:
                time.sleep(QUIET_UP_S)  # nothing to wait on: see the module's docstring
            signalled = time.monotonic()
            os.killpg(process.pid, signum)
            process.wait(timeout=EXIT_GUARD_S)
            return time.monotonic() - signalled, process.returncode
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--commands", default="sim,monitor,demo")
    options = parser.parse_args()
    rng = random.Random(options.seed)
    print(machine_line())
    broker_process = None
    broker = None
    commands = options.commands.split(",")
    mosquitto = shutil.which("mosquitto") or shutil.which("/usr/sbin/mosquitto")
    if "monitor" in commands:
        if mosquitto is None:
            print("monitor: skipped (no mosquitto)")
            commands.remove("monitor")
        else:
            from controller.caregiver.broker import free_port  # noqa: PLC0415

            port = free_port()
            broker = f"mqtt://127.0.0.1:{port}"
            broker_process = subprocess.Popen(
                [mosquitto, "-p", str(port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(0.5)  # mosquitto listens within milliseconds; monitor retries anyway
    try:
        for command in commands:
            times: list[float] = []
            statuses: dict[int, int] = {}
            for _ in range(options.runs):
                seconds, status = one(command, rng.choice(SIGNALS), broker)
                times.append(seconds)
                statuses[status] = statuses.get(status, 0) + 1
            figures = spread(times)
            print(
                f"{command:8} n={figures['n']} signal -> exit: median {figures['median']:.2f} s, "
                f"p99 {figures['p99']:.2f} s, min {figures['min']:.2f} s, "
                f"max {figures['max']:.2f} s; exit statuses {dict(sorted(statuses.items()))}"
            )
    finally:
        if broker_process is not None:
            broker_process.terminate()
            broker_process.wait(timeout=EXIT_GUARD_S)
    print(f"load after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
