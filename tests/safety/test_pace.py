"""A skin sensor too slow for heat: one information signal and heat off, not one SENSOR_STALE
per reading.

The caller learns the sensor's pace at connection (the Health Thermometer's Measurement Interval,
or the gap between its first readings) and tells the supervisor with a ``SensorPace`` event. Every
test runs at a realistic monotonic clock (a day after boot, or a random offset up to days).
"""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.safety import (
    AlarmCode,
    DeviceKind,
    Event,
    LinkChanged,
    Priority,
    SensorPace,
    UserStop,
    pace_fast_enough,
)
from controller.settings import SafetyLimits
from tests.safety.rig import TICK, Rig

DAY_S = 86_400.0
STALE_S = SafetyLimits.defaults().stale_after_s
MINUTES_10 = 600.0


def slow_session(rig: Rig, period_s: float, seconds: float) -> None:
    """A running session whose sensor sends a valid reading every ``period_s`` seconds."""
    every = round(period_s / TICK)
    for i in range(round(seconds / TICK)):
        events: list[Event] = [rig.report()]
        if i % every == every - 1:
            events.append(rig.reading())
        rig.step(*events)


def too_slow_alarms(rig: Rig) -> list[str]:
    return [code for code in rig.alarms if code == AlarmCode.SENSOR_TOO_SLOW]


def test_a_five_second_sensor_gives_one_held_signal_in_ten_minutes_and_never_heat() -> None:
    rig = Rig(start=DAY_S)
    rig.connect()
    rig.step(SensorPace(5.0))
    rig.start()
    heater_steps = 0
    held = True
    every = round(5.0 / TICK)
    for i in range(round(MINUTES_10 / TICK)):
        events: list[Event] = [rig.report()]
        if i % every == every - 1:
            events.append(rig.reading())
        decision = rig.step(*events)
        heater_steps += decision.command.heater_on
        held = held and AlarmCode.SENSOR_TOO_SLOW in {a.code for a in decision.active_alarms}
    assert too_slow_alarms(rig) == ["SENSOR_TOO_SLOW"]
    assert AlarmCode.SENSOR_STALE not in rig.alarms
    assert held
    assert heater_steps == 0
    assert rig.decision.heater_block == "disabled_for_session"
    assert rig.decision.command.pressure_mmhg > 0.0  # pressure massage goes on
    (alarm,) = [a for a in rig.decision.active_alarms if a.code == AlarmCode.SENSOR_TOO_SLOW]
    assert alarm.priority is Priority.LOW
    assert alarm.message.startswith("the skin sensor measures every 5 s, too slow for heat")
    assert f"older than {STALE_S:g} s" in alarm.message
    assert "heat off for this session" in alarm.message


def test_the_same_sensor_without_its_pace_is_stale_after_each_reading() -> None:
    # What the service did before it knew the pace, and what still happens to a sensor that says
    # nothing and goes quiet: SENSOR_STALE again and again. Shows the test above can fail.
    rig = Rig(start=DAY_S)
    rig.running()
    slow_session(rig, 5.0, 60.0)
    assert rig.alarms.count(AlarmCode.SENSOR_STALE) >= 10
    assert not too_slow_alarms(rig)


# Each example is a two-minute session: 30 of them cover the paces and days of offsets.
@settings(max_examples=30)
@given(
    offset=st.floats(min_value=60.0, max_value=5 * DAY_S),
    period=st.sampled_from([STALE_S, 2.5, 3.0, 5.0, 10.0, 30.0]),
)
def test_any_pace_at_or_over_the_stale_limit_disables_heat_once(
    offset: float, period: float
) -> None:
    rig = Rig(start=round(offset, 1))
    rig.connect()
    rig.start()
    rig.step(SensorPace(period), rig.report(), rig.reading())
    assert rig.decision.command.heater_on is False
    slow_session(rig, period, 120.0)
    assert too_slow_alarms(rig) == ["SENSOR_TOO_SLOW"]
    assert AlarmCode.SENSOR_STALE not in rig.alarms
    assert rig.decision.command.heater_on is False


@settings(max_examples=30)
@given(offset=st.floats(min_value=60.0, max_value=5 * DAY_S))
def test_a_sensor_under_the_stale_limit_heats_and_a_silent_one_is_still_stale(
    offset: float,
) -> None:
    # A one-second thermometer that said so heats; when it falls silent the stale rule holds.
    rig = Rig(start=round(offset, 1))
    rig.connect()
    rig.step(SensorPace(1.0))
    rig.start()
    rig.run(10.0)
    assert rig.decision.command.heater_on is True
    assert not too_slow_alarms(rig)
    rig.run(STALE_S + 0.5, readings=False)
    assert rig.decision.command.heater_on is False
    assert AlarmCode.SENSOR_STALE in rig.alarms


