"""Each timed or thresholded rule at exactly its threshold (mutation survivors of `>=` vs `>`).

The clock starts a day after boot at 86 400 s and moves in steps of 0.5 s, both exact in binary
floating point, so "exactly 2.0 s later" is exactly 2.0 s later.
"""

from __future__ import annotations

from controller.safety import (
    AlarmReset,
    CaregiverAction,
    CaregiverRequest,
    DeviceKind,
    Event,
    LatchInForce,
    LinkChanged,
    SessionState,
    SkinReading,
    UserRequest,
    UserStop,
)
from controller.safety.decision import Priority
from controller.settings import SafetyLimits
from tests.safety.rig import TICK, Rig

T0 = 86_400.0
HALF = 0.5


def codes(rig: Rig) -> set[str]:
    return {a.code for a in rig.decision.active_alarms}


def exact_rig(skin: float = 34.0, **changes: float) -> Rig:
    rig = Rig(None, start=T0, **changes)
    rig.skin = skin
    rig.step(*(), dt=HALF)
    rig.connect()
    rig.start()
    return rig


def run_exact(rig: Rig, seconds: float, *, reading: bool = False) -> None:
    """Steps of 0.5 s with a report each; a reading each step if asked."""
    for _ in range(round(seconds / HALF)):
        events: list[Event] = [rig.report()]
        if reading:
            events.append(rig.reading())
        rig.step(*events, dt=HALF)


def test_a_reading_exactly_stale_after_s_old_is_stale() -> None:
    rig = exact_rig()
    run_exact(rig, 2.0, reading=True)
    last = rig.now - HALF  # readings are stamped at the step before the one that takes them
    run_exact(rig, rig.limits.stale_after_s - 2 * HALF)
    assert rig.decision.skin_age_s == rig.limits.stale_after_s - HALF
    assert "SENSOR_STALE" not in codes(rig)
    run_exact(rig, HALF)
    assert rig.now - last == rig.limits.stale_after_s
    assert "SENSOR_STALE" in codes(rig)
    assert not rig.decision.command.heater_on


def test_the_stale_alarm_waits_exactly_stale_after_s_after_a_stall() -> None:
    rig = exact_rig()
    run_exact(rig, 2.0, reading=True)
    rig.step(rig.report(time=rig.now + 1.0), dt=1.0)  # a 1 s stall (> 0.5 s), no reading
    resumed = rig.now
    run_exact(rig, rig.limits.stale_after_s - HALF)
    assert "SENSOR_STALE" not in codes(rig)
    run_exact(rig, HALF)
    assert rig.now - resumed == rig.limits.stale_after_s
    assert "SENSOR_STALE" in codes(rig)


def test_heater_energised_exactly_the_grace_in_the_window_is_not_responding() -> None:
    rig = exact_rig()
    rig.step(UserRequest(40, False), rig.report(), dt=HALF)
    rig.energised = True
    # Each report is stamped at the previous step: bad from one step back, 0.5 s per step.
    run_exact(rig, rig.limits.heater_response_grace_s - HALF)
    assert "HEATER_NOT_RESPONDING" not in rig.alarms  # 1.5 s of bad time
    run_exact(rig, HALF)
    assert "HEATER_NOT_RESPONDING" in rig.alarms  # exactly 2.0 s


def test_thermostat_turns_on_below_the_band_not_at_it() -> None:
    rig = exact_rig(skin=38.0)
    run_exact(rig, 2.0, reading=True)
    rig.skin = 37.9
    run_exact(rig, 2.0, reading=True)
    assert rig.decision.heater_block == "at_target"
    rig.skin = rig.limits.heater_target_c - rig.limits.heater_target_band_c  # 37.5 exactly
    run_exact(rig, 2.0, reading=True)
    assert not rig.decision.command.heater_on
    rig.skin = 37.4
    run_exact(rig, 1.0, reading=True)
    assert rig.decision.command.heater_on


def test_a_rise_of_exactly_the_maximum_rate_is_a_valid_reading() -> None:
    rig = exact_rig()
    rig.step(rig.report(), SkinReading(rig.now + HALF, 34.0), dt=HALF)
    rig.step(rig.report(), dt=HALF)
    rig.step(rig.report(), SkinReading(rig.now + HALF, 36.0), dt=HALF)  # 2 °C in 1 s
    assert rig.decision.skin_valid
    assert rig.decision.skin_c == 36.0


