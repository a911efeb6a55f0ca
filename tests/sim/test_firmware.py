"""The massager firmware's own safety behaviour, without a radio."""

from __future__ import annotations

import pytest

from controller.protocol import (
    AttErrorCode,
    FaultCode,
    RenewLease,
    SetHeater,
    SetPressure,
    StatusFlags,
    Stop,
)
from firmware_sim.massager import CUTOUT_C, CommandRefused, MassagerFirmware
from firmware_sim.physics import Physics

TICK_S = 0.1


class Bench:
    """Firmware on physics, stepped by hand."""

    def __init__(self) -> None:
        self.physics = Physics(seed=1)
        self.firmware = MassagerFirmware(self.physics)
        self.now = 0.0

    def run(self, seconds: float) -> None:
        for _ in range(round(seconds / TICK_S)):
            self.now += TICK_S
            self.physics.step(TICK_S)
            self.firmware.tick(self.now)

    def send(self, command: object) -> None:
        frame = command if isinstance(command, bytes) else command.encode()  # type: ignore[attr-defined]
        self.firmware.handle_write(frame, self.now)

    def fault(self) -> FaultCode:
        """The firmware's fault now (a call, so a type checker reads it afresh after a command)."""
        return self.firmware.fault


def test_boots_with_everything_off() -> None:
    bench = Bench()
    status = bench.firmware.status(bench.now)
    assert status.flags == StatusFlags(0)
    assert status.fault is FaultCode.NONE
    assert not bench.physics.heater_on


def test_lease_expiry_switches_heater_and_pressure_off() -> None:
    bench = Bench()
    bench.send(SetHeater(1, 3000, True, 42.0))
    bench.send(SetPressure(2, 3000, 40.0))
    bench.run(2.9)
    assert bench.physics.heater_on
    assert bench.firmware.lease_remaining_ms(bench.now) > 0
    bench.run(0.2)
    status = bench.firmware.status(bench.now)
    assert not bench.physics.heater_on
    assert status.pressure_target_mmhg == 0.0
    assert StatusFlags.LEASE_ACTIVE not in status.flags
    bench.run(5.0)
    assert bench.physics.pressure_mmhg == 0.0


def test_renewing_keeps_the_actuators_on_past_one_lease() -> None:
    bench = Bench()
    bench.send(SetPressure(1, 3000, 40.0))
    for sequence in range(2, 12):
        bench.run(1.0)
        bench.send(RenewLease(sequence, 3000))
    assert bench.physics.pressure_mmhg == pytest.approx(40.0)
    assert bench.firmware.last_sequence == 11


def test_cut_out_latches_at_43_and_only_stop_clears_it_after_cooling() -> None:
    bench = Bench()
    sequence = 1
    # A controller that keeps asking for a pad above the cut-out.
    while not bench.firmware.cutout_latched and bench.now < 900:
        bench.send(SetHeater(sequence, 3000, True, 45.0))
        sequence += 1
        bench.run(1.0)
    assert bench.firmware.cutout_latched
    assert bench.firmware.fault is FaultCode.THERMAL_CUTOUT
    assert bench.physics.pad_c == pytest.approx(CUTOUT_C, abs=0.3)
    assert not bench.physics.heater_on
    for refused in (
        SetHeater(sequence, 3000, True, 40.0),
        RenewLease(sequence, 3000),
        SetPressure(sequence, 3000, 10.0),
    ):
        with pytest.raises(CommandRefused) as info:
            bench.send(refused)
        assert info.value.att_error == AttErrorCode.CUTOUT_LATCHED
    bench.send(Stop(sequence))  # accepted, but the pad is still hot: the latch holds
    assert bench.firmware.cutout_latched
    while bench.physics.pad_c >= 37.5:
        bench.run(1.0)
    assert bench.firmware.cutout_latched  # cooling alone does not clear it
    bench.send(Stop(sequence + 1))
    assert not bench.firmware.cutout_latched
    bench.send(SetHeater(sequence + 2, 3000, True, 40.0))
    assert bench.firmware.heater_enabled


