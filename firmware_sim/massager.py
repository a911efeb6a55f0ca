"""The massager firmware's logic: commands, the actuator lease, pad regulation, its own cut-out.

Pure and synchronous: every method takes ``now`` (seconds, any monotonic clock) and acts on a
`Physics`. The GATT wiring (``firmware_sim.massager_gatt``) calls `handle_write` for each Command
write and `tick` at the physics rate, and notifies `status`. Keeping this free of bumble makes the
safety behaviour unit-testable without a radio.

What the firmware guarantees on its own, whatever the controller does (docs/protocol.md):

- The lease: every command but STOP (re)starts it, for at most 3 s whatever the command asks;
  when it passes, heater and pressure go off.
- The thermal cut-out: a valid pad reading >= 43 °C switches everything off and latches; while
  latched only STOP is accepted, and STOP clears the latch once the pad is below 38 °C.
- The pressure ceiling: targets are clamped to 70 mmHg; a measured pressure above 70 mmHg plus a
  5 mmHg margin vents the bladder and reports fault OVER_PRESSURE.

The start button only counts presses (Status ``start_presses``, docs/protocol.md "Start button"):
it starts nothing on the device; the controller decides what a press means.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import TYPE_CHECKING

from controller.errors import ProtocolError
from controller.protocol import (
    START_PRESSES_MAX,
    AttErrorCode,
    Command,
    DeviceLimits,
    FaultCode,
    MassagerStatus,
    RenewLease,
    SetHeater,
    SetPressure,
    StatusFlags,
    Stop,
    att_error_for,
    decode_command,
)

if TYPE_CHECKING:
    from firmware_sim.physics import Physics

_HEATER_ENERGISED = int(StatusFlags.HEATER_ENERGISED)
_HEATER_ENABLED = int(StatusFlags.HEATER_ENABLED)
_LEASE_ACTIVE = int(StatusFlags.LEASE_ACTIVE)
_CUTOUT_LATCHED = int(StatusFlags.CUTOUT_LATCHED)
_RELIEF_OPEN = int(StatusFlags.RELIEF_OPEN)
_BATTERY_LOW = int(StatusFlags.BATTERY_LOW)

__all__ = [
    "BATTERY_CRITICAL_PERCENT",
    "BATTERY_LOW_PERCENT",
    "CUTOUT_C",
    "CUTOUT_CLEAR_C",
    "MAX_LEASE_MS",
    "MAX_PRESSURE_MMHG",
    "OVER_PRESSURE_MARGIN_MMHG",
    "PAD_HYSTERESIS_C",
    "CommandRefused",
    "FirmwareFaults",
    "MassagerFirmware",
]

_LOGGER = logging.getLogger(__name__)

# The firmware's own ceilings, published in the Device limits characteristic.
MAX_PRESSURE_MMHG = 70.0  # the hard pressure limit of DESIGN.md §3
MAX_LEASE_MS = 3000  # protocol maximum; the controller renews every 1 s
CUTOUT_C = 43.0  # pad temperature; IEC 60601-1 3rd ed. Table 24, >= 10 min skin contact
CUTOUT_CLEAR_C = 38.0  # STOP clears the latch only once the pad has cooled this far
# Bang-bang band around the pad target: the element switches at most every few seconds with the
# pad's ~30 s time constant, which a relay survives for years.
PAD_HYSTERESIS_C = 0.2
# Measured pressure this far above the ceiling opens the vent and reports OVER_PRESSURE: above the
# sensor noise (0.3 mmHg) and the controller's ramp, below the mechanical relief valve (80 mmHg).
OVER_PRESSURE_MARGIN_MMHG = 5.0
BATTERY_LOW_PERCENT = 15.0  # status flag bit 5, docs/protocol.md
# Below this the pack cannot hold the heater's 12 W without browning out the MCU: heater refused.
BATTERY_CRITICAL_PERCENT = 5.0
# A pad thermistor reading outside this range is a broken or shorted sensor, not a temperature.
PAD_SENSOR_VALID_C = (-20.0, 100.0)


class CommandRefused(ProtocolError):
    """A Command write refused with ``att_error`` (docs/protocol.md); nothing changed."""

    def __init__(self, message: str, att_error: int) -> None:
        super().__init__(message)
        self.att_error = att_error


@dataclasses.dataclass(slots=True)
class FirmwareFaults:
    """Fault injection switches (set by firmware_sim.scenarios); all off by default."""

    # The heater relay welds closed the first time it closes while this is set: heater off, STOP,
    # lease expiry and pad regulation no longer open it; only the cut-out's series switch does.
    heater_stuck_on: bool = False
    # The relay sticks intermittently: closed for this share of every second whatever it is told
    # (0: no fault). The cut-out's series switch still opens it.
    heater_flapping_share: float = 0.0
    # The pressure sensor fails open: every Status frame carries 0xFFFF in its pressure field.
    pressure_sensor_open: bool = False


class MassagerFirmware:
    """One massager's firmware state machine on top of `Physics`.

    ``MassagerFirmware(physics)``: boots with everything off. Times (``now``) are seconds on the
    caller's clock, the same for every call; ``lease_deadline`` is on it too. Wire fields and
    their units: docs/protocol.md (Command, Status, Device limits).
    """

    def __init__(self, physics: Physics) -> None:
        self.physics = physics
        self.faults = FirmwareFaults()
        self.limits = DeviceLimits(
            max_pressure_mmhg=MAX_PRESSURE_MMHG, max_lease_ms=MAX_LEASE_MS, cutout_c=CUTOUT_C
        )
        self.boots = 0
        self._boot(rebooted=False)

    def _boot(self, *, rebooted: bool) -> None:
        self.boots += 1
        self.heater_enabled = False
        self.pad_target_c = 0.0
        self.pressure_target_mmhg = 0.0
        self.lease_deadline: float | None = None
        self.last_sequence = 0
        self.cutout_latched = False
        self.over_pressure = False
        self.pad_sensor_fault = False
        # "rebooted since the last connection": shown until the controller's first accepted
        # command after a status notification carried it, so a controller that reconnects and
        # writes at once still learns that its lease and targets are gone.
        self.rebooted = rebooted
        self._reboot_reported = False
        self.element_on = False
        self.relay_welded = False
        # A RAM counter: a restart sets it back to 0 (docs/protocol.md, "Start button").
        self.start_presses = 0
        self.pad_reading_c = self.physics.read_pad_c()
        self.pressure_reading_mmhg = self.physics.read_pressure_mmhg()
        self._apply()

    def connection_started(self) -> None:
        """A central connected: a command clears the reboot fault only once a status carried it."""
        self._reboot_reported = False

    def status_sent(self) -> None:
        """A status notification reached the controller (the GATT layer calls this)."""
        self._reboot_reported = self.rebooted

    def reboot(self) -> None:
        """A watchdog reset or brown-out: everything off, lease lost, fault REBOOTED."""
        _LOGGER.info("massager firmware rebooting")
        self._boot(rebooted=True)

    def press_start(self) -> None:
        """The start button pressed once: ``start_presses`` goes up by 1, wrapping 255 -> 0.

        Nothing else changes: the press is reported in Status, the controller decides.
        """
        self.start_presses = (self.start_presses + 1) & START_PRESSES_MAX
        _LOGGER.info("start button pressed (count %d)", self.start_presses)

    # -- commands -------------------------------------------------------------------------------

    def handle_write(self, data: bytes, now: float) -> Command:
        """Execute one Command frame written at ``now`` (s); return the decoded command.

        Raises `CommandRefused` (nothing executed) with the ATT error to answer: the frame does
        not decode (docs/protocol.md, "Command", its ATT error table), or the cut-out is latched
        and it is not STOP.
        """
        try:
            command = decode_command(bytes(data))
        except ProtocolError as exc:
            raise CommandRefused(str(exc), att_error_for(exc)) from exc
        if self.cutout_latched and not isinstance(command, Stop):
            raise CommandRefused(
                "thermal cut-out latched: only STOP is accepted", AttErrorCode.CUTOUT_LATCHED
            )
        self._execute(command, now)
        self.last_sequence = command.sequence
        if self._reboot_reported:
            self.rebooted = False
        if isinstance(command, Stop | SetPressure):
            # The controller has reacted to the pressure (a new target or a stop): the fault is
            # reported until then, so a renewal alone does not hide it.
            self.over_pressure = self.over_pressure and self.physics.relief_open
        self._apply()
        return command

    def _execute(self, command: Command, now: float) -> None:
        match command:
            case Stop():
                self._all_off()
                if self.cutout_latched and self.pad_reading_c < CUTOUT_CLEAR_C:
                    _LOGGER.info("cut-out cleared by STOP at pad %.2f °C", self.pad_reading_c)
                    self.cutout_latched = False
            case SetPressure(target_mmhg=target):
                self.pressure_target_mmhg = min(target, MAX_PRESSURE_MMHG)
                self._start_lease(command.lease_ms, now)
            case SetHeater(on=on, pad_target_c=pad_target):
                self.heater_enabled = on
                self.pad_target_c = pad_target
                self._start_lease(command.lease_ms, now)
            case RenewLease():
                self._start_lease(command.lease_ms, now)

    def _start_lease(self, lease_ms: int, now: float) -> None:
        self.lease_deadline = now + min(lease_ms, MAX_LEASE_MS) / 1000.0

    def _all_off(self) -> None:
        self.heater_enabled = False
        self.pressure_target_mmhg = 0.0
        self.lease_deadline = None

    # -- the control loop -----------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """At ``now`` (s): read sensors, enforce lease, cut-out and ceilings, drive actuators."""
        self.pad_reading_c = self.physics.read_pad_c()
        self.pressure_reading_mmhg = self.physics.read_pressure_mmhg()
        low, high = PAD_SENSOR_VALID_C
        pad_ok = math.isfinite(self.pad_reading_c) and low <= self.pad_reading_c <= high
        if not pad_ok and not self.pad_sensor_fault:
            _LOGGER.warning("pad sensor reads %s: heater off", self.pad_reading_c)
        self.pad_sensor_fault = not pad_ok
        if self.lease_deadline is not None and now >= self.lease_deadline:
            _LOGGER.info("lease expired: heater and pressure off")
            self.heater_enabled = False
            self.pressure_target_mmhg = 0.0
            self.lease_deadline = None
        if pad_ok and self.pad_reading_c >= CUTOUT_C and not self.cutout_latched:
            _LOGGER.warning("thermal cut-out at pad %.2f °C: everything off", self.pad_reading_c)
            self.cutout_latched = True
            self._all_off()
        if self.pressure_reading_mmhg > MAX_PRESSURE_MMHG + OVER_PRESSURE_MARGIN_MMHG:
            if not self.over_pressure:
                _LOGGER.warning("over-pressure %.1f mmHg: venting", self.pressure_reading_mmhg)
            self.over_pressure = True
            self.pressure_target_mmhg = 0.0
        self._apply()

    def _apply(self) -> None:
        """Drive the element and the pump from the firmware state."""
        if not self.faults.heater_stuck_on:
            self.relay_welded = False  # the fault was repaired (end of the scenario)
        pad = self.pad_reading_c
        if self.relay_welded:
            relay = True  # heater off, STOP, lease expiry and regulation no longer open it
        elif (
            self.faults.heater_flapping_share
            and self.physics.time_s % 1.0 < self.faults.heater_flapping_share
        ):
            relay = True  # stuck for part of each second, whatever the command
        elif not self.heater_enabled or pad >= self.pad_target_c + PAD_HYSTERESIS_C:
            relay = False
        elif pad <= self.pad_target_c - PAD_HYSTERESIS_C:
            relay = True
        else:
            relay = self.element_on
        # The cut-out and the sensor check open a second switch in series with the relay, so they
        # hold even when the relay is welded.
        self.element_on = (
            relay
            and not self.cutout_latched
            and not self.pad_sensor_fault
            and self.physics.battery_percent > BATTERY_CRITICAL_PERCENT
        )
        if self.faults.heater_stuck_on and self.element_on:
            self.relay_welded = True
        self.physics.heater_on = self.element_on
        self.physics.set_pressure_target(self.pressure_target_mmhg)

    # -- observation ----------------------------------------------------------------------------

    @property
    def fault(self) -> FaultCode:
        """The Status ``fault`` now: cut-out first, then over-pressure, pad sensor, reboot, none."""
        if self.cutout_latched:
            return FaultCode.THERMAL_CUTOUT
        if self.over_pressure or self.physics.relief_open:
            return FaultCode.OVER_PRESSURE
        if self.pad_sensor_fault:
            return FaultCode.PAD_SENSOR_FAULT
        if self.rebooted:
            return FaultCode.REBOOTED
        return FaultCode.NONE

    @property
    def flags(self) -> StatusFlags:
        """The Status ``flags`` now (docs/protocol.md, "Status")."""
        return StatusFlags(self._flag_bits())

    def _flag_bits(self) -> int:
        # Plain ints: built at every physics tick (for "notify on change") and every status, and
        # IntFlag's `|` costs an enum construction each (profiled in bench/virtual_time.py).
        bits = 0
        if self.element_on:
            bits |= _HEATER_ENERGISED
        if self.heater_enabled or self.relay_welded:
            bits |= _HEATER_ENABLED
        if self.lease_deadline is not None:
            bits |= _LEASE_ACTIVE
        if self.cutout_latched:
            bits |= _CUTOUT_LATCHED
        if self.physics.relief_open:
            bits |= _RELIEF_OPEN
        if self.physics.battery_percent < BATTERY_LOW_PERCENT:
            bits |= _BATTERY_LOW
        return bits

    def lease_remaining_ms(self, now: float) -> int:
        """Lease left at ``now`` (s), in ms: 0 without a lease, at most the firmware maximum."""
        if self.lease_deadline is None:
            return 0
        return max(0, min(MAX_LEASE_MS, round((self.lease_deadline - now) * 1000)))

    def discrete_state(self) -> tuple[int, int, float, int, int]:
        """What a status notification "on change" is about (not the noisy analogue values).

        The start-button counter is in it, so a press is notified at once, not up to a period
        later (docs/protocol.md, "Start button").
        """
        return (
            self._flag_bits(),
            self.last_sequence,
            self.pressure_target_mmhg,
            int(self.fault),
            self.start_presses,
        )

    def status(self, now: float) -> MassagerStatus:
        """The Status notified at ``now`` (s); measurements clamped to their wire ranges."""
        return MassagerStatus(
            flags=self.flags,
            last_sequence=self.last_sequence,
            pressure_mmhg=min(300.0, self.pressure_reading_mmhg),
            pressure_target_mmhg=self.pressure_target_mmhg,
            pad_temperature_c=min(120.0, max(-40.0, self.pad_reading_c)),
            battery_percent=max(0, min(100, round(self.physics.battery_percent))),
            lease_remaining_ms=self.lease_remaining_ms(now),
            fault=self.fault,
            start_presses=self.start_presses,
        )
