"""The controller side of the cross-process test, run as its own process.

Joins the simulator's radio over TCP, then scans, connects, pairs, reads, writes and waits for a
notification, all through bleak; prints one JSON line with what it saw.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import TYPE_CHECKING

from bleak import BleakClient, BleakScanner

from controller.ble.bumble_backend import BumbleRadio

if TYPE_CHECKING:
    from bleak.backends.characteristic import BleakGATTCharacteristic

NOTIFY_CHAR = "7e5a0005-1b2c-4d5e-8f90-a1b2c3d4e5f6"
WRITE_CHAR = "7e5a0003-1b2c-4d5e-8f90-a1b2c3d4e5f6"
READ_CHAR = "7e5a0002-1b2c-4d5e-8f90-a1b2c3d4e5f6"
SECURE_CHAR = "7e5a0007-1b2c-4d5e-8f90-a1b2c3d4e5f6"
# Bounds each step on a loaded machine; a healthy run takes a few milliseconds.
STEP_TIMEOUT_S = 10.0


async def main(spec: str, address: str) -> None:
    notified: asyncio.Queue[bytes] = asyncio.Queue()

    def on_notify(_sender: BleakGATTCharacteristic, data: bytearray) -> None:
        notified.put_nowait(bytes(data))

    async with BumbleRadio(spec) as radio:
        device = await BleakScanner.find_device_by_address(
            address, timeout=STEP_TIMEOUT_S, backend=radio.scanner_backend()
        )
        assert device is not None, "peripheral not found"
        async with BleakClient(
            device, backend=radio.client_backend(), timeout=STEP_TIMEOUT_S
        ) as client:
            await client.pair()
            read = bytes(await client.read_gatt_char(READ_CHAR))
            await client.write_gatt_char(SECURE_CHAR, b"remote", response=True)
            await client.start_notify(NOTIFY_CHAR, on_notify)
            await client.write_gatt_char(WRITE_CHAR, b"ping", response=True)
            async with asyncio.timeout(STEP_TIMEOUT_S):
                echo = await notified.get()
        print(json.dumps({"name": device.name, "read": read.hex(), "echo": echo.hex()}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
