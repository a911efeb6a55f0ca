"""The bumble backend through bleak's public API only, against a bumble GATT server.

Every wait is on an event or a future, bounded by WAIT_S: nothing here waits "long enough".
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import pytest
from bleak import BleakClient, BleakScanner
from bleak.exc import BleakDeviceNotFoundError, BleakError, BleakGATTProtocolError
from bumble.pairing import PairingConfig, PairingDelegate

from controller.ble.bumble_backend import (
    BumbleRadio,
    IntervalLink,
    IoCapability,
    PairingPolicy,
    expose_hci_controller,
)
from controller.errors import ConfigError
from tests.ble.bumble_peripheral import (
    BATTERY_LEVEL_CHAR,
    BATTERY_SERVICE,
    CCCD,
    INDICATE_CHAR,
    MANUFACTURER_ID,
    NOTIFY_CHAR,
    READ_CHAR,
    READ_DESCRIPTION,
    READ_VALUE,
    REJECT_ERROR_CODE,
    REJECTED_VALUE,
    SECURE_CHAR,
    TEST_SERVICE,
    USER_DESCRIPTION,
    WRITE_CHAR,
    WRITE_NR_CHAR,
    Peripheral,
    run_peripheral,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from bleak.backends.characteristic import BleakGATTCharacteristic
    from bleak.backends.device import BLEDevice
    from bleak.backends.scanner import AdvertisementData
    from bumble.link import LocalLink

# Generous bound for events on a shared, noisy machine; a healthy run takes milliseconds.
WAIT_S = 10.0
# The connect timeout the tests give bleak when the peer is present.
CONNECT_TIMEOUT_S = 10.0
# For the tests where the peer is absent and the timeout itself is what is tested.
ABSENT_TIMEOUT_S = 0.3

INSUFFICIENT = {0x05, 0x0F}  # insufficient authentication / insufficient encryption


async def _find(radio: BumbleRadio, address: str) -> BLEDevice:
    device = await BleakScanner.find_device_by_address(
        address, timeout=WAIT_S, backend=radio.scanner_backend()
    )
    assert device is not None, f"{address} not found"
    return device


def _client(radio: BumbleRadio, target: BLEDevice | str, **kwargs: object) -> BleakClient:
    return BleakClient(target, backend=radio.client_backend(), timeout=CONNECT_TIMEOUT_S, **kwargs)  # type: ignore[arg-type]


class _Collector:
    """A notification callback that lets a test await the n-th value."""

    def __init__(self) -> None:
        self.values: list[bytearray] = []
        self._changed = asyncio.Event()

    def __call__(self, _sender: BleakGATTCharacteristic, data: bytearray) -> None:
        self.values.append(data)
        self._changed.set()

    async def wait_for(self, count: int) -> list[bytearray]:
        async with asyncio.timeout(WAIT_S):
            while len(self.values) < count:
                self._changed.clear()
                await self._changed.wait()
        return self.values


# -- scanning ----------------------------------------------------------------------------------


async def test_scan_reports_name_uuids_manufacturer_data_and_rssi(
    peripheral: Peripheral, radio: BumbleRadio
) -> None:
    seen: asyncio.Future[AdvertisementData] = asyncio.get_running_loop().create_future()

    def on_detection(device: BLEDevice, adv: AdvertisementData) -> None:
        if device.address == peripheral.address and not seen.done():
            seen.set_result(adv)

    async with BleakScanner(on_detection, backend=radio.scanner_backend()) as scanner:
        async with asyncio.timeout(WAIT_S):
            adv = await seen
        device, latest = scanner.discovered_devices_and_advertisement_data[peripheral.address]

    assert device.name == "TestPeripheral"
    assert adv.local_name == "TestPeripheral"
    assert adv.manufacturer_data == {MANUFACTURER_ID: b"\x01\x02"}
    assert adv.rssi == -50
    # The virtual controller repeats the advertising data as scan response: reported once.
    assert latest.service_uuids == [TEST_SERVICE]


async def test_scan_service_uuid_filter_hides_other_devices(
    link: LocalLink, peripheral: Peripheral, radio: BumbleRadio
) -> None:
    async with run_peripheral(link, "Other", advertise_service=False) as other:
        heard_both = asyncio.Event()
        heard: set[str] = set()

        def on_any(device: BLEDevice, _adv: AdvertisementData) -> None:
            heard.add(device.address)
            if {peripheral.address, other.address} <= heard:
                heard_both.set()

        filtered_heard = asyncio.Event()

        def on_filtered(device: BLEDevice, _adv: AdvertisementData) -> None:
            if device.address == peripheral.address:
                filtered_heard.set()

        filtered = BleakScanner(
            on_filtered, service_uuids=[TEST_SERVICE], backend=radio.scanner_backend()
        )
        async with filtered, BleakScanner(on_any, backend=radio.scanner_backend()):
            async with asyncio.timeout(WAIT_S):
                await heard_both.wait()
                await filtered_heard.wait()
        # Both scanners are fed from the same controller scan, so the filtered one got "Other"'s
        # advertisements too and dropped them.
        assert {d.address for d in filtered.discovered_devices} == {peripheral.address}


async def test_find_device_by_address_and_by_name(
    peripheral: Peripheral, radio: BumbleRadio
) -> None:
    by_address = await _find(radio, peripheral.address)
    by_name = await BleakScanner.find_device_by_name(
        "TestPeripheral", timeout=WAIT_S, backend=radio.scanner_backend()
    )
    assert by_address.address == peripheral.address
    assert by_name is not None
    assert by_name.address == peripheral.address


# -- connection and discovery ------------------------------------------------------------------


async def test_discovery_builds_bleaks_service_collection(
    peripheral: Peripheral, radio: BumbleRadio
) -> None:
    async with _client(radio, await _find(radio, peripheral.address)) as client:
        assert client.is_connected
        assert client.mtu_size == 517
        services = client.services
        test_service = services.get_service(TEST_SERVICE)
        assert test_service is not None
        assert services.get_service(BATTERY_SERVICE) is not None

        props = {c.uuid: sorted(c.properties) for c in test_service.characteristics}
        assert props == {
            READ_CHAR: ["read"],
            WRITE_CHAR: ["write"],
            WRITE_NR_CHAR: ["write-without-response"],
            NOTIFY_CHAR: ["notify", "read"],
            INDICATE_CHAR: ["indicate"],
            SECURE_CHAR: ["read", "write"],
        }
        notify = services.get_characteristic(NOTIFY_CHAR)
        assert notify is not None
        assert notify.service_uuid == TEST_SERVICE
        assert [d.uuid for d in notify.descriptors] == [CCCD]
        read = services.get_characteristic(READ_CHAR)
        assert read is not None
        assert [d.uuid for d in read.descriptors] == [USER_DESCRIPTION]
        assert read.max_write_without_response_size == 517 - 3


async def test_connect_by_address_string_scans_for_it(
    peripheral: Peripheral, radio: BumbleRadio
) -> None:
    async with _client(radio, peripheral.address) as client:
        assert await client.read_gatt_char(READ_CHAR) == READ_VALUE


async def test_client_by_address_string_reports_the_advertised_name(
    peripheral: Peripheral, radio: BumbleRadio
) -> None:
    # As bleak's platform backends do; `soleguard pair` saves this name for the device.
    async with _client(radio, peripheral.address) as client:
        assert client.name == "TestPeripheral"


async def test_services_argument_limits_discovery(
    peripheral: Peripheral, radio: BumbleRadio
) -> None:
    async with _client(radio, peripheral.address, services=[BATTERY_SERVICE]) as client:
        assert [s.uuid for s in client.services] == [BATTERY_SERVICE]


# -- reads and writes --------------------------------------------------------------------------


async def test_read_characteristic_descriptor_and_battery(
    peripheral: Peripheral, radio: BumbleRadio
) -> None:
    async with _client(radio, peripheral.address) as client:
        value = await client.read_gatt_char(READ_CHAR)
        assert isinstance(value, bytearray)
        assert value == READ_VALUE
        read = client.services.get_characteristic(READ_CHAR)
        assert read is not None
        description = read.get_descriptor(USER_DESCRIPTION)
        assert description is not None
        assert await client.read_gatt_descriptor(description) == READ_DESCRIPTION
        peripheral.battery_level = 42
        assert await client.read_gatt_char(BATTERY_LEVEL_CHAR) == bytes([42])


async def test_write_with_and_without_response_reach_the_peripheral(
    peripheral: Peripheral, radio: BumbleRadio
) -> None:
    echoes = _Collector()
    async with _client(radio, peripheral.address) as client:
        await client.start_notify(NOTIFY_CHAR, echoes)
        await client.write_gatt_char(WRITE_CHAR, b"with", response=True)
        assert peripheral.writes == [b"with"]  # the response came after the server handled it
        await client.write_gatt_char(WRITE_NR_CHAR, bytearray(b"without"), response=False)
        assert await echoes.wait_for(2) == [b"with", b"without"]
        assert peripheral.writes == [b"with", b"without"]


async def test_att_error_becomes_bleak_gatt_protocol_error_with_code(
    peripheral: Peripheral, radio: BumbleRadio
) -> None:
    async with _client(radio, peripheral.address) as client:
        with pytest.raises(BleakGATTProtocolError) as raised:
            await client.write_gatt_char(WRITE_CHAR, REJECTED_VALUE, response=True)
        assert raised.value.code == REJECT_ERROR_CODE
        assert await client.read_gatt_char(READ_CHAR) == READ_VALUE  # the link is still usable


# -- notifications and indications -------------------------------------------------------------


async def test_notifications_and_indications_reach_the_callback(
    peripheral: Peripheral, radio: BumbleRadio
) -> None:
    notified, indicated = _Collector(), _Collector()
    async with _client(radio, peripheral.address) as client:
        await client.start_notify(NOTIFY_CHAR, notified)
        await client.start_notify(INDICATE_CHAR, indicated)
        await peripheral.notify(b"n1")
        # indicate_subscribers returns once the client confirmed: the callback has run.
        await peripheral.indicate(b"i1")
        assert await notified.wait_for(1) == [b"n1"]
        assert indicated.values == [b"i1"]
        assert all(isinstance(v, bytearray) for v in notified.values + indicated.values)


async def test_stop_notify_stops_notifications(peripheral: Peripheral, radio: BumbleRadio) -> None:
    notified = _Collector()
    async with _client(radio, peripheral.address) as client:
        await client.start_notify(NOTIFY_CHAR, notified)
        await peripheral.notify(b"before")
        await notified.wait_for(1)
        await client.stop_notify(NOTIFY_CHAR)
        notify = client.services.get_characteristic(NOTIFY_CHAR)
        assert notify is not None
        cccd = notify.get_descriptor(CCCD)
        assert cccd is not None
        assert await client.read_gatt_descriptor(cccd) == b"\x00\x00"
        await peripheral.notify(b"after")
        # ATT keeps order on a link: a notification sent before this read's response would have
        # been delivered before it.
        await client.read_gatt_char(READ_CHAR)
        assert notified.values == [b"before"]


# -- security ----------------------------------------------------------------------------------


async def test_encrypted_characteristic_refuses_unpaired_write(
    peripheral: Peripheral, radio: BumbleRadio
) -> None:
    async with _client(radio, peripheral.address) as client:
        with pytest.raises(BleakGATTProtocolError) as raised:
            await client.write_gatt_char(SECURE_CHAR, b"x", response=True)
        assert raised.value.code in INSUFFICIENT
    assert peripheral.secure_writes == []


async def test_pairing_then_encrypted_write_succeeds(
    peripheral: Peripheral, radio: BumbleRadio
) -> None:
    async with _client(radio, peripheral.address) as client:
        await client.pair()
        await client.write_gatt_char(SECURE_CHAR, b"x", response=True)
    assert peripheral.secure_writes == [b"x"]
    assert peripheral.pairings == 1
    assert await radio.bonded_addresses() == [peripheral.address]


async def test_pair_on_connect_argument(peripheral: Peripheral, radio: BumbleRadio) -> None:
    async with _client(radio, peripheral.address, pair=True) as client:
        assert await client.read_gatt_char(SECURE_CHAR) == b"secret"
    assert peripheral.pairings == 1


async def test_reconnect_reuses_the_bond_without_pairing_again(
    peripheral: Peripheral, radio: BumbleRadio
) -> None:
    async with _client(radio, peripheral.address) as client:
        await client.pair()
    async with _client(radio, peripheral.address) as client:
        await client.write_gatt_char(SECURE_CHAR, b"again", response=True)
        assert peripheral.connection.is_encrypted
    assert peripheral.pairings == 1
    assert len(peripheral.connections) == 2
    assert peripheral.secure_writes == [b"again"]


async def test_bond_file_survives_a_radio_restart(
    link: LocalLink, peripheral: Peripheral, tmp_path: Path
) -> None:
    bonds = tmp_path / "bonds.json"
    async with BumbleRadio(link, keystore=bonds) as first:
        first_address = first.address
        async with _client(first, peripheral.address) as client:
            await client.pair()
    assert bonds.exists()
    async with BumbleRadio(link, keystore=bonds) as second:
        assert second.address == first_address  # the peripheral filed the bond under it
        async with _client(second, peripheral.address) as client:
            await client.write_gatt_char(SECURE_CHAR, b"restarted", response=True)
    assert peripheral.pairings == 1
    assert peripheral.secure_writes == [b"restarted"]


@contextlib.asynccontextmanager
async def _radio_on(link: LocalLink, transport: str, bonds: Path) -> AsyncIterator[BumbleRadio]:
    """A radio on ``link`` directly, or through an exposed controller over HCI/TCP."""
    if transport == "local":
        async with BumbleRadio(link, keystore=bonds) as radio:
            yield radio
        return
    async with (
        expose_hci_controller(link) as endpoint,
        BumbleRadio(endpoint.transport_spec, keystore=bonds) as radio,
    ):
        yield radio


@pytest.mark.parametrize("transport", ["local", "tcp"])
async def test_bonded_devices_connect_concurrently_by_address_after_a_restart(
    link: LocalLink, peripheral: Peripheral, tmp_path: Path, transport: str
) -> None:
    """The controller's start-up: both links connect at once to devices bonded in an earlier run.

    Regression: each connect scanned for its address, then bumble listened for the bonded peer's
    current address on that same scan, which the other link's connect stopped once it had found
    its own device: both connects waited for the whole timeout.
    """
    bonds = tmp_path / "bonds.json"
    async with run_peripheral(link, "Second") as second:
        async with BumbleRadio(link, keystore=bonds) as first_run:
            for address in (peripheral.address, second.address):
                async with _client(first_run, address) as client:
                    await client.pair()
        async with _radio_on(link, transport, bonds) as radio:
            clients = [_client(radio, peripheral.address), _client(radio, second.address)]
            await asyncio.gather(*(c.connect() for c in clients))
            try:
                writes = (c.write_gatt_char(SECURE_CHAR, b"bonded", response=True) for c in clients)
                await asyncio.gather(*writes)
            finally:
                await asyncio.gather(*(c.disconnect() for c in clients))
    assert peripheral.pairings == second.pairings == 1
    assert peripheral.secure_writes == second.secure_writes == [b"bonded"]


async def test_a_bonded_connect_outlives_another_scan_that_ends_meanwhile(
    link: LocalLink, peripheral: Peripheral, radio: BumbleRadio
) -> None:
    """A scanner that stops while a bonded peer is being connected does not stall the connect.

    Deterministic form of the start-up regression above: the peer is silent while the connect
    waits for it, and a scan of someone else starts and ends in that time.
    """
    async with _client(radio, peripheral.address) as client:
        await client.pair()
    await _find(radio, peripheral.address)  # advertising again after the disconnection
    await peripheral.device.stop_advertising()
    async with run_peripheral(link, "Beacon"):
        # The radio is not scanning now; the beacon's next report tells us the controller scans
        # again, which it does only for the connect: it listens for the bonded peer's address.
        scanning: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        radio.device.once(radio.device.EVENT_ADVERTISEMENT, lambda _adv: scanning.set_result(None))
        client = _client(radio, peripheral.address)
        connecting = asyncio.create_task(client.connect(), name="bonded-connect")
        try:
            async with asyncio.timeout(WAIT_S):
                await scanning
            async with BleakScanner(backend=radio.scanner_backend()):
                pass
            await peripheral.device.start_advertising(auto_restart=True)
            await connecting
            assert await client.read_gatt_char(READ_CHAR) == READ_VALUE
        finally:
            connecting.cancel()
            await asyncio.gather(connecting, return_exceptions=True)
            await client.disconnect()


async def test_unpair_forgets_the_bond(peripheral: Peripheral, radio: BumbleRadio) -> None:
    async with _client(radio, peripheral.address) as client:
        await client.pair()
        await client.unpair()
        assert not client.is_connected
    assert await radio.bonded_addresses() == []
    async with _client(radio, peripheral.address) as client:
        with pytest.raises(BleakGATTProtocolError) as raised:
            await client.write_gatt_char(SECURE_CHAR, b"x", response=True)
        assert raised.value.code in INSUFFICIENT


def test_mitm_needs_an_io_capability() -> None:
    with pytest.raises(ConfigError):
        PairingPolicy(mitm=True)
    PairingPolicy(io_capability=IoCapability.DISPLAY_YES_NO, mitm=True)


async def test_numeric_comparison_pairing_is_authenticated(link: LocalLink) -> None:
    compared: list[int] = []

    async def compare(number: int) -> bool:
        compared.append(number)
        return True

    policy = PairingPolicy(
        io_capability=IoCapability.DISPLAY_YES_NO, mitm=True, compare_numbers=compare
    )
    async with run_peripheral(link) as peripheral, BumbleRadio(link, pairing=policy) as radio:
        peripheral.device.pairing_config_factory = _display_yes_no_config
        async with _client(radio, peripheral.address) as client:
            await client.pair()
            assert await client.read_gatt_char(SECURE_CHAR) == b"secret"
        keystore = radio.device.keystore
        assert keystore is not None
        keys = await keystore.get(peripheral.address)
    assert len(compared) == 1
    assert keys is not None
    assert keys.ltk is not None
    assert keys.ltk.authenticated


def _display_yes_no_config(_connection: object) -> PairingConfig:
    return PairingConfig(
        sc=True,
        mitm=True,
        bonding=True,
        delegate=PairingDelegate(
            io_capability=PairingDelegate.IoCapability.DISPLAY_OUTPUT_AND_YES_NO_INPUT
        ),
        identity_address_type=PairingConfig.AddressType.RANDOM,
    )


# -- disconnection -----------------------------------------------------------------------------


async def test_peer_disconnect_fires_the_disconnected_callback(
    peripheral: Peripheral, radio: BumbleRadio
) -> None:
    dropped: asyncio.Future[BleakClient] = asyncio.get_running_loop().create_future()
    client = BleakClient(
        peripheral.address,
        disconnected_callback=dropped.set_result,
        backend=radio.client_backend(),
        timeout=CONNECT_TIMEOUT_S,
    )
    await client.connect()
    await peripheral.connection.disconnect()
    async with asyncio.timeout(WAIT_S):
        assert await dropped is client
    assert not client.is_connected
    with pytest.raises(BleakError):
        await client.read_gatt_char(READ_CHAR)


async def test_own_disconnect_fires_the_callback_too(
    peripheral: Peripheral, radio: BumbleRadio
) -> None:
    # As bleak's BlueZ backend does: the callback reports every end of the link.
    dropped: asyncio.Future[BleakClient] = asyncio.get_running_loop().create_future()
    async with BleakClient(
        peripheral.address,
        disconnected_callback=dropped.set_result,
        backend=radio.client_backend(),
        timeout=CONNECT_TIMEOUT_S,
    ):
        pass
    assert dropped.done()


async def test_connect_to_an_address_that_never_advertises_raises(radio: BumbleRadio) -> None:
    client = BleakClient(
        "C0:11:22:33:44:55", backend=radio.client_backend(), timeout=ABSENT_TIMEOUT_S
    )
    with pytest.raises(BleakDeviceNotFoundError):
        await client.connect()
    assert not client.is_connected


async def test_connect_timeout_to_a_vanished_device_then_connect_elsewhere(
    link: LocalLink, peripheral: Peripheral, radio: BumbleRadio
) -> None:
    async with run_peripheral(link, "Vanishing") as vanishing:
        gone = await _find(radio, vanishing.address)
    client = BleakClient(gone, backend=radio.client_backend(), timeout=ABSENT_TIMEOUT_S)
    with pytest.raises(TimeoutError):
        await client.connect()
    # The timed-out connect was cancelled in the controller, so the radio connects again.
    async with _client(radio, peripheral.address) as other:
        assert await other.read_gatt_char(READ_CHAR) == READ_VALUE


async def test_concurrent_connects_are_serialised(
    link: LocalLink, peripheral: Peripheral, radio: BumbleRadio
) -> None:
    async with run_peripheral(link, "Second") as second:
        clients = [_client(radio, peripheral.address), _client(radio, second.address)]
        await asyncio.gather(*(c.connect() for c in clients))
        try:
            values = await asyncio.gather(*(c.read_gatt_char(READ_CHAR) for c in clients))
            assert values == [READ_VALUE, READ_VALUE]
        finally:
            await asyncio.gather(*(c.disconnect() for c in clients))


# -- connection-interval link ------------------------------------------------------------------


async def test_interval_link_delivers_everything_in_order() -> None:
    link = IntervalLink(interval_s=0.002)
    echoes = _Collector()
    async with (
        run_peripheral(link) as peripheral,
        BumbleRadio(link) as radio,
        _client(radio, peripheral.address, pair=True) as client,
    ):
        await client.start_notify(NOTIFY_CHAR, echoes)
        for index in range(20):
            await client.write_gatt_char(WRITE_NR_CHAR, bytes([index]), response=False)
        assert await echoes.wait_for(20) == [bytes([i]) for i in range(20)]
        assert await client.read_gatt_char(SECURE_CHAR) == b"secret"
