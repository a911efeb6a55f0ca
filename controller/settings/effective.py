"""The limits the supervisor enforces: the settings after the profile has tightened them.

A flat, frozen, unit-normalised (seconds, degC, mmHg) record, so the pure supervisor never has to
know about TOML sections, minutes or profiles.
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.settings import limits


@dataclass(frozen=True, slots=True)
class SafetyLimits:
    """The limits a session runs under: settings and profile merged, each within its hard bound.

    Units are in the field names (mmHg, mmHg/s, °C, s, min, %); each bound and its source is in
    `controller.settings.limits`. Built by `effective_limits`, never from raw input.
    """

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
    sensor_follow_window_s: float = limits.SENSOR_FOLLOW_WINDOW_S
    sensor_follow_heat_gap_s: float = limits.SENSOR_FOLLOW_HEAT_GAP_S
    sensor_follow_gap_c: float = limits.SENSOR_FOLLOW_GAP_C
    sensor_follow_min_rise_c: float = limits.SENSOR_FOLLOW_MIN_RISE_C
    sensor_pad_gap_max_c: float = limits.SENSOR_PAD_GAP_MAX_C
    sensor_target_band_c: float = limits.SENSOR_TARGET_BAND_C
    sensor_eq_gap_c: float = limits.SENSOR_EQ_GAP_C
    sensor_eq_gap_per_k: float = limits.SENSOR_EQ_GAP_PER_K
    sensor_eq_core_c: float = limits.SENSOR_EQ_CORE_C
    sensor_eq_tau_s: float = limits.SENSOR_EQ_TAU_S
    sensor_follow_bad_s: float = limits.SENSOR_FOLLOW_BAD_S
    sensor_follow_bad_window_s: float = limits.SENSOR_FOLLOW_BAD_WINDOW_S
    actuator_fault_window_s: float = limits.ACTUATOR_FAULT_WINDOW_S
    pressure_vent_min_mmhg_per_s: float = limits.PRESSURE_VENT_MIN_MMHG_PER_S
    pressure_command_latency_s: float = limits.PRESSURE_COMMAND_LATENCY_S
    pressure_not_following_s: float = limits.PRESSURE_NOT_FOLLOWING_S
    pressure_sensor_full_scale_mmhg: float = limits.PRESSURE_SENSOR_FULL_SCALE_MMHG
    pad_sensor_min_c: float = limits.PAD_SENSOR_MIN_C
    pad_target_max_c: float = limits.PAD_TARGET_MAX_C
    pressure_measured_margin_mmhg: float = limits.PRESSURE_MEASURED_MARGIN_MMHG
    pad_sensor_max_c: float = limits.PAD_SENSOR_MAX_C
    skin_nominal_period_s: float = limits.SKIN_NOMINAL_PERIOD_S
    step_stall_s: float = limits.STEP_STALL_S
    post_session_bound_s: float = limits.POST_SESSION_BOUND_S
    post_session_pressure_floor_mmhg: float = limits.POST_SESSION_PRESSURE_FLOOR_MMHG
    post_session_confirm_s: float = limits.POST_SESSION_CONFIRM_S
    caregiver_lower_default_mmhg: float = limits.CAREGIVER_LOWER_DEFAULT_MMHG
    battery_low_percent: float = limits.BATTERY_LOW_PERCENT
    battery_ok_percent: float = limits.BATTERY_OK_PERCENT

    @property
    def heater_reenable_below_c(self) -> float:
        """Skin temperature (°C) below which heat may resume after a cut-off: cut-off - margin."""
        return self.heater_cutoff_c - self.heater_reenable_margin_c

    @classmethod
    def defaults(cls) -> SafetyLimits:
        """The limits of an empty configuration file with no profile."""
        from controller.settings.loader import effective_limits  # noqa: PLC0415 (cycle)
        from controller.settings.models import Settings  # noqa: PLC0415 (cycle)

        return effective_limits(Settings())
