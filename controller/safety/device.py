"""The massager's own reports: pad sensor, heater flag, cut-out, fault byte, battery, silence."""

from __future__ import annotations

from typing import TYPE_CHECKING

from controller.safety._state import (
    _FAULT_CUTOUT,
    _FAULT_NONE,
    _FAULT_OVER_PRESSURE,
    _FAULT_PAD_SENSOR,
    _FAULT_REBOOTED,
    _isfinite,
    _number,
)
from controller.safety.alarms import AlarmCode
from controller.safety.decision import (
    EndReason,
    SessionState,
)
from controller.safety.lifecycle import SessionLifecycle

if TYPE_CHECKING:
    from controller.safety.events import (
        MassagerReport,
    )


class MassagerWatch(SessionLifecycle):
    """The massager's reports: pad sensor, heater flag, cut-out, fault, battery, silence."""

    def _report_status(
        self, t: float, report: MassagerReport, invalid: tuple[str, ...], now: float
    ) -> None:
        """The rest of a report: pad, heater, cut-out, fault byte, battery."""
        lim = self._lim
        pad = _number(report.pad_c)
        if "pad_temperature" in invalid or (
            pad is not None and not lim.pad_sensor_min_c < pad < lim.pad_sensor_max_c
        ):
            self._pad_c = None
            self._raise(
                AlarmCode.PAD_SENSOR_FAULT,
                "the massager's pad sensor reads out of range: heat off for this session",
                now,
            )
            self._heat_disabled = True
        elif pad is not None:
            self._pad_c = pad
            if self._state is SessionState.RUNNING:
                self._follow.pad(t, pad)
        energised = report.heater_energised is True
        self._reported_energised = energised
        lease = report.lease_active
        self._reported_lease = lease if isinstance(lease, bool) else None
        self._energised_bad.update(t, energised and not self._cmd_heater)
        cutout = report.cutout_latched is True or report.fault == _FAULT_CUTOUT
        if cutout and not self._firmware_cutout:
            self._raise(
                AlarmCode.FIRMWARE_CUTOUT,
                "the massager's own thermal cut-out tripped (pad too hot): session stopped; "
                "take your foot out and let the massager cool",
                now,
            )
            self._end(EndReason.FAULT, now)
        elif not cutout:
            self._clear(AlarmCode.FIRMWARE_CUTOUT)
        self._firmware_cutout = cutout
        fault = report.fault if isinstance(report.fault, int) else -1
        if fault != self._fault_code:
            self._on_fault_change(fault, now)
        battery = report.battery_percent
        if "battery" in invalid:
            battery = None
        if isinstance(battery, (int, float)) and _isfinite(battery):
            self._battery = float(battery)
            if battery < lim.battery_low_percent:
                self._raise(
                    AlarmCode.BATTERY_LOW,
                    f"massager battery low ({battery:.0f} %): charge it after this session",
                    now,
                )
            elif battery >= lim.battery_ok_percent:
                self._clear(AlarmCode.BATTERY_LOW)

    def _on_fault_change(self, fault: int, now: float) -> None:
        for code in (AlarmCode.FIRMWARE_OVER_PRESSURE, AlarmCode.MASSAGER_REBOOTED):
            self._clear(code)
        self._fault_code = fault
        if fault in (_FAULT_NONE, _FAULT_CUTOUT):
            return  # the cut-out has its own flag, handled with it
        if fault == _FAULT_OVER_PRESSURE:
            self._raise(
                AlarmCode.FIRMWARE_OVER_PRESSURE,
                "the massager vented an over-pressure: pressure off",
                now,
            )
            self._over_pressure_event(now)
        elif fault == _FAULT_PAD_SENSOR:
            self._raise(
                AlarmCode.PAD_SENSOR_FAULT,
                "the massager's pad sensor failed: heat off for this session",
                now,
            )
            self._heat_disabled = True
        elif fault == _FAULT_REBOOTED:
            self._raise(
                AlarmCode.MASSAGER_REBOOTED,
                "the massager restarted: pressure ramps up again from zero",
                now,
            )
            self._cmd_pressure = 0.0
        else:
            self._raise(
                AlarmCode.MASSAGER_FAULT,
                f"the massager reports unknown fault {fault}: session stopped",
                now,
            )
            self._end(EndReason.FAULT, now)

    def _evaluate_massager(self, now: float, running: bool) -> None:
        lim = self._lim
        if running and self._massager_silent(now):
            self._raise(
                AlarmCode.MASSAGER_SILENT,
                f"no status from the massager for {lim.massager_silent_after_s:.1f} s: "
                "pressure and heat off",
                now,
            )
        elif AlarmCode.MASSAGER_SILENT in self._alarms and (
            not running or not self._massager_silent(now)
        ):
            self._clear(AlarmCode.MASSAGER_SILENT)
