"""Pins the bleak and bumble internals the backend relies on, so an upgrade that moves them fails
here, loudly, instead of somewhere in a session."""

from __future__ import annotations

import inspect
from importlib.metadata import version
from typing import Any

from bleak import BleakClient, BleakScanner
from bleak.assigned_numbers import CHARACTERISTIC_PROPERTIES
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakGATTProtocolError
from bumble.controller import Controller
from bumble.link import LocalLink

from controller.ble.bumble_backend import BumbleClientBackend, BumbleScannerBackend


def _params(function: Any) -> list[str]:
    return [name for name in inspect.signature(function).parameters if name != "self"]


def test_bleak_version_is_the_one_checked() -> None:
    assert version("bleak").split(".")[0] == "3", "re-check this module against the new bleak"


class _RecordingClient(BaseBleakClient):
    seen: dict[str, Any] = {}  # noqa: RUF012 - a class-level record is the point

    def __init__(self, address_or_ble_device: Any, **kwargs: Any) -> None:
        type(self).seen = {"address": address_or_ble_device, **kwargs}
        super().__init__(
            address_or_ble_device,
            disconnected_callback=kwargs["disconnected_callback"],
            timeout=kwargs["timeout"],
        )

    mtu_size = 23
    is_connected = False

    async def connect(self, pair: bool, **kwargs: Any) -> None: ...
    async def disconnect(self) -> None: ...
    async def pair(self, *args: Any, **kwargs: Any) -> None: ...
    async def unpair(self) -> None: ...
    async def read_gatt_char(self, *args: Any, **kwargs: Any) -> bytearray: ...  # type: ignore[empty-body]
    async def read_gatt_descriptor(self, *args: Any, **kwargs: Any) -> bytearray: ...  # type: ignore[empty-body]
    async def write_gatt_char(self, *args: Any, **kwargs: Any) -> None: ...
    async def write_gatt_descriptor(self, *args: Any, **kwargs: Any) -> None: ...
    async def start_notify(self, *args: Any, **kwargs: Any) -> None: ...
    async def stop_notify(self, *args: Any, **kwargs: Any) -> None: ...


def test_bleak_client_builds_the_backend_with_these_kwargs() -> None:
    client = BleakClient(
        "AA:BB:CC:DD:EE:FF",
        lambda _c: None,
        ["180f"],
        timeout=3.5,
        backend=_RecordingClient,
        extra="reaches the backend",
    )
    seen = _RecordingClient.seen
    assert set(seen) == {
        "address",
        "disconnected_callback",
        "services",
        "timeout",
        "bluez",
        "winrt",
        "extra",
    }
    assert seen["timeout"] == 3.5
    assert seen["services"] == {"0000180f-0000-1000-8000-00805f9b34fb"}
    assert callable(seen["disconnected_callback"])
    # bleak reads backend.__name__: that is why the backend is a class, not a partial.
    assert client.backend_id == "_RecordingClient"


def test_base_client_abstract_members_are_all_implemented() -> None:
    assert BaseBleakClient.__abstractmethods__ == {
        "mtu_size",
        "is_connected",
        "connect",
        "disconnect",
        "pair",
        "unpair",
        "read_gatt_char",
        "read_gatt_descriptor",
        "write_gatt_char",
        "write_gatt_descriptor",
        "start_notify",
        "stop_notify",
    }
    assert not BumbleClientBackend.__abstractmethods__
    assert _params(BaseBleakClient.__init__) == [
        "address_or_ble_device",
        "disconnected_callback",
        "timeout",
        "kwargs",
    ]


def test_bleak_scanner_builds_the_backend_positionally() -> None:
    seen: dict[str, Any] = {}

    class Recording(BaseBleakScanner):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            seen.update(args=args, kwargs=kwargs)
            super().__init__(args[0], args[1])

        async def start(self) -> None: ...
        async def stop(self) -> None: ...

    scanner = BleakScanner(None, ["180f"], backend=Recording)
    assert seen["args"] == (None, ["180f"], "active")
    assert set(seen["kwargs"]) == {"bluez", "cb"}
    assert scanner.backend_id == "Recording"
    assert BaseBleakScanner.__abstractmethods__ == {"start", "stop"}
    assert not BumbleScannerBackend.__abstractmethods__
    assert _params(BaseBleakScanner.is_allowed_uuid) == ["service_uuids"]
    assert _params(BaseBleakScanner.create_or_update_device) == [
        "key",
        "address",
        "name",
        "details",
        "adv",
    ]
    assert _params(BaseBleakScanner.call_detection_callbacks) == ["device", "advertisement_data"]
    assert AdvertisementData._fields == (
        "local_name",
        "manufacturer_data",
        "service_data",
        "service_uuids",
        "tx_power",
        "rssi",
        "platform_data",
    )


def test_gatt_object_constructors() -> None:
    assert _params(BleakGATTService.__init__) == ["obj", "handle", "uuid"]
    assert _params(BleakGATTCharacteristic.__init__) == [
        "obj",
        "handle",
        "uuid",
        "properties",
        "max_write_without_response_size",
        "service",
    ]
    assert _params(BleakGATTDescriptor.__init__) == ["obj", "handle", "uuid", "characteristic"]
    for method in ("add_service", "add_characteristic", "add_descriptor"):
        assert hasattr(BleakGATTServiceCollection, method)
    assert CHARACTERISTIC_PROPERTIES[0x10] == "notify"
    assert CHARACTERISTIC_PROPERTIES[0x20] == "indicate"
    assert CHARACTERISTIC_PROPERTIES[0x04] == "write-without-response"


def test_gatt_protocol_error_keeps_the_att_code() -> None:
    error = BleakGATTProtocolError(0x0F)
    assert error.code == 0x0F
    assert error.args[0] == 0x0F


def test_bumble_hooks_the_virtual_radio_overrides() -> None:
    assert _params(Controller.on_hci_le_create_connection_cancel_command) == ["_command"]
    assert hasattr(Controller, "pending_le_connection")
    assert _params(LocalLink.send_acl_data) == [
        "sender_controller",
        "destination_address",
        "transport",
        "data",
    ]
    assert _params(LocalLink.send_ll_control_pdu) == [
        "sender_address",
        "receiver_address",
        "packet",
    ]
