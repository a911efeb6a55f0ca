"""Virtual time for asyncio: the same code runs in real time, faster than real time, or flat out.

`VirtualTimeLoop` is a `asyncio.SelectorEventLoop` whose `time()` is a virtual clock. Everything
that schedules with the loop (``asyncio.sleep``, ``call_later``, ``asyncio.timeout``, bumble's
advertising timers, bleak's timeouts) follows it without knowing.

Virtual time moves only while the loop waits, never while it computes: a callback that takes
5 ms of CPU on a loaded machine takes no virtual time at all. That is what keeps a session at
``--speed 1000`` (or a loaded machine at the default 20x) free of causeless alarms: a skin reading
due every virtual second cannot look stale because the CPU was busy elsewhere.

- ``speed="max"`` (or ``math.inf``): when no callback is ready the loop polls the real selector
  with timeout 0; if no I/O is ready either, it jumps the clock to the next timer instead of
  waiting. It blocks on the real selector only when nothing at all is scheduled (then only I/O or
  another thread can wake it). While jobs given to ``run_in_executor`` are in flight the loop
  waits in real time, so a DNS lookup or a file read is not overtaken by its own timeout.
- ``speed=X`` (up to `MAX_SPEED`): at most X times real time. Where "max" jumps at once, the loop
  first waits the timer's delay divided by X in real time (so I/O from other threads and
  processes has time to arrive), then lands exactly on the timer; I/O that arrives earlier moves
  the clock by the real time waited times X.

Real I/O (a TCP socket to another process) does not follow the virtual clock: with ``"max"`` a
peer in another process looks infinitely slow. Use a finite speed, or real time, across processes.
Deadlines are compared through `controller.timing` (`reached`, `remaining`), so a clock that lands
exactly on a timer never finds it a rounding error short of due.
"""

from __future__ import annotations

import asyncio
import math
import selectors
import sys
import time
from typing import TYPE_CHECKING, Any, Literal, TypeVar

if TYPE_CHECKING:
    import concurrent.futures
    from collections.abc import Awaitable, Callable, Coroutine, Mapping

__all__ = [
    "MAX_SPEED",
    "Speed",
    "VirtualClock",
    "VirtualTimeLoop",
    "loop_factory",
    "parse_speed",
    "run",
]

_T = TypeVar("_T")

# The highest finite --speed accepted. Beyond it, the real wait per timer (a tick of 0.1 s virtual
# is 1 microsecond real at 1e5) is below what a select() call can resolve, so a finite factor
# would only be a slower way of saying "max"; ask for "max" instead.
MAX_SPEED = 100_000.0
# The lowest --speed accepted: a hundredth of real time (a 30-minute session in 50 hours) is slower
# than anyone watches; far smaller factors overflow the OS's timers (1e-9 raised OverflowError).
MIN_SPEED = 0.01

# epoll and select wait in whole milliseconds (rounded up): a shorter real wait is not waited.
SELECT_RESOLUTION_S = 0.001
# A finite-speed clock that lags its pace by more than this (real seconds) starts pacing afresh.
MAX_LAG_REAL_S = 0.25

Speed = float | Literal["max"] | None
"""None: real time (a normal loop); a float: times real time; "max" or math.inf: flat out."""


