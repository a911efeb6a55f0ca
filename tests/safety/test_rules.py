"""One behaviour per test: each rule of DESIGN.md §3 as the supervisor applies it."""

from __future__ import annotations

import math

import pytest

from controller.safety import (
    Acknowledge,
    CaregiverAction,
    CaregiverRequest,
    ChecklistResult,
    DeviceKind,
    EndReason,
    LinkChanged,
    Priority,
    SessionState,
    SkinReading,
    StartSession,
    UserRequest,
    UserStop,
)
from controller.settings import Settings, effective_limits
from tests.safety.rig import Rig


def move_skin(rig: Rig, celsius: float) -> None:
    """Move the skin reading to ``celsius`` at 1.5 °C/s, a rate real skin could (just) manage."""
    while abs(rig.skin - celsius) > 1e-9:
        step = max(-1.5, min(1.5, celsius - rig.skin))
        rig.skin = round(rig.skin + step, 6)
        rig.run(1)


def alarm(rig: Rig, code: str) -> Priority:
    found = [a for a in rig.decision.active_alarms if a.code == code]
    assert found, f"{code} not active: {[a.code for a in rig.decision.active_alarms]}"
    return found[0].priority


# --- nothing without a session -----------------------------------------------------------------


def test_without_a_session_nothing_is_actuated_and_stop_is_sent() -> None:
    rig = Rig()
    rig.connect()
    decision = rig.run(5, UserRequest(60, True))
    assert decision.state is SessionState.IDLE
    assert decision.command.pressure_mmhg == 0.0
    assert not decision.command.heater_on
    assert decision.command.stop


def test_every_command_carries_the_lease_and_a_pad_target_at_the_cutoff() -> None:
    rig = Rig()
    decision = rig.running()
    assert decision.command.lease_s == rig.limits.lease_s
    assert decision.command.pad_target_c == rig.limits.heater_cutoff_c


# --- pressure ----------------------------------------------------------------------------------


def test_pressure_rises_no_faster_than_the_ramp() -> None:
    rig = Rig()
    rig.running()
    previous = rig.decision.command.pressure_mmhg
    for _ in range(30):
        rig.step(rig.report())
        now = rig.decision.command.pressure_mmhg
        assert now - previous <= rig.limits.pressure_ramp_mmhg_per_s * 0.1 + 1e-9
        previous = now
    assert rig.decision.command.pressure_mmhg == pytest.approx(30.0, abs=1.5)


def test_pressure_request_above_the_cap_is_capped() -> None:
    rig = Rig()
    rig.running()
    decision = rig.run(20, UserRequest(1000, True))
    assert decision.command.pressure_mmhg == rig.limits.pressure_cap_mmhg


def test_allodynia_profile_caps_pressure_at_light() -> None:
    rig = Rig(effective_limits(Settings.model_validate({"profile": {"name": "allodynia"}})))
    rig.running()
    decision = rig.run(20, UserRequest(70, False))
    assert decision.command.pressure_mmhg == 30.0


def test_pressure_decrease_is_immediate() -> None:
    rig = Rig()
    rig.running()
    rig.run(5)
    decision = rig.step(UserRequest(5, True))
    assert decision.command.pressure_mmhg == 5.0


@pytest.mark.parametrize("request_mmhg", [math.nan, -20.0, math.inf, -math.inf])
def test_nonsense_pressure_request_means_zero(request_mmhg: float) -> None:
    rig = Rig()
    rig.running()
    rig.run(3)
    decision = rig.step(UserRequest(request_mmhg, True))
    assert decision.command.pressure_mmhg == 0.0


def test_massager_link_loss_zeroes_pressure_and_raises_medium_alarm_once() -> None:
    rig = Rig()
    rig.running()
    rig.run(3)
    decision = rig.step(LinkChanged(DeviceKind.MASSAGER, False))
    assert decision.command.pressure_mmhg == 0.0
    assert not decision.command.heater_on
    assert alarm(rig, "MASSAGER_LINK_LOST") is Priority.MEDIUM
    rig.run(3, readings=False)
    assert rig.alarms.count("MASSAGER_LINK_LOST") == 1


