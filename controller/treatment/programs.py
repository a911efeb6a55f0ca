"""Massage programs: the pressure wave a session asks for, and the heat it wants.

A program only *requests*; the supervisor caps, ramps and may refuse every request. Waves are
shaped relative to the pressure cap in force, so the same program is light under the allodynia
profile and moderate otherwise, and never asks for deep-tissue pressure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Program:
    """A massage program: a pressure wave between two fractions of the cap; a heat target.

    ``period_s`` is the wave's period (s); ``heat_below_target_c`` lowers the profile's heater
    target (°C) for gentler programs.
    """

    name: str
    description: str
    # The wave swings between these fractions of the pressure cap.
    low_fraction: float
    high_fraction: float
    period_s: float
    # Degrees below the profile's heater target: a gentler program asks for less heat.
    heat_below_target_c: float

    def pressure_mmhg(self, elapsed_s: float, cap_mmhg: float) -> float:
        """The requested pressure at ``elapsed_s`` into the session, for a given cap."""
        phase = 0.5 - 0.5 * math.cos(2.0 * math.pi * elapsed_s / self.period_s)
        fraction = self.low_fraction + (self.high_fraction - self.low_fraction) * phase
        return max(0.0, fraction * cap_mmhg)

    def heat_target_c(self, profile_target_c: float) -> float:
        """Pad target (°C) of this program for a profile heater target ``profile_target_c`` (°C)."""
        return profile_target_c - self.heat_below_target_c


PROGRAMS: dict[str, Program] = {
    program.name: program
    for program in (
        Program(
            name="gentle",
            description="slow, light waves and mild warmth",
            low_fraction=0.2,
            high_fraction=0.6,
            period_s=12.0,
            heat_below_target_c=1.0,
        ),
        Program(
            name="standard",
            description="kneading waves up to the pressure cap and the profile's warmth",
            low_fraction=0.3,
            high_fraction=1.0,
            period_s=8.0,
            heat_below_target_c=0.0,
        ),
    )
}
