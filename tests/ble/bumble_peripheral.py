"""A small bumble GATT server for the backend's tests and bench (not the massager: that is
firmware_sim's). It runs on a stock bumble ``Controller``, as a simulated device would.

Writing to the echo characteristics (with or without response) notifies the written bytes on the
notify characteristic, which gives the bench its round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bumble import att, data_types, gatt, hci
from bumble.controller import Controller
from bumble.core import UUID, AdvertisingData, DataType
from bumble.device import Connection, Device, DeviceConfiguration
from bumble.host import Host
from bumble.keys import MemoryKeyStore
from bumble.profiles.battery_service import BatteryService
from bumble.transport.common import AsyncPipeSink

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from bumble.link import LocalLink

TEST_SERVICE = "7e5a0001-1b2c-4d5e-8f90-a1b2c3d4e5f6"
READ_CHAR = "7e5a0002-1b2c-4d5e-8f90-a1b2c3d4e5f6"
WRITE_CHAR = "7e5a0003-1b2c-4d5e-8f90-a1b2c3d4e5f6"
WRITE_NR_CHAR = "7e5a0004-1b2c-4d5e-8f90-a1b2c3d4e5f6"
NOTIFY_CHAR = "7e5a0005-1b2c-4d5e-8f90-a1b2c3d4e5f6"
INDICATE_CHAR = "7e5a0006-1b2c-4d5e-8f90-a1b2c3d4e5f6"
SECURE_CHAR = "7e5a0007-1b2c-4d5e-8f90-a1b2c3d4e5f6"
BATTERY_SERVICE = "0000180f-0000-1000-8000-00805f9b34fb"
BATTERY_LEVEL_CHAR = "00002a19-0000-1000-8000-00805f9b34fb"
USER_DESCRIPTION = "00002901-0000-1000-8000-00805f9b34fb"
CCCD = "00002902-0000-1000-8000-00805f9b34fb"
MANUFACTURER_ID = 0xFFFF  # reserved for tests by the Bluetooth SIG

READ_VALUE = b"hello"
# Written to an echo characteristic, this is refused with an application ATT error, as firmware
# refuses a command it will not carry out.
REJECTED_VALUE = b"reject"
REJECT_ERROR_CODE = 0x80
READ_DESCRIPTION = b"greeting"

# Tests connect on the next advertisement: 20 ms keeps them fast without flooding the loop.
ADVERTISING_INTERVAL_MS = 20


@dataclass
class Peripheral:
    """A running test peripheral and what it observed."""

    device: Device
    address: str
    writes: list[bytes] = field(default_factory=list)
    secure_writes: list[bytes] = field(default_factory=list)
    pairings: int = 0
    encryptions: int = 0
    connections: list[Connection] = field(default_factory=list)
    battery_level: int = 87
    notify_char: gatt.Characteristic[bytes] | None = None
    indicate_char: gatt.Characteristic[bytes] | None = None
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    async def notify(self, value: bytes) -> None:
        assert self.notify_char is not None
        await self.device.notify_subscribers(self.notify_char, value)

    async def indicate(self, value: bytes) -> None:
        assert self.indicate_char is not None
        await self.device.indicate_subscribers(self.indicate_char, value)

    @property
    def connection(self) -> Connection:
        return self.connections[-1]


def _build_services(peripheral: Peripheral) -> list[gatt.Service]:
    props = gatt.Characteristic.Properties

    async def on_echo_write(_connection: Connection, value: bytes) -> None:
        if value == REJECTED_VALUE:
            raise att.ATT_Error(REJECT_ERROR_CODE)
        peripheral.writes.append(value)
        await peripheral.notify(value)

    def on_secure_write(_connection: Connection, value: bytes) -> None:
        peripheral.secure_writes.append(value)

    notify_char: gatt.Characteristic[bytes] = gatt.Characteristic(
        NOTIFY_CHAR, props.READ | props.NOTIFY, gatt.Characteristic.READABLE, b""
    )
    indicate_char: gatt.Characteristic[bytes] = gatt.Characteristic(
        INDICATE_CHAR, props.INDICATE, gatt.Characteristic.READABLE, b""
    )
    peripheral.notify_char = notify_char
    peripheral.indicate_char = indicate_char
    return [
        gatt.Service(
            TEST_SERVICE,
            [
                gatt.Characteristic(
                    READ_CHAR,
                    props.READ,
                    gatt.Characteristic.READABLE,
                    READ_VALUE,
                    descriptors=[
                        gatt.Descriptor(
                            USER_DESCRIPTION, gatt.Descriptor.READABLE, READ_DESCRIPTION
                        )
                    ],
                ),
                gatt.Characteristic(
                    WRITE_CHAR,
                    props.WRITE,
                    gatt.Characteristic.WRITEABLE,
                    gatt.CharacteristicValue(write=on_echo_write),
                ),
                gatt.Characteristic(
                    WRITE_NR_CHAR,
                    props.WRITE_WITHOUT_RESPONSE,
                    gatt.Characteristic.WRITEABLE,
                    gatt.CharacteristicValue(write=on_echo_write),
                ),
                notify_char,
                indicate_char,
                gatt.Characteristic(
                    SECURE_CHAR,
                    props.READ | props.WRITE,
                    gatt.Characteristic.Permissions.READ_REQUIRES_ENCRYPTION
                    | gatt.Characteristic.Permissions.WRITE_REQUIRES_ENCRYPTION,
                    gatt.CharacteristicValue(read=lambda _c: b"secret", write=on_secure_write),
                ),
            ],
        ),
        BatteryService(lambda _connection: peripheral.battery_level),
    ]


@contextlib.asynccontextmanager
async def run_peripheral(
    link: LocalLink,
    name: str = "TestPeripheral",
    *,
    address: str | None = None,
    advertise_service: bool = True,
) -> AsyncIterator[Peripheral]:
    """A powered-on, advertising test peripheral on ``link``."""
    identity = (
        hci.Address(address) if address is not None else hci.Address.generate_static_address()
    )
    controller = Controller(f"{name}-controller", link=link)
    config = DeviceConfiguration()
    config.name = name
    config.address = identity
    config.identity_address_type = hci.Address.RANDOM_DEVICE_ADDRESS
    config.advertising_interval_min = ADVERTISING_INTERVAL_MS
    config.advertising_interval_max = ADVERTISING_INTERVAL_MS
    ad_structures: list[DataType] = [
        data_types.CompleteLocalName(name),
        data_types.ManufacturerSpecificData(MANUFACTURER_ID, b"\x01\x02"),
    ]
    if advertise_service:
        ad_structures.append(data_types.IncompleteListOf128BitServiceUUIDs([UUID(TEST_SERVICE)]))
    config.advertising_data = bytes(AdvertisingData(ad_structures))
    device = Device(config=config, host=Host(controller, AsyncPipeSink(controller)))
    device.keystore = MemoryKeyStore()
    peripheral = Peripheral(device=device, address=identity.to_string(False))
    device.add_services(_build_services(peripheral))

    def on_connection(connection: Connection) -> None:
        peripheral.connections.append(connection)
        peripheral.connected.set()

        def on_pairing(*_args: object) -> None:
            peripheral.pairings += 1

        def on_encryption_change(*_args: object) -> None:
            peripheral.encryptions += 1

        connection.on(connection.EVENT_PAIRING, on_pairing)
        connection.on(connection.EVENT_CONNECTION_ENCRYPTION_CHANGE, on_encryption_change)

    device.on(device.EVENT_CONNECTION, on_connection)
    await device.power_on()
    await device.start_advertising(auto_restart=True)
    try:
        yield peripheral
    finally:
        # Switched off at the controller, not over HCI: a stop command racing bumble's own
        # advertising restart after a disconnection confuses the host's command tracking.
        link.remove_controller(controller)
        controller.le_legacy_advertiser.stop()
        for advertising_set in controller.advertising_sets.values():
            advertising_set.stop()