def test_after_massager_reconnection_pressure_ramps_from_zero() -> None:
    rig = Rig()
    rig.running()
    rig.run(5)
    rig.step(LinkChanged(DeviceKind.MASSAGER, False))
    rig.step(LinkChanged(DeviceKind.MASSAGER, True))
    assert rig.decision.command.pressure_mmhg == 0.0  # no status report yet
    decision = rig.step(rig.report())
    assert decision.command.pressure_mmhg <= rig.limits.pressure_ramp_mmhg_per_s * 0.1 + 1e-9
    assert "MASSAGER_LINK_LOST" not in [a.code for a in decision.active_alarms]


def test_measured_pressure_over_cap_zeroes_pressure_and_ends_the_session() -> None:
    rig = Rig()
    rig.running()
    rig.step(UserRequest(60, True))
    rig.run(8)
    rig.measured = 66.0  # cap 60 + tolerance 5 exceeded, and above the 60 mmHg commanded
    decision = rig.run(1.5)
    assert decision.command.pressure_mmhg == 0.0
    assert alarm(rig, "PRESSURE_OVER_CAP") is Priority.MEDIUM
    # Above the command too: the bladder does not follow, which ends the session.
    assert alarm(rig, "PRESSURE_NOT_FOLLOWING") is Priority.HIGH
    assert decision.ended_by is EndReason.FAULT


def test_brief_pressure_transient_over_cap_is_tolerated() -> None:
    rig = Rig()
    rig.running()
    rig.run(8)
    rig.measured = 66.0
    rig.run(0.5)
    rig.measured = 40.0
    decision = rig.run(2)
    assert "PRESSURE_OVER_CAP" not in rig.alarms
    assert decision.command.pressure_mmhg > 0.0


def test_pressure_over_the_hard_limit_is_a_high_alarm() -> None:
    rig = Rig()
    rig.running()
    rig.measured = 90.0
    rig.run(1.5)
    assert alarm(rig, "PRESSURE_OVER_CAP") is Priority.HIGH


def test_second_over_pressure_ends_the_session_with_fault() -> None:
    rig = Rig()
    rig.running()
    rig.measured = 66.0
    rig.run(1.5)
    rig.measured = 10.0
    rig.run(2)
    rig.measured = 66.0
    decision = rig.run(1.5)
    assert rig.alarms.count("PRESSURE_OVER_CAP") == 2
    assert decision.state is SessionState.ENDED
    assert decision.ended_by is EndReason.FAULT


def test_lowered_ceiling_gets_time_to_vent_before_over_pressure() -> None:
    rig = Rig()
    rig.running()
    rig.run(8)
    rig.measured = 58.0
    rig.step(CaregiverRequest(CaregiverAction.LOWER_PRESSURE, 40, "r1"))
    rig.run(1.5)  # still venting from 58 towards 20: not a fault yet
    assert "PRESSURE_OVER_CAP" not in rig.alarms


# --- heater ------------------------------------------------------------------------------------


def test_heater_on_with_a_fresh_valid_reading_below_target() -> None:
    rig = Rig()
    decision = rig.running()
    assert decision.command.heater_on
    assert decision.heater_block is None


def test_heater_stops_at_target_and_restarts_below_the_band() -> None:
    rig = Rig()
    rig.skin = 37.5
    rig.running()
    while rig.skin < 38.0:
        rig.skin = round(rig.skin + 0.02, 3)  # slow enough that no cut-off is predicted
        rig.run(1)
    assert rig.decision.heater_block == "at_target"
    rig.skin = 37.7  # inside the band: still off
    assert not rig.run(5).command.heater_on
    rig.skin = 37.4
    assert rig.run(2).command.heater_on


def test_heater_off_when_not_requested() -> None:
    rig = Rig()
    rig.running()
    decision = rig.step(UserRequest(40, False))
    assert not decision.command.heater_on


def test_profile_that_forbids_heat_keeps_the_heater_off() -> None:
    limits = effective_limits(
        Settings.model_validate({"profile": {"name": "reduced-heat-sensation"}})
    )
    rig = Rig(limits)
    decision = rig.running()
    rig.run(5)
    assert not limits.heater_allowed
    assert decision.heater_block == "profile_forbids_heat"
    assert not rig.decision.command.heater_on