def test_readings_at_one_instant_give_no_slope_and_no_crash() -> None:
    rig = Rig(start=T0)
    rig.step(dt=HALF)
    rig.step(LinkChanged(DeviceKind.MASSAGER, True), LinkChanged(DeviceKind.SENSOR, True), dt=HALF)
    same = rig.now + HALF
    rig.step(
        rig.report(),
        SkinReading(same, 34.0),
        SkinReading(same, 34.0),
        SkinReading(same, 34.0),
        dt=HALF,
    )
    assert rig.decision.predicted_skin_c == rig.decision.skin_c


def test_measured_exactly_at_the_hard_limit_is_not_above_it() -> None:
    rig = exact_rig()
    run_exact(rig, HALF)
    rig.measured = rig.limits.pressure_hard_max_mmhg  # 70 mmHg: over the cap, not above 70
    run_exact(rig, HALF)
    assert "PRESSURE_OVER_CAP" not in rig.alarms  # not at once: only above 70 is immediate
    rig.measured = rig.limits.pressure_hard_max_mmhg + HALF
    run_exact(rig, HALF)
    assert "PRESSURE_OVER_CAP" in rig.alarms


def test_pressure_above_the_envelope_for_exactly_the_limit_does_not_follow() -> None:
    rig = exact_rig()
    run_exact(rig, 6.0, reading=True)  # the ramp to the 40 mmHg asked is over
    assert rig.decision.command.pressure_mmhg == 40.0
    rig.measured = 50.0
    run_exact(rig, rig.limits.pressure_not_following_s - HALF)
    assert "PRESSURE_NOT_FOLLOWING" not in rig.alarms  # 0.5 s of bad time
    run_exact(rig, HALF)
    assert "PRESSURE_NOT_FOLLOWING" in rig.alarms  # exactly 1.0 s


def test_pressure_not_following_clears_only_once_its_bad_time_has_left_the_window() -> None:
    # The caregiver's PRESSURE_NOT_FOLLOWING stays active while any of the bladder's time above
    # the envelope is within the actuator-fault window (10 s), even below the 1 s that raised it,
    # and clears by itself once none is.
    rig = exact_rig()
    run_exact(rig, 6.0, reading=True)
    rig.measured = 50.0
    while "PRESSURE_NOT_FOLLOWING" not in rig.alarms:
        run_exact(rig, HALF, reading=True)
    rig.measured = 0.0  # vented
    vented = rig.now
    window = rig.limits.actuator_fault_window_s
    while rig.now - vented < window:
        assert "PRESSURE_NOT_FOLLOWING" in codes(rig), rig.now - vented
        run_exact(rig, HALF, reading=True)
    assert "PRESSURE_NOT_FOLLOWING" not in codes(rig)


def test_the_decision_reports_exact_session_time_left_and_reading_age() -> None:
    rig = exact_rig()
    started = rig.now
    run_exact(rig, 5.0, reading=True)
    decision = rig.decision
    assert decision.elapsed_s == rig.now - started
    assert decision.remaining_s == rig.limits.max_session_s - (rig.now - started)
    assert decision.skin_age_s == HALF
    assert decision.heat_remaining_s == rig.limits.max_heat_s - decision.heat_used_s


def test_a_lowered_ceiling_is_the_reference_from_exactly_the_settle_time() -> None:
    rig = exact_rig()
    run_exact(rig, 6.0, reading=True)
    rig.measured = 40.0  # the bladder at the 40 mmHg asked
    run_exact(rig, 1.0, reading=True)
    lowered = rig.now + HALF
    rig.step(
        rig.report(),
        rig.reading(),
        CaregiverRequest(CaregiverAction.LOWER_PRESSURE, 30.0, "r1"),
        dt=HALF,
    )
    assert rig.decision.pressure_cap_mmhg == 30.0
    run_exact(rig, rig.limits.pressure_settle_s - HALF, reading=True)
    assert rig.now - lowered == rig.limits.pressure_settle_s - HALF
    assert "PRESSURE_OVER_CAP" not in rig.alarms  # still judged against the old ceiling
    # From exactly 3.0 s the new ceiling counts: 40 > 30 + 5 from the report of that step.
    run_exact(rig, 2 * HALF, reading=True)
    assert "PRESSURE_OVER_CAP" in rig.alarms


