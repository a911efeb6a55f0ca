"""Virtual time for asyncio: the same code runs in real time, faster than real time, or flat out.

`VirtualTimeLoop` is a `asyncio.SelectorEventLoop` whose `time()` is a virtual clock. Everything
that schedules with the loop (``asyncio.sleep``, ``call_later``, ``asyncio.timeout``, bumble's
advertising timers, bleak's timeouts) follows it without knowing.

- ``speed="max"`` (or ``math.inf``): when no callback is ready the loop polls the real selector
  with timeout 0; if no I/O is ready either, it jumps the clock to the next timer instead of
  waiting. It blocks on the real selector only when nothing at all is scheduled (then only I/O or
  another thread can wake it). While jobs given to ``run_in_executor`` are in flight the loop
  waits in real time, so a DNS lookup or a file read is not overtaken by its own timeout.
- ``speed=X``: virtual time runs at X times real time; selector timeouts are divided by X.

Real I/O (a TCP socket to another process) does not follow the virtual clock: with ``"max"`` a
peer in another process looks infinitely slow. Use a finite speed, or real time, across processes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import selectors
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, Literal, TypeVar

__all__ = [
    "Speed",
    "VirtualClock",
    "VirtualTimeLoop",
    "loop_factory",
    "parse_speed",
    "run",
]

_T = TypeVar("_T")

Speed = float | Literal["max"] | None
"""None: real time (a normal loop); a float: times real time; "max" or math.inf: flat out."""


class VirtualClock:
    """A monotonic clock that either follows real time scaled by ``speed`` or only jumps."""

    def __init__(self, speed: float, start: float = 0.0) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed!r}")
        self.speed = speed
        self._virtual_base = start
        self._real_base = time.monotonic()

    @property
    def jumping(self) -> bool:
        """True when the clock only moves by `advance` (speed "max")."""
        return math.isinf(self.speed)

    def now(self) -> float:
        if self.jumping:
            return self._virtual_base
        return self._virtual_base + (time.monotonic() - self._real_base) * self.speed

    def advance(self, seconds: float, *, to: float | None = None) -> None:
        """Move a jumping clock forward by `seconds`, or at least up `to` (a timer's deadline).

        `to` matters: ``now + (when - now)`` can round to just below ``when`` in floating point,
        and a timer due "in 1e-17 s" would then keep the loop spinning without time passing.
        """
        if not self.jumping:
            return
        target = self._virtual_base + max(0.0, seconds)
        if to is not None:
            target = max(target, to)
        self._virtual_base = target

    def real_timeout(self, virtual_timeout: float | None) -> float | None:
        """The real time to wait for `virtual_timeout` seconds of virtual time."""
        if virtual_timeout is None or self.jumping:
            return virtual_timeout
        return virtual_timeout / self.speed


class _VirtualSelector(selectors.BaseSelector):
    """Wraps the real selector; turns waits into clock jumps or scaled waits."""

    def __init__(
        self,
        clock: VirtualClock,
        in_flight: Callable[[], int],
        next_deadline: Callable[[], float | None],
    ) -> None:
        self._real = selectors.DefaultSelector()
        self._clock = clock
        self._in_flight = in_flight
        self._next_deadline = next_deadline

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        clock = self._clock
        if timeout is None or timeout <= 0 or not clock.jumping:
            return self._real.select(clock.real_timeout(timeout))
        events = self._real.select(0)
        if events:
            return events
        if self._in_flight():
            # An executor job will wake us through the self-pipe; let real time pass meanwhile,
            # and count it as virtual time so that timeouts still mean something.
            started = time.monotonic()
            events = self._real.select(timeout)
            clock.advance(time.monotonic() - started)
            return events
        clock.advance(timeout, to=self._next_deadline())
        return []

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def get_key(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.get_key(fileobj)

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._real.get_map()

    def close(self) -> None:
        self._real.close()


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """A selector event loop on a `VirtualClock`.

    ``VirtualTimeLoop()`` runs flat out; ``VirtualTimeLoop(speed=10.0)`` at ten times real time.
    """

    def __init__(self, speed: float | Literal["max"] = "max") -> None:
        self._in_flight_jobs = 0
        self.clock = VirtualClock(math.inf if speed == "max" else float(speed))
        super().__init__(
            _VirtualSelector(self.clock, lambda: self._in_flight_jobs, self._next_deadline)
        )

    def time(self) -> float:
        return self.clock.now()

    def _next_deadline(self) -> float | None:
        # BaseEventLoop keeps its timers in the heap ``_scheduled`` (CPython 3.8-3.14); the
        # head is what ``_run_once`` just computed its select timeout from.
        scheduled: list[asyncio.TimerHandle] = getattr(self, "_scheduled", [])
        return scheduled[0].when() if scheduled else None

    def run_in_executor(  # type: ignore[override]
        self, executor: concurrent.futures.Executor | None, func: Callable[..., _T], *args: Any
    ) -> asyncio.Future[_T]:
        future = super().run_in_executor(executor, func, *args)
        self._in_flight_jobs += 1
        future.add_done_callback(self._job_done)
        return future

    def _job_done(self, _future: asyncio.Future[Any]) -> None:
        self._in_flight_jobs -= 1


def parse_speed(value: str | float | None) -> Speed:
    """``"max"``/``"inf"``/``math.inf`` -> "max"; ``"real"``/``None``/``1`` stay real time."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("max", "inf", "infinity", "fast"):
            return "max"
        if text in ("real", "realtime", "none", ""):
            return None
        value = float(text.removesuffix("x"))
    if math.isinf(value):
        return "max"
    if not value > 0:
        raise ValueError(f"speed must be > 0, 'max' or 'real', got {value!r}")
    return float(value)


def loop_factory(speed: Speed = "max") -> Callable[[], asyncio.AbstractEventLoop]:
    """A loop factory for `asyncio.Runner` or pytest-asyncio's ``pytest_asyncio_loop_factories``."""
    parsed = parse_speed(speed)
    if parsed is None:
        return asyncio.new_event_loop
    chosen: float | Literal["max"] = parsed

    def factory() -> asyncio.AbstractEventLoop:
        return VirtualTimeLoop(chosen)

    return factory


def run(coro: Coroutine[Any, Any, _T] | Awaitable[_T], *, speed: Speed | str) -> _T:
    """Run `coro` to completion in real time (None), at ``speed`` times real time, or "max"."""
    with asyncio.Runner(loop_factory=loop_factory(parse_speed(speed))) as runner:
        return runner.run(_as_coroutine(coro))


async def _as_coroutine(awaitable: Awaitable[_T]) -> _T:
    return await awaitable