def test_stale_reading_switches_the_heater_off_with_medium_alarm() -> None:
    rig = Rig()
    rig.running()
    rig.run(3)
    decision = rig.run(2.5, readings=False)
    assert not decision.command.heater_on
    assert decision.heater_block == "reading_stale"
    assert alarm(rig, "SENSOR_STALE") is Priority.MEDIUM
    rig.run(2)
    assert rig.decision.command.heater_on
    assert rig.alarms.count("SENSOR_STALE") == 1


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, 14.9, 50.1, 1e308])
def test_invalid_reading_switches_the_heater_off_at_once(bad: float) -> None:
    rig = Rig()
    rig.running()
    decision = rig.step(rig.reading(bad))
    assert not decision.command.heater_on
    assert decision.heater_block == "no_valid_reading"
    assert not decision.skin_valid


def test_three_invalid_readings_in_a_row_raise_sensor_invalid() -> None:
    rig = Rig()
    rig.running()
    rig.step(rig.reading(math.nan))
    rig.step(rig.reading(math.inf))
    assert "SENSOR_INVALID" not in rig.alarms
    rig.step(rig.reading(99.0))
    assert alarm(rig, "SENSOR_INVALID") is Priority.MEDIUM
    rig.step(rig.reading())
    assert "SENSOR_INVALID" not in [a.code for a in rig.decision.active_alarms]


def test_a_jump_faster_than_skin_can_change_is_a_spike() -> None:
    rig = Rig()
    rig.running()
    rig.run(3)
    decision = rig.step(rig.reading(rig.skin + 3.0), dt=1.0)  # 3 °C in 1 s > 2 °C/s
    assert not decision.skin_valid
    assert decision.skin_c == rig.skin


def test_spike_into_the_latch_range_does_not_latch() -> None:
    rig = Rig()
    rig.running()
    rig.run(3)
    decision = rig.step(rig.reading(45.0))
    assert decision.state is SessionState.RUNNING


def test_cutoff_switches_the_heater_off_and_hysteresis_holds_it_off() -> None:
    rig = Rig(heater_target_c=40.0, heater_cutoff_c=40.0, prediction_horizon_s=0.0)
    rig.running()
    for skin in (38.5, 39.5, 40.0):
        rig.skin = skin
        rig.run(1)
    assert rig.decision.heater_block == "cutoff"
    rig.skin = 38.5  # below the cut-off but not below cut-off - 2 °C
    assert rig.run(40).heater_block == "cooling_after_cutoff"
    rig.skin = 37.5  # below 38 °C, but only just: min_off counts from the switch-off
    assert rig.run(1).command.heater_on


def test_reenable_waits_the_minimum_off_time_even_when_cool() -> None:
    rig = Rig(heater_target_c=40.0, heater_cutoff_c=40.0, prediction_horizon_s=0.0)
    rig.running()
    move_skin(rig, 40.5)
    assert not rig.decision.command.heater_on
    move_skin(rig, 37.0)
    assert rig.run(10).heater_block == "cooling_after_cutoff"
    assert rig.run(25).command.heater_on


def test_predictive_cutoff_switches_off_before_the_reading_reaches_it() -> None:
    rig = Rig(heater_target_c=40.0, heater_cutoff_c=40.0)
    rig.running()
    rig.skin = 36.0
    while rig.decision.command.heater_on:
        rig.skin = round(rig.skin + 0.05, 3)  # 0.05 °C/s: 2 °C in the 40 s horizon
        rig.run(1)
    assert rig.decision.heater_block == "predicted_cutoff"
    assert rig.skin < 38.5
    assert rig.decision.predicted_skin_c is not None
    assert rig.decision.predicted_skin_c >= 40.0


def test_heat_time_used_up_keeps_the_heater_off_with_low_alarm() -> None:
    rig = Rig(max_heat_s=10.0)
    rig.running()
    decision = rig.run(12)
    assert not decision.command.heater_on
    assert decision.heater_block == "heat_time_used"
    assert alarm(rig, "HEAT_TIME_USED") is Priority.LOW
    assert decision.heat_remaining_s == 0.0


