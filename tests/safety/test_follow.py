"""The sensor-follows-heater rules one by one, at their exact boundaries (controller/safety/follow).

Times start a day after boot (86 400 s, exactly representable, so the boundaries are exact).
"""

from __future__ import annotations

import dataclasses
import math

from controller.safety.follow import HeatResponse
from controller.safety.windows import BadTime
from controller.settings import SafetyLimits

T0 = 86_400.0
# The rules one by one: these inputs sit at the gain, pad-gap and band rules' boundaries and are
# not physical (a reading 8 °C under a 38 °C pad creeping up 0.36 °C a minute), so the equilibrium
# rule, which would judge them too, is switched off here (tests/safety/test_equilibrium.py).
LIMITS = dataclasses.replace(SafetyLimits.defaults(), sensor_eq_gap_c=math.inf)
TARGET = LIMITS.heater_target_c
WINDOW = LIMITS.sensor_follow_window_s  # 60 s
BAD_S = LIMITS.sensor_follow_bad_s  # 15 s


def feed(
    response: HeatResponse, start: float, end: float, celsius: float, pad: float | None
) -> None:
    """One reading (and one pad report) a second over [start, end]."""
    t = start
    while t <= end:
        if pad is not None:
            response.pad(t, pad)
        response.reading(t, celsius, TARGET)
        t += 1.0


def test_gain_rule_judges_only_after_a_whole_window_of_heat() -> None:
    response = HeatResponse(LIMITS)
    feed(response, T0 - 30.0, T0 - 1.0, 32.0, 38.0)  # heater off: pad 6 °C above, no rise
    response.heater(T0, True)
    feed(response, T0, T0 + WINDOW - 1.0, 32.0, 38.0)
    assert response.verdict(T0 + WINDOW - 1.0) is None  # not yet a whole window of heat


def test_gain_rule_starts_counting_at_exactly_one_window_of_heat() -> None:
    response = HeatResponse(LIMITS)
    response.heater(T0, True)
    feed(response, T0, T0 + WINDOW + BAD_S, 30.0, 36.0)  # pad 6 °C above, reading flat
    # Bad from T0 + 60 s, so exactly 15 s of bad time at T0 + 75 s.
    why = response.verdict(T0 + WINDOW + BAD_S)
    assert why is not None
    assert "rose +0.0 °C in 60 s of heating with the pad at 36.0 °C" in why
    assert response.verdict(T0 + WINDOW + BAD_S - 0.5) is None


def test_gain_rule_needs_readings_over_half_the_window_at_least() -> None:
    response = HeatResponse(LIMITS)
    response.heater(T0, True)
    t = T0
    while t <= T0 + WINDOW + BAD_S:
        response.pad(t, 36.0)
        if t >= T0 + WINDOW / 2:  # no readings in the window's first half
            response.reading(t, 30.0, TARGET)
        t += 1.0
    assert response.verdict(T0 + WINDOW + BAD_S) is not None


def test_gain_rule_is_idle_without_pad_reports() -> None:
    response = HeatResponse(LIMITS)
    response.heater(T0, True)
    feed(response, T0, T0 + 2 * WINDOW, 30.0, None)
    assert response.verdict(T0 + 2 * WINDOW) is None


def test_a_reading_rising_by_the_minimum_gain_is_trusted() -> None:
    response = HeatResponse(LIMITS)
    response.heater(T0, True)
    t = T0
    while t <= T0 + 3 * WINDOW:
        response.pad(t, 38.0)
        response.reading(t, 30.0 + (t - T0) * 0.006, TARGET)  # 0.36 °C a minute
        t += 1.0
    assert response.verdict(T0 + 3 * WINDOW) is None


def test_pad_gap_at_exactly_the_limit_is_plausible() -> None:
    response = HeatResponse(LIMITS)
    feed(response, T0, T0 + 2 * BAD_S, 30.0, 30.0 + LIMITS.sensor_pad_gap_max_c)
    assert response.verdict(T0 + 2 * BAD_S) is None
    feed(response, T0 + 2 * BAD_S + 1, T0 + 4 * BAD_S, 28.0, 40.0)
    why = response.verdict(T0 + 4 * BAD_S)
    assert why is not None
    assert "28.0 °C is 12 °C below the heating pad (40.0 °C)" in why


def test_band_rule_at_exactly_the_band_is_plausible() -> None:
    response = HeatResponse(LIMITS)
    response.reading(T0 - 1.0, TARGET, TARGET)  # the target was reached
    response.heater(T0, True)
    low = TARGET - LIMITS.sensor_target_band_c
    # Pad within the gain rule's gap of the reading: only the band rule can judge.
    feed(response, T0, T0 + WINDOW + 2 * BAD_S, low, low + 3.0)
    assert response.verdict(T0 + WINDOW + 2 * BAD_S) is None
    feed(response, T0 + WINDOW + 2 * BAD_S + 1, T0 + WINDOW + 4 * BAD_S, low - 0.2, low + 2.8)
    assert response.verdict(T0 + WINDOW + 4 * BAD_S) is not None


def test_band_rule_needs_the_target_reached_first() -> None:
    response = HeatResponse(LIMITS)
    response.heater(T0, True)
    low = TARGET - LIMITS.sensor_target_band_c - 1.0
    feed(response, T0, T0 + WINDOW + 2 * BAD_S, low, low + 3.0)
    assert response.verdict(T0 + WINDOW + 2 * BAD_S) is None


def test_reset_forgets_the_session() -> None:
    response = HeatResponse(LIMITS)
    response.heater(T0, True)
    feed(response, T0, T0 + WINDOW + BAD_S, 30.0, 36.0)
    response.reset()
    assert response.verdict(T0 + WINDOW + BAD_S) is None


