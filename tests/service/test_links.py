"""A link lost mid-session: the massager is safe meanwhile, and the session resumes safely.

Massager link: nothing is actuated while it is down (the firmware's lease switches it off), and
after the reconnection nothing is actuated before the massager has reported its status; pressure
ramps from 0 again. Sensor link or a silent sensor: the heater is off while there is no fresh
reading, and after the reconnection it waits for a reading received after it.
"""

from __future__ import annotations

import itertools

from controller.protocol import SetHeater, SetPressure
from controller.safety import EndReason
from controller.settings import effective_limits
from tests.service.support import (
    PROPAGATION_S,
    Session,
    make_settings,
    simulated,
)

MINUTES = 2.0
LINK_DROP_ONSET_S = 30.0  # firmware_sim.scenarios default onset
# Floating-point slack on the ramp check (the supervisor computes ramp * dt in floats).
RAMP_EPSILON_MMHG = 1e-6
# The seed whose sensor-dropout draws the "link lost" variant (seed 0 draws the silent sensor).
SENSOR_LINK_LOSS_SEED = 4


def reconnections(session: Session, attribute: str) -> list[tuple[float, float]]:
    """(lost_at, back_at) on the loop clock for each outage of the named link."""
    outages = []
    lost_at = None
    for step in session.log.steps:
        up = getattr(step.decision, attribute)
        if not up and lost_at is None and step.decision.state == "running":
            lost_at = step.now
        elif up and lost_at is not None:
            outages.append((lost_at, step.now))
            lost_at = None
    return outages


async def test_massager_link_drop_reconnects_and_resumes_safely() -> None:
    settings = make_settings(**{"session.max_minutes": MINUTES})
    limits = effective_limits(settings)
    session = await simulated(settings, scenario="link-drop")
    assert session.run is not None
    assert session.tap is not None
    assert session.world is not None
    assert session.run.outcome.ended_by is EndReason.TIMER
    assert "MASSAGER_LINK_LOST" in session.log.new_alarm_codes()
    assert session.runner is not None
    assert session.runner.massager.connections == 2
    [(lost_at, back_at)] = reconnections(session, "massager_connected")

    steps = session.log.steps
    for step in steps:
        if not step.decision.massager_connected:
            # Nothing asked of a massager the controller cannot reach...
            assert step.decision.command.pressure_mmhg == 0.0
            assert not step.decision.command.heater_on
            # ...and the firmware stopped on its own once the lease ran out.
            lease_out = lost_at + limits.lease_s + PROPAGATION_S
            if step.now >= lease_out:
                assert not step.firmware_heater_enabled
                assert step.firmware_pressure_target_mmhg == 0.0
    # Pressure never jumps: it ramps, from 0 again after the reconnection.
    for earlier, later in itertools.pairwise(steps):
        rise = later.decision.command.pressure_mmhg - earlier.decision.command.pressure_mmhg
        assert rise <= limits.pressure_ramp_mmhg_per_s * (later.now - earlier.now) + (
            RAMP_EPSILON_MMHG
        )
    # After the reconnection, the first command that adds energy came only after the massager
    # had reported its status on the new link.
    back = [r for r in session.tap.received if r.time >= back_at - PROPAGATION_S]
    energising = next(
        r
        for r in back
        if (isinstance(r.command, SetHeater) and r.command.on)
        or (isinstance(r.command, SetPressure) and r.command.target_mmhg > 0.0)
    )
    notified_at_reconnect = back[0].status_notifications
    assert energising.status_notifications > notified_at_reconnect
    # The session went on: heating and pressing again after the reconnection.
    after = [s for s in steps if s.now > back_at + 5.0]
    assert any(s.firmware_heater_enabled for s in after)
    assert max(s.firmware_pressure_target_mmhg for s in after) > 0.0


async def test_sensor_link_loss_keeps_heat_off_until_a_reading_after_reconnection() -> None:
    settings = make_settings(**{"session.max_minutes": MINUTES})
    session = await simulated(settings, scenario="sensor-dropout", seed=SENSOR_LINK_LOSS_SEED)
    assert session.run is not None
    assert session.run.outcome.ended_by is EndReason.TIMER
    codes = session.log.new_alarm_codes()
    assert "SENSOR_LINK_LOST" in codes
    [(lost_at, back_at)] = reconnections(session, "sensor_connected")
    assert back_at - lost_at > 10.0  # the sensor was off the air for its 20 s

    steps = session.log.steps
    for index, step in enumerate(steps):
        if lost_at <= step.now < back_at:
            assert not step.decision.command.heater_on
            if session.log.settled(index):
                assert not step.firmware_heater_enabled
    resumed = [s for s in steps if s.now >= back_at and s.decision.command.heater_on]
    assert resumed, "heat never came back after the sensor reconnected"
    first = resumed[0]
    # The reading that allowed heat again was received after the reconnection.
    assert first.decision.skin_age_s is not None
    assert first.now - first.decision.skin_age_s >= back_at - PROPAGATION_S
    assert first.decision.skin_fresh


async def test_silent_sensor_keeps_heat_off_while_readings_are_stale() -> None:
    settings = make_settings(**{"session.max_minutes": MINUTES})
    limits = effective_limits(settings)
    session = await simulated(settings, scenario="sensor-dropout", seed=0)
    assert session.run is not None
    assert session.run.outcome.ended_by is EndReason.TIMER
    assert "SENSOR_STALE" in session.log.new_alarm_codes()
    steps = session.log.steps
    stale = [
        index
        for index, step in enumerate(steps)
        if step.decision.state == "running"
        and (step.decision.skin_age_s is None or step.decision.skin_age_s > limits.stale_after_s)
    ]
    # The 20 s dropout, minus the 2 s it takes to call a reading stale.
    assert len(stale) * 0.1 > 15.0
    for index in stale:
        assert not steps[index].decision.command.heater_on
        if session.log.settled(index):
            assert not steps[index].firmware_heater_enabled
    # Heat came back once the sensor spoke again.
    assert any(s.decision.command.heater_on for s in steps[stale[-1] :])
