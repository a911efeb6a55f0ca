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

    @property
    def heater_reenable_below_c(self) -> float:
        return self.heater_cutoff_c - self.heater_reenable_margin_c

    @classmethod
    def defaults(cls) -> SafetyLimits:
        """The limits of an empty configuration file with no profile."""
        from controller.settings.loader import effective_limits  # noqa: PLC0415 (cycle)
        from controller.settings.models import Settings  # noqa: PLC0415 (cycle)

        return effective_limits(Settings())
