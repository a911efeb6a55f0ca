"""The simulated devices through bleak's public API over bumble's virtual radio."""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path

import pytest
from bleak import BleakClient, BleakScanner
from bleak.exc import BleakGATTProtocolError

from controller.protocol import (
    BATTERY_LEVEL_UUID,
    MASSAGER_COMMAND_UUID,
    MASSAGER_LIMITS_UUID,
    MASSAGER_SERVICE_UUID,
    MASSAGER_STATUS_UUID,
    MODEL_NUMBER_UUID,
    TEMPERATURE_TYPE_UUID,
    DeviceLimits,
    FaultCode,
    MassagerStatus,
    RenewLease,
    SetHeater,
    SetPressure,
    StatusFlags,
    TemperatureType,
    TemperatureUnit,
)
from firmware_sim.clock import VirtualTimeLoop
from tests.sim.support import Renewer, massager, send, sensor, world_and_radio

GOLDEN = Path(__file__).parent.parent / "golden"
INSUFFICIENT = {0x05, 0x0F}  # insufficient authentication / encryption


async def test_tests_here_run_on_virtual_time() -> None:
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualTimeLoop)
    before = loop.time()
    await asyncio.sleep(3600.0)
    assert loop.time() - before == pytest.approx(3600.0)


async def test_devices_advertise_their_names_and_services() -> None:
    async with world_and_radio() as (world, radio):
        found = await BleakScanner.discover(
            timeout=1.0, return_adv=True, backend=radio.scanner_backend()
        )
        by_address = {device.address: adv for device, adv in found.values()}
        assert by_address[world.massager_address].local_name == world.massager_name
        assert MASSAGER_SERVICE_UUID in by_address[world.massager_address].service_uuids
        assert by_address[world.sensor_address].local_name == world.sensor_name
        assert (
            "00001809-0000-1000-8000-00805f9b34fb" in by_address[world.sensor_address].service_uuids
        )


async def test_unpaired_central_cannot_command_or_subscribe_but_can_read_limits() -> None:
    async with (
        world_and_radio() as (world, radio),
        massager(world, radio, pair=False) as (
            client,
            _log,
        ),
    ):
        with pytest.raises(BleakGATTProtocolError) as info:
            await send(client, SetHeater(1, 3000, True, 42.0))
        assert info.value.code in INSUFFICIENT
        with pytest.raises(BleakGATTProtocolError) as info:
            await client.start_notify(MASSAGER_STATUS_UUID, lambda _c, _d: None)
        assert info.value.code in INSUFFICIENT
        limits = DeviceLimits.decode(bytes(await client.read_gatt_char(MASSAGER_LIMITS_UUID)))
        assert limits == DeviceLimits(max_pressure_mmhg=70.0, max_lease_ms=3000, cutout_c=43.0)
        assert not world.physics.heater_on


async def test_after_pairing_commands_drive_the_actuators() -> None:
    async with world_and_radio() as (world, radio), massager(world, radio) as (client, log):
        await send(client, SetHeater(1, 3000, True, 42.0))
        await send(client, SetPressure(2, 3000, 40.0))
        status = await log.wait_for(lambda s: s.last_sequence == 2)
        assert StatusFlags.HEATER_ENABLED in status.flags
        assert status.pressure_target_mmhg == 40.0
        async with Renewer(client):
            await log.wait_for(lambda s: s.pressure_mmhg >= 39.0)
            await log.wait_for(lambda s: s.pad_temperature_c >= 41.5, within_s=900.0)
        assert world.physics.heater_on or world.physics.pad_c > 41.0
        # Renewals stopped: the lease runs out and the firmware switches everything off itself.
        status = await log.wait_for(lambda s: StatusFlags.LEASE_ACTIVE not in s.flags)
        assert status.pressure_target_mmhg == 0.0
        assert StatusFlags.HEATER_ENABLED not in status.flags
        model = await client.read_gatt_char(MODEL_NUMBER_UUID)
        assert b"SG-M1" in model
        battery = (await client.read_gatt_char(BATTERY_LEVEL_UUID))[0]
        assert 0 < battery <= 100


async def test_status_is_notified_at_least_five_times_a_second() -> None:
    async with world_and_radio() as (world, radio), massager(world, radio) as (_client, log):
        await asyncio.sleep(1.0)
        start = len(log.items)
        t0 = asyncio.get_running_loop().time()
        await asyncio.sleep(60.0)
        rate = (len(log.items) - start) / (asyncio.get_running_loop().time() - t0)
        assert rate >= 4.9  # 5 Hz, counted on the virtual clock; the edges cost one notification


