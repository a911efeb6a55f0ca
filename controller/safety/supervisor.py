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

from controller.safety.alarms import AlarmBook, AlarmCode
from controller.safety.decision import (
    ActuatorCommand,
    CommandResult,
    Decision,
    EndReason,
    Priority,
    SessionState,
)
from controller.safety.events import (
    BLOCKING_FINDINGS,
    AlarmReset,
    CaregiverAction,
    CaregiverRequest,
    ChecklistResult,
    DeviceKind,
    Event,
    LatchInForce,
    LinkChanged,
    MassagerReport,
    SkinReading,
    StartSession,
    UserRequest,
    UserStop,
)
from controller.safety.follow import HeatResponse
from controller.safety.windows import BadTime
from controller.settings.effective import SafetyLimits

__all__ = ["Supervisor"]

_isfinite = math.isfinite

# Protocol fault byte values (docs/protocol.md, Status.fault).
_FAULT_NONE = 0
_FAULT_CUTOUT = 1
_FAULT_OVER_PRESSURE = 2
_FAULT_PAD_SENSOR = 3
_FAULT_REBOOTED = 4

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

# The watch after a session (Decision.after_session).
AFTER_WATCHING = "watching"  # the massager has not yet shown heater off, vented, lease released
AFTER_SAFE = "safe"  # it has
AFTER_FAULT = "fault"  # it has not within the bound: POST_SESSION_UNSAFE raised