def test_sensor_link_loss_switches_the_heater_off_with_medium_alarm() -> None:
    rig = Rig()
    rig.running()
    decision = rig.step(LinkChanged(DeviceKind.SENSOR, False))
    assert not decision.command.heater_on
    assert alarm(rig, "SENSOR_LINK_LOST") is Priority.MEDIUM


def test_readings_from_before_sensor_reconnection_do_not_count() -> None:
    rig = Rig()
    rig.running()
    old = rig.reading()
    rig.step(LinkChanged(DeviceKind.SENSOR, False))
    rig.step(LinkChanged(DeviceKind.SENSOR, True))
    decision = rig.step(old)
    assert not decision.command.heater_on
    assert decision.heater_block == "no_valid_reading"
    assert rig.step(rig.reading()).command.heater_on


def test_heater_energised_while_commanded_off_ends_session_after_grace() -> None:
    rig = Rig()
    rig.running()
    rig.step(UserRequest(40, False))
    rig.energised = True
    rig.run(1.5)
    assert rig.decision.state is SessionState.RUNNING  # inside the grace
    decision = rig.run(1.0)
    assert alarm(rig, "HEATER_NOT_RESPONDING") is Priority.HIGH
    assert decision.ended_by is EndReason.FAULT
    assert decision.command.stop
    assert decision.command.pressure_mmhg == 0.0


def test_sensor_stuck_with_noise_under_a_hot_pad_disables_heat() -> None:
    rig = Rig()
    rig.pad = 40.0
    rig.running()
    for i in range(90):
        rig.skin = 34.0 + (0.04 if i % 2 else -0.04)  # stuck, with its noise
        rig.run(1)
    assert alarm(rig, "SENSOR_NOT_FOLLOWING") is Priority.MEDIUM
    assert rig.decision.heater_block == "disabled_for_session"


# --- over-temperature latch and firmware cut-out ---------------------------------------------


def latched_rig() -> Rig:
    rig = Rig()
    rig.running()
    move_skin(rig, 43.2)
    return rig


def test_reading_at_the_latch_stops_everything_with_high_alarm() -> None:
    rig = latched_rig()
    decision = rig.decision
    assert decision.state is SessionState.LATCHED
    assert decision.ended_by is EndReason.FAULT
    assert decision.command.stop
    assert not decision.command.heater_on
    assert decision.command.pressure_mmhg == 0.0
    assert alarm(rig, "OVER_TEMPERATURE_LATCH") is Priority.HIGH


def test_latch_persists_and_refuses_new_sessions() -> None:
    rig = latched_rig()
    move_skin(rig, 36.0)
    rig.run(60)
    decision = rig.start()
    assert decision.state is SessionState.LATCHED
    assert decision.refusals


def test_acknowledge_is_refused_while_the_skin_is_still_hot() -> None:
    rig = latched_rig()
    move_skin(rig, 39.0)  # above cut-off - margin (38 °C)
    decision = rig.step(Acknowledge(), rig.reading())
    assert decision.state is SessionState.LATCHED
    assert decision.refusals


def test_acknowledge_is_refused_without_a_fresh_reading() -> None:
    rig = latched_rig()
    move_skin(rig, 36.0)
    rig.run(5, readings=False)
    assert rig.step(Acknowledge()).state is SessionState.LATCHED


def test_acknowledge_once_cool_clears_the_latch_and_allows_a_new_session() -> None:
    rig = latched_rig()
    move_skin(rig, 36.0)
    decision = rig.step(Acknowledge(), rig.reading())
    assert decision.state is SessionState.ENDED
    assert "OVER_TEMPERATURE_LATCH" not in [a.code for a in decision.active_alarms]
    assert rig.start().state is SessionState.RUNNING


def test_firmware_cutout_ends_the_session_with_high_alarm() -> None:
    rig = Rig()
    rig.running()
    decision = rig.step(rig.report(cutout_latched=True, fault=1))
    assert decision.ended_by is EndReason.FAULT
    assert alarm(rig, "FIRMWARE_CUTOUT") is Priority.HIGH
    assert decision.command.stop


