"""The equilibrium rule of sensor-follows-heater: a sensor stuck, offset or drifting low while warm.

Every test starts at a seeded monotonic time from minutes to days after boot. The honest cases
integrate the simulator's thermal model (firmware_sim/physics.py) in closed loop with the
supervisor; the faulty ones feed the rule a pad regulating as the firmware does and a reading that
does not follow it.
"""

from __future__ import annotations

import dataclasses
import math
import random
from typing import TYPE_CHECKING

import pytest

from controller.safety.follow import HeatResponse
from controller.settings import SafetyLimits
from firmware_sim.physics import PhysicsParams
from tests.safety.closed_loop import run_session

if TYPE_CHECKING:
    from collections.abc import Callable

LIMITS = SafetyLimits.defaults()
TARGET = LIMITS.heater_target_c  # 38 °C
# What catches the class without this rule: the gain, pad-gap and band rules only.
WITHOUT = dataclasses.replace(LIMITS, sensor_eq_gap_c=math.inf)
FEET = {"typical": PhysicsParams(), "neuropathic": PhysicsParams.neuropathic()}
SEEDS = (1, 2, 3, 4, 5)
PAD_PERIOD_S = 0.2  # the massager reports at 5 Hz
NOISE_C = 0.05  # both sensors' noise (firmware_sim.physics.SensorParams)


def start_time(rng: random.Random) -> float:
    """A monotonic start from minutes to days after boot, to the tenth of a second."""
    return round(rng.uniform(60.0, 5 * 86_400.0), 1)


def heat(
    limits: SafetyLimits,
    rng: random.Random,
    seconds: float,
    pad_c: Callable[[float], float],
    reading_c: Callable[[float], float],
) -> tuple[HeatResponse, float, float | None]:
    """Heat commanded from a seeded start; pad at 5 Hz, a reading a second, both with noise.

    Returns the rule, the start (s) and how long after it the verdict came (s), or None.
    """
    response = HeatResponse(limits)
    start = start_time(rng)
    response.heater(start, True)
    tick = 0
    while tick * PAD_PERIOD_S <= seconds:
        elapsed = tick * PAD_PERIOD_S
        now = start + elapsed
        response.pad(now, pad_c(elapsed) + rng.gauss(0.0, NOISE_C))
        if tick % 5 == 0:
            response.reading(now, reading_c(elapsed) + rng.gauss(0.0, NOISE_C), TARGET)
            if response.verdict(now) is not None:
                return response, start, elapsed
        tick += 1
    return response, start, None


def regulating_pad(target_c: float) -> Callable[[float], float]:
    """A pad at its target, swinging through the firmware's +-0.2 °C hysteresis every 20 s."""
    return lambda t: target_c + 0.2 * (abs((t % 20.0) - 10.0) / 5.0 - 1.0)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_sensor_frozen_warm_with_its_noise_turns_heat_off(seed: int) -> None:
    # The breaker's input: warmed up, then frozen at 35.5-37 °C with its noise, under a pad that
    # regulates at 39.5-40.5 °C, below the 38 °C target so the thermostat keeps heating.
    rng = random.Random(seed)
    pad = regulating_pad(rng.uniform(39.5, 40.5))
    frozen = rng.uniform(35.5, 37.0)
    response, start, after = heat(LIMITS, rng, 600.0, pad, lambda _t: frozen)
    assert after is not None
    # A whole window of heat, then 15 s of bad time: within 2 minutes of the heat, not 15.
    assert after <= LIMITS.sensor_follow_window_s + LIMITS.sensor_follow_bad_s + 30.0
    why = response.verdict(start + after) or ""
    assert "does not follow the heat" in why
    # Without the rule, nothing caught it for the whole 10 minutes (the breaker's finding).
    assert heat(WITHOUT, random.Random(seed), 600.0, pad, lambda _t: frozen)[2] is None


@pytest.mark.parametrize("seed", SEEDS)
def test_a_reading_offset_low_turns_heat_off_before_the_target(seed: int) -> None:
    # The honest skin approaches its equilibrium under a 40.5 °C pad (38.4 °C, time constant
    # 160-230 s) but the sensor reads it 2-3 °C low, so it never reaches the target and never
    # shows a gap of 4 °C once the skin has warmed.
    rng = random.Random(seed)
    tau = rng.uniform(160.0, 230.0)
    offset = rng.uniform(2.0, 3.0)

    def skin(t: float) -> float:
        return 38.4 - (38.4 - 34.0) * math.exp(-t / tau)

    _response, _, after = heat(LIMITS, rng, 900.0, regulating_pad(40.5), lambda t: skin(t) - offset)
    assert after is not None
    assert after <= 600.0
    assert heat(WITHOUT, random.Random(seed), 900.0, regulating_pad(40.5), skin)[2] is None


@pytest.mark.parametrize("seed", SEEDS)
def test_a_reading_drifting_down_under_a_hot_pad_turns_heat_off(seed: int) -> None:
    # At equilibrium (38.4 °C under a 40.5 °C pad) the sensor starts drifting down 0.5-1 °C/min.
    rng = random.Random(seed)
    rate = rng.uniform(0.5, 1.0) / 60.0
    _response, _, after = heat(LIMITS, rng, 600.0, regulating_pad(40.5), lambda t: 37.9 - rate * t)
    assert after is not None
    # Bad once 0.03 °C under the line and falling: caught before it fell 3 °C.
    assert after * rate <= 3.0


@pytest.mark.parametrize("seed", SEEDS)
def test_an_honest_reading_at_its_equilibrium_below_the_target_is_trusted(seed: int) -> None:
    # Target not reachable: the pad at 39-40.5 °C, the skin at its model equilibrium (the widest
    # gap, the typical foot's) for ten minutes, with both sensors' noise.
    rng = random.Random(seed)
    pad_target = rng.uniform(39.0, 40.5)
    equilibrium = {39.0: 37.72, 40.0: 38.19, 40.5: 38.41}  # firmware_sim/physics.py, typical foot
    low = max(p for p in equilibrium if p <= pad_target)
    skin = equilibrium[low] + (pad_target - low) * 0.47  # the line between, under the curve
    _, _, after = heat(LIMITS, rng, 600.0, regulating_pad(pad_target), lambda _t: skin)
    assert after is None


@pytest.mark.parametrize(
    ("foot", "skin0", "seed"),
    [
        ("typical", 26.0, 1),
        ("typical", 32.0, 2),
        ("neuropathic", 26.0, 3),
        ("neuropathic", 32.0, 4),
    ],
)
def test_an_honest_foot_that_cannot_reach_the_target_keeps_its_heat(
    foot: str, skin0: float, seed: int
) -> None:
    # The model in closed loop: the 39.5 °C target is above the skin's equilibrium under the
    # 40 °C pad, so heat is commanded all session long; the rule must stay quiet throughout.
    params = FEET[foot]
    params = dataclasses.replace(
        params, foot=dataclasses.replace(params.foot, initial_skin_c=skin0)
    )
    limits = dataclasses.replace(LIMITS, heater_target_c=39.5, heater_cutoff_c=41.0)
    trace = run_session(limits, params, 900.0, seed=seed, start=start_time(random.Random(seed)))
    assert trace.heater_on_s >= 890.0
    assert trace.max_sensor_c < limits.heater_target_c
    assert not [a for d in trace.decisions for a in d.new_alarms]