class Supervisor:
    """One massager-and-sensor pair's safety supervisor. Not thread-safe; one owner calls it."""

    def __init__(self, limits: SafetyLimits) -> None:
        self._lim = limits
        self._hard_cap = min(limits.pressure_cap_mmhg, limits.pressure_hard_max_mmhg)
        self._now: float | None = None
        # Clock steps: the caller's clock plus this offset is the supervisor's time, which never
        # runs backwards; a step back voids the readings taken before it.
        self._offset = 0.0
        self._last_raw: float | None = None
        self._stall_from: float | None = None  # set in the first step after a stall
        self._resumed_at = -math.inf  # the end of the latest stall or clock step
        self._state = SessionState.IDLE
        self._ended_by: EndReason | None = None
        self._session_id = 0
        self._start = 0.0
        self._ended_at = 0.0
        self._alarms = AlarmBook()
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
        self._follow = HeatResponse(limits)
        # Pressure.
        self._cmd_pressure = 0.0
        self._requested_pressure = 0.0
        self._ceiling = self._hard_cap
        self._cap_before_lowering = self._hard_cap
        self._cap_lowered_at = -math.inf
        self._measured: float | None = None
        window = limits.actuator_fault_window_s
        self._over_bad = BadTime(window)
        self._track_bad = BadTime(window)  # measured above the commanded envelope
        self._envelope: float | None = None  # the highest pressure the commands allow now
        self._cmd_log: deque[tuple[float, float]] = deque()  # (time, commanded pressure)
        self._track_detail = ""
        self._over_raised = False
        self._over_events = 0
        self._pressure_hold = False
        # The pad target: the skin cut-off, never above what keeps the pad itself <= 41 degC.
        self._pad_target = min(limits.heater_cutoff_c, limits.pad_target_max_c)
        self._overshoot = 0.0  # the most the bladder went above its commands this session
        self._command = ActuatorCommand(0.0, False, self._pad_target, limits.lease_s, True)
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
        self._energised_bad = BadTime(window)  # energised while commanded off
        self._heater_block: str | None = BLOCK_NOT_RUNNING
        # Massager status.
        self._firmware_cutout = False
        self._fault_code = _FAULT_NONE
        self._battery: float | None = None
        self._pad_c: float | None = None
        self._reported_energised = False
        self._reported_pressure: float | None = None
        self._reported_lease: bool | None = None
        self._report_after_end = False  # a report arrived since the session ended
        # After the session.
        self._after: str | None = None
        self._first_end: EndReason | None = None  # how the session ended, before any aftercare
        self._settled_since: float | None = None  # since when the massager has looked safe

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
        self._stall_from = None
        if not _isfinite(now):
            # A broken clock cannot time anything: all off for this step, timers frozen.
            force_safe = True
            now = last if last is not None else 0.0
        else:
            now += self._offset
            if last is not None and now < last:
                # The clock stepped back: from now on it is shifted so time never runs backwards
                # here (nothing ramps, nothing expires early), and what was measured before the
                # step cannot be placed in time any more: no reading counts as fresh.
                self._offset += last - now
                now = last
                self._void_readings()
                self._resumed_at = now
            elif last is not None and now - last > self._lim.step_stall_s:
                # A stall or a jump forward: whatever is delivered now may have waited since the
                # last step, and is aged as if it had arrived then.
                self._stall_from = last
                self._resumed_at = now
        dt = 0.0 if last is None else now - last
        self._now = now
        if last is None:
            self._heater_off_since = now
        if self._cmd_heater:
            # The lease switches the heater off on its own after lease_s, however long the step.
            self._heat_used += min(dt, self._lim.lease_s)
        self._alarms.new = []
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
        elif isinstance(event, AlarmReset):
            self._on_acknowledge(now, refusals)
        elif isinstance(event, LatchInForce):
            celsius = _number(event.celsius)
            self._latch(self._lim.latch_c if celsius is None else celsius, now)
        # Anything else is not an event: ignored, as garbage from the caller must not crash.

    def _time_of(self, t: object, now: float) -> float | None:
        """An event's time on the supervisor's clock, never after ``now``; None if garbage."""
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not _isfinite(t):
            return None
        return min(float(t) + self._offset, now)

    def _void_readings(self) -> None:
        """Nothing received so far shows the skin now: heat waits for a new valid reading."""
        self._fresh_t = None
        self._ref_t = None
        self._last_reading_valid = False
        self._history.clear()
        self._slope = 0.0

    def _on_reading(self, reading: SkinReading, now: float) -> None:
        t = self._time_of(reading.time, now)
        if not self._sensor_up or t is None or t < self._sensor_up_since:
            return  # queued from before the (re)connection: it does not count
        if self._stall_from is not None and t > self._stall_from:
            # Delivered after a stall: it may have waited in a queue since the stall began.
            t = max(self._stall_from, self._sensor_up_since)
        c = reading.celsius
        lim = self._lim
        valid = (
            isinstance(c, (int, float))
            and not isinstance(c, bool)
            and _isfinite(c)
            and lim.valid_min_c <= c <= lim.valid_max_c
        )
        if valid and self._ref_t is not None:
            span = t - self._ref_t
            # The rate is judged over at least the sensor's nominal period: a BLE stack that
            # delivers two honest readings 10 ms apart must not make the second a spike.
            judged = max(span, lim.skin_nominal_period_s)
            if span < 0.0 or abs(c - self._ref_c) > lim.max_skin_rate_c_per_s * judged:
                valid = False  # out of order, or a jump no skin can make: a spike
        if not valid:
            self._last_reading_valid = False
            self._invalid_run += 1
            self._invalid_total += 1
            if self._invalid_run >= lim.sensor_invalid_alarm_count:
                self._raise(
                    AlarmCode.SENSOR_INVALID,
                    f"skin sensor sent {self._invalid_run} invalid readings in a row "
                    f"(last: {c!r}): heater off; check that the sensor sits on the sole",
                    now,
                )
            return
        c = float(c)
        self._last_reading_valid = True
        self._invalid_run = 0
        self._clear(AlarmCode.SENSOR_INVALID)
        self._ref_t = self._fresh_t = t
        self._ref_c = self._fresh_c = c
        if self._state is SessionState.RUNNING:
            self._follow.reading(t, c, lim.heater_target_c)
        history = self._history
        history.append((t, c))
        horizon = t - lim.prediction_window_s
        while history[0][0] < horizon:
            history.popleft()
        self._slope = _slope(history, lim.prediction_min_readings)
        if c >= lim.latch_c:
            self._latch(c, now)

    def _on_report(self, report: MassagerReport, now: float) -> None:
        t = self._time_of(report.time, now)
        if not self._massager_up or t is None:
            return
        self._massager_report_seen = True
        self._last_report_t = max(t, self._last_report_t)
        if self._state is not SessionState.RUNNING:
            self._report_after_end = True
        invalid = report.invalid_fields if isinstance(report.invalid_fields, tuple) else ()
        self._report_pressure(t, report.pressure_mmhg, invalid, now)
        self._report_status(t, report, invalid, now)

    def _report_pressure(
        self, t: float, pressure: object, invalid: tuple[str, ...], now: float
    ) -> None:
        """One measured pressure: sensor fault, over the cap, above the commanded envelope."""
        lim = self._lim
        p = _number(pressure)
        if "pressure" in invalid or (p is not None and p >= lim.pressure_sensor_full_scale_mmhg):
            # A pegged or out-of-range pressure is a sensor that cannot see the bladder.
            self._reported_pressure = None
            self._raise(
                AlarmCode.PRESSURE_SENSOR_FAULT,
                "the massager's pressure sensor reads out of range: pressure off, session "
                "stopped; take your foot out of the massager",
                now,
            )
            self._pressure_hold = True
            self._end(EndReason.FAULT, now)
        elif p is not None:
            self._measured = self._reported_pressure = p
            over = p > self._over_cap_reference(now) + lim.pressure_over_cap_tolerance_mmhg
            self._over_bad.update(t, over)
            if not over:
                self._over_raised = False
                self._pressure_hold = False
                self._clear(AlarmCode.PRESSURE_OVER_CAP)
            if self._envelope is None:
                self._envelope = p  # the first report after (re)connecting: vent from here
            elif self._state is SessionState.RUNNING:
                self._overshoot = max(self._overshoot, p - self._envelope)
            allowed = self._envelope + lim.pressure_over_cap_tolerance_mmhg
            above = p > allowed
            self._track_bad.update(t, above)
            if above:
                self._track_detail = (
                    f"bladder pressure {p:.0f} mmHg stays above the {self._envelope:.0f} mmHg "
                    "the massager was told"
                )

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

    def _on_link(self, event: LinkChanged, now: float) -> None:
        if event.device == DeviceKind.MASSAGER:
            if event.connected is True:
                self._massager_up = True
                self._massager_report_seen = False
                self._fault_code = _FAULT_NONE
                self._envelope = None
                self._clear(AlarmCode.MASSAGER_LINK_LOST)
            else:
                if self._massager_up:
                    self._raise(
                        AlarmCode.MASSAGER_LINK_LOST,
                        "lost the link to the massager: pressure and heat off",
                        now,
                    )
                self._massager_up = False
                self._massager_report_seen = False
                self._measured = None
                self._reported_pressure = None
                self._over_bad.reset()
                self._energised_bad.reset()
                self._track_bad.reset()
                self._envelope = None  # judged again from the first report after reconnecting
                self._cmd_pressure = 0.0  # the firmware's lease drops it: ramp again from zero
        elif event.device == DeviceKind.SENSOR:
            if event.connected is True:
                self._sensor_up = True
                # The moment the link came up, when the caller knows it: a reading that arrived
                # after it but before this step counts. Never later than now, never garbage.
                t = self._time_of(event.time, now)
                since = t if t is not None else now
                self._sensor_up_since = max(since, self._sensor_up_since)
                self._clear(AlarmCode.SENSOR_LINK_LOST)
            else:
                if self._sensor_up:
                    self._raise(
                        AlarmCode.SENSOR_LINK_LOST,
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
            self._raise(AlarmCode.CAREGIVER_STOP, "a caregiver stopped the session", now)
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
            refusals.append(
                "over-temperature latch in force: no session until an alarm reset with the foot "
                "cooled"
            )
            return
        self._alarms.clear_session()
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
        self._follow.reset()
        self._overshoot = 0.0
        self._after = None
        self._report_after_end = False
        problems = _checklist_problems(checklist)
        if problems:
            self._state = SessionState.ENDED
            self._ended_by = EndReason.CHECKLIST
            self._raise(
                AlarmCode.CONTRAINDICATION,
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
        self._clear(AlarmCode.OVER_TEMPERATURE_LATCH)

    # -- time-driven rules -------------------------------------------------------------------------

    def _evaluate(self, now: float) -> None:
        lim = self._lim
        running = self._state is SessionState.RUNNING
        if running and now - self._start >= lim.max_session_s:
            self._raise(AlarmCode.SESSION_TIME_UP, "session time is up", now)
            self._end(EndReason.TIMER, now)
            running = False
        self._evaluate_skin(now, running)
        self._evaluate_massager(now, running)
        self._evaluate_pressure(now)
        self._evaluate_heater(now)
        self._evaluate_after_session(now)

    def _evaluate_skin(self, now: float, running: bool) -> None:
        """Stale readings and the sensor-follows-heater verdict."""
        lim = self._lim
        fresh = self._fresh_t is not None and now - self._fresh_t < lim.stale_after_s
        if (
            running
            and self._sensor_up
            and not fresh
            # Right after a stall or a clock step heat waits for a new reading, but the sensor
            # has not been silent for stale_after_s: no alarm yet.
            and now - self._resumed_at >= lim.stale_after_s
        ):
            self._raise(
                AlarmCode.SENSOR_STALE,
                f"no valid skin reading for {lim.stale_after_s:.1f} s: heater off; check that the "
                "skin sensor is switched on and near the controller",
                now,
            )
        elif AlarmCode.SENSOR_STALE in self._alarms and (not running or fresh):
            self._clear(AlarmCode.SENSOR_STALE)
        if running and not self._heat_disabled:
            why = self._follow.verdict(now)
            if why is not None:
                self._raise(
                    AlarmCode.SENSOR_NOT_FOLLOWING,
                    f"{why}: heat off for this session; put the skin sensor back on the sole "
                    "under the pad before the next session",
                    now,
                )
                self._heat_disabled = True

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

    def _evaluate_pressure(self, now: float) -> None:
        lim = self._lim
        above_hard_limit = (
            self._measured is not None and self._measured > lim.pressure_hard_max_mmhg
        )
        if not self._over_raised and (
            # Over the cap for a while (counted over a window, so dips do not reset it), or over
            # the never-exceed limit at all: a bladder that overshoots in short spells at every
            # wave peak is caught at its first peak.
            self._over_bad.total(now) >= lim.pressure_over_cap_s
            or (self._over_bad.bad and above_hard_limit)
        ):
            measured = self._measured if self._measured is not None else math.inf
            hard = measured > lim.pressure_hard_max_mmhg
            self._over_raised = True
            self._over_bad.reset()
            self._raise(
                AlarmCode.PRESSURE_OVER_CAP,
                f"pressure {measured:.0f} mmHg above the {self._cap_in_force():.0f} mmHg cap: "
                "pressure off",
                now,
                Priority.HIGH if hard else Priority.MEDIUM,
            )
            self._over_pressure_event(now)
        following = self._track_bad.total(now)
        if following >= lim.pressure_not_following_s:
            if AlarmCode.PRESSURE_NOT_FOLLOWING not in self._alarms:
                stopped = "session stopped; " if self._state is SessionState.RUNNING else ""
                self._raise(
                    AlarmCode.PRESSURE_NOT_FOLLOWING,
                    f"{self._track_detail}: the bladder does not follow (stuck vent or pump); "
                    f"{stopped}take your foot out of the massager and unplug it",
                    now,
                )
                self._post_session_fault(now, "the bladder does not vent")
            self._pressure_hold = True
            self._end(EndReason.FAULT, now)
        elif following == 0.0:
            self._clear(AlarmCode.PRESSURE_NOT_FOLLOWING)

    def _evaluate_heater(self, now: float) -> None:
        lim = self._lim
        if (
            self._state is SessionState.RUNNING
            and not self._heat_time_alarmed
            and self._heat_used > 0.0
            and self._heat_used >= lim.max_heat_s
        ):
            self._heat_time_alarmed = True
            self._raise(AlarmCode.HEAT_TIME_USED, "heat time used up for this session", now)

        stuck = self._energised_bad.total(now)
        if stuck >= self._lim.heater_response_grace_s:
            if AlarmCode.HEATER_NOT_RESPONDING not in self._alarms:
                stopped = "session stopped; " if self._state is SessionState.RUNNING else ""
                self._raise(
                    AlarmCode.HEATER_NOT_RESPONDING,
                    f"the heater stays energised although commanded off: {stopped}take your foot "
                    "out of the massager and unplug it",
                    now,
                )
                self._post_session_fault(now, "the heater is still energised")
            self._end(EndReason.FAULT, now)
        elif stuck == 0.0:
            self._clear(AlarmCode.HEATER_NOT_RESPONDING)

    def _post_session_fault(self, now: float, problem: str) -> None:
        """An actuator fault found after the session, even once it had looked safe."""
        if self._after not in (AFTER_WATCHING, AFTER_SAFE) or self._state is SessionState.RUNNING:
            return
        self._after_fault(now, [problem])

    def _after_fault(self, now: float, problems: list[str]) -> None:
        self._after = AFTER_FAULT
        first = self._first_end if self._first_end is not None else self._ended_by
        self._first_end = first
        self._ended_by = EndReason.FAULT
        self._raise(
            AlarmCode.POST_SESSION_UNSAFE,
            f"after the session ended ({first}), "
            + ", ".join(problems)
            + ": take your foot out of the massager and unplug it",
            now,
        )

    def _evaluate_after_session(self, now: float) -> None:
        """After a session: heater off, bladder vented and lease released within the bound."""
        if self._after != AFTER_WATCHING:
            return
        lim = self._lim
        problems = []
        if not self._report_after_end:
            problems.append("no status from the massager since")
        else:
            if self._reported_energised:
                problems.append("the heater is still energised")
            p = self._reported_pressure
            if p is None or p >= lim.post_session_pressure_floor_mmhg:
                shown = "unknown" if p is None else f"{p:.0f} mmHg"
                problems.append(f"the bladder still holds {shown}")
            if self._reported_lease is True:
                problems.append("it still holds an actuator lease")
        if not problems:
            if self._settled_since is None:
                self._settled_since = now
            if now - self._settled_since >= lim.post_session_confirm_s:
                self._after = AFTER_SAFE
            return
        self._settled_since = None
        if now - self._ended_at < lim.post_session_bound_s:
            return
        self._after_fault(now, [f"{lim.post_session_bound_s:.0f} s on", *problems])

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
            # Anticipate the bladder's overshoot so the *measured* pressure stays under the hard
            # limit, as the predictive cut-off anticipates the skin's.
            margin = max(lim.pressure_measured_margin_mmhg, self._overshoot)
            target = min(
                self._requested_pressure,
                self._cap_in_force(),
                lim.pressure_hard_max_mmhg - margin,
            )
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
        self._follow.heater(now, heater)
        self._track_envelope(now, dt, pressure)
        last = self._command
        if last.pressure_mmhg == pressure and last.heater_on is heater and last.stop is not running:
            return last  # immutable: the same command object is the same command
        self._command = ActuatorCommand(
            pressure, heater, self._pad_target, lim.lease_s, not running
        )
        return self._command

    def _track_envelope(self, now: float, dt: float, pressure: float) -> None:
        """The highest pressure the commands allow: the command in force one latency ago or
        since, and from a higher one down at the vent's minimum rate."""
        lim = self._lim
        log = self._cmd_log
        log.append((now, pressure))
        horizon = now - lim.pressure_command_latency_s
        while len(log) > 1 and log[1][0] <= horizon:
            log.popleft()
        commanded = max(p for _, p in log)
        if self._envelope is not None:
            vented = self._envelope - lim.pressure_vent_min_mmhg_per_s * dt
            self._envelope = max(commanded, vented)

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
            self._start_after_watch()

    def _start_after_watch(self) -> None:
        """Supervision goes on after the session until the massager shows it is safe."""
        self._after = AFTER_WATCHING
        self._report_after_end = False
        self._first_end = None
        self._settled_since = None

    def _latch(self, celsius: float, now: float) -> None:
        if self._state is SessionState.LATCHED:
            return
        if self._state is SessionState.RUNNING:
            self._ended_at = now
            self._start_after_watch()
        self._state = SessionState.LATCHED
        self._ended_by = EndReason.FAULT
        self._raise(
            AlarmCode.OVER_TEMPERATURE_LATCH,
            f"skin at {celsius:.1f} °C (latch {self._lim.latch_c:.1f} °C): session stopped; "
            "take your foot out, check it for burns, and once it has cooled make an alarm "
            "reset (soleguard alarm reset)",
            now,
        )

    def _raise(
        self, code: AlarmCode, message: str, now: float, priority: Priority | None = None
    ) -> None:
        self._alarms.raise_(code, message, now, priority)

    def _clear(self, code: AlarmCode) -> None:
        self._alarms.clear(code)

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
        return Decision(
            command=command,
            state=self._state,
            ended_by=self._ended_by,
            new_alarms=tuple(self._alarms.new) if self._alarms.new else (),
            active_alarms=self._alarms.active(),
            command_results=results,
            refusals=refusals,
            session_id=self._session_id,
            elapsed_s=elapsed,
            remaining_s=max(0.0, lim.max_session_s - elapsed) if running else 0.0,
            heat_used_s=self._heat_used,
            heat_remaining_s=max(0.0, lim.max_heat_s - self._heat_used),
            pressure_cap_mmhg=self._cap_in_force(),
            measured_pressure_mmhg=self._measured,
            skin_c=skin,
            skin_age_s=None if fresh_t is None else now - fresh_t,
            skin_valid=self._last_reading_valid,
            skin_fresh=fresh,
            predicted_skin_c=(
                None if skin is None else skin + max(0.0, self._slope) * lim.prediction_horizon_s
            ),
            heater_block=None if command.heater_on else self._heater_block_now(running),
            battery_percent=self._battery,
            massager_connected=self._massager_up,
            sensor_connected=self._sensor_up,
            after_session=self._after,
        )

    def _heater_block_now(self, running: bool) -> str:
        if not running:
            return BLOCK_NOT_RUNNING
        return self._heater_block if self._heater_block is not None else BLOCK_NOT_RUNNING


def _number(value: object) -> float | None:
    """``value`` as a finite float, or None for anything else (garbage from the wire)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not _isfinite(value):
        return None
    return float(value)


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