def test_massager_reboot_raises_medium_alarm_and_pressure_ramps_again() -> None:
    rig = Rig()
    rig.running()
    rig.run(5)
    decision = rig.step(rig.report(fault=4))
    assert alarm(rig, "MASSAGER_REBOOTED") is Priority.MEDIUM
    assert decision.command.pressure_mmhg <= 1.0 + 1e-9
    assert decision.state is SessionState.RUNNING


def test_battery_low_raises_one_low_alarm() -> None:
    rig = Rig()
    rig.running()
    for _ in range(20):
        rig.step(rig.report(battery_percent=12))
    assert rig.alarms.count("BATTERY_LOW") == 1
    assert alarm(rig, "BATTERY_LOW") is Priority.LOW


# --- session -----------------------------------------------------------------------------------


def test_session_ends_by_timer() -> None:
    rig = Rig(max_session_s=60.0)
    rig.running()
    decision = rig.run(61)
    assert decision.ended_by is EndReason.TIMER
    assert decision.command.stop
    assert alarm(rig, "SESSION_TIME_UP") is Priority.LOW


def test_a_huge_time_jump_ends_the_session_before_anything_is_actuated() -> None:
    rig = Rig()
    rig.running()
    decision = rig.step(rig.report(), dt=1e9)
    assert decision.ended_by is EndReason.TIMER
    assert decision.command.pressure_mmhg == 0.0


def test_user_stop_ends_the_session() -> None:
    rig = Rig()
    rig.running()
    decision = rig.step(UserStop())
    assert decision.ended_by is EndReason.USER
    assert decision.command.stop


def test_time_going_backwards_does_not_ramp_pressure() -> None:
    rig = Rig()
    rig.running()
    before = rig.decision.command.pressure_mmhg
    decision = rig.step(rig.report(), dt=-50.0)
    assert decision.command.pressure_mmhg <= before


def test_non_finite_time_gives_an_all_off_command() -> None:
    rig = Rig()
    rig.running()
    rig.run(3)
    decision = rig.sup.step(math.nan, [rig.report()])
    assert decision.command.pressure_mmhg == 0.0
    assert not decision.command.heater_on


# --- checklist ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("checklist", "named"),
    [
        (ChecklistResult(frozenset({"ulcer"}), inspection_done=True), "ulcer"),
        (ChecklistResult(frozenset({"open_wound"}), inspection_done=True), "open_wound"),
        (ChecklistResult(frozenset({"something_new"}), inspection_done=True), "something_new"),
        (
            ChecklistResult(inspection_findings=frozenset({"blister"}), inspection_done=True),
            "blister",
        ),
        (ChecklistResult(inspection_findings=frozenset({"cut"}), inspection_done=True), "cut"),
        (ChecklistResult(inspection_required=True, inspection_done=False), "inspection"),
    ],
)
def test_checklist_refuses_the_session_and_names_why(
    checklist: ChecklistResult, named: str
) -> None:
    rig = Rig()
    rig.connect()
    decision = rig.start(checklist, pressure=60)
    rig.run(5)
    assert decision.state is SessionState.ENDED
    assert decision.ended_by is EndReason.CHECKLIST
    assert alarm(rig, "CONTRAINDICATION") is Priority.MEDIUM
    assert named in next(a.message for a in decision.new_alarms if a.code == "CONTRAINDICATION")
    assert rig.decision.command.pressure_mmhg == 0.0
    assert not rig.decision.command.heater_on


def test_non_blocking_finding_and_no_inspection_needed_allow_the_session() -> None:
    rig = Rig()
    rig.connect()
    checklist = ChecklistResult(
        inspection_findings=frozenset({"dry_skin"}), inspection_required=False
    )
    assert rig.start(checklist).state is SessionState.RUNNING


# --- caregiver ---------------------------------------------------------------------------------


