"""Wall time of a 30-minute simulated session on the virtual clock (goal: <= 2 s).

Massager, sensor and physics (firmware_sim.SimWorld) plus one BleakClient over bumble's virtual
radio that pairs, subscribes to Status (5 Hz) and to the Temperature Measurement indications
(1 Hz), turns heater and pressure on and renews the lease every second, as the controller does.
Prints the median (and min/max) wall seconds of a few runs, the median user+system CPU seconds
(less sensitive to other processes on a shared machine than wall time), the machine's load
average, and what was received.

    .venv/bin/python bench/virtual_time.py [--runs 5] [--minutes 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import time

from bleak import BleakClient

from controller.ble.bumble_backend import BumbleRadio
from controller.protocol import (
    MASSAGER_COMMAND_UUID,
    MASSAGER_STATUS_UUID,
    TEMPERATURE_MEASUREMENT_UUID,
    MassagerStatus,
    RenewLease,
    SetHeater,
    SetPressure,
    TemperatureMeasurement,
)
from firmware_sim.clock import run
from firmware_sim.world import SimWorld

RENEW_PERIOD_S = 1.0  # the controller's renewal period (DESIGN.md §3)
LEASE_MS = 3000


async def session(minutes: float, tick_s: float) -> tuple[int, int, float]:
    statuses = readings = 0

    def on_status(_c: object, data: bytearray) -> None:
        nonlocal statuses
        MassagerStatus.decode(bytes(data))
        statuses += 1

    def on_reading(_c: object, data: bytearray) -> None:
        nonlocal readings
        TemperatureMeasurement.decode(bytes(data))
        readings += 1

    async with SimWorld(seed=1, tick_s=tick_s) as world, BumbleRadio(world.link) as radio:
        backend = radio.client_backend()
        async with (
            BleakClient(world.massager_address, backend=backend) as massager,
            BleakClient(world.sensor_address, backend=backend) as sensor,
        ):
            await massager.pair()
            await massager.start_notify(MASSAGER_STATUS_UUID, on_status)
            await sensor.start_notify(TEMPERATURE_MEASUREMENT_UUID, on_reading)
            sequence = 1
            for command in (SetHeater(1, LEASE_MS, True, 41.0), SetPressure(2, LEASE_MS, 40.0)):
                await massager.write_gatt_char(MASSAGER_COMMAND_UUID, command.encode(), True)
                sequence = command.sequence
            loop = asyncio.get_running_loop()
            end = loop.time() + minutes * 60.0
            while loop.time() < end:
                sequence = (sequence + 1) & 0xFFFF
                frame = RenewLease(sequence, LEASE_MS).encode()
                await massager.write_gatt_char(MASSAGER_COMMAND_UUID, frame, True)
                await asyncio.sleep(RENEW_PERIOD_S)
        return statuses, readings, world.snapshot().max_skin_c


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--tick", type=float, default=0.1, help="physics tick, s (default 10 Hz)")
    args = parser.parse_args()
    walls = []
    cpus = []
    load_before = os.getloadavg()[0]
    for _ in range(args.runs):
        started, cpu_started = time.perf_counter(), _cpu_s()
        statuses, readings, max_skin = run(session(args.minutes, args.tick), speed="max")
        walls.append(time.perf_counter() - started)
        cpus.append(_cpu_s() - cpu_started)
    print(
        f"{args.minutes:g} simulated minutes: median {statistics.median(walls):.2f} s wall "
        f"(min {min(walls):.2f}, max {max(walls):.2f}, {args.runs} runs); "
        f"CPU median {statistics.median(cpus):.2f} s (min {min(cpus):.2f}, max {max(cpus):.2f}); "
        f"load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after; "
        f"per run {statuses} status notifications, {readings} indications, "
        f"max skin {max_skin:.2f} °C"
    )


def _cpu_s() -> float:
    """User plus system CPU seconds of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
