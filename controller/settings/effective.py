"""The limits the supervisor enforces: the settings after the profile has tightened them.

A flat, frozen, unit-normalised (seconds, degC, mmHg) record, so the pure supervisor never has to
know about TOML sections, minutes or profiles.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.settings import limits


@dataclass(frozen=True, slots=True)
class SafetyLimits:
    pressure_cap_mmhg: float
    pressure_ramp_mmhg_per_s: float
    heater_allowed: bool
    heater_target_c: float
    heater_cutoff_c: float
    heater_reenable_margin_c: float
    heater_min_off_s: float
    latch_c: float
    max_heat_s: float
    prediction_horizon_s: float
    stale_after_s: float
    valid_min_c: float
    valid_max_c: float
    max_skin_rate_c_per_s: float
    max_session_s: float
    lease_s: float
    lease_renew_s: float = limits.LEASE_RENEW_S
    # Not configurable: the supervisor's tolerances, in limits.py with their reasons.
    pressure_hard_max_mmhg: float = limits.PRESSURE_CAP_MMHG.hard_limit
    pressure_over_cap_tolerance_mmhg: float = limits.PRESSURE_OVER_CAP_TOLERANCE_MMHG
    pressure_over_cap_s: float = limits.PRESSURE_OVER_CAP_S
    pressure_settle_s: float = limits.PRESSURE_SETTLE_S
    pressure_over_cap_max_events: int = limits.PRESSURE_OVER_CAP_MAX_EVENTS
    heater_response_grace_s: float = limits.HEATER_RESPONSE_GRACE_S
    massager_silent_after_s: float = limits.MASSAGER_SILENT_AFTER_S
    heater_target_band_c: float = limits.HEATER_TARGET_BAND_C
    prediction_window_s: float = limits.PREDICTION_WINDOW_S
    prediction_min_readings: int = limits.PREDICTION_MIN_READINGS
    sensor_invalid_alarm_count: int = limits.SENSOR_INVALID_ALARM_COUNT
    sensor_stuck_s: float = limits.SENSOR_STUCK_S
    sensor_stuck_delta_c: float = limits.SENSOR_STUCK_DELTA_C
    caregiver_lower_default_mmhg: float = limits.CAREGIVER_LOWER_DEFAULT_MMHG
    battery_low_percent: float = limits.BATTERY_LOW_PERCENT
    battery_ok_percent: float = limits.BATTERY_OK_PERCENT

    @property
    def heater_reenable_below_c(self) -> float:
        return self.heater_cutoff_c - self.heater_reenable_margin_c

    @classmethod
    def defaults(cls) -> SafetyLimits:
        """The limits of an empty configuration file with no profile."""
        from controller.settings.loader import effective_limits  # noqa: PLC0415 (cycle)
        from controller.settings.models import Settings  # noqa: PLC0415 (cycle)

        return effective_limits(Settings())