def test_caregiver_stop_ends_the_session() -> None:
    rig = Rig()
    rig.running()
    decision = rig.step(CaregiverRequest(CaregiverAction.STOP, request_id="a"))
    assert decision.ended_by is EndReason.CAREGIVER
    assert decision.command_results[0].accepted
    assert decision.command_results[0].request_id == "a"


def test_caregiver_heater_off_lasts_the_rest_of_the_session() -> None:
    rig = Rig()
    rig.running()
    rig.step(CaregiverRequest("heater_off", request_id="b"))
    decision = rig.run(10, UserRequest(40, True))
    assert not decision.command.heater_on
    assert decision.heater_block == "disabled_for_session"


def test_caregiver_lower_pressure_lowers_the_ceiling_by_default_amount() -> None:
    rig = Rig()
    rig.running()
    rig.run(8, UserRequest(60, True))
    decision = rig.step(CaregiverRequest(CaregiverAction.LOWER_PRESSURE, None, "c"))
    assert decision.pressure_cap_mmhg == 50.0
    assert decision.command.pressure_mmhg <= 50.0


@pytest.mark.parametrize("amount", [-10.0, 0.0, math.nan, math.inf, "ten", True])
def test_caregiver_nonsense_amount_is_refused_and_changes_nothing(amount: object) -> None:
    rig = Rig()
    rig.running()
    rig.run(8, UserRequest(60, True))
    before = rig.decision.pressure_cap_mmhg
    decision = rig.step(CaregiverRequest(CaregiverAction.LOWER_PRESSURE, amount, "d"))  # type: ignore[arg-type]
    assert not decision.command_results[0].accepted
    assert decision.command_results[0].reason
    assert decision.pressure_cap_mmhg == before


def test_caregiver_unknown_action_is_refused() -> None:
    rig = Rig()
    rig.running()
    decision = rig.step(CaregiverRequest("raise_pressure", 50, "e"))
    assert not decision.command_results[0].accepted
    assert decision.command_results[0].reason == "unknown action"
    assert decision.state is SessionState.RUNNING


def test_lowering_can_take_the_ceiling_to_zero_but_not_below() -> None:
    rig = Rig()
    rig.running()
    for _ in range(10):
        rig.step(CaregiverRequest(CaregiverAction.LOWER_PRESSURE, 25, "f"))
    assert rig.decision.pressure_cap_mmhg == 0.0
    assert rig.run(3).command.pressure_mmhg == 0.0


def test_skin_reading_with_garbage_time_is_ignored() -> None:
    rig = Rig()
    rig.running()
    decision = rig.step(SkinReading(math.nan, 36.0), StartSession(ChecklistResult()))
    assert decision.state is SessionState.RUNNING


def test_a_silent_massager_gets_nothing_until_it_reports_again() -> None:
    rig = Rig()
    rig.running()
    rig.run(3)
    assert rig.decision.command.pressure_mmhg > 0.0
    # The link stays up but the status notifications stop (hung firmware, garbage frames).
    for _ in range(round(rig.limits.massager_silent_after_s / 0.1) + 1):
        rig.step(rig.reading())
    decision = rig.decision
    assert decision.command.pressure_mmhg == 0.0
    assert not decision.command.heater_on
    assert alarm(rig, "MASSAGER_SILENT") is Priority.MEDIUM
    rig.run(2)
    assert rig.decision.command.pressure_mmhg > 0.0
    assert "MASSAGER_SILENT" not in [a.code for a in rig.decision.active_alarms]
    assert rig.alarms.count("MASSAGER_SILENT") == 1


def test_measured_pressure_above_the_hard_limit_counts_at_once() -> None:
    rig = Rig()
    rig.running()
    rig.run(3)
    rig.measured = rig.limits.pressure_hard_max_mmhg + 1.0
    decision = rig.step(rig.report())
    assert alarm(rig, "PRESSURE_OVER_CAP") is Priority.HIGH
    assert decision.command.pressure_mmhg == 0.0
    # A second short spell over the hard limit ends the session: the pump is not trusted.
    rig.measured = 20.0
    rig.run(2)
    rig.measured = rig.limits.pressure_hard_max_mmhg + 1.0
    decision = rig.step(rig.report())
    assert decision.ended_by is EndReason.FAULT
