"""Time in a bad state over a sliding window: the detector for faults that come and go.

A detector that needs an unbroken run of bad samples is reset by one good sample, so a relay that
flaps (0.8 s energised, 0.2 s off) or a pressure that dips under the threshold once a second is
never caught (FAULTS.md class 4). :class:`BadTime` instead adds up how long the watched state was
bad within the last ``window_s`` seconds; a state holds from one sample to the next.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Collection

__all__ = ["BadTime", "least_squares_slope"]


class BadTime:
    """Seconds spent in a bad state within the last ``window_s`` seconds (monotonic time)."""

    __slots__ = ("_last_t", "_since", "_spans", "window_s")

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._spans: deque[tuple[float, float]] = deque()  # closed bad spans (start, end)
        self._since: float | None = None  # start of the open bad span, if bad now
        self._last_t = -float("inf")

    @property
    def bad(self) -> bool:
        """Whether the latest sample was bad."""
        return self._since is not None

    def update(self, t: float, bad: bool) -> None:
        """Record the state sampled at ``t`` (s); a sample older than the latest counts at it."""
        t = max(t, self._last_t)
        self._last_t = t
        if bad:
            if self._since is None:
                self._since = t
        elif self._since is not None:
            if t > self._since:
                self._spans.append((self._since, t))
            self._since = None

    def total(self, now: float) -> float:
        """Seconds of bad state within ``[now - window_s, now]``; the open span counts up to now."""
        start = now - self.window_s
        spans = self._spans
        while spans and spans[0][1] <= start:
            spans.popleft()
        total = 0.0
        for begin, end in spans:
            total += max(0.0, min(end, now) - max(begin, start))
        if self._since is not None:
            total += max(0.0, now - max(self._since, start))
        return total

    def reset(self) -> None:
        """Forget every sample: the next detection needs its own bad time."""
        self._spans.clear()
        self._since = None


def least_squares_slope(history: Collection[tuple[float, float]], min_readings: int) -> float:
    """Least-squares slope (degC/s) of ``(time s, degC)`` readings; 0 with too few or no spread."""
    n = len(history)
    if n < min_readings:
        return 0.0
    mean_t = sum(t for t, _ in history) / n
    mean_c = sum(c for _, c in history) / n
    sxx = 0.0
    sxy = 0.0
    for t, c in history:
        dt = t - mean_t
        sxx += dt * dt
        sxy += dt * (c - mean_c)
    if sxx <= 0.0:
        return 0.0
    return sxy / sxx
