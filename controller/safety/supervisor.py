"""The safety supervisor: the only code that decides a pressure or heater command.

Pure and deterministic: no I/O, no clock, no randomness. The caller gives the current monotonic
time and what happened since the last call; :meth:`Supervisor.step` answers with a
:class:`~controller.safety.decision.Decision`. Call it at 10 Hz or faster, with or without events:
time alone ends sessions, makes readings stale and fires the grace timers.

Every number comes from :class:`~controller.settings.SafetyLimits`; the rules and their sources
are in docs/safety.md. Garbage in is refused, never raised: a non-finite ``now`` gives an all-off
command for that step, time going backwards is held at the latest time seen (so nothing ramps
up), a reading or report with a non-finite time is ignored.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence

from controller.safety.decision import (
    PRIORITY_RANK,
    ActuatorCommand,
    Alarm,
    CommandResult,
    Decision,
    EndReason,
    Priority,
    SessionState,
)
from controller.safety.events import (
    BLOCKING_FINDINGS,
    Acknowledge,
    CaregiverAction,
    CaregiverRequest,
    ChecklistResult,
    DeviceKind,
    Event,
    LinkChanged,
    MassagerReport,
    SkinReading,
    StartSession,
    UserRequest,
    UserStop,
)
from controller.settings.effective import SafetyLimits

__all__ = ["Supervisor"]

_isfinite = math.isfinite

# Protocol fault byte values (docs/protocol.md, Status.fault).
_FAULT_NONE = 0
_FAULT_CUTOUT = 1
_FAULT_OVER_PRESSURE = 2
_FAULT_PAD_SENSOR = 3
_FAULT_REBOOTED = 4

# Alarms that describe one session's events: cleared when the next session starts. All others
# describe a condition and clear when the condition does (or, for the latch, on acknowledge).
_SESSION_ALARMS = frozenset(
    {
        "CONTRAINDICATION",
        "SESSION_TIME_UP",
        "HEAT_TIME_USED",
        "CAREGIVER_STOP",
        "SENSOR_STUCK",
        "PAD_SENSOR_FAULT",
        "MASSAGER_FAULT",
    }
)

# Why the heater is off although the session would like it on (Decision.heater_block).
BLOCK_NOT_RUNNING = "not_running"
BLOCK_NOT_REQUESTED = "not_requested"
BLOCK_PROFILE = "profile_forbids_heat"
BLOCK_DISABLED = "disabled_for_session"
BLOCK_MASSAGER = "massager_unavailable"
BLOCK_SENSOR_LINK = "sensor_link_down"
BLOCK_HEAT_TIME = "heat_time_used"
BLOCK_NO_READING = "no_valid_reading"
BLOCK_STALE = "reading_stale"
BLOCK_CUTOFF = "cutoff"
BLOCK_PREDICTED = "predicted_cutoff"
BLOCK_REENABLE = "cooling_after_cutoff"
BLOCK_THERMOSTAT = "at_target"


class Supervisor:
    """One massager-and-sensor pair's safety supervisor. Not thread-safe; one owner calls it."""

    def __init__(self, limits: SafetyLimits) -> None:
        self._lim = limits
        self._hard_cap = min(limits.pressure_cap_mmhg, limits.pressure_hard_max_mmhg)
        self._now: float | None = None
        self._state = SessionState.IDLE
        self._ended_by: EndReason | None = None
        self._session_id = 0
        self._start = 0.0
        self._ended_at = 0.0
        self._alarms: dict[str, Alarm] = {}
        self._active: tuple[Alarm, ...] = ()
        self._alarms_dirty = False
        self._new: list[Alarm] = []
        # Links. Both start down: the caller reports every connection.
        self._massager_up = False
        self._massager_report_seen = False
        self._last_report_t = -math.inf
        self._sensor_up = False
        self._sensor_up_since = -math.inf
        # Skin readings.
        self._ref_t: float | None = None  # last valid reading: the spike reference
        self._ref_c = 0.0
        self._fresh_t: float | None = None  # last valid reading since the sensor (re)connected
        self._fresh_c = 0.0
        self._last_reading_valid = False
        self._invalid_run = 0
        self._invalid_total = 0
        self._history: deque[tuple[float, float]] = deque()
        self._slope = 0.0
        self._moved_t: float | None = None  # when the reading last moved (stuck sensor)
        self._moved_c = 0.0
        # Pressure.
        self._cmd_pressure = 0.0
        self._requested_pressure = 0.0
        self._ceiling = self._hard_cap
        self._cap_before_lowering = self._hard_cap
        self._cap_lowered_at = -math.inf
        self._measured: float | None = None
        self._over_since: float | None = None
        self._over_raised = False
        self._over_events = 0
        self._pressure_hold = False
        self._command = ActuatorCommand(0.0, False, limits.heater_cutoff_c, limits.lease_s, True)
        # Heater.
        self._cmd_heater = False
        self._heater_on_since = 0.0
        self._heater_off_since = -math.inf
        self._requested_heat = False
        self._heat_disabled = False
        self._heat_used = 0.0
        self._heat_time_alarmed = False
        self._cutoff_tripped = False
        self._cutoff_off_time = -math.inf
        self._thermostat_heating = True
        self._energised_since: float | None = None
        self._heater_block: str | None = BLOCK_NOT_RUNNING
        # Massager status.
        self._firmware_cutout = False
        self._fault_code = _FAULT_NONE
        self._battery: float | None = None

    @property
    def limits(self) -> SafetyLimits:
        return self._lim

    @property
    def state(self) -> SessionState:
        return self._state

    # -- the one entry point -----------------------------------------------------------------------

    def step(self, now: float, events: Sequence[Event] = ()) -> Decision:
        """Apply ``events`` (in order) at monotonic time ``now`` and decide the actuator command."""
        force_safe = False
        last = self._now
        if not _isfinite(now):
            # A broken clock cannot time anything: all off for this step, timers frozen.
            force_safe = True
            now = last if last is not None else 0.0
        elif last is not None and now < last:
            now = last  # time never runs backwards here: nothing ramps, nothing expires early
        dt = 0.0 if last is None else now - last
        self._now = now
        if last is None:
            self._heater_off_since = now
        if self._cmd_heater:
            self._heat_used += dt
        self._new = []
        results: list[CommandResult] = []
        refusals: list[str] = []
        for event in events:
            self._handle(event, now, results, refusals)
        self._evaluate(now)
        command = self._decide(now, dt, force_safe)
        return self._decision(now, command, tuple(results), tuple(refusals))

    # -- events ------------------------------------------------------------------------------------

    def _handle(
        self, event: Event, now: float, results: list[CommandResult], refusals: list[str]
    ) -> None:
        if isinstance(event, SkinReading):
            self._on_reading(event, now)
        elif isinstance(event, MassagerReport):
            self._on_report(event, now)
        elif isinstance(event, UserRequest):
            if self._state is SessionState.RUNNING:
                p = event.pressure_mmhg
                valid = isinstance(p, (int, float)) and _isfinite(p) and p > 0.0
                self._requested_pressure = float(p) if valid else 0.0
                self._requested_heat = event.heat_on is True
        elif isinstance(event, LinkChanged):
            self._on_link(event, now)
        elif isinstance(event, CaregiverRequest):
            results.append(self._on_caregiver(event, now))
        elif isinstance(event, UserStop):
            self._end(EndReason.USER, now)
        elif isinstance(event, StartSession):
            self._on_start(event.checklist, now, refusals)
        elif isinstance(event, Acknowledge):
            self._on_acknowledge(now, refusals)
        # Anything else is not an event: ignored, as garbage from the caller must not crash.

    def _on_reading(self, reading: SkinReading, now: float) -> None:
        t = reading.time
        if not self._sensor_up or not _isfinite(t) or t < self._sensor_up_since:
            return  # queued from before the (re)connection: it does not count
        t = min(t, now)
        c = reading.celsius
        lim = self._lim
        valid = (
            isinstance(c, (int, float)) and _isfinite(c) and lim.valid_min_c <= c <= lim.valid_max_c
        )
        if valid and self._ref_t is not None:
            span = t - self._ref_t
            if span < 0.0 or abs(c - self._ref_c) > lim.max_skin_rate_c_per_s * span:
                valid = False  # out of order, or a jump no skin can make: a spike
        if not valid:
            self._last_reading_valid = False
            self._invalid_run += 1
            self._invalid_total += 1
            if self._invalid_run >= lim.sensor_invalid_alarm_count:
                self._raise(
                    Priority.MEDIUM,
                    "SENSOR_INVALID",
                    f"skin sensor sent {self._invalid_run} invalid readings in a row "
                    f"(last: {c!r}); heater off",
                    now,
                )
            return
        c = float(c)
        self._last_reading_valid = True
        self._invalid_run = 0
        self._clear("SENSOR_INVALID")
        self._ref_t = self._fresh_t = t
        self._ref_c = self._fresh_c = c
        if self._moved_t is None or abs(c - self._moved_c) >= lim.sensor_stuck_delta_c:
            self._moved_t, self._moved_c = t, c
        history = self._history
        history.append((t, c))
        horizon = t - lim.prediction_window_s
        while history[0][0] < horizon:
            history.popleft()
        self._slope = _slope(history, lim.prediction_min_readings)
        if c >= lim.latch_c:
            self._latch(c, now)

    def _on_report(self, report: MassagerReport, now: float) -> None:
        if not self._massager_up or not _isfinite(report.time):
            return
        lim = self._lim
        t = min(report.time, now)
        self._massager_report_seen = True
        self._last_report_t = max(t, self._last_report_t)
        p = report.pressure_mmhg
        if isinstance(p, (int, float)) and _isfinite(p):
            self._measured = float(p)
            if p > self._over_cap_reference(now) + lim.pressure_over_cap_tolerance_mmhg:
                if self._over_since is None:
                    self._over_since = t
            else:
                self._over_since = None
                self._over_raised = False
                self._pressure_hold = False
                self._clear("PRESSURE_OVER_CAP")
        if report.heater_energised is True and not self._cmd_heater:
            if self._energised_since is None:
                self._energised_since = max(t, self._heater_off_since)
        else:
            self._energised_since = None
            self._clear("HEATER_NOT_RESPONDING")
        cutout = report.cutout_latched is True or report.fault == _FAULT_CUTOUT
        if cutout and not self._firmware_cutout:
            self._raise(
                Priority.HIGH,
                "FIRMWARE_CUTOUT",
                "the massager's own thermal cut-out tripped: session stopped",
                now,
            )
            self._end(EndReason.FAULT, now)
        elif not cutout:
            self._clear("FIRMWARE_CUTOUT")
        self._firmware_cutout = cutout
        fault = report.fault if isinstance(report.fault, int) else -1
        if fault != self._fault_code:
            self._on_fault_change(fault, now)
        battery = report.battery_percent
        if isinstance(battery, (int, float)) and _isfinite(battery):
            self._battery = float(battery)
            if battery < lim.battery_low_percent:
                self._raise(
                    Priority.LOW, "BATTERY_LOW", f"massager battery low ({battery:.0f} %)", now
                )
            elif battery >= lim.battery_ok_percent:
                self._clear("BATTERY_LOW")

    def _on_fault_change(self, fault: int, now: float) -> None:
        for code in ("FIRMWARE_OVER_PRESSURE", "MASSAGER_REBOOTED"):
            self._clear(code)
        self._fault_code = fault
        if fault in (_FAULT_NONE, _FAULT_CUTOUT):
            return  # the cut-out has its own flag, handled with it
        if fault == _FAULT_OVER_PRESSURE:
            self._raise(
                Priority.HIGH,
                "FIRMWARE_OVER_PRESSURE",
                "the massager vented an over-pressure: pressure off",
                now,
            )
            self._over_pressure_event(now)
        elif fault == _FAULT_PAD_SENSOR:
            self._raise(
                Priority.MEDIUM,
                "PAD_SENSOR_FAULT",
                "the massager's pad sensor failed: heat off for this session",
                now,
            )
            self._heat_disabled = True
        elif fault == _FAULT_REBOOTED:
            self._raise(
                Priority.MEDIUM,
                "MASSAGER_REBOOTED",
                "the massager restarted: pressure ramps up again from zero",
                now,
            )
            self._cmd_pressure = 0.0
        else:
            self._raise(
                Priority.HIGH,
                "MASSAGER_FAULT",
                f"the massager reports unknown fault {fault}: session stopped",
                now,
            )
            self._end(EndReason.FAULT, now)

    def _on_link(self, event: LinkChanged, now: float) -> None:
        if event.device == DeviceKind.MASSAGER:
            if event.connected is True:
                self._massager_up = True
                self._massager_report_seen = False
                self._fault_code = _FAULT_NONE
                self._clear("MASSAGER_LINK_LOST")
            else:
                if self._massager_up:
                    self._raise(
                        Priority.MEDIUM,
                        "MASSAGER_LINK_LOST",
                        "lost the link to the massager: pressure and heat off",
                        now,
                    )
                self._massager_up = False
                self._massager_report_seen = False
                self._measured = None
                self._over_since = None
                self._energised_since = None
                self._cmd_pressure = 0.0  # the firmware's lease drops it: ramp again from zero
        elif event.device == DeviceKind.SENSOR:
            if event.connected is True:
                self._sensor_up = True
                # The moment the link came up, when the caller knows it: a reading that arrived
                # after it but before this step counts. Never later than now, never garbage.
                t = event.time
                since = t if t is not None and _isfinite(t) and t <= now else now
                self._sensor_up_since = max(since, self._sensor_up_since)
                self._clear("SENSOR_LINK_LOST")
            else:
                if self._sensor_up:
                    self._raise(
                        Priority.MEDIUM,
                        "SENSOR_LINK_LOST",
                        "lost the link to the skin sensor: heater off",
                        now,
                    )
                self._sensor_up = False
            # Either way only readings received after this moment may switch the heater on.
            self._fresh_t = None
            self._last_reading_valid = False

    def _on_caregiver(self, request: CaregiverRequest, now: float) -> CommandResult:
        rid = (
            request.request_id if isinstance(request.request_id, str) else repr(request.request_id)
        )
        try:
            action = CaregiverAction(request.action)
        except (ValueError, TypeError):
            return CommandResult(rid, str(request.action), False, "unknown action")
        running = self._state is SessionState.RUNNING
        if action is CaregiverAction.STOP:
            if not running:
                return CommandResult(rid, action, True, "no session running")
            self._raise(Priority.LOW, "CAREGIVER_STOP", "a caregiver stopped the session", now)
            self._end(EndReason.CAREGIVER, now)
            return CommandResult(rid, action, True, "session stopped")
        if action is CaregiverAction.HEATER_OFF:
            if not running:
                return CommandResult(rid, action, True, "no session running; the heater is off")
            self._heat_disabled = True
            return CommandResult(rid, action, True, "heater off for the rest of the session")
        amount = request.amount_mmhg
        if amount is None:
            amount = self._lim.caregiver_lower_default_mmhg
        if isinstance(amount, bool) or not isinstance(amount, (int, float)):
            return CommandResult(rid, action, False, "amount must be a number of mmHg")
        if not _isfinite(amount) or amount <= 0.0:
            return CommandResult(rid, action, False, "amount must be a positive number of mmHg")
        if not running:
            return CommandResult(rid, action, False, "no session running")
        before = self._cap_in_force()
        self._ceiling = max(0.0, self._ceiling - amount)
        self._cap_before_lowering = max(before, self._over_cap_reference(now))
        self._cap_lowered_at = now
        return CommandResult(
            rid, action, True, f"pressure ceiling now {self._cap_in_force():.1f} mmHg"
        )

    def _on_start(self, checklist: ChecklistResult, now: float, refusals: list[str]) -> None:
        if self._state is SessionState.RUNNING:
            refusals.append("a session is already running")
            return
        if self._state is SessionState.LATCHED:
            refusals.append("over-temperature latch: acknowledge it before a new session")
            return
        for code in _SESSION_ALARMS:
            self._clear(code)
        self._session_id += 1
        self._start = self._ended_at = now
        self._requested_pressure = 0.0
        self._requested_heat = False
        self._ceiling = self._hard_cap
        self._cap_before_lowering = self._hard_cap
        self._cap_lowered_at = -math.inf
        self._over_events = 0
        self._heat_used = 0.0
        self._heat_time_alarmed = False
        self._heat_disabled = False
        self._thermostat_heating = True
        problems = _checklist_problems(checklist)
        if problems:
            self._state = SessionState.ENDED
            self._ended_by = EndReason.CHECKLIST
            self._raise(
                Priority.MEDIUM,
                "CONTRAINDICATION",
                "session refused: " + "; ".join(problems),
                now,
            )
            return
        self._state = SessionState.RUNNING
        self._ended_by = None

    def _on_acknowledge(self, now: float, refusals: list[str]) -> None:
        if self._state is not SessionState.LATCHED:
            return
        lim = self._lim
        if not self._skin_fresh(now):
            refusals.append("latch kept: no fresh valid skin reading shows the foot has cooled")
            return
        if self._fresh_c >= lim.heater_reenable_below_c:
            refusals.append(
                f"latch kept: skin {self._fresh_c:.1f} °C, must be below "
                f"{lim.heater_reenable_below_c:.1f} °C"
            )
            return
        self._state = SessionState.ENDED
        self._clear("OVER_TEMPERATURE_LATCH")

    # -- time-driven rules -------------------------------------------------------------------------

    def _evaluate(self, now: float) -> None:
        lim = self._lim
        running = self._state is SessionState.RUNNING
        if running and now - self._start >= lim.max_session_s:
            self._raise(Priority.LOW, "SESSION_TIME_UP", "session time is up", now)
            self._end(EndReason.TIMER, now)
            running = False
        if running and self._sensor_up and not self._skin_fresh(now):
            self._raise(
                Priority.MEDIUM,
                "SENSOR_STALE",
                f"no valid skin reading for {lim.stale_after_s:.1f} s: heater off",
                now,
            )
        elif "SENSOR_STALE" in self._alarms and (not running or self._skin_fresh(now)):
            self._clear("SENSOR_STALE")
        if running and self._massager_silent(now):
            self._raise(
                Priority.MEDIUM,
                "MASSAGER_SILENT",
                f"no status from the massager for {lim.massager_silent_after_s:.1f} s: "
                "pressure and heat off",
                now,
            )
        elif "MASSAGER_SILENT" in self._alarms and (not running or not self._massager_silent(now)):
            self._clear("MASSAGER_SILENT")
        above_hard_limit = (
            self._measured is not None and self._measured > lim.pressure_hard_max_mmhg
        )
        if (
            self._over_since is not None
            and not self._over_raised
            # Over the cap for a while, or over the never-exceed limit at all: a bladder that
            # overshoots in short spells at every wave peak is caught at its first peak.
            and (now - self._over_since >= lim.pressure_over_cap_s or above_hard_limit)
        ):
            measured = self._measured if self._measured is not None else math.inf
            hard = measured > lim.pressure_hard_max_mmhg
            self._over_raised = True
            self._raise(
                Priority.HIGH if hard else Priority.MEDIUM,
                "PRESSURE_OVER_CAP",
                f"pressure {measured:.0f} mmHg above the {self._cap_in_force():.0f} mmHg cap: "
                "pressure off",
                now,
            )
            self._over_pressure_event(now)
        if (
            self._energised_since is not None
            and now - self._energised_since > lim.heater_response_grace_s
            and "HEATER_NOT_RESPONDING" not in self._alarms
        ):
            self._raise(
                Priority.HIGH,
                "HEATER_NOT_RESPONDING",
                "the heater stays on although commanded off: session stopped",
                now,
            )
            self._end(EndReason.FAULT, now)
        if (
            running
            and self._cmd_heater
            and self._moved_t is not None
            and now - self._heater_on_since >= lim.sensor_stuck_s
            and now - self._moved_t >= lim.sensor_stuck_s
        ):
            self._raise(
                Priority.MEDIUM,
                "SENSOR_STUCK",
                f"skin reading unchanged for {lim.sensor_stuck_s:.0f} s of heating: "
                "heat off for this session",
                now,
            )
            self._heat_disabled = True
        if (
            running
            and not self._heat_time_alarmed
            and self._heat_used > 0.0
            and self._heat_used >= lim.max_heat_s
        ):
            self._heat_time_alarmed = True
            self._raise(Priority.LOW, "HEAT_TIME_USED", "heat time used up for this session", now)

    def _over_pressure_event(self, now: float) -> None:
        self._pressure_hold = True
        self._over_events += 1
        if self._over_events >= self._lim.pressure_over_cap_max_events:
            self._end(EndReason.FAULT, now)

    # -- the command -------------------------------------------------------------------------------

    def _decide(self, now: float, dt: float, force_safe: bool) -> ActuatorCommand:
        lim = self._lim
        running = self._state is SessionState.RUNNING and not force_safe
        massager_ok = (
            self._massager_up
            and self._massager_report_seen
            and not self._firmware_cutout
            and not self._massager_silent(now)
        )
        if running and massager_ok and not self._pressure_hold:
            target = min(self._requested_pressure, self._cap_in_force())
            pressure = max(0.0, min(target, self._cmd_pressure + lim.pressure_ramp_mmhg_per_s * dt))
        else:
            pressure = 0.0
        heater = running and self._heater_permitted(now, massager_ok)
        if heater != self._cmd_heater:
            if heater:
                self._heater_on_since = now
            else:
                self._heater_off_since = now
        self._cmd_heater = heater
        self._cmd_pressure = pressure
        last = self._command
        if last.pressure_mmhg == pressure and last.heater_on is heater and last.stop is not running:
            return last  # immutable: the same command object is the same command
        self._command = ActuatorCommand(
            pressure, heater, lim.heater_cutoff_c, lim.lease_s, not running
        )
        return self._command

    def _heater_permitted(self, now: float, massager_ok: bool) -> bool:
        """Every condition of the heater rule; sets ``_heater_block`` to the first that fails."""
        lim = self._lim
        block: str | None = None
        if not self._requested_heat:
            block = BLOCK_NOT_REQUESTED
        elif not lim.heater_allowed:
            block = BLOCK_PROFILE
        elif self._heat_disabled:
            block = BLOCK_DISABLED
        elif not massager_ok:
            block = BLOCK_MASSAGER
        elif not self._sensor_up:
            block = BLOCK_SENSOR_LINK
        elif self._heat_used >= lim.max_heat_s:
            block = BLOCK_HEAT_TIME
        elif self._fresh_t is None or not self._last_reading_valid:
            block = BLOCK_NO_READING
        elif now - self._fresh_t >= lim.stale_after_s:
            block = BLOCK_STALE
        if block is None:
            c = self._fresh_c
            cutoff = lim.heater_cutoff_c
            if c >= cutoff or c + max(0.0, self._slope) * lim.prediction_horizon_s >= cutoff:
                block = BLOCK_CUTOFF if c >= cutoff else BLOCK_PREDICTED
                # Off since now if it was on, else since it last went off: min_off counts from
                # the real switch-off.
                self._cutoff_off_time = now if self._cmd_heater else self._heater_off_since
                self._cutoff_tripped = True
            elif self._cutoff_tripped and (
                c >= lim.heater_reenable_below_c
                or now - self._cutoff_off_time < lim.heater_min_off_s
            ):
                block = BLOCK_REENABLE
            else:
                self._cutoff_tripped = False
                if self._thermostat_heating:
                    self._thermostat_heating = c < lim.heater_target_c
                else:
                    self._thermostat_heating = c < lim.heater_target_c - lim.heater_target_band_c
                if not self._thermostat_heating:
                    block = BLOCK_THERMOSTAT
        self._heater_block = block
        return block is None

    # -- helpers -----------------------------------------------------------------------------------

    def _cap_in_force(self) -> float:
        return min(self._hard_cap, self._ceiling)

    def _over_cap_reference(self, now: float) -> float:
        """The ceiling measured pressure is judged against: a lowered one only once vented."""
        cap = self._cap_in_force()
        if now - self._cap_lowered_at < self._lim.pressure_settle_s:
            return max(cap, self._cap_before_lowering)
        return cap

    def _massager_silent(self, now: float) -> bool:
        """Connected and reported before, but no status lately."""
        return (
            self._massager_up
            and self._massager_report_seen
            and now - self._last_report_t >= self._lim.massager_silent_after_s
        )

    def _skin_fresh(self, now: float) -> bool:
        return (
            self._fresh_t is not None
            and self._last_reading_valid
            and now - self._fresh_t < self._lim.stale_after_s
        )

    def _end(self, reason: EndReason, now: float) -> None:
        if self._state is SessionState.RUNNING:
            self._state = SessionState.ENDED
            self._ended_by = reason
            self._ended_at = now

    def _latch(self, celsius: float, now: float) -> None:
        if self._state is SessionState.LATCHED:
            return
        if self._state is SessionState.RUNNING:
            self._ended_at = now
        self._state = SessionState.LATCHED
        self._ended_by = EndReason.FAULT
        self._raise(
            Priority.HIGH,
            "OVER_TEMPERATURE_LATCH",
            f"skin at {celsius:.1f} °C (latch {self._lim.latch_c:.1f} °C): session stopped; "
            "acknowledge once the foot has cooled",
            now,
        )

    def _raise(self, priority: Priority, code: str, message: str, now: float) -> None:
        """Raise an alarm once per occurrence; a higher priority for an active code re-raises."""
        current = self._alarms.get(code)
        if current is not None and PRIORITY_RANK[current.priority] >= PRIORITY_RANK[priority]:
            return
        alarm = Alarm(priority, code, message, now)
        self._alarms[code] = alarm
        self._alarms_dirty = True
        self._new.append(alarm)

    def _clear(self, code: str) -> None:
        if code in self._alarms:
            del self._alarms[code]
            self._alarms_dirty = True

    def _decision(
        self,
        now: float,
        command: ActuatorCommand,
        results: tuple[CommandResult, ...],
        refusals: tuple[str, ...],
    ) -> Decision:
        lim = self._lim
        running = self._state is SessionState.RUNNING
        if running:
            elapsed = now - self._start
        elif self._session_id:
            elapsed = self._ended_at - self._start
        else:
            elapsed = 0.0
        fresh_t = self._fresh_t
        fresh = (
            fresh_t is not None and self._last_reading_valid and now - fresh_t < lim.stale_after_s
        )
        skin = self._fresh_c if fresh_t is not None else None
        alarms = self._alarms
        if self._alarms_dirty:
            self._active = tuple(alarms.values())
            self._alarms_dirty = False
        return Decision(
            command,
            self._state,
            self._ended_by,
            tuple(self._new) if self._new else (),
            self._active,
            results,
            refusals,
            self._session_id,
            elapsed,
            max(0.0, lim.max_session_s - elapsed) if running else 0.0,
            self._heat_used,
            max(0.0, lim.max_heat_s - self._heat_used),
            self._cap_in_force(),
            self._measured,
            skin,
            None if fresh_t is None else now - fresh_t,
            self._last_reading_valid,
            fresh,
            None if skin is None else skin + max(0.0, self._slope) * lim.prediction_horizon_s,
            None if command.heater_on else self._heater_block_now(running),
            self._battery,
            self._massager_up,
            self._sensor_up,
        )

    def _heater_block_now(self, running: bool) -> str:
        if not running:
            return BLOCK_NOT_RUNNING
        return self._heater_block if self._heater_block is not None else BLOCK_NOT_RUNNING


