"""The supervisor's state and the queries every rule module shares.

One :class:`SupervisorState` holds all a supervisor knows (links, readings, pressure, heater,
massager status, session, alarms); the rule modules (``skin``, ``heater``, ``pressure``,
``device``, ``lifecycle``) add the rules, and :class:`~controller.safety.supervisor.Supervisor`
composes them. Protocol fault codes, heater-block reasons and after-session verdicts are here too.
"""

from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING

from controller.safety.alarms import AlarmBook, AlarmCode
from controller.safety.decision import (
    ActuatorCommand,
    EndReason,
    Priority,
    SessionState,
)
from controller.safety.follow import HeatResponse
from controller.safety.windows import BadTime

if TYPE_CHECKING:
    from controller.settings.effective import SafetyLimits

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
# The process ended (a signal) before the massager had shown all of that, and nothing it did show
# was a fault: STOP was sent, the lease ends it within lease_s.
AFTER_UNVERIFIED = "unverified"


class SupervisorState:
    """Everything one supervisor knows, and the queries every rule module shares.

    Built from one :class:`~controller.settings.effective.SafetyLimits` (already validated
    against its hard bounds by ``effective_limits``); all times are seconds on the supervisor's
    clock (the caller's monotonic clock plus the clock-step offset), pressures mmHg, temperatures
    degC.
    """

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
        # The sensor's measurement period (SensorPace); None until the caller states one.
        self._sensor_period: float | None = None
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
        """The limits this supervisor was built with (read-only; never changed by a step).

        Every number a rule uses comes from here; their bounds and sources are in
        controller/settings/limits.py and docs/safety.md.
        """
        return self._lim

    @property
    def state(self) -> SessionState:
        """Where the session is now (IDLE, RUNNING, ENDED, LATCHED), as of the latest step."""
        return self._state

    def _time_of(self, t: object, now: float) -> float | None:
        """An event's time on the supervisor's clock, never after ``now``; None if garbage."""
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not _isfinite(t):
            return None
        return min(float(t) + self._offset, now)

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

    def _raise(
        self, code: AlarmCode, message: str, now: float, priority: Priority | None = None
    ) -> None:
        self._alarms.raise_(code, message, now, priority)

    def _clear(self, code: AlarmCode) -> None:
        self._alarms.clear(code)


def _number(value: object) -> float | None:
    """``value`` as a finite float, or None for anything else (garbage from the wire)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not _isfinite(value):
        return None
    return float(value)
