"""Every fault scenario is observable through BleakClient, and replays the same from its seed."""

from __future__ import annotations

import asyncio
import itertools
import math

import pytest
from bleak import BleakClient

from controller.protocol import FaultCode, SetHeater, SetPressure, StatusFlags, TemperatureUnit
from firmware_sim.scenarios import SCENARIOS, describe, schedule
from tests.sim.support import Log, Renewer, massager, send, sensor, world_and_radio

ONSET_S = 5.0

EXPECTED_NAMES = {
    "normal",
    "sensor-dropout",
    "sensor-stuck",
    "sensor-spikes",
    "sensor-fahrenheit",
    "heater-stuck-on",
    "pressure-overshoot",
    "link-drop",
    "massager-reboot",
    "low-battery",
    "sensor-detached",
    "sensor-stuck-warm",
    "vent-stuck",
    "heater-intermittent",
    "pressure-intermittent",
    "bursty-link",
    "corrupt-status",
}


def test_registry_has_exactly_the_named_scenarios_with_descriptions() -> None:
    assert set(SCENARIOS) == EXPECTED_NAMES
    lines = describe()
    assert len(lines) == len(EXPECTED_NAMES)
    assert all(line.split()[0] in EXPECTED_NAMES and len(line.split()) > 3 for line in lines)


def test_unknown_scenario_is_refused_with_the_known_names() -> None:
    with pytest.raises(ValueError, match="sensor-stuck"):
        schedule("sensor-stuk")


async def _readings(log: Log, since: int) -> list[float]:
    return [m.to_celsius() for _, m in log.items[since:]]


async def test_normal_sensor_follows_the_skin() -> None:
    async with (
        world_and_radio(scenario="normal") as (world, radio),
        sensor(world, radio) as (
            _c,
            log,
        ),
    ):
        await asyncio.sleep(30.0)
        values = await _readings(log, 0)
        assert len(values) >= 28
        assert all(abs(v - world.physics.skin_c) < 0.5 for v in values)
        assert len(set(values)) > 3  # noise: a live sensor never repeats itself for long


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
async def test_sensor_dropout_leaves_a_gap_in_the_indications(seed: int) -> None:
    fault = schedule("sensor-dropout", onset_s=ONSET_S, duration_s=15.0, seed=seed)
    async with world_and_radio(scenario=[fault], seed=seed) as (world, radio):
        client = BleakClient(world.sensor_address, backend=radio.client_backend(), timeout=10.0)
        log = Log()
        disconnected = asyncio.Event()
        client = BleakClient(
            world.sensor_address,
            backend=radio.client_backend(),
            timeout=10.0,
            disconnected_callback=lambda _c: disconnected.set(),
        )
        await client.connect()
        await client.start_notify(
            "00002a1c-0000-1000-8000-00805f9b34fb", lambda _c, d: log.add(bytes(d))
        )
        await asyncio.sleep(ONSET_S + 25.0)
        times = [t for t, _ in log.items]
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert disconnected.is_set() or max(gaps) >= 10.0
        if client.is_connected:
            await client.disconnect()


async def test_sensor_stuck_repeats_one_value_while_the_skin_warms() -> None:
    fault = schedule("sensor-stuck", onset_s=ONSET_S, duration_s=300.0)
    async with (
        world_and_radio(scenario=[fault]) as (world, radio),
        sensor(world, radio) as (_s, log),
        massager(world, radio) as (client, _m),
    ):
        await send(client, SetHeater(1, 3000, True, 42.0))
        async with Renewer(client):
            await asyncio.sleep(240.0)
        values = await _readings(log, 0)
        tail = values[-100:]
        assert len(set(tail)) == 1
        assert world.physics.skin_c > tail[0] + 2.0


async def test_sensor_spikes_send_spikes_and_nan() -> None:
    fault = schedule("sensor-spikes", onset_s=ONSET_S, duration_s=120.0, seed=4)
    async with (
        world_and_radio(scenario=[fault], seed=4) as (world, radio),
        sensor(world, radio) as (_c, log),
    ):
        await asyncio.sleep(ONSET_S + 120.0)
        values = [m for _, m in log.items]
        assert any(not m.is_valid for m in values)
        assert any(m.is_valid and abs(m.to_celsius() - world.physics.skin_c) > 2.5 for m in values)


async def test_sensor_fahrenheit_switches_units() -> None:
    fault = schedule("sensor-fahrenheit", onset_s=ONSET_S)
    async with (
        world_and_radio(scenario=[fault]) as (world, radio),
        sensor(world, radio) as (
            _c,
            log,
        ),
    ):
        await asyncio.sleep(ONSET_S + 5.0)
        units = [m.unit for m in log.values]
        assert units[0] is TemperatureUnit.CELSIUS
        assert units[-1] is TemperatureUnit.FAHRENHEIT
        assert log.last.value == pytest.approx(world.physics.skin_c * 9 / 5 + 32, abs=1.0)