class VirtualClock:
    """A monotonic clock that moves only by `advance`: at once ("max") or paced by ``speed``.

    ``VirtualClock(speed, start)``: ``speed`` is a factor of real time (``math.inf``: jump at
    once); ``start`` the virtual time in seconds it starts at. Raises ValueError when ``speed``
    is not > 0 (NaN included).
    """

    def __init__(self, speed: float, start: float = 0.0) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed!r}")
        self.speed = speed
        self._virtual_base = start
        self.reanchor()

    @property
    def jumping(self) -> bool:
        """True when the clock jumps to the next timer without waiting (speed "max")."""
        return math.isinf(self.speed)

    def now(self) -> float:
        """The virtual time in seconds."""
        return self._virtual_base

    def reanchor(self) -> None:
        """Pace from here on: virtual ``now()`` corresponds to real ``time.monotonic()``."""
        self._real_anchor = time.monotonic()
        self._virtual_anchor = self._virtual_base

    def real_at(self, virtual: float) -> float:
        """The real (``time.monotonic``) moment a finite-speed clock should reach ``virtual``."""
        return self._real_anchor + (virtual - self._virtual_anchor) / self.speed

    def virtual_at(self, real: float) -> float:
        """The virtual time a finite-speed clock should show at real moment ``real``."""
        return self._virtual_anchor + (real - self._real_anchor) * self.speed

    def advance(self, seconds: float, *, to: float | None = None) -> None:
        """Move the clock forward by `seconds`, or at least up `to` (a timer's deadline).

        `to` matters: ``now + (when - now)`` can round to just below ``when`` in floating point,
        and a timer due "in 1e-17 s" would then keep the loop spinning without time passing.
        """
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
        if timeout is not None and timeout <= 0:
            # Callbacks are ready: the loop is computing, and computing takes no virtual time.
            return self._real.select(0)
        if timeout is None:
            # Nothing scheduled: only I/O or another thread can wake us. At a finite speed the
            # real time waited counts (times the speed); "max" has no timer to jump to.
            events = self._real.select(None)
            if not clock.jumping:
                clock.advance(clock.virtual_at(time.monotonic()) - clock.now())
            return events
        if self._in_flight():
            # An executor job will wake us through the self-pipe; let real time pass meanwhile,
            # and count it one to one as virtual time so that timeouts still mean something.
            started = time.monotonic()
            events = self._real.select(timeout)
            clock.advance(min(timeout, time.monotonic() - started))
            return events
        events = self._real.select(0) if clock.jumping else self._paced_select(timeout)
        if not events:
            clock.advance(timeout, to=self._next_deadline())
        return events

    def _paced_select(self, timeout: float) -> list[tuple[selectors.SelectorKey, int]]:
        """Wait until the real moment the timer is due at this speed; the clock moves on return.

        Paced against an anchor, not wait by wait: the time spent computing between waits is
        caught up in the next wait (so the average is the speed asked for), and a wait shorter
        than the selector's millisecond resolution is not rounded up to a whole millisecond.
        """
        clock = self._clock
        now_real = time.monotonic()
        wait = clock.real_at(clock.now() + timeout) - now_real
        if wait < -MAX_LAG_REAL_S:
            # Far behind (a loaded machine, a debugger): start pacing afresh instead of racing.
            clock.reanchor()
            wait = 0.0
        events = self._real.select(wait if wait >= SELECT_RESOLUTION_S else 0)
        if events:
            reached_v = clock.virtual_at(time.monotonic())
            clock.advance(min(timeout, max(0.0, reached_v - clock.now())))
        return events

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
        """The virtual clock's now (s): what ``loop.time()`` returns on this loop."""
        return self.clock.now()

    def _next_deadline(self) -> float | None:
        # BaseEventLoop keeps its timers in the heap ``_scheduled`` (CPython 3.8-3.14); the
        # head is what ``_run_once`` just computed its select timeout from.
        scheduled: list[asyncio.TimerHandle] = getattr(self, "_scheduled", [])
        return scheduled[0].when() if scheduled else None

    def run_in_executor(  # type: ignore[override]
        self, executor: concurrent.futures.Executor | None, func: Callable[..., _T], *args: Any
    ) -> asyncio.Future[_T]:
        """As `asyncio.BaseEventLoop.run_in_executor`, counting the job as in flight until it ends.

        The virtual clock does not jump while a job runs in a thread, so its result arrives in time.
        """
        future = super().run_in_executor(executor, func, *args)
        self._in_flight_jobs += 1
        future.add_done_callback(self._job_done)
        return future

    def _job_done(self, _future: asyncio.Future[Any]) -> None:
        self._in_flight_jobs -= 1

    async def shutdown_default_executor(self, timeout: float | None = None) -> None:  # noqa: ASYNC109 (the base signature, 3.12+)
        """As the base's, with the executor's shutdown counted in flight like a job.

        The base joins the executor's threads in a thread of its own, not a job, and from Python
        3.12 `asyncio.Runner` bounds it with a timeout on this loop's clock (300 s): the virtual
        clock jumped past it at once and Python 3.13 warned "The executor did not finishing
        joining its threads within 300 seconds" on the way out (the breaker, at a second signal).
        """
        self._in_flight_jobs += 1
        try:
            if sys.version_info >= (3, 12):
                await super().shutdown_default_executor(timeout)
            else:
                await super().shutdown_default_executor()
        finally:
            self._in_flight_jobs -= 1


