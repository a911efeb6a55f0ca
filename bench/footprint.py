"""Footprint of the service: RSS and CPU of ``soleguard demo`` in real time; ``--help`` wall time.

    python bench/footprint.py [--duration 60]

Samples /proc/<pid>/status (VmRSS, VmHWM) and /proc/<pid>/stat (utime + stime) of a
``soleguard demo --speed 1 --minutes 2 --no-journal --no-mqtt --json`` process once a second
(Linux only, no psutil). Steady RSS is the median of the samples after the first 10 s (imports
and connection done). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_PERIOD_S = 1.0
WARMUP_S = 10.0  # imports, radio power-on, connection and pairing are over by then
HELP_RUNS = 10
RSS_GOAL_MB = 80.0
CPU_GOAL_PERCENT = 3.0
HELP_GOAL_MS = 300.0


def _soleguard() -> list[str]:
    found = shutil.which("soleguard", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "controller"]


def _status_kb(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return float(line.split()[1])
    return float("nan")


def _cpu_s(pid: int) -> float:
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    # utime and stime are fields 14 and 15 of stat(5); fields[] starts at field 3.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def footprint(duration_s: float) -> None:
    command = [
        *_soleguard(),
        "demo",
        "--speed", "1",
        "--minutes", "2",
        "--no-journal",
        "--no-mqtt",
        "--json",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started = time.monotonic()
    samples: list[tuple[float, float, float]] = []  # (elapsed, rss MB, cpu s)
    try:
        while (elapsed := time.monotonic() - started) < duration_s and process.poll() is None:
            samples.append((elapsed, _status_kb(process.pid, "VmRSS") / 1024, _cpu_s(process.pid)))
            time.sleep(SAMPLE_PERIOD_S)
        peak_mb = _status_kb(process.pid, "VmHWM") / 1024
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
    steady = [s for s in samples if s[0] >= WARMUP_S] or samples
    steady_mb = statistics.median(s[1] for s in steady)
    cpu_percent = 100.0 * (steady[-1][2] - steady[0][2]) / max(1e-9, steady[-1][0] - steady[0][0])
    total_percent = 100.0 * samples[-1][2] / max(1e-9, samples[-1][0])
    print(f"soleguard demo --speed 1, sampled {samples[-1][0]:.0f} s ({len(samples)} samples)")
    print(
        f"  RSS peak {peak_mb:6.1f} MB, steady {steady_mb:6.1f} MB   (goal <= {RSS_GOAL_MB:g} MB)"
    )
    print(
        f"  CPU after {WARMUP_S:g} s {cpu_percent:5.2f} % of one core; over the whole run "
        f"{total_percent:5.2f} %   (goal <= {CPU_GOAL_PERCENT:g} %)"
    )


def help_time() -> None:
    samples = []
    for _ in range(HELP_RUNS):
        start = time.perf_counter()
        subprocess.run([*_soleguard(), "--help"], check=True, stdout=subprocess.DEVNULL)
        samples.append((time.perf_counter() - start) * 1000)
    print(
        f"soleguard --help: median {statistics.median(samples):6.1f} ms, max {max(samples):6.1f}"
        f" ms over {HELP_RUNS}   (goal <= {HELP_GOAL_MS:g} ms)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds to sample")
    args = parser.parse_args()
    help_time()
    footprint(args.duration)
