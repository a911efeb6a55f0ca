"""The safety supervisor: the only code that decides a pressure or heater command.

Pure and deterministic: no I/O, no clock, no randomness. The caller gives the current monotonic
time and what happened since the last call; :meth:`Supervisor.step` answers with a
:class:`~controller.safety.decision.Decision`. Call it at 10 Hz or faster, with or without events:
time alone ends sessions, makes readings stale and fires the grace timers.

Every number comes from :class:`~controller.settings.SafetyLimits`; the rules and their sources
are in docs/safety.md. Garbage in is refused, never raised: a non-finite ``now`` gives an all-off
command for that step; a clock stepping back is shifted so time never runs backwards here (nothing
ramps, nothing expires early) and voids the readings so far; a stall ages what it delivers; a
reading or report with a non-finite time is ignored.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from controller.safety._state import (
    _FAULT_NONE,
    AFTER_FAULT,
    AFTER_SAFE,
    AFTER_WATCHING,
    _isfinite,
    _number,
)
from controller.safety.alarms import AlarmCode
from controller.safety.decision import (
    ActuatorCommand,
    CommandResult,
    Decision,
    EndReason,
    SessionState,
)
from controller.safety.device import MassagerWatch
from controller.safety.events import (
    AlarmReset,
    CaregiverRequest,
    DeviceKind,
    Event,
    LatchInForce,
    LinkChanged,
    MassagerReport,
    SensorPace,
    SkinReading,
    StartSession,
    UserRequest,
    UserStop,
    WatchCutShort,
)
from controller.safety.heater import HeaterRules
from controller.safety.pressure import PressureRules
from controller.safety.skin import SkinTrust

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["AFTER_FAULT", "AFTER_SAFE", "AFTER_WATCHING", "Supervisor"]


class Supervisor(SkinTrust, HeaterRules, PressureRules, MassagerWatch):
    """One massager-and-sensor pair's safety supervisor. Not thread-safe; one owner calls it.

    ``Supervisor(limits)``: ``limits`` is the session's validated
    :class:`~controller.settings.effective.SafetyLimits` (``effective_limits``); the rules and
    their sources are in docs/safety.md.

    The rules live one area per module: skin trust (``skin``), heater (``heater``), pressure
    (``pressure``), the massager's reports (``device``), session lifecycle (``lifecycle``), alarm
    conditions (``alarms``); this class routes events to them and composes the decision.
    """

    def step(self, now: float, events: Sequence[Event] = ()) -> Decision:
        """Apply ``events`` (in order) at monotonic time ``now`` and decide the actuator command.

        ``now``: seconds on the caller's monotonic clock (any epoch; the same clock as the
        events' ``time`` fields). ``events``: what happened since the last step, any of
        :data:`~controller.safety.events.Event`; an object of another type is ignored.

        A non-finite ``now`` (NaN, +-inf) forces all off for this step: the command has
        pressure 0, heater off and ``stop`` set, whatever the session state (which it does not
        change); the events are still applied, at the last finite time (0.0 before any), and
        timers do not advance. A ``now`` before the last one is shifted forward (see the module
        docstring). Returns the :class:`~controller.safety.decision.Decision` for this step.

        Raises TypeError when ``now`` is not a real number (None, a string: a caller's bug, not
        data) or ``events`` is not iterable; garbage inside an event is judged, never raised.
        """
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
        elif isinstance(event, SensorPace):
            period = _number(event.period_s)
            # Garbage is not a pace: judged as a sensor of unknown pace, too slow for heat.
            self._sensor_period = period if period is not None and period >= 0.0 else math.inf
        elif isinstance(event, LatchInForce):
            celsius = _number(event.celsius)
            self._latch(self._lim.latch_c if celsius is None else celsius, now)
        elif isinstance(event, WatchCutShort):
            self._on_watch_cut_short(now)

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
            massager_fresh=(
                self._massager_up and self._massager_report_seen and not self._massager_silent(now)
            ),
            sensor_connected=self._sensor_up,
            after_session=self._after,
        )
