"""Pressure rules: measured pressure against the cap and against the commands.

Over the cap in force (time over it within a window), above the commanded envelope (the bladder
does not follow: stuck vent, pump), a pegged sensor; the envelope of recent commands falling at
the vent's minimum rate.
"""

from __future__ import annotations

import math

from controller.safety._state import (
    _number,
)
from controller.safety.alarms import AlarmCode
from controller.safety.decision import (
    EndReason,
    Priority,
    SessionState,
)
from controller.safety.lifecycle import SessionLifecycle


class PressureRules(SessionLifecycle):
    """Pressure rules: measured pressure against the cap and against the commands.

    The rules and their sources: docs/safety.md, "Pressure", "Actuators follow commands" and
    "Hard limits as measured values"; the numbers (``pressure_*``) are
    :class:`~controller.settings.effective.SafetyLimits` fields, each bound and source in
    controller/settings/limits.py.
    """

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
