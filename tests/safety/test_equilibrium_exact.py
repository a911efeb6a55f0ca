"""The equilibrium rule of sensor-follows-heater at its exact boundaries (controller/safety/follow).

tests/safety/test_equilibrium.py checks the rule on seeded, noisy inputs; here each input lands on
one of its boundaries exactly, so that a rule turning bad one reading late (or early) is seen. The
skin sensor reports every 15 s (a Health Thermometer measurement interval), so one judged reading
holds its verdict for the whole 15 s of bad time the alarm needs. Times start a day after boot
(86 400 s) with the heater on for ten minutes; readings are multiples of 2**-9 °C so that the
window means, the least-squares slope and the excess over the line are exact.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from controller.safety.follow import HeatResponse
from controller.settings import SafetyLimits

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

T0 = 86_400.0
LIMITS = SafetyLimits.defaults()
WINDOW = LIMITS.sensor_follow_window_s  # 60 s
BAD_S = LIMITS.sensor_follow_bad_s  # 15 s
TAU = LIMITS.sensor_eq_tau_s  # 500 s
TARGET = LIMITS.heater_target_c  # 38 °C
EVERY = 15.0  # s between skin readings
STEP = 2.0**-9 * EVERY  # °C a reading moves per interval at 2**-9 °C/s (0.117 °C/min)
# The default line's 0.7 °C gap is not a binary fraction, so no window mean sits on it exactly;
# with 0.75 °C (and the pad at the 37 °C core, where the per-kelvin term is 0) the line is exact.
EXACT = dataclasses.replace(LIMITS, sensor_eq_gap_c=0.75)
PAD_C = LIMITS.sensor_eq_core_c  # 37 °C


def session(
    limits: SafetyLimits,
    pad_c: Callable[[float], float],
    readings: Mapping[float, float],
    until: float,
) -> HeatResponse:
    """Heat on since ``T0 - 600``; a pad report a second and the given readings, up to ``until``."""
    response = HeatResponse(limits)
    response.heater(T0 - 600.0, True)
    t = T0 - 600.0
    while t <= until:
        response.pad(t, pad_c(t))
        if t in readings:
            response.reading(t, readings[t], TARGET)
        t += 1.0
    return response


def every_15_s(first: float, values: list[float]) -> dict[float, float]:
    """Readings from ``first`` (s), one per interval."""
    return {first + EVERY * k: v for k, v in enumerate(values)}


def steady(_t: float) -> float:
    return PAD_C


def test_a_stuck_reading_is_judged_exactly_half_a_window_after_the_sensor_connects() -> None:
    # The skin sensor connects at T0 under a pad at 37 °C, stuck at 35 °C (1.3 °C past the line).
    # Judged from T0 + 30 s (half a window of readings), not before and not one reading later.
    readings = every_15_s(T0, [35.0] * 6)
    early = session(LIMITS, steady, readings, T0 + 2 * EVERY)
    assert early.verdict(T0 + 2 * EVERY) is None
    on_time = session(LIMITS, steady, readings, T0 + 3 * EVERY)
    assert on_time.verdict(T0 + 3 * EVERY) is not None


def test_the_message_states_the_gap_the_pad_and_the_falling_rate() -> None:
    # A reading falling at 0.117 °C/min, 2 °C under the 37 °C pad: the caregiver reads the figures.
    readings = every_15_s(T0, [35.0 - STEP * k for k in range(4)])
    why = session(LIMITS, steady, readings, T0 + 3 * EVERY).verdict(T0 + 3 * EVERY)
    assert why == (
        "skin reading 35.0 °C stays 2.0 °C below the heating pad (37.0 °C) and rises -0.12 °C/min"
        " after 60 s of heating (skin under this pad settles within 0.7 °C of it): the skin sensor"
        " does not follow the heat (stuck, offset or drifting)"
    )


def test_a_reading_exactly_on_the_equilibrium_line_is_trusted_even_as_it_dips() -> None:
    # Honest skin at its equilibrium dips with noise: a window mean exactly on the line (36.25 °C
    # under the 37 °C pad, 0.75 °C gap) is trusted however it moves; one reading lower, it is not.
    line = PAD_C - EXACT.sensor_eq_gap_c
    readings = every_15_s(T0, [line + STEP - STEP * k for k in range(5)])
    on_line = session(EXACT, steady, readings, T0 + 3 * EVERY)
    assert on_line.verdict(T0 + 3 * EVERY) is None  # the reading at T0 + 30 s: mean on the line
    below = session(EXACT, steady, readings, T0 + 4 * EVERY)
    assert below.verdict(T0 + 4 * EVERY) is not None  # bad from T0 + 45 s: mean under it


def test_a_reading_rising_exactly_at_the_skin_time_constant_is_trusted() -> None:
    # 0.977 °C past the line and rising at 2**-9 °C/s: it closes that gap in exactly tau (500 s),
    # as an honest skin does, so it is trusted from its first judged reading on.
    excess = 2.0**-9 * TAU
    first_mean = PAD_C - EXACT.sensor_eq_gap_c - excess
    readings = every_15_s(T0, [first_mean - STEP + STEP * k for k in range(6)])
    response = session(EXACT, steady, readings, T0 + 5 * EVERY)
    assert response.verdict(T0 + 3 * EVERY) is None
    assert response.verdict(T0 + 5 * EVERY) is None
    # Rising one step slower, the same reading is not trusted.
    slower = every_15_s(T0, [first_mean - STEP / 2 + STEP / 2 * k for k in range(6)])
    assert session(EXACT, steady, slower, T0 + 3 * EVERY).verdict(T0 + 3 * EVERY) is not None


def test_a_reading_exactly_one_window_old_still_counts_after_a_dropout() -> None:
    # Stuck at 35 °C; the sensor misses three measurements after its first. At T0 + 60 s the
    # reading of T0 is still in the window (half a window covered), so the rule judges then.
    readings = {T0: 35.0, T0 + WINDOW: 35.0, T0 + WINDOW + EVERY: 35.0}
    response = session(LIMITS, steady, readings, T0 + WINDOW + EVERY)
    assert response.verdict(T0 + WINDOW + EVERY) is not None


def test_a_pad_report_exactly_one_window_old_still_counts_in_the_pad_mean() -> None:
    # The pad warms at 1 °C/min (38 °C at T0) under a reading stuck at 36.977 °C. At T0 + 60 s the
    # window's pad mean, the report of T0 included, is 38.5 °C: 0.002 °C short of the line, so
    # still trusted; without that report it would be 0.002 °C past it. Bad from T0 + 75 s.
    def warming(t: float) -> float:
        return 38.0 + (t - T0) / 60.0

    readings = every_15_s(T0 - 600.0, [36.977] * 46)
    response = session(LIMITS, warming, readings, T0 + WINDOW + EVERY)
    assert response.verdict(T0 + WINDOW + EVERY) is None
    later = session(LIMITS, warming, readings, T0 + WINDOW + 2 * EVERY)
    assert later.verdict(T0 + WINDOW + 2 * EVERY) is not None
