"""The lumped foot/pad/bladder model behaves as docs/simulator.md says."""

from __future__ import annotations

import pytest

from firmware_sim.physics import Physics, PhysicsParams

# docs/simulator.md: heater on, pad regulated at 42 °C: skin 32.5 -> 39.0 °C, 63 % of the rise
# after about 244 s (normal foot). The tolerance covers re-tuning noise, not a different model.
DOCUMENTED_TAU_S = 244.0
PAD_TARGET_C = 42.0


def _regulated(physics: Physics, seconds: float, pad_target: float = PAD_TARGET_C) -> list[float]:
    skins = []
    for _ in range(round(seconds / 0.1)):
        if physics.pad_c > pad_target + 0.2:
            physics.heater_on = False
        elif physics.pad_c < pad_target - 0.2:
            physics.heater_on = True
        physics.step(0.1)
        skins.append(physics.skin_c)
    return skins


def _settle(physics: Physics, seconds: float = 3600.0) -> None:
    for _ in range(round(seconds)):
        physics.step(1.0)


def test_skin_starts_near_32_and_stays_there_with_the_heater_off() -> None:
    physics = Physics()
    assert physics.skin_c == pytest.approx(32.0)
    _settle(physics)
    assert physics.skin_c == pytest.approx(32.5, abs=0.3)


def test_heater_on_warms_the_skin_with_the_documented_time_constant() -> None:
    physics = Physics()
    _settle(physics)
    start = physics.skin_c
    skins = _regulated(physics, 1800.0)
    final = skins[-1]
    assert 38.0 <= final <= 40.0
    assert physics.pad_c - final == pytest.approx(3.0, abs=1.0)  # pad a few degrees above skin
    t63 = next(i for i, s in enumerate(skins) if s >= start + 0.632 * (final - start)) * 0.1
    assert t63 == pytest.approx(DOCUMENTED_TAU_S, rel=0.15)


def test_skin_cools_back_when_the_heater_goes_off() -> None:
    physics = Physics()
    _settle(physics)
    baseline = physics.skin_c
    _regulated(physics, 1200.0)
    warm = physics.skin_c
    physics.heater_on = False
    _settle(physics, 3600.0)
    assert physics.skin_c < warm - 5.0
    assert physics.skin_c == pytest.approx(baseline, abs=0.3)


def test_reduced_perfusion_heats_faster_overshoots_higher_and_cools_slower() -> None:
    normal, neuro = Physics(PhysicsParams()), Physics(PhysicsParams.neuropathic())
    skins_normal = _regulated(normal, 1800.0)
    skins_neuro = _regulated(neuro, 1800.0)

    # Below core temperature blood warms the skin; above it, it carries heat away, so a foot with
    # blunted hyperaemia climbs faster once past 37 °C.
    def climb(skins: list[float]) -> int:
        return next(i for i, s in enumerate(skins) if s >= 38.5) - next(
            i for i, s in enumerate(skins) if s >= 37.0
        )

    assert climb(skins_neuro) < 0.9 * climb(skins_normal)
    assert max(skins_neuro) > max(skins_normal) + 0.5
    normal.heater_on = neuro.heater_on = False

    def seconds_to_cool_below(physics: Physics, celsius: float) -> int:
        seconds = 0
        while physics.skin_c >= celsius:
            physics.step(1.0)
            seconds += 1
        return seconds

    assert seconds_to_cool_below(neuro, 37.0) > 1.2 * seconds_to_cool_below(normal, 37.0)


def test_an_unregulated_heater_would_burn_a_neuropathic_foot() -> None:
    """Why the firmware's pad cut-out exists: the element alone drives skin past 43 °C."""
    physics = Physics(PhysicsParams.neuropathic())
    physics.heater_on = True
    _settle(physics, 3600.0)
    assert physics.skin_c > 43.0


def test_bladder_inflates_and_deflates_at_the_pump_and_vent_rates() -> None:
    physics = Physics()
    physics.set_pressure_target(60.0)
    physics.step(1.0)
    assert physics.pressure_mmhg == pytest.approx(12.0, abs=0.1)
    physics.step(10.0)
    assert physics.pressure_mmhg == pytest.approx(60.0)
    physics.set_pressure_target(0.0)
    physics.step(1.0)
    assert physics.pressure_mmhg == pytest.approx(40.0, abs=0.1)


def test_overshoot_past_the_relief_pressure_opens_the_relief_valve() -> None:
    physics = Physics()
    physics.overshoot_mmhg = 25.0
    physics.set_pressure_target(60.0)
    peaks = []
    for _ in range(200):
        physics.step(0.1)
        peaks.append(physics.pressure_mmhg)
        if physics.relief_open:
            break
    assert physics.relief_open
    assert max(peaks) >= 75.0
    for _ in range(20):
        physics.step(0.1)
    assert not physics.relief_open
    assert physics.pressure_mmhg == pytest.approx(60.0)


def test_heater_and_pump_drain_the_battery_faster_than_idle() -> None:
    idle, busy = Physics(), Physics()
    busy.heater_on = True
    busy.set_pressure_target(70.0)
    for physics in (idle, busy):
        _settle(physics, 600.0)
    assert 85.0 - idle.battery_percent < 0.2
    assert 85.0 - busy.battery_percent > 5.0


def test_same_seed_same_noise_different_seed_different_noise() -> None:
    a, b, c = Physics(seed=7), Physics(seed=7), Physics(seed=8)
    readings = [[p.read_skin_c() for _ in range(5)] for p in (a, b, c)]
    assert readings[0] == readings[1]
    assert readings[0] != readings[2]