def parse_speed(value: str | float | None) -> Speed:
    """A ``--speed`` value as a :data:`Speed`.

    ``"max"``/``"inf"``/``"infinity"``/``"fast"``/``math.inf`` -> "max"; ``"real"``/``"none"``/
    ``None`` -> None (a normal loop, real time); a number or numeric text (``"20"``,
    ``"20x"``) -> that float factor, ``1`` included (a virtual clock paced at real time, not
    None). Raises ValueError (a message without the value, for the caller to prefix with the
    option and the value cut short) for empty text, text that is not a number or a word above,
    and for a factor outside `MIN_SPEED`..`MAX_SPEED` (NaN included). A number written out
    (``1e400``, 500 nines) that overflows to infinity is refused as above the maximum: only the
    words mean "max".
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("max", "inf", "infinity", "fast"):
            return "max"
        if text in ("real", "realtime", "none"):
            return None
        if not text:
            # `--speed ""` (an unset shell variable) once ran a 20-minute session in real time.
            raise ValueError(
                f"is empty; use a factor {MIN_SPEED:g}..{MAX_SPEED:g}, 'real' or 'max'"
            )
        try:
            value = float(text.removesuffix("x"))
        except ValueError:
            raise ValueError(
                f"is not a number; use a factor {MIN_SPEED:g}..{MAX_SPEED:g}, 'real' or 'max'"
            ) from None
    elif math.isinf(value) and value > 0:
        return "max"
    if not value >= MIN_SPEED:
        raise ValueError(f"must be at least {MIN_SPEED:g} (a factor of real time), 'max' or 'real'")
    if value > MAX_SPEED:
        raise ValueError(f"must be at most {MAX_SPEED:g} (or 'max' for flat out)")
    return float(value)


def loop_factory(speed: Speed = "max") -> Callable[[], asyncio.AbstractEventLoop]:
    """A loop factory for `asyncio.Runner` or pytest-asyncio's ``pytest_asyncio_loop_factories``.

    ``speed`` as `parse_speed` takes it (None: ``asyncio.new_event_loop``, real time); raises
    ValueError as `parse_speed` does.
    """
    parsed = parse_speed(speed)
    if parsed is None:
        return asyncio.new_event_loop
    chosen: float | Literal["max"] = parsed

    def factory() -> asyncio.AbstractEventLoop:
        return VirtualTimeLoop(chosen)

    return factory


def run(coro: Coroutine[Any, Any, _T] | Awaitable[_T], *, speed: Speed | str) -> _T:
    """Run `coro` to completion in real time (None), at ``speed`` times real time, or "max".

    Returns what `coro` returns, raises what it raises; ValueError for a bad ``speed`` (see
    `parse_speed`).
    """
    with asyncio.Runner(loop_factory=loop_factory(parse_speed(speed))) as runner:
        return runner.run(_as_coroutine(coro))


async def _as_coroutine(awaitable: Awaitable[_T]) -> _T:
    return await awaitable