async def test_health_thermometer_indications_decode_in_celsius_and_fahrenheit() -> None:
    async with world_and_radio(seed=2) as (world, radio), sensor(world, radio) as (client, log):
        first = await log.wait_for(lambda m: True)
        assert first.unit is TemperatureUnit.CELSIUS
        assert first.to_celsius() == pytest.approx(world.physics.skin_c, abs=0.5)
        assert first.timestamp is not None
        kind = await client.read_gatt_char(TEMPERATURE_TYPE_UUID)
        assert TemperatureType(kind[0]) is TemperatureType.TOE
        await asyncio.sleep(10.0)
        assert 9 <= len(log.items) <= 12  # 1 Hz
    async with (
        world_and_radio(sensor_unit=TemperatureUnit.FAHRENHEIT) as (world, radio),
        sensor(world, radio) as (_client, log),
    ):
        reading = await log.wait_for(lambda m: True)
        assert reading.unit is TemperatureUnit.FAHRENHEIT
        assert reading.value == pytest.approx(world.physics.skin_c * 9 / 5 + 32, abs=1.0)


def _golden_commands() -> list[dict[str, object]]:
    cases = []
    for path in sorted(GOLDEN.glob("*.json")):
        case = json.loads(path.read_text())
        if case["kind"] == "command" and case["direction"] in ("both", "decode"):
            case["name"] = path.stem
            cases.append(case)
    return cases


async def test_golden_command_cases_replayed_against_the_firmware() -> None:
    cases = _golden_commands()
    assert len(cases) >= 20
    async with world_and_radio() as (world, radio), massager(world, radio) as (client, log):
        for case in cases:
            frame = bytes.fromhex(str(case["bytes"]))
            before = world.firmware.status(asyncio.get_running_loop().time())
            if "att_error" in case:
                with pytest.raises(BleakGATTProtocolError) as info:
                    await send(client, frame)
                assert info.value.code == case["att_error"], case["name"]
                after = world.firmware.status(asyncio.get_running_loop().time())
                assert after.last_sequence == before.last_sequence, case["name"]
                assert after.flags == before.flags, case["name"]
                continue
            mark = log.mark()
            await send(client, frame)
            value = case["value"]
            assert isinstance(value, dict)
            sequence = value["sequence"]

            def answered(s: MassagerStatus, sequence: object = sequence) -> bool:
                return s.last_sequence == sequence

            status = await log.wait_for(answered, since=mark)
            match value["type"]:
                case "SetPressure":
                    assert status.pressure_target_mmhg == value["target_mmhg"], case["name"]
                    assert StatusFlags.LEASE_ACTIVE in status.flags
                case "SetHeater":
                    assert (StatusFlags.HEATER_ENABLED in status.flags) == value["on"]
                    assert StatusFlags.LEASE_ACTIVE in status.flags
                case "Stop":
                    assert StatusFlags.LEASE_ACTIVE not in status.flags
                    assert status.pressure_target_mmhg == 0.0
                    assert StatusFlags.HEATER_ENABLED not in status.flags
                case "RenewLease":
                    assert status.lease_remaining_ms > 2000
            # Next case from a known state, with a fresh sequence number.
            await send(client, bytes.fromhex("01 03 00 00 00 00"))


async def test_cut_out_holds_when_the_controller_keeps_commanding_heat() -> None:
    async with (
        world_and_radio(neuropathic=True) as (world, radio),
        massager(world, radio) as (
            client,
            log,
        ),
    ):
        refusals = []
        for sequence in range(1, 1800):
            try:
                await send(client, SetHeater(sequence, 3000, True, 45.0))
            except BleakGATTProtocolError as exc:
                refusals.append(exc.code)
            await asyncio.sleep(1.0)
        snapshot = world.snapshot()
        assert snapshot.max_skin_c < 43.0
        assert snapshot.max_pad_c < 43.5
        assert snapshot.cutouts >= 1
        assert refusals
        assert set(refusals) == {0x83}
        assert log.last.fault is FaultCode.THERMAL_CUTOUT
        assert not math.isnan(log.last.pad_temperature_c)


async def test_bonded_central_reconnects_and_commands_without_pairing_again() -> None:
    async with world_and_radio() as (world, radio):
        async with massager(world, radio) as (_client, _log):
            pass
        async with BleakClient(
            world.massager_address, backend=radio.client_backend(), timeout=10.0
        ) as client:
            await client.write_gatt_char(
                MASSAGER_COMMAND_UUID, RenewLease(5, 3000).encode(), response=True
            )
        assert world.firmware.last_sequence == 5
