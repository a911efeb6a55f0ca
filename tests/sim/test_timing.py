"""Timer arithmetic and the paced virtual clock (issue 11: float rounding livelocked time).

Realistic monotonic clock values throughout (hours to decades of uptime), never 0.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import subprocess
import sys
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.timing import CLOCK_EPSILON_S, reached, remaining
from firmware_sim import clock

uptimes = st.floats(min_value=3_600.0, max_value=1e9)
periods = st.floats(min_value=1e-3, max_value=3_600.0)


@given(start=uptimes, period=periods)
def test_waiting_the_remaining_time_always_reaches_the_deadline(
    start: float, period: float
) -> None:
    deadline = start + period
    wait = remaining(start, deadline)
    assert wait >= 0.0
    # A clock that advances by exactly the wait (a virtual clock jumping to the timer) agrees.
    assert reached(start + wait, deadline)
    # The case of issue 11: `(t + 1.0) - t` can be 0.9999999999999991; `reached` forgives it.
    assert reached(deadline, start + period)


@given(start=uptimes, period=periods)
def test_a_deadline_not_reached_is_waited_for_a_real_time(start: float, period: float) -> None:
    deadline = start + period
    before = start + period / 2
    if not reached(before, deadline):
        assert remaining(before, deadline) > CLOCK_EPSILON_S / 2


def test_speeds_above_the_maximum_are_refused_with_the_maximum() -> None:
    assert clock.parse_speed("1000") == 1000.0
    assert clock.parse_speed(str(clock.MAX_SPEED)) == clock.MAX_SPEED
    with pytest.raises(ValueError, match="at most 100000"):
        clock.parse_speed("1e6")


@pytest.mark.parametrize("speed", ["", "  "])
def test_an_empty_speed_is_refused_not_taken_as_real_time(speed: str) -> None:
    with pytest.raises(ValueError, match="is empty"):
        clock.parse_speed(speed)


@pytest.mark.parametrize("speed", ["1e-9", "0.001", "0", "-1", "nan"])
def test_speeds_below_the_minimum_are_refused_with_the_minimum(speed: str) -> None:
    # 1e-9 once passed and then overflowed the OS's timers (OverflowError, exit 1).
    with pytest.raises(ValueError, match=r"at least 0\.01"):
        clock.parse_speed(speed)
    assert clock.parse_speed(str(clock.MIN_SPEED)) == clock.MIN_SPEED


def test_a_demo_at_a_speed_below_the_minimum_is_one_line_and_exit_2() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "controller", "demo", "--speed", "1e-9", "--no-mqtt"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    [line] = done.stderr.strip().splitlines()
    assert "--speed" in line
    assert "at least 0.01" in line


@pytest.mark.parametrize("speed", [20.0, 1000.0])
def test_computing_takes_no_virtual_time_at_a_finite_speed(speed: float) -> None:
    async def busy() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        before = loop.time()
        finish = time.monotonic() + 0.05
        while time.monotonic() < finish:  # 50 ms of CPU, as a loaded machine takes
            pass
        during = loop.time() - before
        slept_from = loop.time()
        await asyncio.sleep(1.0)  # and a virtual second still lasts one virtual second
        return during, loop.time() - slept_from

    during, slept = clock.run(busy(), speed=speed)
    assert during == 0.0
    assert slept == pytest.approx(1.0, abs=1e-6)


def test_the_executor_shutdown_is_waited_for_in_real_time_not_jumped_over() -> None:
    # asyncio.Runner (3.12+) bounds the executor's shutdown by a 300 s timer on the loop's clock;
    # a timer of our own stands in for it on every Python. While a job's thread still runs, the
    # virtual clock must not jump to the timer: the shutdown ends first.
    loop = clock.VirtualTimeLoop("max")
    executor = concurrent.futures.ThreadPoolExecutor(1)
    loop.set_default_executor(executor)
    fired: list[float] = []

    async def main() -> bool:
        # A thread the shutdown must join, submitted straight to the executor (not a loop job).
        executor.submit(time.sleep, 0.2)
        loop.call_later(300.0, lambda: fired.append(loop.time()))
        await loop.shutdown_default_executor()
        return not fired

    try:
        assert loop.run_until_complete(main()), "the virtual clock jumped over the shutdown"
    finally:
        loop.close()