def test_a_reading_after_a_stall_and_a_reconnection_is_aged_from_the_reconnection() -> None:
    # The controller stalls 3 s; meanwhile the skin sensor drops and reconnects 1 s in, and a
    # reading arrives. It may have waited in a queue, but not from before the link came up: its
    # age is counted from the reconnection (2 s), not from the stall's start (3 s).
    rig = exact_rig()
    run_exact(rig, 2.0, reading=True)
    stalled = rig.now
    rig.step(
        rig.report(time=stalled + 3.0),
        LinkChanged(DeviceKind.SENSOR, False, stalled + 0.5),
        LinkChanged(DeviceKind.SENSOR, True, stalled + 1.0),
        SkinReading(stalled + 2.0, 34.0),
        dt=3.0,
    )
    assert rig.decision.skin_age_s == 2.0


def test_stale_alarm_stays_through_a_stall_while_still_no_reading() -> None:
    rig = exact_rig()
    run_exact(rig, 2.0, reading=True)
    run_exact(rig, 3.0)  # no reading: stale
    assert "SENSOR_STALE" in codes(rig)
    rig.step(rig.report(time=rig.now + 1.0), dt=1.0)  # a stall, still no reading
    assert "SENSOR_STALE" in codes(rig)


def test_fault_byte_cutout_without_the_flag_is_a_cutout() -> None:
    rig = exact_rig()
    run_exact(rig, 1.0, reading=True)
    rig.step(rig.report(fault=1, cutout_latched=False), dt=HALF)
    assert "FIRMWARE_CUTOUT" in codes(rig)


def test_a_bladder_that_vents_one_latency_late_is_following() -> None:
    rig = exact_rig()
    run_exact(rig, 6.0, reading=True)
    rig.measured = 40.0
    run_exact(rig, 1.0, reading=True)
    rig.step(rig.report(), rig.reading(), UserRequest(0.0, True), dt=HALF)
    lowered = rig.now
    while rig.now - lowered < 6.0:
        late = rig.now - lowered - 0.75  # holds 0.75 s (a write, reports), then 15 mmHg/s
        rig.measured = max(0.0, 40.0 - 15.0 * late) if late > 0 else 40.0
        rig.step(rig.report(), rig.reading(), dt=0.25)
    assert "PRESSURE_NOT_FOLLOWING" not in rig.alarms


def test_a_stuck_vent_after_a_lower_command_is_caught_exactly_2_s_after_it() -> None:
    # The bladder holds 40 mmHg after the user asked for 0: the old command counts for exactly
    # one latency (0.5 s), then the envelope vents at 10 mmHg/s, so the bladder is above it (by
    # more than the 5 mmHg tolerance) from 1.0 s and PRESSURE_NOT_FOLLOWING comes at 2.0 s, not
    # one step later.
    rig = exact_rig()
    run_exact(rig, 6.0, reading=True)
    rig.measured = 40.0
    run_exact(rig, 1.0, reading=True)
    rig.step(rig.report(), rig.reading(), UserRequest(0.0, True), dt=HALF)
    lowered = rig.now
    run_exact(rig, 1.5, reading=True)
    assert "PRESSURE_NOT_FOLLOWING" not in rig.alarms
    run_exact(rig, HALF, reading=True)
    assert rig.now - lowered == 2.0
    assert "PRESSURE_NOT_FOLLOWING" in rig.alarms


def test_an_alarm_reset_needs_a_reading_younger_than_stale_after_s() -> None:
    stale = SafetyLimits.defaults().stale_after_s
    for age, accepted in ((stale - HALF, True), (stale, False)):
        rig = exact_rig(skin=36.0)
        rig.step(LatchInForce(43.5), rig.report(), dt=HALF)
        assert rig.decision.state is SessionState.LATCHED
        rig.step(rig.report(), rig.reading(), dt=HALF)
        last = rig.now - HALF
        run_exact(rig, age - 2 * HALF)
        decision = rig.step(AlarmReset(), rig.report(), dt=HALF)
        assert rig.now - last == age
        if accepted:
            assert decision.state is SessionState.ENDED, age
            assert "OVER_TEMPERATURE_LATCH" not in codes(rig)
        else:
            assert decision.state is SessionState.LATCHED, age
            assert decision.refusals == (
                "latch kept: no fresh valid skin reading shows the foot has cooled",
            )


