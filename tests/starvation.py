"""How long a process waited for a CPU: what a loaded machine adds to a wall-clock promise.

The promise "ends within 2 s of a signal" is about the program. On a loaded machine a process can
be runnable yet not running for a good part of those 2 s (two busy loops and two test workers on
two cores give each about half a core). Linux counts that time per thread in
``/proc/PID/task/TID/schedstat`` (second field: nanoseconds spent waiting on a run queue; see the
kernel's Documentation/scheduler/sched-stats.rst). A test that measures a promise in wall time
subtracts it, and only it: time spent sleeping, blocked or hung is never on a run queue, so a
program that hangs or waits still fails.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

# Why 10 ms: a thread's share is lost once it exits, so sample often; reading a few small /proc
# files costs microseconds.
SAMPLE_EVERY_S = 0.01


def runqueue_wait_s(pid: int, tid: int | None = None) -> float | None:
    """Seconds all live threads of ``pid`` (or only thread ``tid``) have waited on a run queue;
    None when it is gone or the kernel keeps no schedstat."""
    total_ns = 0
    folder = Path(f"/proc/{pid}/task")
    try:
        tasks = [folder / str(tid)] if tid is not None else list(folder.iterdir())
    except OSError:
        return None
    for task in tasks:
        with contextlib.suppress(OSError, IndexError, ValueError):
            total_ns += int((task / "schedstat").read_text().split()[1])
    return total_ns / 1e9


class RunqueueWait:
    """The run-queue wait of a process (or one of its threads) from the first sample on, sampled
    until it exits or the watch ends."""

    def __init__(self, pid: int, tid: int | None = None) -> None:
        self.pid = pid
        self.tid = tid
        self._first: float | None = None
        self._last: float | None = None

    @property
    def seconds(self) -> float:
        """Run-queue wait between the first and the last sample (0.0 without schedstat)."""
        if self._first is None or self._last is None:
            return 0.0
        return max(0.0, self._last - self._first)

    def sample(self) -> None:
        now = runqueue_wait_s(self.pid, self.tid)
        if now is None:
            return
        if self._first is None:
            self._first = now
        # Threads that exited take their share with them: keep the largest total seen.
        self._last = now if self._last is None else max(self._last, now)

    @contextlib.asynccontextmanager
    async def watching(self) -> AsyncIterator[RunqueueWait]:
        """Sample now and every ``SAMPLE_EVERY_S`` until the block ends."""
        self.sample()

        async def keep_sampling() -> None:
            while True:
                await asyncio.sleep(SAMPLE_EVERY_S)
                self.sample()

        sampler = asyncio.create_task(keep_sampling(), name=f"runqueue-{self.pid}")
        try:
            yield self
        finally:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
