"""Heater rules: when the heater may be on, and whether it obeys when commanded off.

The heater is on only when every condition holds (``Decision.heater_block`` names the first that
fails); energised while commanded off for long enough within a sliding window is a HIGH alarm.
"""

from __future__ import annotations

from controller.safety._state import (
    BLOCK_CUTOFF,
    BLOCK_DISABLED,
    BLOCK_HEAT_TIME,
    BLOCK_MASSAGER,
    BLOCK_NO_READING,
    BLOCK_NOT_REQUESTED,
    BLOCK_NOT_RUNNING,
    BLOCK_PREDICTED,
    BLOCK_PROFILE,
    BLOCK_REENABLE,
    BLOCK_SENSOR_LINK,
    BLOCK_STALE,
    BLOCK_THERMOSTAT,
)
from controller.safety.alarms import AlarmCode
from controller.safety.decision import (
    EndReason,
    SessionState,
)
from controller.safety.lifecycle import SessionLifecycle


class HeaterRules(SessionLifecycle):
    """Heater rules: when the heater may be on, and whether it obeys when commanded off.

    The rules and their sources: docs/safety.md, "Heater", "Predictive cut-off" and "Actuators
    follow commands"; the numbers (``heater_*``, ``max_heat_s``, ``stale_after_s``,
    ``prediction_*``) are :class:`~controller.settings.effective.SafetyLimits` fields, each bound
    and source in controller/settings/limits.py.
    """

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

    def _heater_block_now(self, running: bool) -> str:
        if not running:
            return BLOCK_NOT_RUNNING
        return self._heater_block if self._heater_block is not None else BLOCK_NOT_RUNNING
