"""Timing of the bumble backend through bleak's public API. Prints figures; asserts nothing.

    python bench/radio.py

Round trips use the test peripheral of tests/ble: a write to its echo characteristic comes back
as a notification.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from bleak import BleakClient
from bumble.link import LocalLink

from controller.ble.bumble_backend import BumbleRadio, IntervalLink
from tests.ble.bumble_peripheral import NOTIFY_CHAR, WRITE_CHAR, WRITE_NR_CHAR, run_peripheral

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from bleak.backends.characteristic import BleakGATTCharacteristic

ROOT = Path(__file__).resolve().parents[1]

ROUND_TRIPS = 1000
INTERVAL_ROUND_TRIPS = 100  # each takes two intervals: 100 keeps the 30 ms run near 6 s
CONNECTS = 20
PAIRINGS = 10
TIMEOUT_S = 10.0
NOISE_STALL_S = 0.001  # a loop turn longer than this means the OS took the CPU away


def _summary(label: str, samples_s: list[float]) -> None:
    samples_ms = sorted(s * 1000 for s in samples_s)
    p99 = samples_ms[min(len(samples_ms) - 1, int(len(samples_ms) * 0.99))]
    print(
        f"{label:<52} n={len(samples_ms):<5} median {statistics.median(samples_ms):7.3f} ms"
        f"   p99 {p99:7.3f} ms"
    )


async def _round_trips(link: LocalLink, count: int, *, response: bool) -> list[float]:
    async with run_peripheral(link) as peripheral, BumbleRadio(link) as radio:
        received: asyncio.Queue[float] = asyncio.Queue()

        def on_notify(_sender: BleakGATTCharacteristic, _data: bytearray) -> None:
            received.put_nowait(time.perf_counter())

        char = WRITE_CHAR if response else WRITE_NR_CHAR
        async with BleakClient(
            peripheral.address, backend=radio.client_backend(), timeout=TIMEOUT_S
        ) as client:
            await client.start_notify(NOTIFY_CHAR, on_notify)
            samples = []
            for index in range(count):
                start = time.perf_counter()
                await client.write_gatt_char(char, index.to_bytes(2, "little"), response=response)
                samples.append(await asyncio.wait_for(received.get(), TIMEOUT_S) - start)
            return samples


async def _loop_noise(duration_s: float) -> None:
    """Stalls of a bare event loop: the machine's own scheduling noise, for reading the p99s."""
    stalls = []
    end = time.perf_counter() + duration_s
    previous = time.perf_counter()
    while previous < end:
        await asyncio.sleep(0)
        now = time.perf_counter()
        if now - previous > NOISE_STALL_S:
            stalls.append(now - previous)
        previous = now
    worst = max(stalls, default=0.0) * 1000
    print(
        f"{'noise floor: bare event loop stalls > 1 ms':<52} "
        f"{len(stalls) / duration_s:5.0f} per s, worst {worst:.3f} ms"
    )


async def _timed(repeats: int, make: Callable[[], Awaitable[float]]) -> list[float]:
    return [await make() for _ in range(repeats)]


async def _connect_times(link: LocalLink) -> tuple[float, list[float]]:
    async with run_peripheral(link) as peripheral, BumbleRadio(link) as radio:

        async def once() -> float:
            client = BleakClient(
                peripheral.address, backend=radio.client_backend(), timeout=TIMEOUT_S
            )
            start = time.perf_counter()
            await client.connect()  # LE connect, MTU exchange, full discovery
            elapsed = time.perf_counter() - start
            await client.disconnect()
            return elapsed

        first = await once()
        return first, await _timed(CONNECTS, once)


async def _pairing_times() -> list[float]:
    samples = []
    for _ in range(PAIRINGS):
        link = LocalLink()
        async with (
            run_peripheral(link) as peripheral,
            BumbleRadio(link) as radio,
            BleakClient(
                peripheral.address, backend=radio.client_backend(), timeout=TIMEOUT_S
            ) as client,
        ):
            start = time.perf_counter()
            await client.pair()
            samples.append(time.perf_counter() - start)
    return samples


async def main() -> None:
    print(f"bumble backend through BleakClient, Python {sys.version.split()[0]}")
    await _loop_noise(1.0)
    _summary(
        "write (with response) -> notify, LocalLink",
        await _round_trips(LocalLink(), ROUND_TRIPS, response=True),
    )
    _summary(
        "write (without response) -> notify, LocalLink",
        await _round_trips(LocalLink(), ROUND_TRIPS, response=False),
    )
    first, connects = await _connect_times(LocalLink())
    print(f"{'first connect + MTU + discovery':<52} {first * 1000:7.3f} ms")
    _summary("connect + MTU + discovery (after the first)", connects)
    _summary("LE Secure Connections pairing (Just Works)", await _pairing_times())
    for interval_s in (0.0075, 0.030):
        _summary(
            f"write (with response) -> notify, IntervalLink {interval_s * 1000:g} ms",
            await _round_trips(
                IntervalLink(interval_s=interval_s), INTERVAL_ROUND_TRIPS, response=True
            ),
        )


if __name__ == "__main__":
    asyncio.run(main())
