"""The flake finder names a test that fails in some runs only, and passes a steady suite."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

FINDER = Path(__file__).resolve().parents[2] / "tools" / "flake_finder.py"

# Fails on every second run: the counter file outlives each pytest process.
FLAKY = """
from pathlib import Path

COUNTER = Path(__file__).with_name("runs.txt")


def test_steady() -> None:
    assert True


def test_flaky() -> None:
    runs = int(COUNTER.read_text()) if COUNTER.exists() else 0
    COUNTER.write_text(str(runs + 1))
    assert runs % 2 == 0, f"failed on run {runs + 1}"
"""


def _find(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(FINDER), *args, "--", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
        check=False,
    )


def test_a_test_that_fails_in_one_run_of_three_is_reported(tmp_path: Path) -> None:
    (tmp_path / "test_sample.py").write_text(FLAKY)
    result = _find(tmp_path, "--runs", "3", "--load", "1")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 test(s) failed at least once" in result.stdout
    assert "test_sample::test_flaky: 1 failed, 2 passed" in result.stdout
    assert "failed on run 2" in result.stdout
    assert "test_steady" not in result.stdout.split("failed at least once")[1]
    assert "with 1 busy-loop process(es)" in result.stdout


def test_a_steady_suite_passes(tmp_path: Path) -> None:
    (tmp_path / "test_sample.py").write_text("def test_ok() -> None:\n    assert True\n")
    result = _find(tmp_path, "--runs", "1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "every test passed in every run" in result.stdout


SLEEPER = """
import os
import time
from pathlib import Path


def test_sleeps() -> None:
    Path(__file__).with_name("pid.txt").write_text(str(os.getpid()))
    time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_terminated_finder_leaves_no_run_and_no_busy_loop_behind(tmp_path: Path) -> None:
    (tmp_path / "test_sleeper.py").write_text(SLEEPER)
    finder = subprocess.Popen(
        [sys.executable, str(FINDER), "--runs", "1", "--load", "1", "--", str(tmp_path)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    started: list[int] = []
    try:
        pid_file = tmp_path / "pid.txt"
        deadline = time.monotonic() + 60
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline, "the run never started"
            time.sleep(0.05)
        children_file = Path(f"/proc/{finder.pid}/task/{finder.pid}/children")
        started += [int(pid) for pid in children_file.read_text().split()]
        assert len(started) == 2  # the busy loop and the pytest run
        finder.terminate()
        assert finder.wait(timeout=30) == 128 + signal.SIGTERM
        left = [pid for pid in started if _alive(pid)]
        assert left == []
        assert not _alive(int(pid_file.read_text()))
    finally:
        if finder.poll() is None:
            finder.kill()
            finder.wait()
        for pid in started:  # a failed test leaves nothing running either
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
