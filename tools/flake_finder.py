"""Find flaky tests: run the suite (or a selection) many times, optionally under CPU load.

A flake is a test whose outcome depends on the machine rather than on the code: on speed, on load,
on timing. This script runs pytest ``--runs`` times, each run in its own process group with a
bounded wall time, optionally beside ``--load`` busy-loop processes (one per core loads the whole
machine), reads each run's JUnit XML and prints every test that failed or errored at least once,
with how often and its first message. Exit code: 0 when every run passed every test, 1 when any
test failed in any run (or a run hung), 2 on a usage error.

Usage (from the project root, with the project's virtual environment)::

    .venv/bin/python tools/flake_finder.py --runs 5 --load 2            # whole suite, loaded
    .venv/bin/python tools/flake_finder.py --runs 5                     # whole suite, quiet
    .venv/bin/python tools/flake_finder.py --runs 50 --load 2 -- tests/service/test_processes.py

or ``make flakes RUNS=5 LOAD=2 ARGS="tests/service"``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator

# One run of the whole suite takes a few minutes on a quiet 2-core machine and a few times that
# under full load; a run still going after this long is hung, not slow.
RUN_TIMEOUT_S = 45 * 60.0
# How long a run's process group gets to end after SIGTERM before SIGKILL.
KILL_GRACE_S = 10.0
# Messages are cut to this many characters in the report.
MESSAGE_CHARS = 300

BUSY_LOOP = "while True:\n    pass\n"


@dataclass
class TestRecord:
    """Outcomes of one test id over all runs."""

    outcomes: Counter[str] = field(default_factory=Counter)
    first_message: str = ""


@dataclass
class RunResult:
    """One pytest run: its exit code (None when it hung), wall time and load at the start."""

    index: int
    exit_code: int | None
    wall_s: float
    load_at_start: tuple[float, float, float]


@contextlib.contextmanager
def cpu_load(processes: int) -> Iterator[None]:
    """Keep ``processes`` busy-loop children running; always killed and reaped on exit."""
    children = [
        subprocess.Popen(
            [sys.executable, "-c", BUSY_LOOP],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        for _ in range(processes)
    ]
    try:
        yield
    finally:
        for child in children:
            child.kill()
        for child in children:
            child.wait()


def _end_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=KILL_GRACE_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def run_once(index: int, pytest_args: list[str], report: Path, log: Path) -> RunResult:
    """Run pytest once; its JUnit XML goes to ``report``, its output to ``log``."""
    load = os.getloadavg()
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        f"--junitxml={report}",
        *pytest_args,
    ]
    start = time.monotonic()
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            code: int | None = process.wait(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            # pytest is done (or hung): nothing it started may outlive the run.
            _end_group(process)
    return RunResult(index, code, time.monotonic() - start, load)


def read_report(report: Path, records: dict[str, TestRecord]) -> None:
    """Add each test case's outcome in one JUnit XML file to ``records``."""
    if not report.exists():
        return
    for case in ET.parse(report).getroot().iter("testcase"):
        name = f"{case.get('classname', '')}::{case.get('name', '')}"
        record = records[name]
        outcome = "passed"
        for child in case:
            if child.tag in {"failure", "error", "skipped"}:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[child.tag]
                if outcome != "skipped" and not record.first_message:
                    text = child.get("message") or (child.text or "")
                    record.first_message = " ".join(text.split())[:MESSAGE_CHARS]
                break
        record.outcomes[outcome] += 1


def _unwind(signum: int, _frame: object) -> None:
    """End by exception, so every ``finally`` ends the busy loops and the pytest run's group."""
    raise SystemExit(128 + signum)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog="Arguments after -- go to pytest (test paths, -k, -x ...).",
    )
    parser.add_argument("--runs", type=int, default=5, help="how many runs (default 5)")
    parser.add_argument(
        "--load", type=int, default=0, help="busy-loop processes beside the runs (2 = both cores)"
    )
    parser.add_argument(
        "--keep", type=Path, default=None, help="keep each run's log and JUnit XML in this folder"
    )
    args, pytest_args = parser.parse_known_args(argv)
    if pytest_args and pytest_args[0] == "--":
        pytest_args = pytest_args[1:]
    if args.runs < 1 or args.load < 0:
        parser.error("--runs must be >= 1 and --load >= 0")

    # SIGTERM or SIGHUP would end this process without its `finally` blocks, leaving the busy
    # loops and the running pytest (its own process group) behind: make them unwind instead.
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _unwind)

    records: dict[str, TestRecord] = defaultdict(TestRecord)
    results: list[RunResult] = []
    with tempfile.TemporaryDirectory(prefix="flake-finder-") as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        with cpu_load(args.load):
            for index in range(1, args.runs + 1):
                report, log = folder / f"run-{index}.xml", folder / f"run-{index}.log"
                result = run_once(index, pytest_args, report, log)
                results.append(result)
                read_report(report, records)
                verdict = "HUNG" if result.exit_code is None else f"exit {result.exit_code}"
                print(
                    f"run {index}/{args.runs}: {verdict}, {result.wall_s:.0f} s, load at start "
                    + " ".join(f"{x:.2f}" for x in result.load_at_start),
                    flush=True,
                )

    flaky = {
        name: record
        for name, record in records.items()
        if record.outcomes["failed"] or record.outcomes["error"]
    }
    walls = sorted(r.wall_s for r in results)
    print(
        f"\n{len(results)} runs with {args.load} busy-loop process(es) on {os.cpu_count()} cores; "
        f"{len(records)} tests; median run {walls[len(walls) // 2]:.0f} s "
        f"(min {walls[0]:.0f}, max {walls[-1]:.0f})"
    )
    hung = [r.index for r in results if r.exit_code is None]
    if hung:
        print(f"hung runs (killed after {RUN_TIMEOUT_S:.0f} s): {hung}")
    if not flaky:
        print("every test passed in every run" if not hung else "no test failed, but runs hung")
        return 1 if hung else 0
    print(f"{len(flaky)} test(s) failed at least once:")
    for name, record in sorted(flaky.items()):
        counts = ", ".join(f"{n} {k}" for k, n in sorted(record.outcomes.items()))
        print(f"- {name}: {counts}\n    {record.first_message}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