async def test_heater_stuck_on_is_held_by_the_cut_out() -> None:
    fault = schedule("heater-stuck-on", onset_s=ONSET_S)
    async with (
        world_and_radio(scenario=[fault]) as (world, radio),
        massager(world, radio) as (
            client,
            log,
        ),
    ):
        await asyncio.sleep(ONSET_S + 1.0)
        await send(client, SetHeater(1, 3000, True, 40.0))
        await asyncio.sleep(1.0)
        await send(client, SetHeater(2, 3000, False, 40.0))
        mark = log.mark()
        await asyncio.sleep(10.0)
        # The controller switched it off and let the lease run out; the element is still on.
        assert all(StatusFlags.HEATER_ENERGISED in s.flags for s in log.values[mark:])
        status = await log.wait_for(lambda s: s.fault is FaultCode.THERMAL_CUTOUT, within_s=1800.0)
        assert StatusFlags.HEATER_ENERGISED not in status.flags
        await asyncio.sleep(600.0)
        assert world.snapshot().max_skin_c < 43.0


async def test_pressure_overshoot_passes_the_target_and_trips_over_pressure() -> None:
    fault = schedule("pressure-overshoot", onset_s=0.0, seed=5)
    async with (
        world_and_radio(scenario=[fault], seed=5) as (world, radio),
        massager(world, radio) as (client, log),
    ):
        await send(client, SetPressure(1, 3000, 60.0))
        async with Renewer(client):
            status = await log.wait_for(lambda s: s.pressure_mmhg > 62.0)
            assert status.pressure_target_mmhg == 60.0
            await log.wait_for(lambda s: s.fault is FaultCode.OVER_PRESSURE)
        assert world.snapshot().max_pressure_mmhg > 70.0


async def test_link_drop_disconnects_the_massager_and_it_comes_back() -> None:
    fault = schedule("link-drop", onset_s=ONSET_S, duration_s=8.0)
    async with world_and_radio(scenario=[fault]) as (world, radio):
        disconnected = asyncio.Event()
        client = BleakClient(
            world.massager_address,
            backend=radio.client_backend(),
            timeout=10.0,
            disconnected_callback=lambda _c: disconnected.set(),
        )
        await client.connect()
        await client.pair()
        await send(client, SetHeater(1, 3000, True, 42.0))
        await asyncio.wait_for(disconnected.wait(), timeout=ONSET_S + 10.0)
        loop = asyncio.get_running_loop()
        lost_at = loop.time()
        # While off air the lease runs out: the heater goes off without the controller.
        await asyncio.sleep(4.0)
        assert not world.physics.heater_on
        async with massager(world, radio) as (again, log):
            assert loop.time() - lost_at >= 6.0 - 0.5  # not before the link returned
            await send(again, SetPressure(2, 3000, 10.0))
            await log.wait_for(lambda s: s.last_sequence == 2)


async def test_massager_reboot_reports_rebooted_with_everything_off() -> None:
    fault = schedule("massager-reboot", onset_s=ONSET_S)
    async with world_and_radio(scenario=[fault]) as (world, radio):
        async with massager(world, radio) as (client, _log):
            await send(client, SetHeater(1, 3000, True, 42.0))
            async with Renewer(client):
                await asyncio.sleep(ONSET_S + 3.0)
        async with massager(world, radio) as (client, log):
            status = await log.wait_for(lambda s: True)
            assert status.fault is FaultCode.REBOOTED
            assert StatusFlags.HEATER_ENABLED not in status.flags
            assert StatusFlags.LEASE_ACTIVE not in status.flags
            assert world.firmware.boots == 2


async def test_low_battery_sets_the_flag() -> None:
    fault = schedule("low-battery", onset_s=ONSET_S, seed=6)
    async with (
        world_and_radio(scenario=[fault], seed=6) as (world, radio),
        massager(world, radio) as (_client, log),
    ):
        status = await log.wait_for(lambda s: StatusFlags.BATTERY_LOW in s.flags)
        assert status.battery_percent < 15
        assert world.snapshot().active_faults == ("low-battery",) or status.battery_percent < 15


async def test_same_scenario_and_seed_replay_the_same_physics() -> None:
    async def one_run() -> tuple[float, float, float]:
        fault = schedule("sensor-spikes", onset_s=2.0, duration_s=30.0, seed=9)
        async with (
            world_and_radio(scenario=[fault], seed=9) as (world, radio),
            massager(world, radio) as (client, _log),
        ):
            await send(client, SetHeater(1, 3000, True, 42.0))
            async with Renewer(client):
                await asyncio.sleep(120.0)
            snap = world.snapshot()
            return snap.skin_c, snap.pad_c, world.sensor_firmware.measure(0.0).value

    first, second = await one_run(), await one_run()
    assert first[:2] == pytest.approx(second[:2], abs=0.05)
    assert not math.isnan(first[0])
