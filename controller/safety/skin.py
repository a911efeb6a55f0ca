"""Skin trust: which readings count, when they are stale, and whether the sensor follows the heat.

A reading is valid when finite, within the physiological range, in order and not a spike (the
rate judged over at least the sensor's nominal period); readings after a stall are aged to its
start; the slope of the last readings feeds the predictive cut-off; the sensor-follows-heater
rules (controller/safety/follow.py) disable heat for the session when it does not.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from controller.safety._state import (
    _isfinite,
)
from controller.safety.alarms import AlarmCode
from controller.safety.decision import (
    SessionState,
)
from controller.safety.lifecycle import SessionLifecycle
from controller.safety.windows import least_squares_slope
from controller.timing import reached

if TYPE_CHECKING:
    from controller.safety.events import (
        SkinReading,
    )


class SkinTrust(SessionLifecycle):
    """Which readings count, when they are stale, whether the sensor follows the heat.

    The rules and their sources: docs/safety.md, "Sensor trust", "Time" and "Sensor follows
    heater"; the numbers (``valid_*``, ``max_skin_rate_c_per_s``, ``stale_after_s``,
    ``sensor_*``, ``prediction_*``) are :class:`~controller.settings.effective.SafetyLimits`
    fields, each bound and source in controller/settings/limits.py.
    """

    def _void_readings(self) -> None:
        """Nothing received so far shows the skin now: heat waits for a new valid reading."""
        self._fresh_t = None
        self._ref_t = None
        self._last_reading_valid = False
        self._history.clear()
        self._slope = 0.0

    def _on_reading(self, reading: SkinReading, now: float) -> None:
        t = self._time_of(reading.time, now)
        if not self._sensor_up or t is None or t < self._sensor_up_since:
            return  # queued from before the (re)connection: it does not count
        if not reached(now, float(reading.time) + self._offset):
            # Stamped after now (beyond float rounding): taken on the clock from before a step
            # back (or a clock that is not the supervisor's), so it cannot be placed in time;
            # counting it at `now` would make an old reading look brand new and keep heat on.
            # Nor may it be ignored: it may say the skin is at the cut-off (the property machine
            # found heat kept on past a reading of 40.0 °C stamped 1 s ahead). A reading that
            # cannot be placed in time is not trusted: heat waits for the next valid one.
            self._last_reading_valid = False
            return
        if self._stall_from is not None and t > self._stall_from:
            # Delivered after a stall: it may have waited in a queue since the stall began.
            t = max(self._stall_from, self._sensor_up_since)
        c = reading.celsius
        lim = self._lim
        valid = (
            isinstance(c, (int, float))
            and not isinstance(c, bool)
            and _isfinite(c)
            and lim.valid_min_c <= c <= lim.valid_max_c
        )
        if valid and self._ref_t is not None:
            span = t - self._ref_t
            # The rate is judged over at least the sensor's nominal period: a BLE stack that
            # delivers two honest readings 10 ms apart must not make the second a spike.
            judged = max(span, lim.skin_nominal_period_s)
            if span < 0.0 or abs(c - self._ref_c) > lim.max_skin_rate_c_per_s * judged:
                valid = False  # out of order, or a jump no skin can make: a spike
        if not valid:
            self._last_reading_valid = False
            self._invalid_run += 1
            self._invalid_total += 1
            if self._invalid_run >= lim.sensor_invalid_alarm_count:
                self._raise(
                    AlarmCode.SENSOR_INVALID,
                    f"skin sensor sent {self._invalid_run} invalid readings in a row "
                    f"(last: {c!r}): heater off; check that the sensor sits on the sole",
                    now,
                )
            return
        c = float(c)
        self._last_reading_valid = True
        self._invalid_run = 0
        self._clear(AlarmCode.SENSOR_INVALID)
        self._ref_t = self._fresh_t = t
        self._ref_c = self._fresh_c = c
        if self._state is SessionState.RUNNING:
            self._follow.reading(t, c, lim.heater_target_c)
        history = self._history
        history.append((t, c))
        horizon = t - lim.prediction_window_s
        while history[0][0] < horizon:
            history.popleft()
        self._slope = least_squares_slope(history, lim.prediction_min_readings)
        if c >= lim.latch_c:
            self._latch(c, now)

    def _evaluate_skin(self, now: float, running: bool) -> None:
        """The sensor's pace, stale readings and the sensor-follows-heater verdict."""
        lim = self._lim
        fresh = self._fresh_t is not None and now - self._fresh_t < lim.stale_after_s
        period = self._sensor_period
        too_slow = period is not None and not pace_fast_enough(period, lim.stale_after_s)
        if running and period is not None and too_slow:
            # Known at connection: heat off for the whole session, said once (an information
            # signal held until the next session starts, whatever pace is stated later), instead
            # of SENSOR_STALE raised and cleared at every slow reading.
            self._heat_disabled = True
            message = _too_slow_message(period, lim.stale_after_s)
            self._raise(AlarmCode.SENSOR_TOO_SLOW, message, now)
        if (
            running
            and not too_slow
            and self._sensor_up
            and not fresh
            # Right after a stall or a clock step heat waits for a new reading, but the sensor
            # has not been silent for stale_after_s: no alarm yet.
            and now - self._resumed_at >= lim.stale_after_s
        ):
            self._raise(
                AlarmCode.SENSOR_STALE,
                f"no valid skin reading for {lim.stale_after_s:.1f} s: heater off; check that the "
                "skin sensor is switched on and near the controller",
                now,
            )
        elif AlarmCode.SENSOR_STALE in self._alarms and (not running or fresh or too_slow):
            self._clear(AlarmCode.SENSOR_STALE)
        if running and not self._heat_disabled:
            why = self._follow.verdict(now)
            if why is not None:
                self._raise(
                    AlarmCode.SENSOR_NOT_FOLLOWING,
                    f"{why}: heat off for this session; put the skin sensor back on the sole "
                    "under the pad before the next session",
                    now,
                )
                self._heat_disabled = True


def pace_fast_enough(period_s: float, stale_after_s: float) -> bool:
    """True if a sensor measuring every ``period_s`` seconds (0: not periodically) keeps its
    readings younger than ``stale_after_s`` seconds: the one rule for whether a sensor's pace
    allows heat (controller/ble/thermometer.py asks it too, to decide what to write)."""
    return 0.0 < period_s < stale_after_s


def _too_slow_message(period_s: float, stale_after_s: float) -> str:
    if period_s == 0.0:
        pace = "does not measure periodically"
    elif math.isinf(period_s):
        pace = "did not state how often it measures"
    else:
        pace = f"measures every {period_s:g} s"
    return (
        f"the skin sensor {pace}, too slow for heat (a reading older than {stale_after_s:g} s "
        "cannot be trusted): heat off for this session, pressure continues; use a sensor that "
        "measures every second for heat"
    )
