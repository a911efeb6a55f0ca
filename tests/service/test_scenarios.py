"""Every simulator fault scenario ends safe, with the alarms and the end docs/safety.md lists.

Safe means: the true skin temperature stayed below the 43 °C latch, no decision commanded more
than the cap, nothing crashed, the massager was left off; and the session ended the way the table
in docs/safety.md ("Fault scenarios and expected alarms") says, with exactly the alarms it lists.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from controller.safety import EndReason
from controller.safety.decision import Priority
from controller.settings import effective_limits
from firmware_sim.scenarios import SCENARIOS
from tests.service.support import HARD_PRESSURE_CAP_MMHG, LATCH_C, make_settings, simulated

# Faults start 30 s into the world; three minutes leaves room for the 60 s stuck-sensor rule and
# for the session to go on to its timer after the fault.
MINUTES = 3.0
# The welded relay heats the pad to the firmware's 43 °C cut-out in about 280 s.
HEATER_STUCK_MINUTES = 6.0


@dataclass(frozen=True)
class Expected:
    ended_by: EndReason
    required: dict[str, Priority]  # alarm code -> the priority it must be raised with
    allowed: frozenset[str] = frozenset()  # may be raised too (depends on timing)
    minutes: float = MINUTES
    # The fault outlives the session (a relay that keeps sticking): the massager cannot be left
    # off, only reported; the post-session watch must have said so.
    stays_faulty: bool = False


EXPECTED: dict[str, Expected] = {
    "normal": Expected(EndReason.TIMER, {"SESSION_TIME_UP": Priority.LOW}),
    # seed 0 draws the "silent sensor" variant (the link stays up): stale readings.
    "sensor-dropout": Expected(
        EndReason.TIMER, {"SENSOR_STALE": Priority.MEDIUM, "SESSION_TIME_UP": Priority.LOW}
    ),
    # A reading that does not rise under a hot pad: heat off for the session.
    "sensor-stuck": Expected(
        EndReason.TIMER, {"SENSOR_NOT_FOLLOWING": Priority.MEDIUM, "SESSION_TIME_UP": Priority.LOW}
    ),
    # Two spikes or NaNs in a row leave no valid reading for 2 s: SENSOR_STALE as well.
    "sensor-spikes": Expected(
        EndReason.TIMER,
        {"SENSOR_INVALID": Priority.MEDIUM, "SESSION_TIME_UP": Priority.LOW},
        allowed=frozenset({"SENSOR_STALE"}),
    ),
    # The HTS decoder converts °F: nothing to notice.
    "sensor-fahrenheit": Expected(EndReason.TIMER, {"SESSION_TIME_UP": Priority.LOW}),
    # The controller never asked for the heater off (the foot stays below the target), so the
    # welded relay shows only when the pad reaches the firmware's cut-out.
    # The post-session watch sees the relay still closed: HIGH, and the fault is the ending.
    "heater-stuck-on": Expected(
        EndReason.FAULT,
        {"FIRMWARE_CUTOUT": Priority.HIGH},
        allowed=frozenset({"HEATER_NOT_RESPONDING", "POST_SESSION_UNSAFE"}),
        minutes=HEATER_STUCK_MINUTES,
    ),
    # Each new target overshoots: the second over-pressure event ends the session.
    "pressure-overshoot": Expected(
        EndReason.FAULT,
        # The bladder rises above its command: it does not follow, which ends the session.
        {"PRESSURE_NOT_FOLLOWING": Priority.HIGH},
        allowed=frozenset({"PRESSURE_OVER_CAP", "FIRMWARE_OVER_PRESSURE", "POST_SESSION_UNSAFE"}),
    ),
    # The radio notices a dropped link only at its supervision timeout (2 s here); the missing
    # status reports say so sooner.
    "link-drop": Expected(
        EndReason.TIMER,
        {
            "MASSAGER_SILENT": Priority.MEDIUM,
            "MASSAGER_LINK_LOST": Priority.MEDIUM,
            "SESSION_TIME_UP": Priority.LOW,
        },
    ),
    "massager-reboot": Expected(
        EndReason.TIMER,
        {
            "MASSAGER_LINK_LOST": Priority.MEDIUM,
            "MASSAGER_REBOOTED": Priority.MEDIUM,
            "SESSION_TIME_UP": Priority.LOW,
        },
        allowed=frozenset({"MASSAGER_SILENT"}),
    ),
    "low-battery": Expected(
        EndReason.TIMER, {"BATTERY_LOW": Priority.LOW, "SESSION_TIME_UP": Priority.LOW}
    ),
    # Outcome supervision (issue 10): one scenario per fault class.
    "sensor-detached": Expected(
        EndReason.TIMER, {"SENSOR_NOT_FOLLOWING": Priority.MEDIUM, "SESSION_TIME_UP": Priority.LOW}
    ),
    # Frozen warm with its noise under a pad at 40 °C: the equilibrium rule turns heat off. The
    # sensor needs ~130-260 s to warm to its freezing point, then a window of heat (60 s) and
    # 15 s of bad time.
    "sensor-stuck-warm": Expected(
        EndReason.TIMER,
        {"SENSOR_NOT_FOLLOWING": Priority.MEDIUM, "SESSION_TIME_UP": Priority.LOW},
        minutes=7.0,
    ),
    # The vent cannot follow the program's next lower pressure, or STOP at the end.
    "vent-stuck": Expected(
        EndReason.FAULT,
        {"PRESSURE_NOT_FOLLOWING": Priority.HIGH},
        allowed=frozenset({"POST_SESSION_UNSAFE", "SESSION_TIME_UP"}),
    ),
    # Seen whenever the heater is commanded off: by the thermostat, or at the session's end.
    "heater-intermittent": Expected(
        EndReason.FAULT,
        {"HEATER_NOT_RESPONDING": Priority.HIGH},
        allowed=frozenset(
            {"POST_SESSION_UNSAFE", "SESSION_TIME_UP", "FIRMWARE_CUTOUT", "SENSOR_NOT_FOLLOWING"}
        ),
        stays_faulty=True,
    ),
    "pressure-intermittent": Expected(
        EndReason.FAULT,
        {"PRESSURE_NOT_FOLLOWING": Priority.HIGH},
        allowed=frozenset({"PRESSURE_OVER_CAP", "POST_SESSION_UNSAFE"}),
    ),
    # Honest readings in pairs 0 s apart: nothing to notice.
    "bursty-link": Expected(EndReason.TIMER, {"SESSION_TIME_UP": Priority.LOW}),
    # A pegged pressure is a sensor fault; with no pressure reading the bladder cannot be shown
    # vented after the session either.
    "corrupt-status": Expected(
        EndReason.FAULT,
        {"PRESSURE_SENSOR_FAULT": Priority.HIGH, "POST_SESSION_UNSAFE": Priority.HIGH},
    ),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_scenario_ends_safe_with_the_expected_alarms(scenario: str) -> None:
    expected = EXPECTED[scenario]  # a new scenario needs its row here and in docs/safety.md
    settings = make_settings(**{"session.max_minutes": expected.minutes})
    limits = effective_limits(settings)
    session = await simulated(settings, scenario=scenario)
    assert session.run is not None
    assert session.tap is not None
    summary = session.run.summary()

    # Safe, whatever the fault: the true skin, every commanded pressure, the firmware at the end.
    assert summary["max_skin_c"] < LATCH_C
    assert summary["max_skin_c"] <= limits.heater_cutoff_c
    for step in session.log.steps:
        assert step.decision.command.pressure_mmhg <= limits.pressure_cap_mmhg
        assert step.decision.command.pressure_mmhg <= HARD_PRESSURE_CAP_MMHG
        if step.decision.command.heater_on:
            # Heat only on a fresh, valid reading from a connected sensor.
            assert step.decision.skin_fresh
            assert step.decision.skin_valid
            assert step.decision.sensor_connected
            assert step.decision.massager_connected
    assert isinstance(session.tap.last, type(session.tap.stops()[-1].command))
    assert (
        session.tap.firmware_is_off()
        or (
            session.world is not None
            and (session.world.firmware.cutout_latched and not session.world.firmware.element_on)
        )
        or (expected.stays_faulty and summary["after_session"] == "fault")
    )

    # The end and the alarms the table promises.
    assert summary["ended_by"] == expected.ended_by
    raised = {(alarm.code, alarm.priority) for alarm in session.log.new_alarms()}
    for code, priority in expected.required.items():
        assert (code, priority) in raised, f"{code} ({priority}) not raised; got {raised}"
    codes = {code for code, _ in raised}
    assert codes <= set(expected.required) | expected.allowed
    if expected.ended_by is EndReason.TIMER:
        assert summary["duration_s"] == pytest.approx(expected.minutes * 60, abs=1.0)


async def test_pressure_overshoot_ends_on_the_first_overshoot() -> None:
    session = await simulated(
        make_settings(**{"session.max_minutes": MINUTES}), scenario=("pressure-overshoot")
    )
    codes = session.log.new_alarm_codes()
    assert codes.count("PRESSURE_NOT_FOLLOWING") == 1
    last = session.log.steps[-1].decision
    assert last.ended_by is EndReason.FAULT
    # Pressure was held at 0 after the first event until the pressure came back under.
    assert session.run is not None
    assert session.run.summary()["max_pressure_mmhg"] <= 60.0


async def test_massager_reboot_is_reported() -> None:
    session = await simulated(
        make_settings(**{"session.max_minutes": 1.0}), scenario="massager-reboot"
    )
    assert "MASSAGER_REBOOTED" in session.log.new_alarm_codes()
