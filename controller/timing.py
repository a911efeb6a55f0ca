"""Comparing clock readings with deadlines, the one way every timer in SoleGuard does it.

A deadline computed as ``t + period`` and a clock that lands on it (a virtual clock jumps exactly
to the next timer) do not always compare as expected in floating point: ``(t + 1.0) - t`` can be
``0.9999999999999991``. A loop that waits "until the deadline", then finds it "not reached yet",
waits again for no time at all: on a virtual clock time then never moves and the CPU spins
(FAULTS.md class 5). Every timer comparison goes through `reached` and `remaining`, which treat
a deadline within `CLOCK_EPSILON_S` as reached, so waiting and checking always agree.
"""

from __future__ import annotations

__all__ = ["CLOCK_EPSILON_S", "reached", "remaining"]

# Far below anything timed here (the shortest period is the 0.1 s supervisor tick, the finest
# resolution the 1 ms lease field), far above float rounding at any realistic monotonic clock
# value (1e9 s of uptime has a resolution of ~1.2e-7 s).
CLOCK_EPSILON_S = 1e-6


def reached(now: float, deadline: float) -> bool:
    """True when ``deadline`` (seconds, same clock as ``now``) has come, rounding forgiven."""
    return now + CLOCK_EPSILON_S >= deadline


def remaining(now: float, deadline: float) -> float:
    """Seconds still to wait for ``deadline``: 0.0 exactly when `reached`, else > epsilon.

    Waiting ``remaining(now, d)`` and then checking ``reached(later, d)`` always agrees.
    """
    if reached(now, deadline):
        return 0.0
    return deadline - now