def test_the_massager_is_silent_exactly_massager_silent_after_s_after_its_last_report() -> None:
    rig = exact_rig()
    run_exact(rig, 2.0, reading=True)
    last = rig.now - HALF  # the last report, stamped at the step before
    silent_after = rig.limits.massager_silent_after_s
    quarter = HALF / 2  # exact in binary too
    while rig.now + quarter - last < silent_after:
        rig.step(rig.reading(), dt=quarter)
        assert "MASSAGER_SILENT" not in codes(rig)
        assert rig.decision.command.pressure_mmhg > 0.0
    rig.step(rig.reading(), dt=quarter)
    assert rig.now - last == silent_after
    assert "MASSAGER_SILENT" in codes(rig)
    assert rig.decision.command.pressure_mmhg == 0.0
    assert not rig.decision.command.heater_on


def test_a_silent_massager_alarm_ends_with_the_session() -> None:
    # Once the session is over the silence is the post-session watch's business (it says "no
    # status from the massager since"); MASSAGER_SILENT ("pressure and heat off") is not left
    # standing in the live view and the caregivers' active alarms.
    rig = exact_rig()
    run_exact(rig, 2.0, reading=True)
    for _ in range(4):
        rig.step(rig.reading(), dt=HALF)
    assert "MASSAGER_SILENT" in codes(rig)
    rig.step(UserStop(), dt=HALF)
    assert rig.decision.state is SessionState.ENDED
    assert "MASSAGER_SILENT" not in codes(rig)


def test_battery_low_is_below_15_percent_and_clears_at_25() -> None:
    rig = exact_rig()
    low = rig.limits.battery_low_percent
    ok = rig.limits.battery_ok_percent
    rig.step(rig.report(battery_percent=low), rig.reading(), dt=HALF)
    assert "BATTERY_LOW" not in codes(rig)
    rig.step(rig.report(battery_percent=low - HALF), rig.reading(), dt=HALF)
    assert "BATTERY_LOW" in codes(rig)
    rig.step(rig.report(battery_percent=ok - HALF), rig.reading(), dt=HALF)
    assert "BATTERY_LOW" in codes(rig)
    rig.step(rig.report(battery_percent=ok), rig.reading(), dt=HALF)
    assert "BATTERY_LOW" not in codes(rig)


def test_a_pad_reading_at_either_end_of_its_sensor_range_is_a_pad_sensor_fault() -> None:
    limits = SafetyLimits.defaults()
    for pad, fault in (
        (limits.pad_sensor_min_c, True),
        (limits.pad_sensor_min_c + HALF, False),
        (limits.pad_sensor_max_c, True),
        (limits.pad_sensor_max_c - HALF, False),
    ):
        rig = exact_rig()
        rig.step(rig.report(pad_c=pad), rig.reading(), dt=HALF)
        assert ("PAD_SENSOR_FAULT" in codes(rig)) is fault, pad
        assert (rig.decision.heater_block == "disabled_for_session") is fault, pad


def test_heat_time_is_used_up_at_exactly_max_heat_s() -> None:
    rig = exact_rig(max_heat_s=5.0)
    run_exact(rig, HALF, reading=True)
    assert rig.decision.command.heater_on
    while rig.decision.heat_used_s < rig.limits.max_heat_s - HALF:
        assert "HEAT_TIME_USED" not in rig.alarms
        run_exact(rig, HALF, reading=True)
    run_exact(rig, HALF, reading=True)
    assert rig.decision.heat_used_s == rig.limits.max_heat_s
    assert "HEAT_TIME_USED" in rig.alarms
    assert rig.decision.heater_block == "heat_time_used"
    assert not rig.decision.command.heater_on