@pytest.mark.parametrize(
    ("frame", "att_error"),
    [
        (b"\x01\x01\x07\x00\xb8\x0b\xee\x02", 0x82),  # 75.0 mmHg
        (b"\x02\x01\x07\x00\xb8\x0b\x58\x02", 0x80),  # version 2
        (b"\x01\x09\x07\x00\xb8\x0b", 0x81),  # opcode 9
        (b"\x01\x01\x07\x00\xb8\x0b", 0x0D),  # truncated
        (b"\x01\x04\x07\x00\xb9\x0b", 0x82),  # lease 3001 ms
    ],
)
def test_bad_commands_are_refused_and_change_nothing(frame: bytes, att_error: int) -> None:
    bench = Bench()
    bench.send(SetPressure(5, 3000, 30.0))
    before = bench.firmware.status(bench.now)
    with pytest.raises(CommandRefused) as info:
        bench.send(frame)
    assert info.value.att_error == att_error
    assert bench.firmware.status(bench.now) == before


def test_welded_heater_relay_is_held_by_the_cut_out() -> None:
    bench = Bench()
    bench.firmware.faults.heater_stuck_on = True
    bench.send(SetHeater(1, 3000, True, 40.0))
    bench.run(0.2)
    bench.send(SetHeater(2, 3000, False, 40.0))
    bench.send(Stop(3))
    bench.run(5.0)
    assert bench.physics.heater_on  # off, STOP and the lease are all ignored
    bench.run(1800.0)
    assert bench.firmware.cutout_latched
    assert bench.physics.skin_c < 43.0
    assert bench.firmware.status(bench.now).pad_temperature_c < CUTOUT_C + 0.5


def test_reboot_loses_the_lease_and_reports_it_until_a_command_after_a_status() -> None:
    bench = Bench()
    bench.send(SetHeater(1, 3000, True, 42.0))
    bench.run(1.0)
    bench.firmware.reboot()
    status = bench.firmware.status(bench.now)
    assert status.fault is FaultCode.REBOOTED
    assert StatusFlags.LEASE_ACTIVE not in status.flags
    assert not bench.physics.heater_on
    # A command that comes before any status carried the fault does not hide it ...
    bench.send(RenewLease(2, 3000))
    assert bench.fault() is FaultCode.REBOOTED
    # ... the first one after a status notification reported it does.
    bench.firmware.status_sent()
    bench.send(RenewLease(3, 3000))
    assert bench.fault() is FaultCode.NONE


def test_pressure_over_the_ceiling_vents_and_reports_over_pressure() -> None:
    bench = Bench()
    bench.physics.overshoot_mmhg = 15.0
    bench.send(SetPressure(1, 3000, 65.0))
    for sequence in range(2, 10):
        bench.run(1.0)
        bench.send(RenewLease(sequence, 3000))
    assert bench.firmware.fault is FaultCode.OVER_PRESSURE
    assert bench.firmware.pressure_target_mmhg == 0.0
    assert bench.physics.pressure_mmhg < 70.0


def test_the_start_button_counts_presses_wrapping_and_starts_nothing() -> None:
    bench = Bench()
    assert bench.firmware.status(bench.now).start_presses == 0  # sent as 0, not as unknown
    state = bench.firmware.discrete_state()
    bench.firmware.press_start()
    # A press is a change of the discrete state: notified at once, not a period later.
    assert bench.firmware.discrete_state() != state
    status = bench.firmware.status(bench.now)
    assert status.start_presses == 1
    # The device itself starts nothing: no lease, no heat, no pressure.
    assert status.flags == StatusFlags(0)
    assert status.pressure_target_mmhg == 0.0
    for _ in range(255):
        bench.firmware.press_start()
    assert bench.firmware.status(bench.now).start_presses == 0  # 256 presses: wrapped


def test_a_restart_sets_the_start_button_counter_back_to_0() -> None:
    bench = Bench()
    bench.firmware.press_start()
    bench.firmware.press_start()
    bench.firmware.reboot()
    status = bench.firmware.status(bench.now)
    assert status.start_presses == 0
    assert status.fault is FaultCode.REBOOTED
