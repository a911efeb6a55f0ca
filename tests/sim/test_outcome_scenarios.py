"""The outcome-supervision scenarios (issue 10) as a BLE central sees them, on several seeds."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from controller.protocol import PartialStatus, SetHeater, SetPressure, StatusFlags, Stop
from firmware_sim.scenarios import schedule
from tests.sim.support import Renewer, massager, send, sensor, world_and_radio

ONSET_S = 5.0
SEEDS = (0, 1, 2)


@pytest.mark.parametrize("seed", SEEDS)
async def test_sensor_detached_reads_boot_air_while_the_skin_stays_warm(seed: int) -> None:
    fault = schedule("sensor-detached", onset_s=ONSET_S, seed=seed)
    async with (
        world_and_radio(scenario=[fault], seed=seed) as (world, radio),
        sensor(world, radio) as (_c, log),
    ):
        await asyncio.sleep(ONSET_S + 60.0)
        tail = [m.to_celsius() for m in log.values[-10:]]
        assert all(23.5 < c < 26.5 for c in tail)
        assert len(set(tail)) > 3  # with its noise: not an exact repeat
        assert world.physics.skin_c > 30.0


@pytest.mark.parametrize("seed", SEEDS)
async def test_sensor_stuck_warm_freezes_with_its_noise_while_the_skin_moves_on(seed: int) -> None:
    fault = schedule("sensor-stuck-warm", onset_s=0.0, seed=seed)
    async with (
        world_and_radio(scenario=[fault], seed=seed) as (world, radio),
        sensor(world, radio) as (_c, log),
    ):
        # A foot warmed to 37.5 °C, then left unheated: the sensor, already past its freezing
        # point, freezes at 35.5-37 °C at once while the skin keeps cooling.
        world.physics.skin_c = world.physics.sensor_c = 37.5
        await asyncio.sleep(300.0)
        frozen = world.sensor_firmware.faults.frozen_c
        assert frozen is not None
        assert 35.5 <= frozen <= 37.0
        tail = [m.to_celsius() for m in log.values[-10:]]
        assert all(abs(c - frozen) < 0.3 for c in tail)
        assert len(set(tail)) > 3  # with its noise: not an exact repeat
        assert world.physics.skin_c < 37.5 - 1.0  # the skin moved on, the reading did not


@pytest.mark.parametrize("seed", SEEDS)
async def test_vent_stuck_keeps_the_pressure_after_stop(seed: int) -> None:
    fault = schedule("vent-stuck", onset_s=0.0, seed=seed)
    async with (
        world_and_radio(scenario=[fault], seed=seed) as (world, radio),
        massager(world, radio) as (client, log),
    ):
        async with Renewer(client):
            await send(client, SetPressure(1, 3000, 58.0))
            await log.wait_for(lambda s: (s.pressure_mmhg or 0.0) > 56.0)
        await send(client, Stop(2))
        await asyncio.sleep(20.0)
        assert log.last.pressure_mmhg > 55.0
        assert StatusFlags.LEASE_ACTIVE not in log.last.flags


@pytest.mark.parametrize("seed", SEEDS)
async def test_heater_intermittent_is_energised_most_of_the_time_when_off(seed: int) -> None:
    fault = schedule("heater-intermittent", onset_s=0.0, seed=seed)
    async with (
        world_and_radio(scenario=[fault], seed=seed) as (world, radio),
        massager(world, radio) as (client, log),
    ):
        await send(client, SetHeater(1, 3000, False, 40.0))
        mark = log.mark()
        await asyncio.sleep(10.0)
        energised = [StatusFlags.HEATER_ENERGISED in s.flags for s in log.values[mark:]]
        share = sum(energised) / len(energised)
        assert 0.4 < share < 0.95
        assert not all(energised)  # it comes and goes


@pytest.mark.parametrize("seed", SEEDS)
async def test_pressure_intermittent_holds_over_the_target_with_dips(seed: int) -> None:
    fault = schedule("pressure-intermittent", onset_s=0.0, seed=seed)
    async with (
        world_and_radio(scenario=[fault], seed=seed) as (world, radio),
        massager(world, radio) as (client, log),
    ):
        async with Renewer(client):
            await send(client, SetPressure(1, 3000, 60.0))
            await log.wait_for(lambda s: (s.pressure_mmhg or 0.0) > 66.0)
            mark = log.mark()
            await asyncio.sleep(5.0)
        pressures = [s.pressure_mmhg for s in log.values[mark:]]
        assert sum(p > 65.0 for p in pressures) > len(pressures) / 2
        assert any(p < 65.0 for p in pressures)  # the dip: never one unbroken second above


@pytest.mark.parametrize("seed", SEEDS)
async def test_bursty_link_delivers_honest_readings_in_pairs(seed: int) -> None:
    fault = schedule("bursty-link", onset_s=ONSET_S, seed=seed)
    async with (
        world_and_radio(scenario=[fault], seed=seed) as (world, radio),
        sensor(world, radio) as (_c, log),
    ):
        await asyncio.sleep(ONSET_S + 10.0)
        times = [t for t, _ in log.items if t > ONSET_S + 1.0]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert min(gaps) < 0.05
        assert max(gaps) <= 1.05
        values = [m.to_celsius() for m in log.values[-6:]]
        assert all(abs(v - world.physics.sensor_c) < 0.5 for v in values)


@pytest.mark.parametrize("seed", SEEDS)
async def test_corrupt_status_keeps_flags_beside_a_pegged_pressure(seed: int) -> None:
    fault = schedule("corrupt-status", onset_s=ONSET_S, seed=seed)
    async with (
        world_and_radio(scenario=[fault], seed=seed) as (world, radio),
        massager(world, radio) as (client, log),
    ):
        await send(client, SetHeater(1, 3000, True, 40.0))
        async with Renewer(client):
            status = await log.wait_for(lambda s: isinstance(s, PartialStatus))
        assert status.invalid_fields == ("pressure",)
        assert status.pressure_mmhg is None
        assert StatusFlags.LEASE_ACTIVE in status.flags