def test_no_heat_time_alarm_when_no_heat_was_ever_allowed() -> None:
    # A profile with no heat time gives heat_used 0 >= max_heat 0: nothing was used up, and a
    # "heat time used up" signal would be false.
    rig = exact_rig(max_heat_s=0.0)
    run_exact(rig, 5.0, reading=True)
    assert rig.decision.heat_used_s == 0.0
    assert "HEAT_TIME_USED" not in rig.alarms
    assert not rig.decision.command.heater_on


def test_the_session_ends_at_exactly_max_session_s() -> None:
    rig = exact_rig(max_session_s=10.0)
    started = rig.now
    run_exact(rig, rig.limits.max_session_s - HALF, reading=True)
    before = rig.decision
    run_exact(rig, HALF, reading=True)
    assert before.state is SessionState.RUNNING
    assert rig.now - started == rig.limits.max_session_s
    assert rig.decision.state is SessionState.ENDED
    assert "SESSION_TIME_UP" in rig.alarms


def test_an_alarm_reset_at_exactly_the_reenable_threshold_is_refused() -> None:
    limits = SafetyLimits.defaults()
    for skin, accepted in (
        (limits.heater_reenable_below_c, False),
        (limits.heater_reenable_below_c - HALF, True),
    ):
        rig = exact_rig(skin=skin)
        rig.step(LatchInForce(43.5), rig.report(), rig.reading(), dt=HALF)
        decision = rig.step(AlarmReset(), rig.report(), rig.reading(), dt=HALF)
        assert (decision.state is SessionState.ENDED) is accepted, skin
        assert (decision.state is SessionState.LATCHED) is not accepted, skin


def test_two_steps_at_the_same_instant_are_not_a_clock_step() -> None:
    # A caller may step twice at one monotonic instant (an event and the tick): time did not go
    # back, so the readings are not voided and the heat stays on.
    rig = exact_rig()
    run_exact(rig, 2.0, reading=True)
    assert rig.decision.command.heater_on
    rig.step(rig.report(), dt=0.0)
    assert rig.decision.skin_fresh
    assert rig.decision.command.heater_on


def test_a_reading_stamped_at_the_instant_the_link_came_up_counts() -> None:
    rig = Rig(start=T0)
    rig.step(dt=HALF)
    up = rig.now + HALF
    rig.step(
        LinkChanged(DeviceKind.MASSAGER, True), LinkChanged(DeviceKind.SENSOR, True, up), dt=HALF
    )
    rig.step(rig.report(), SkinReading(up, 34.0), dt=HALF)
    assert rig.decision.skin_c == 34.0
    early = Rig(start=T0)
    early.step(dt=HALF)
    early.step(
        LinkChanged(DeviceKind.MASSAGER, True), LinkChanged(DeviceKind.SENSOR, True, up), dt=HALF
    )
    early.step(early.report(), SkinReading(up - HALF, 34.0), dt=HALF)
    assert early.decision.skin_c is None


def test_a_prediction_of_exactly_the_cutoff_switches_the_heater_off() -> None:
    # Three readings 0.5 s apart rising 1/32 °C each (all exact in binary) give a least-squares
    # slope of exactly 1/16 °C/s; 40 s ahead that is 2.5 °C: from 37.5 °C exactly the 40 °C
    # cut-off. The heater must be off on the prediction alone, with the skin at 37.5 °C.
    step = 0.03125
    start = 37.5 - 2 * step
    rig = exact_rig(skin=start, prediction_window_s=1.0)
    run_exact(rig, 2.0, reading=True)
    assert rig.decision.command.heater_on
    for celsius in (start + step, start + 2 * step):
        rig.skin = celsius
        rig.step(rig.report(), rig.reading(), dt=HALF)
    assert rig.decision.skin_c == 37.5
    assert rig.decision.predicted_skin_c == rig.limits.heater_cutoff_c
    assert rig.decision.heater_block == "predicted_cutoff"
    assert not rig.decision.command.heater_on