def _checklist_problems(checklist: object) -> list[str]:
    """Why the checklist refuses the session; empty when it allows it. Garbage refuses."""
    if not isinstance(checklist, ChecklistResult):
        return ["checklist missing"]
    try:
        contraindications = sorted(str(c) for c in checklist.contraindications)
        findings = sorted(str(f) for f in checklist.inspection_findings if f in BLOCKING_FINDINGS)
    except TypeError:
        return ["checklist unreadable"]
    problems = []
    if contraindications:
        problems.append("contraindication: " + ", ".join(contraindications))
    if findings:
        problems.append("foot inspection found: " + ", ".join(findings))
    if checklist.inspection_required is not False and checklist.inspection_done is not True:
        problems.append("the daily foot inspection was not done")
    return problems


def _slope(history: deque[tuple[float, float]], min_readings: int) -> float:
    """Least-squares slope (degC/s) of the readings; 0 with too few or no time spread."""
    n = len(history)
    if n < min_readings:
        return 0.0
    mean_t = sum(t for t, _ in history) / n
    mean_c = sum(c for _, c in history) / n
    sxx = 0.0
    sxy = 0.0
    for t, c in history:
        dt = t - mean_t
        sxx += dt * dt
        sxy += dt * (c - mean_c)
    if sxx <= 0.0:
        return 0.0
    return sxy / sxx
