"""A controller in another process joins the simulator's virtual radio over TCP (HCI over H4)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from controller.ble.bumble_backend import expose_hci_controller
from tests.ble.bumble_peripheral import READ_VALUE, Peripheral

if TYPE_CHECKING:
    from bumble.link import LocalLink

# The child process imports bumble and bleak (about half a second) before it does anything.
PROCESS_TIMEOUT_S = 60.0
WAIT_S = 10.0
ROOT = Path(__file__).resolve().parents[2]


async def test_bleak_client_in_another_process_pairs_reads_writes_and_is_notified(
    link: LocalLink, peripheral: Peripheral
) -> None:
    async with expose_hci_controller(link, "tcp-server:127.0.0.1:0") as endpoint:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            str(Path(__file__).with_name("remote_client.py")),
            endpoint.transport_spec,
            peripheral.address,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        async with asyncio.timeout(PROCESS_TIMEOUT_S):
            out, err = await child.communicate()
        assert child.returncode == 0, err.decode()
        result = json.loads(out.decode().strip().splitlines()[-1])
        assert result == {"name": "TestPeripheral", "read": READ_VALUE.hex(), "echo": b"ping".hex()}
        assert peripheral.pairings == 1
        assert peripheral.secure_writes == [b"remote"]


async def test_a_vanished_host_drops_its_links(link: LocalLink, peripheral: Peripheral) -> None:
    """A killed controller process must not leave the peripheral thinking it is still connected."""
    async with expose_hci_controller(link) as endpoint:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            "import asyncio, sys\n"
            "from bleak import BleakClient\n"
            "from controller.ble.bumble_backend import BumbleRadio\n"
            "async def main():\n"
            "    async with BumbleRadio(sys.argv[1]) as radio:\n"
            "        client = BleakClient(sys.argv[2], backend=radio.client_backend())\n"
            "        await client.connect()\n"
            "        print('connected', flush=True)\n"
            "        await asyncio.Event().wait()\n"
            "asyncio.run(main())\n",
            endpoint.transport_spec,
            peripheral.address,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        assert child.stdout is not None
        async with asyncio.timeout(PROCESS_TIMEOUT_S):
            assert await child.stdout.readline() == b"connected\n"
        disconnected = asyncio.Event()
        peripheral.connection.on(
            peripheral.connection.EVENT_DISCONNECTION, lambda _r: disconnected.set()
        )
        child.kill()
        await child.wait()
        async with asyncio.timeout(WAIT_S):
            await disconnected.wait()