def cooled_after_a_cutoff(rig: Rig, cool_c: float) -> float:
    """Trip the cut-off with a reading at exactly the cut-off; then readings at ``cool_c``.
    Returns the time the heater went off."""
    run_exact(rig, 2.0, reading=True)
    assert rig.decision.command.heater_on
    rig.skin = rig.limits.heater_cutoff_c
    while rig.decision.command.heater_on:
        run_exact(rig, HALF, reading=True)
    off = rig.now
    assert rig.decision.heater_block == "cutoff"
    rig.skin = (rig.limits.heater_cutoff_c + cool_c) / 2  # within the 2 °C/s rate check
    run_exact(rig, HALF, reading=True)
    rig.skin = cool_c
    return off


def test_the_heater_comes_back_exactly_min_off_s_after_a_cutoff() -> None:
    rig = exact_rig(skin=38.5, heater_target_c=39.5)
    off = cooled_after_a_cutoff(rig, 37.5)
    while rig.now - off < rig.limits.heater_min_off_s - HALF:
        run_exact(rig, HALF, reading=True)
        assert rig.decision.heater_block == "cooling_after_cutoff"
    run_exact(rig, HALF, reading=True)
    assert rig.now - off == rig.limits.heater_min_off_s
    assert rig.decision.command.heater_on


def test_the_heater_stays_off_at_exactly_the_reenable_threshold() -> None:
    # The target (39.5 °C) above the re-enable threshold (38 °C), so only the re-enable rule can
    # keep the heater off at exactly 38 °C.
    rig = exact_rig(skin=38.5, heater_target_c=39.5)
    off = cooled_after_a_cutoff(rig, rig.limits.heater_reenable_below_c)
    run_exact(rig, rig.limits.heater_min_off_s + 5.0, reading=True)
    assert rig.now - off > rig.limits.heater_min_off_s
    assert rig.decision.heater_block == "cooling_after_cutoff"
    assert not rig.decision.command.heater_on
    rig.skin = rig.limits.heater_reenable_below_c - HALF
    run_exact(rig, HALF, reading=True)
    assert rig.decision.command.heater_on


def test_a_steady_rise_over_many_readings_is_predicted_to_the_cutoff() -> None:
    # Twenty seconds of readings rising 0.05 °C/s (41 in the slope window, far more than the
    # minimum of 3): 40 s ahead the skin is 2 °C warmer, so at 38.5 °C the heater is off on the
    # prediction (40.5 °C) although the reading is under both the cut-off and the 39.5 °C target.
    rig = exact_rig(skin=36.5, heater_target_c=39.5)
    run_exact(rig, 2.0, reading=True)
    while rig.skin < 38.5:
        rig.skin = round(rig.skin + 0.025, 3)
        run_exact(rig, HALF, reading=True)
    decision = rig.decision
    assert decision.skin_c is not None
    assert decision.skin_c < rig.limits.heater_target_c
    assert decision.predicted_skin_c is not None
    assert abs(decision.predicted_skin_c - (decision.skin_c + 2.0)) < 1e-6
    assert decision.heater_block == "predicted_cutoff"
    assert not decision.command.heater_on


def test_a_sensor_not_following_is_judged_during_the_session_only() -> None:
    # 10 s of a reading 12 °C under the pad (under the 15 s of bad time the rule needs), then the
    # user stops. The sensor still lies on the bench after the session: no SENSOR_NOT_FOLLOWING
    # ("heat off for this session") may appear once the session is over.
    rig = exact_rig(skin=28.0)
    rig.pad = 40.0
    run_exact(rig, 10.0, reading=True)
    assert "SENSOR_NOT_FOLLOWING" not in rig.alarms
    rig.step(UserStop(), rig.report(), rig.reading(), dt=HALF)
    assert rig.decision.state is SessionState.ENDED
    run_exact(rig, rig.limits.sensor_follow_bad_s + 5.0, reading=True)
    assert "SENSOR_NOT_FOLLOWING" not in rig.alarms


def test_a_reading_of_exactly_the_latch_temperature_latches() -> None:
    for top, latched in ((43.0, True), (42.5, False)):
        rig = exact_rig(skin=41.0)
        run_exact(rig, 1.0, reading=True)
        rig.skin = top  # within the 2 °C/s rate check: a valid reading
        run_exact(rig, HALF, reading=True)
        assert rig.decision.skin_valid, top
        assert (rig.decision.state is SessionState.LATCHED) is latched, top
        assert ("OVER_TEMPERATURE_LATCH" in rig.alarms) is latched, top
        assert not rig.decision.command.heater_on


