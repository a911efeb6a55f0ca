"""One thread that writes a session's journal, so the safety loop never waits for SQLite.

A write to SQLite usually takes a fraction of a millisecond, but not always: with another
process holding the database's write lock it waits up to the busy timeout (5 s), and a failing
disk can stall longer. The supervisor loop must not wait with it. The loop hands each write to
`JournalWriter.submit`, which only appends to a bounded queue; this thread performs them in
order. When the queue is full (the disk is far behind), the newest write is dropped and counted:
a missing 1 Hz reading costs less than a late supervisor step.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from controller.errors import StoreError

__all__ = ["CLOSE_TIMEOUT_S", "QUEUE_MAX", "JournalWriter"]

_LOGGER = logging.getLogger(__name__)

# Why 4,096: a 30-minute session writes ~1,800 readings and tens of alarms; a whole session fits,
# so a database locked for minutes loses nothing, at a few hundred kilobytes of memory.
QUEUE_MAX = 4096
# Why 3 s: at the end of a session the last records get this long to be written; longer would
# hold up a process that is asked to end within 2 s of a signal (its watchdog ends it anyway).
CLOSE_TIMEOUT_S = 3.0

Job = Callable[[], Any]
_STOP: Job = lambda: None  # noqa: E731 (a unique sentinel that is also a valid job)


class JournalWriter:
    """Runs journal writes in order on its own thread; `submit` never blocks."""

    def __init__(self, *, capacity: int = QUEUE_MAX, name: str = "journal-writer") -> None:
        self._queue: queue.Queue[Job] = queue.Queue(capacity)
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        self.written = 0
        self.failed = 0
        self.dropped = 0
        self._failing = False

    def submit(self, job: Job) -> bool:
        """Queue ``job`` (a write); False if the queue is full and it was dropped."""
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            self.dropped += 1
            if self.dropped == 1:
                _LOGGER.error("journal: the disk is far behind; records are being dropped")
            return False
        return True

    def call(self, job: Job) -> concurrent.futures.Future[Any]:
        """Queue ``job`` and return a future of its result (failed if the queue is full)."""
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(job())
            except BaseException as exc:
                future.set_exception(exc)
                raise

        if not self.submit(run):
            future.set_exception(StoreError("the journal's write queue is full"))
        return future

    def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> bool:
        """Write what is queued (for at most ``timeout_s``) and stop; True if all was written."""
        deadline = time.monotonic() + timeout_s
        with contextlib.suppress(queue.Full):  # then the join below times out and says so
            self._queue.put(_STOP, timeout=timeout_s)
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            left = self._queue.qsize()
            _LOGGER.error("journal: %d record(s) not written in %.0f s", left, timeout_s)
            return False
        return True

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is _STOP:
                return
            try:
                job()
            except StoreError as exc:
                # The journal is a record, not a safety function: logged once per failing
                # stretch, and the session goes on.
                self.failed += 1
                if not self._failing:
                    self._failing = True
                    _LOGGER.error("journal: cannot write: %s", exc)
                continue
            except Exception:
                # A bug in a job must not end the thread that writes every later record.
                self.failed += 1
                _LOGGER.exception("journal: a write failed")
                continue
            self.written += 1
            if self._failing:
                self._failing = False
                _LOGGER.warning("journal: writing again")
