"""The one reconnect backoff policy: capped exponential growth with a share of it randomised.

Both reconnecting parts use it: the BLE links (`controller.ble.links`, full jitter, so many
hubs' retries after a shared outage spread over the whole window) and the MQTT bridge
(`controller.caregiver.bridge`, half fixed and half random, so one hub never retries in a tight
loop). The variants are those of the AWS Architecture Blog's "Exponential Backoff And Jitter"
("full jitter" and "equal jitter").
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["Backoff"]

# Beyond 2**32 growth every realistic ceiling is long reached; the cap keeps the power finite.
_MAX_DOUBLINGS = 32


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before reconnect attempt ``attempt`` (counted from 0), in seconds.

    The ceiling is ``min(cap_s, initial_s * factor ** attempt)``; the delay is the fixed share
    ``fixed_share * ceiling`` plus a uniform draw over the rest. ``fixed_share`` 0.0 is full
    jitter (0..ceiling), 0.5 equal jitter (ceiling/2..ceiling).
    """

    initial_s: float
    cap_s: float
    factor: float = 2.0
    fixed_share: float = 0.0

    def ceiling(self, attempt: int) -> float:
        """The longest delay of attempt ``attempt`` (seconds)."""
        return min(self.cap_s, self.initial_s * self.factor ** min(attempt, _MAX_DOUBLINGS))

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before attempt ``attempt``; ``rng`` defaults to the `random` module."""
        ceiling = self.ceiling(attempt)
        fixed = ceiling * self.fixed_share
        return fixed + (rng or random).uniform(0.0, ceiling - fixed)