def test_the_decision_calls_a_reading_exactly_stale_after_s_old_not_fresh() -> None:
    rig = exact_rig()
    run_exact(rig, 2.0, reading=True)
    last = rig.now - HALF
    run_exact(rig, rig.limits.stale_after_s - 2 * HALF)
    assert rig.decision.skin_fresh
    run_exact(rig, HALF)
    assert rig.now - last == rig.limits.stale_after_s
    assert not rig.decision.skin_fresh


def test_a_report_with_a_garbage_time_or_while_the_link_is_down_is_ignored() -> None:
    rig = exact_rig()
    run_exact(rig, 2.0, reading=True)
    before = rig.decision.measured_pressure_mmhg
    rig.step(rig.report(time=float("nan"), pressure_mmhg=55.0), rig.reading(), dt=HALF)
    assert rig.decision.measured_pressure_mmhg == before
    rig.step(LinkChanged(DeviceKind.MASSAGER, False), dt=HALF)
    rig.step(rig.report(pressure_mmhg=55.0, cutout_latched=True), dt=HALF)
    assert rig.decision.measured_pressure_mmhg is None
    assert "FIRMWARE_CUTOUT" not in rig.alarms


def test_the_minimum_off_time_counts_from_the_real_switch_off() -> None:
    # The thermostat switched the heater off 40 s before the cut-off tripped: the 30 s minimum
    # off-time is already over, so once the skin is back under 38 °C the heater may come back.
    # (No prediction, so only the reading itself trips the cut-off.)
    rig = exact_rig(skin=37.0, prediction_horizon_s=0.0)
    run_exact(rig, 2.0, reading=True)
    assert rig.decision.command.heater_on
    rig.skin = 38.5
    run_exact(rig, 40.0, reading=True)
    assert rig.decision.heater_block == "at_target"
    for celsius in (39.5, 40.0, 38.5, 37.0):
        rig.skin = celsius
        run_exact(rig, HALF, reading=True)
    run_exact(rig, 2 * HALF, reading=True)
    assert rig.decision.command.heater_on


def test_a_reading_exactly_at_either_end_of_the_valid_range_is_valid() -> None:
    # The valid range is inclusive (docs/safety.md, "Sensor trust"): a sensor configured to
    # 34-50 °C or 15-34 °C reading exactly 34.00 °C keeps heat available.
    for changes in ({"valid_min_c": 34.0}, {"valid_max_c": 34.0}):
        rig = Rig(None, **changes)
        rig.skin = 34.0
        decision = rig.running()
        decision = rig.run(3.0)
        assert decision.skin_valid
        assert decision.skin_fresh
        assert "SENSOR_INVALID" not in rig.alarms


def test_two_honest_readings_stamped_at_one_instant_are_both_valid() -> None:
    # A BLE stack may deliver two measurements with one timestamp (36.00 then 36.05 °C): no time
    # passed, but the rate is judged over the sensor's nominal period, so neither is a spike and
    # heat stays available.
    rig = Rig()
    rig.skin = 36.0
    rig.running()
    rig.run(2.0)
    same = rig.now + TICK
    rig.step(rig.report(), SkinReading(same, 36.0), SkinReading(same, 36.05))
    assert rig.decision.skin_valid
    assert rig.decision.skin_c == 36.05
    rig.run(3.0)
    assert "SENSOR_INVALID" not in rig.alarms
    assert "SENSOR_STALE" not in rig.alarms


def test_over_the_cap_at_exactly_the_hard_limit_is_a_medium_alarm_not_high() -> None:
    # 70 mmHg held over a 60 mmHg cap: over the cap for its time, so PRESSURE_OVER_CAP, but not
    # above the 70 mmHg hard limit, so MEDIUM (HIGH is for a measured value above 70 mmHg).
    rig = exact_rig()
    run_exact(rig, HALF)
    rig.measured = rig.limits.pressure_hard_max_mmhg
    run_exact(rig, rig.limits.pressure_over_cap_s + 2 * HALF)
    over = [a for a in rig.decision.active_alarms if a.code == "PRESSURE_OVER_CAP"]
    assert over
    assert over[0].priority is Priority.MEDIUM