def test_a_pace_just_under_the_stale_limit_still_heats() -> None:
    rig = Rig(start=DAY_S)
    rig.connect()
    rig.step(SensorPace(STALE_S - 0.1))
    rig.start()
    rig.run(5.0)
    assert rig.decision.command.heater_on is True
    assert not too_slow_alarms(rig)


def test_a_sensor_that_does_not_measure_periodically_is_too_slow() -> None:
    rig = Rig(start=DAY_S)
    rig.connect()
    rig.step(SensorPace(0.0))
    rig.start()
    rig.run(5.0)
    assert rig.decision.command.heater_on is False
    (alarm,) = [a for a in rig.decision.active_alarms if a.code == AlarmCode.SENSOR_TOO_SLOW]
    assert alarm.message.startswith("the skin sensor does not measure periodically")


def test_a_garbage_pace_is_judged_too_slow() -> None:
    for garbage in (math.nan, -1.0, math.inf, "fast", True):
        rig = Rig(start=DAY_S)
        rig.connect()
        rig.step(SensorPace(garbage))  # type: ignore[arg-type]
        rig.start()
        rig.run(5.0)
        assert rig.decision.command.heater_on is False, garbage
        (alarm,) = [a for a in rig.decision.active_alarms if a.code == AlarmCode.SENSOR_TOO_SLOW]
        assert "did not state how often it measures" in alarm.message


def test_a_pace_learnt_mid_session_turns_heat_off_for_the_rest_of_it() -> None:
    # A sensor that states no interval is paced by its first two readings, seconds into the
    # session; a faster pace later (a new connection that took the interval write) does not bring
    # heat back this session, and the signal stays as it was: held, not raised again.
    rig = Rig(start=DAY_S)
    rig.running()
    rig.run(5.0)
    assert rig.decision.command.heater_on is True
    rig.step(SensorPace(5.0), rig.report())
    assert rig.decision.command.heater_on is False
    assert too_slow_alarms(rig) == ["SENSOR_TOO_SLOW"]
    rig.step(SensorPace(1.0), rig.report())
    rig.run(10.0)
    assert rig.decision.command.heater_on is False
    assert rig.decision.heater_block == "disabled_for_session"
    assert AlarmCode.SENSOR_TOO_SLOW in {a.code for a in rig.decision.active_alarms}
    rig.step(SensorPace(5.0), rig.report())
    rig.run(10.0)
    assert too_slow_alarms(rig) == ["SENSOR_TOO_SLOW"]


def test_the_signal_is_per_session_and_said_again_at_the_next_one() -> None:
    rig = Rig(start=DAY_S)
    rig.connect()
    rig.step(SensorPace(5.0))
    rig.start()
    slow_session(rig, 5.0, 30.0)
    rig.step(UserStop(), rig.report())
    rig.run(15.0, readings=False)
    # Between sessions it is not raised again, and no SENSOR_STALE either.
    assert too_slow_alarms(rig) == ["SENSOR_TOO_SLOW"]
    rig.start()
    slow_session(rig, 5.0, 30.0)
    assert too_slow_alarms(rig) == ["SENSOR_TOO_SLOW", "SENSOR_TOO_SLOW"]
    assert AlarmCode.SENSOR_STALE not in rig.alarms


def test_the_pace_survives_a_reconnection_until_a_new_one_is_stated() -> None:
    rig = Rig(start=DAY_S)
    rig.connect()
    rig.step(SensorPace(5.0))
    rig.start()
    slow_session(rig, 5.0, 10.0)
    rig.step(LinkChanged(DeviceKind.SENSOR, False), rig.report())
    rig.step(LinkChanged(DeviceKind.SENSOR, True), rig.report())
    slow_session(rig, 5.0, 20.0)
    assert AlarmCode.SENSOR_STALE not in rig.alarms
    assert rig.decision.command.heater_on is False


def test_the_pace_rule_is_exclusive_at_both_ends() -> None:
    assert pace_fast_enough(1.0, 2.0)
    assert pace_fast_enough(1.999, 2.0)
    assert not pace_fast_enough(2.0, 2.0)
    assert not pace_fast_enough(0.0, 2.0)
    assert not pace_fast_enough(-1.0, 2.0)
