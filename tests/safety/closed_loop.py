"""A supervisor in closed loop with the simulated firmware and physics (firmware_sim), no radio.

Used by the thermal tests: it checks the supervisor's own rules (predictive cut-off, thermostat)
against the simulator's pad-and-skin model; the end-to-end check over BLE is elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from controller.protocol.massager import SetHeater, SetPressure, StatusFlags, Stop
from controller.safety import (
    Decision,
    DeviceKind,
    LinkChanged,
    MassagerReport,
    SkinReading,
    StartSession,
    Supervisor,
    UserRequest,
)
from controller.safety.events import ChecklistResult
from firmware_sim.massager import MassagerFirmware
from firmware_sim.physics import Physics, PhysicsParams

if TYPE_CHECKING:
    from controller.settings import SafetyLimits

TICK_S = 0.1  # the supervisor's 10 Hz
READING_PERIOD_S = 1.0  # a Health Thermometer sensor indicates once a second
GOOD_CHECKLIST = ChecklistResult(inspection_done=True)


@dataclass
class Trace:
    max_skin_c: float = 0.0
    max_sensor_c: float = 0.0
    max_pad_c: float = 0.0
    heater_on_s: float = 0.0
    decisions: list[Decision] = field(default_factory=list)


def run_session(
    limits: SafetyLimits,
    params: PhysicsParams,
    seconds: float,
    *,
    pressure_mmhg: float = 40.0,
    seed: int = 1,
    pad_target_override_c: float | None = None,
    start: float = 86_400.0,
) -> Trace:
    """Run one heated session; the firmware receives exactly what the supervisor decides.

    ``pad_target_override_c`` replaces the pad target sent to the firmware, to exercise the
    predictive cut-off against a hotter pad than the supervisor would ever ask for.
    """
    physics = Physics(params, seed=seed)
    firmware = MassagerFirmware(physics)
    sup = Supervisor(limits)
    trace = Trace()
    sequence = 0
    now = start
    events: list[object] = [
        LinkChanged(DeviceKind.MASSAGER, True),
        LinkChanged(DeviceKind.SENSOR, True),
        StartSession(GOOD_CHECKLIST),
    ]
    next_reading = start
    steps = round(seconds / TICK_S)
    for _ in range(steps):
        physics.step(TICK_S)
        now = round(now + TICK_S, 9)
        firmware.tick(now)
        status = firmware.status(now)
        events.append(
            MassagerReport(
                time=now,
                pressure_mmhg=status.pressure_mmhg,
                heater_energised=bool(status.flags & StatusFlags.HEATER_ENERGISED),
                cutout_latched=bool(status.flags & StatusFlags.CUTOUT_LATCHED),
                fault=int(status.fault),
                battery_percent=status.battery_percent,
                pad_c=status.pad_temperature_c,
                lease_active=status.lease_active,
                pressure_target_mmhg=status.pressure_target_mmhg,
            )
        )
        if now >= next_reading:
            events.append(SkinReading(now, physics.read_skin_c()))
            next_reading = now + READING_PERIOD_S
        events.append(UserRequest(pressure_mmhg, heat_on=True))
        decision = sup.step(now, events)  # type: ignore[arg-type]
        events = []
        trace.decisions.append(decision)
        command = decision.command
        lease_ms = round(command.lease_s * 1000)
        sequence = (sequence + 1) & 0xFFFF
        if command.stop:
            firmware.handle_write(Stop(sequence).encode(), now)
        else:
            pad = pad_target_override_c or command.pad_target_c
            firmware.handle_write(
                SetHeater(sequence, lease_ms, command.heater_on, pad).encode(), now
            )
            sequence = (sequence + 1) & 0xFFFF
            firmware.handle_write(
                SetPressure(sequence, lease_ms, command.pressure_mmhg).encode(), now
            )
        trace.max_skin_c = max(trace.max_skin_c, physics.skin_c)
        trace.max_sensor_c = max(trace.max_sensor_c, physics.sensor_c)
        trace.max_pad_c = max(trace.max_pad_c, physics.pad_c)
        trace.heater_on_s += TICK_S if command.heater_on else 0.0
    return trace