def test_after_a_session_the_decision_gives_its_length_not_more() -> None:
    # The summary's duration comes from the decision's elapsed time once the session has ended.
    rig = exact_rig()
    started = rig.now
    run_exact(rig, 10.0)
    rig.step(UserStop(), rig.report(), dt=HALF)
    length = rig.now - started
    assert rig.decision.state is not SessionState.RUNNING
    assert rig.decision.elapsed_s == length
    run_exact(rig, 5.0)
    assert rig.decision.elapsed_s == length


def test_caregivers_see_the_massager_fresh_only_while_it_reports() -> None:
    # Caregivers are shown the measured pressure only while the massager's reports are fresh.
    rig = exact_rig()
    run_exact(rig, 2.0)
    assert rig.decision.massager_fresh
    silent = rig.limits.massager_silent_after_s
    for _ in range(round(silent / HALF) + 1):
        rig.step(dt=HALF)  # link up, no reports
    assert not rig.decision.massager_fresh


def test_a_lease_still_held_is_post_session_unsafe_exactly_at_the_bound() -> None:
    # The massager keeps its actuator lease after STOP (nothing else wrong): the watch gives it
    # POST_SESSION_BOUND_S, and says so at exactly that moment, not one report later.
    rig = exact_rig()
    run_exact(rig, 2.0)
    rig.lease = True
    rig.step(UserStop(), rig.report(), dt=HALF)
    ended = rig.now
    bound = rig.limits.post_session_bound_s
    while rig.now + HALF < ended + bound:
        rig.step(rig.report(), dt=HALF)
    assert "POST_SESSION_UNSAFE" not in rig.alarms
    rig.step(rig.report(), dt=HALF)
    assert rig.now == ended + bound
    assert "POST_SESSION_UNSAFE" in rig.alarms


def test_an_actuator_fault_before_any_session_is_no_post_session_verdict() -> None:
    # Idle, no session yet: a relay energised while commanded off is HEATER_NOT_RESPONDING, but
    # there is no session to report on (after_session stays None, not "fault").
    rig = Rig(start=T0)
    rig.step(dt=HALF)
    rig.connect()
    rig.energised = True
    run_exact(rig, 5.0)
    assert "HEATER_NOT_RESPONDING" in rig.alarms
    assert rig.decision.after_session is None


def test_the_watch_says_safe_exactly_the_confirmation_time_after_settling() -> None:
    rig = exact_rig()
    run_exact(rig, 2.0)
    rig.step(UserStop(), rig.report(), dt=HALF)
    ended = rig.now  # its report is already clean: heater off, no pressure, no lease
    for _ in range(40):
        rig.step(rig.report(), dt=HALF)
        if rig.decision.after_session == "safe":
            break
    assert rig.decision.after_session == "safe"
    assert rig.now - ended == rig.limits.post_session_confirm_s


def test_a_bladder_at_exactly_the_floor_after_the_session_is_not_safe() -> None:
    rig = exact_rig()
    run_exact(rig, 2.0)
    rig.step(UserStop(), rig.report(), dt=HALF)
    rig.measured = rig.limits.post_session_pressure_floor_mmhg
    run_exact(rig, rig.limits.post_session_bound_s + 2.0)
    assert rig.decision.after_session == "fault"
    assert "POST_SESSION_UNSAFE" in rig.alarms


def test_pressure_held_at_exactly_cap_plus_tolerance_is_not_over_the_cap() -> None:
    rig = exact_rig()
    cap = rig.limits.pressure_cap_mmhg
    rig.step(UserRequest(cap, True), rig.report(), dt=HALF)
    run_exact(rig, 6.0)  # the command ramps up to the cap; the bladder is filled after it
    assert rig.decision.command.pressure_mmhg == cap
    rig.measured = cap + rig.limits.pressure_over_cap_tolerance_mmhg
    run_exact(rig, 3.0)
    assert "PRESSURE_OVER_CAP" not in rig.alarms
    assert "PRESSURE_NOT_FOLLOWING" not in rig.alarms
    rig.measured += HALF
    run_exact(rig, 3.0)
    assert "PRESSURE_OVER_CAP" in rig.alarms
