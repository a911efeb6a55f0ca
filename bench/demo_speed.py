"""Wall and CPU time of ``soleguard demo --minutes 30 --speed max --json`` (goal: <= 4 s wall).

Runs the demo as a user would (a fresh process, the embedded broker, its own journal in a
throwaway home folder) a few times and prints the median, min and max of the wall seconds and of
the CPU seconds (user + system of the demo and its children: the broker is a child), with the
machine and its load before and after. CPU seconds are less sensitive than wall seconds to the
other processes of a shared machine. Checks each run ended by its timer with no traceback;
asserts nothing else.

    .venv/bin/python bench/demo_speed.py [--runs 3] [--minutes 30] [--speed max]
        [--scenario normal] [-- extra demo options, e.g. --no-mqtt]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parent)]

from _common import ROOT, machine_line  # noqa: E402

SOLEGUARD = Path(sys.executable).with_name("soleguard")
RUN_TIMEOUT_S = 600.0  # a demo that takes longer is broken, not slow


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one_run(args: argparse.Namespace, home: Path) -> tuple[float, float, str]:
    """(wall s, CPU s, how the session ended) of one demo."""
    command = [
        str(SOLEGUARD),
        "demo",
        "--minutes",
        f"{args.minutes:g}",
        "--speed",
        args.speed,
        "--scenario",
        args.scenario,
        "--json",
        *args.extra,
    ]
    env = {**os.environ, "HOME": str(home)}
    cpu_before, started = _children_cpu_s(), time.perf_counter()
    done = subprocess.run(
        command,
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    wall, cpu = time.perf_counter() - started, _children_cpu_s() - cpu_before
    if done.returncode != 0 or "Traceback" in done.stderr:
        sys.exit(f"demo failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    summary = json.loads(done.stdout)
    ended = str(summary.get("ended_by", "?"))
    alarms = ",".join(alarm["code"] for alarm in summary.get("alarms", []))
    return wall, cpu, f"{ended} ({alarms})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--speed", default="max")
    parser.add_argument("--scenario", default="normal")
    parser.add_argument("extra", nargs="*", help="more demo options, after --")
    args = parser.parse_args()
    print(f"before: {machine_line()}")
    walls, cpus, endings = [], [], []
    with tempfile.TemporaryDirectory(prefix="soleguard-bench-") as home:
        for _ in range(args.runs):
            wall, cpu, ended = one_run(args, Path(home))
            walls.append(wall)
            cpus.append(cpu)
            endings.append(ended)
    print(f"after:  {machine_line()}")
    print(
        f"demo --minutes {args.minutes:g} --speed {args.speed} --scenario {args.scenario} "
        f"{' '.join(args.extra)}: wall median {statistics.median(walls):.2f} s "
        f"(min {min(walls):.2f}, max {max(walls):.2f}); CPU median {statistics.median(cpus):.2f} s "
        f"(min {min(cpus):.2f}, max {max(cpus):.2f}); {args.runs} runs; ended: {'; '.join(endings)}"
    )


if __name__ == "__main__":
    main()
