"""Sensor follows heater: does the skin reading respond to the heat as the thermal model says?

A skin sensor that slid off the sole and reads boot air, drifts, reads low by an offset or is stuck
with noise still sends plausible numbers one by one (FAULTS.md classes 1 and 2). Judged together
with the heat commanded and with the pad temperature the massager reports (a second, independent
sensor), it gives itself away. Four rules; the time any of them finds a reading bad is added up
over one sliding window (:class:`~controller.safety.windows.BadTime`), and enough of it within
the window ends heat for the session:

- **gain**: after a whole window of commanded heat, with the pad at least ``gap`` above the
  reading at the window's start, the reading must have risen by ``min_rise``;
- **pad gap**: the reading is never more than ``pad_gap_max`` below the latest reported pad;
- **band**: once the reading has reached the target, after a whole window of heat it does not
  fall more than ``band`` below it (above the target is the cut-off's business, not this rule's);
- **equilibrium**: after a whole window of heat, a reading held further below the window's mean
  pad than the honest skin's equilibrium gap (a line in the pad temperature) must rise at least
  at (its excess over that gap) / ``tau``: an honest skin below its equilibrium approaches it with
  the skin's time constant. Catches a sensor stuck with noise, offset or drifting low while warm,
  which the gain rule (needs a large gap) and the band rule (needs the target reached) miss, and
  leaves alone an honest foot whose equilibrium is below the target.

Numbers, derivation from firmware_sim/physics.py and sources: docs/safety.md, "Sensor follows
heater", and controller/settings/limits.py. Pure: no clock, no I/O.
"""

from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING

from controller.safety.windows import BadTime, least_squares_slope

if TYPE_CHECKING:
    from controller.settings.effective import SafetyLimits

__all__ = ["HeatResponse"]


class HeatResponse:
    """The sensor-follows-heater rules for one session. Feed it, then ask :meth:`verdict`."""

    def __init__(self, limits: SafetyLimits) -> None:
        self._lim = limits
        self._bad = BadTime(limits.sensor_follow_bad_window_s)
        self._readings: deque[tuple[float, float]] = deque()
        self._pads: deque[tuple[float, float]] = deque()
        self._heat_since: float | None = None
        # When the heat commanded since `_heat_since` last paused (None while it is on).
        self._paused_since: float | None = None
        self._reached_target = False
        self._why = ""

    def reset(self) -> None:
        """A new session: nothing learned carries over."""
        self._bad.reset()
        self._readings.clear()
        self._pads.clear()
        self._heat_since = None
        self._paused_since = None
        self._reached_target = False
        self._why = ""

    def heater(self, now: float, on: bool) -> None:
        """The heater command decided at ``now`` (s).

        Heat counts as continuous through pauses up to ``sensor_follow_heat_gap_s``: a pause
        that a faulty sensor itself causes (an invalid or late reading) must not restart the
        window that would judge it (FAULTS.md class 4).
        """
        if self._paused_since is not None and (
            now - self._paused_since > self._lim.sensor_follow_heat_gap_s
        ):
            self._heat_since = None
            self._paused_since = None
        if on:
            self._paused_since = None
            if self._heat_since is None:
                self._heat_since = now
        elif self._heat_since is not None and self._paused_since is None:
            self._paused_since = now

    def pad(self, t: float, pad_c: float) -> None:
        """A valid pad temperature (degC) reported at ``t`` (s)."""
        self._pads.append((t, pad_c))
        self._trim(self._pads, t)

    def reading(self, t: float, celsius: float, target_c: float) -> None:
        """A valid skin reading (degC) at ``t`` (s); judges it against every rule."""
        lim = self._lim
        readings = self._readings
        readings.append((t, celsius))
        self._trim(readings, t)
        if celsius >= target_c:
            self._reached_target = True
        why = ""
        pad = self._pads[-1][1] if self._pads else None
        if pad is not None and pad - celsius > lim.sensor_pad_gap_max_c:
            why = (
                f"skin reading {celsius:.1f} °C is {pad - celsius:.0f} °C below the heating pad "
                f"({pad:.1f} °C): the skin sensor is not on the foot"
            )
        heated_window = (
            self._heat_since is not None and t - self._heat_since >= lim.sensor_follow_window_s
        )
        if not why and heated_window:
            start = t - lim.sensor_follow_window_s
            first = next(((rt, rc) for rt, rc in readings if rt >= start), None)
            pads = [pc for pt, pc in self._pads if pt >= start]
            if first is not None and pads and t - first[0] >= lim.sensor_follow_window_s / 2:
                rise = celsius - first[1]
                if (
                    min(pads) >= first[1] + lim.sensor_follow_gap_c
                    and rise < lim.sensor_follow_min_rise_c
                ):
                    why = (
                        f"skin reading rose {rise:+.1f} °C in {t - first[0]:.0f} s of heating "
                        f"with the pad at {min(pads):.1f} °C or more (at least "
                        f"{lim.sensor_follow_min_rise_c:.1f} °C expected): the skin sensor does "
                        "not follow the heat"
                    )
        if not why and heated_window:
            why = self._equilibrium(t)
        if (
            not why
            and heated_window
            and self._reached_target
            and celsius < target_c - lim.sensor_target_band_c
        ):
            why = (
                f"skin reading fell to {celsius:.1f} °C, more than "
                f"{lim.sensor_target_band_c:.0f} °C under the {target_c:.1f} °C target, while "
                "heating: the skin sensor is not on the foot or drifts"
            )
        self._bad.update(t, bool(why))
        if why:
            self._why = why

    def _equilibrium(self, t: float) -> str:
        """The equilibrium rule over the window ending at ``t`` (s): why it is bad, or ""."""
        lim = self._lim
        start = t - lim.sensor_follow_window_s
        window = [(rt, rc) for rt, rc in self._readings if rt >= start]
        pads = [pc for pt, pc in self._pads if pt >= start]
        if not pads or not window or t - window[0][0] < lim.sensor_follow_window_s / 2:
            return ""
        pad = sum(pads) / len(pads)
        reading = sum(rc for _, rc in window) / len(window)
        # The honest skin's equilibrium gap under this pad, with its margin (limits.py).
        allowed = lim.sensor_eq_gap_c + lim.sensor_eq_gap_per_k * max(
            0.0, pad - lim.sensor_eq_core_c
        )
        excess = pad - reading - allowed
        if excess <= 0.0:
            return ""
        slope = least_squares_slope(window, 3)
        if slope * lim.sensor_eq_tau_s >= excess:
            return ""
        return (
            f"skin reading {reading:.1f} °C stays {pad - reading:.1f} °C below the heating pad "
            f"({pad:.1f} °C) and rises {slope * 60.0:+.2f} °C/min after "
            f"{lim.sensor_follow_window_s:.0f} s of heating (skin under this pad settles within "
            f"{allowed:.1f} °C of it): the skin sensor does not follow the heat (stuck, offset or "
            "drifting)"
        )

    def verdict(self, now: float) -> str | None:
        """Why the sensor is not trusted to guide heat any more, or None while it is."""
        if self._bad.total(now) >= self._lim.sensor_follow_bad_s:
            return self._why
        return None

    def _trim(self, items: deque[tuple[float, float]], t: float) -> None:
        horizon = t - 2.0 * self._lim.sensor_follow_window_s
        while items and (items[0][0] < horizon or not math.isfinite(items[0][0])):
            items.popleft()