def test_bad_time_adds_up_over_the_window_and_forgets_what_left_it() -> None:
    bad = BadTime(10.0)
    for tick in range(100):  # 0.8 s bad, 0.2 s good, every second
        bad.update(T0 + tick / 10, tick % 10 < 8)
    assert abs(bad.total(T0 + 9.9) - 8.0) < 1e-6  # ten spans of 0.8 s
    bad.update(T0 + 10.0, False)
    assert bad.total(T0 + 30.0) == 0.0
    bad.update(T0 + 30.0, True)
    assert bad.total(T0 + 31.0) == 1.0
    bad.reset()
    assert bad.total(T0 + 31.0) == 0.0
    assert not bad.bad


def test_gain_rule_judges_the_coolest_pad_of_the_window() -> None:
    response = HeatResponse(LIMITS)
    response.heater(T0, True)
    t = T0
    while t <= T0 + 2 * WINDOW:
        # The pad warms from 32 to 38 °C over the first window, then holds 38 °C.
        response.pad(t, min(38.0, 32.0 + (t - T0) * 0.1))
        response.reading(t, 30.0, TARGET)
        t += 1.0
    # Within the first window and a bit, the coolest pad was under reading + 4 °C: no verdict.
    assert response.verdict(T0 + WINDOW + BAD_S) is None
    why = response.verdict(T0 + 2 * WINDOW)
    assert why is not None  # later the whole window had the pad >= 34 °C
    assert "with the pad at 38.0 °C or more" in why


def test_gain_rule_at_exactly_the_gap_judges() -> None:
    response = HeatResponse(LIMITS)
    response.heater(T0, True)
    feed(response, T0, T0 + WINDOW + BAD_S, 30.0, 30.0 + LIMITS.sensor_follow_gap_c)
    assert response.verdict(T0 + WINDOW + BAD_S) is not None


def test_gain_rule_waits_for_readings_over_half_a_window() -> None:
    response = HeatResponse(LIMITS)
    response.heater(T0, True)
    t = T0
    while t <= T0 + WINDOW + 30.0:
        response.pad(t, 36.0)
        if t >= T0 + 45.0:  # the sensor only starts indicating 45 s into the heat
            response.reading(t, 30.0, TARGET)
        t += 1.0
    # Judged from T0 + 75 s (30 s of readings), so not 15 s of bad time by T0 + 89 s.
    assert response.verdict(T0 + 89.0) is None
    assert response.verdict(T0 + WINDOW + 30.0) is not None


def test_gain_is_measured_from_the_reading_at_the_window_start() -> None:
    # 0.305 °C a minute: enough over a whole window (60 s), not over 59 s.
    response = HeatResponse(LIMITS)
    response.heater(T0, True)
    t = T0
    while t <= T0 + 3 * WINDOW:
        response.pad(t, 38.0)
        response.reading(t, 30.0 + (t - T0) * 0.305 / WINDOW, TARGET)
        t += 1.0
    assert response.verdict(T0 + 3 * WINDOW) is None


def test_a_rise_of_exactly_the_minimum_gain_follows() -> None:
    response = HeatResponse(LIMITS)
    response.heater(T0, True)
    rise = LIMITS.sensor_follow_min_rise_c
    t = T0
    while t <= T0 + 2 * WINDOW:
        response.pad(t, 10.0)
        # Exactly `rise` above the reading one window earlier (0.0 + 0.3 == 0.3 in floats).
        response.reading(t, 0.0 if t < T0 + WINDOW else rise, TARGET)
        t += 1.0
    assert response.verdict(T0 + WINDOW + 2 * BAD_S) is None


def test_the_message_names_the_coolest_pad_of_the_window() -> None:
    response = HeatResponse(LIMITS)
    response.heater(T0, True)
    t = T0
    while t <= T0 + 95.0:
        response.pad(t, min(38.0, 32.0 + (t - T0) * 0.1))
        response.reading(t, 30.0, TARGET)
        t += 1.0
    why = response.verdict(T0 + 95.0)  # bad from T0 + 80 s, when the coolest pad reached 34 °C
    assert why is not None
    assert "with the pad at 35.5 °C or more" in why


def test_heat_paused_for_exactly_the_gap_is_still_one_window_of_heat() -> None:
    gap = LIMITS.sensor_follow_heat_gap_s
    response = HeatResponse(LIMITS)
    response.heater(T0, True)
    response.heater(T0 + 20.0, False)  # an invalid reading switched it off...
    response.heater(T0 + 20.0 + gap, True)  # ...until the next valid one, `gap` later
    feed(response, T0, T0 + WINDOW + BAD_S, 30.0, 36.0)  # pad 6 °C above, reading flat
    assert response.verdict(T0 + WINDOW + BAD_S) is not None


def test_heat_paused_for_longer_than_the_gap_starts_a_new_window() -> None:
    gap = LIMITS.sensor_follow_heat_gap_s
    response = HeatResponse(LIMITS)
    response.heater(T0, True)
    response.heater(T0 + 20.0, False)
    response.heater(T0 + 20.0 + gap + 0.5, True)  # a real pause: the window starts again here
    feed(response, T0, T0 + WINDOW + BAD_S, 30.0, 36.0)
    assert response.verdict(T0 + WINDOW + BAD_S) is None
    # Judged one window after the restart (readings each whole second: one more for the 15 s).
    later = T0 + 20.0 + gap + 0.5 + WINDOW + BAD_S + 1.0
    feed(response, T0 + WINDOW + BAD_S + 1.0, later, 30.0, 36.0)
    assert response.verdict(later) is not None
