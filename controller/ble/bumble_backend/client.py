"""The bleak client backend: ``BaseBleakClient`` over a `BumbleRadio`'s bumble GATT client.

Use it through bleak's public API only::

    BleakClient(device_or_address, backend=radio.client_backend(), timeout=10.0)

Errors follow bleak's own backends: connect timeouts raise ``TimeoutError``, an address that never
advertises raises ``BleakDeviceNotFoundError``, other link failures ``BleakError``, and an ATT
error response ``BleakGATTProtocolError`` (its ``.code`` is the ATT error code).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import TYPE_CHECKING, Any, ClassVar, NoReturn, TypeVar

from bleak.assigned_numbers import CHARACTERISTIC_PROPERTIES, CharacteristicPropertyName
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakDeviceNotFoundError, BleakError, BleakGATTProtocolError
from bumble import att, core, hci
from bumble.gatt_client import CharacteristicProxy

from controller.ble.bonds import BleakBondLostError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from bleak.args import SizedBuffer
    from bumble.device import Connection

    from controller.ble.bumble_backend.radio import BumbleRadio

_LOGGER = logging.getLogger(__name__)

_T = TypeVar("_T")

# ATT MTU we ask for: the largest an ATT bearer allows, so one notification carries any frame of
# the massager protocol; the peer answers with what it supports.
PREFERRED_ATT_MTU = 517

# A disconnect we start ourselves completes in one round trip on a live link; if the peer has
# already gone silent the controller reports the loss on its own, so this only bounds a stuck HCI.
DISCONNECT_TIMEOUT_S = 5.0

# After a connect times out, bumble cancels the LE connect and waits for the controller to confirm.
# A controller that never confirms must not hold the caller beyond its own timeout by more than
# this; two seconds covers a USB dongle's worst command latency.
CONNECT_CANCEL_GRACE_S = 2.0


def bleak_uuid(value: core.UUID) -> str:
    """A bumble UUID as bleak writes UUIDs: lowercase, 128-bit, dashed."""
    return str(uuid.UUID(bytes=bytes(reversed(value.to_bytes(force_128=True)))))


def _property_names(properties: int) -> list[CharacteristicPropertyName]:
    return [name for bit, name in CHARACTERISTIC_PROPERTIES.items() if properties & bit]


class BumbleClientBackend(BaseBleakClient):
    """bleak client backend bound to a `BumbleRadio` (subclass it per radio: `client_backend`)."""

    radio: ClassVar[BumbleRadio]

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Callable[[], None] | None = None,
        services: set[str] | None = None,
        timeout: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout
        )
        self._ble_device = (
            address_or_ble_device if isinstance(address_or_ble_device, BLEDevice) else None
        )
        self._service_filter = services
        self._connection: Connection | None = None
        self._subscriptions: dict[int, Callable[[bytes], None]] = {}

    # -- identity and state ----------------------------------------------------------------

    @property
    def name(self) -> str:
        """The advertised name (from the `BLEDevice`, else the last heard), else the address."""
        if self._ble_device is not None and self._ble_device.name:
            return self._ble_device.name
        # Given an address string, the name is the one the device advertised when we found it,
        # as bleak's platform backends report it; a device never heard is known by its address.
        return self.radio.seen_name(self.address) or self.address

    @property
    def is_connected(self) -> bool:
        """True while the LE connection is up."""
        return self._connection is not None

    @property
    def mtu_size(self) -> int:
        """The negotiated ATT MTU (bytes); raises `BleakError` when not connected."""
        return int(self._require_connection().gatt_client.mtu)

    def _require_connection(self) -> Connection:
        if self._connection is None:
            raise BleakError(f"{self.address}: not connected")
        return self._connection

    # -- connecting ------------------------------------------------------------------------

    async def _peer_address(self, deadline: float) -> hci.Address:
        details = self._ble_device.details if self._ble_device is not None else None
        if isinstance(details, hci.Address):
            return details
        try:
            async with asyncio.timeout_at(deadline):
                return await self.radio.find_address(self.address)
        except TimeoutError:
            raise BleakDeviceNotFoundError(
                self.address, f"{self.address}: not found while scanning"
            ) from None

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        """Connect within bleak's timeout (s), then pair (or encrypt with a bond) when ``pair``.

        Raises `TimeoutError` past the timeout, `BleakBondLostError` when the peer has lost its
        keys and `BleakError` for any other failure.
        """
        if self._connection is not None:
            return
        connection: Connection | None = None
        loop = asyncio.get_running_loop()
        # bleak's timeout covers the whole connect: finding the device, the LE connection, MTU
        # exchange, encryption and discovery.
        deadline = loop.time() + self._timeout
        try:
            peer_address = await self._peer_address(deadline)
            async with asyncio.timeout_at(deadline + CONNECT_CANCEL_GRACE_S):
                connection = await self.radio.connect(peer_address, deadline)
            connection.on(connection.EVENT_DISCONNECTION, self._on_disconnection)
            self._connection = connection
            async with asyncio.timeout_at(deadline):
                await self._gatt(connection.gatt_client.request_mtu(PREFERRED_ATT_MTU))
                if await self.radio.has_bond(connection.peer_address):
                    await self._encrypt_with_bond(connection)
                elif pair:
                    await self.pair()
                self.services = await self._discover(connection)
        except (TimeoutError, core.TimeoutError) as exc:
            await self._abandon(connection)
            raise TimeoutError(f"{self.address}: connect timed out after {self._timeout}s") from exc
        except (core.BaseBumbleError, hci.HCI_Error) as exc:
            await self._abandon(connection)
            raise BleakError(f"{self.address}: connect failed ({exc})") from exc
        except BaseException:
            await self._abandon(connection)
            raise
        _LOGGER.debug("%s: connected, MTU %d", self.address, self.mtu_size)

    async def _abandon(self, connection: Connection | None) -> None:
        """Drop a half-made connection without telling the caller it disconnected."""
        self._connection = None
        if connection is None:
            return
        connection.remove_listener(connection.EVENT_DISCONNECTION, self._on_disconnection)
        with contextlib.suppress(core.BaseBumbleError, hci.HCI_Error, TimeoutError):
            async with asyncio.timeout(DISCONNECT_TIMEOUT_S):
                await connection.disconnect()

    async def _encrypt_with_bond(self, connection: Connection) -> None:
        """Start encryption with the stored LTK: a bonded peer is not paired again.

        Raises `BleakBondLostError` when the peer has lost its half of the bond (PIN or Key
        Missing): re-pairing is the user's decision (controller/ble/bonds.py), never ours.
        """
        try:
            await connection.encrypt()
        except hci.HCI_Error as exc:
            if exc.error_code == hci.HCI_PIN_OR_KEY_MISSING_ERROR:
                raise BleakBondLostError(self.address) from exc
            # Anything else (a collision, a busy controller): keep the link; the protected
            # characteristics refuse with an ATT error until the link is encrypted.
            _LOGGER.warning("%s: encryption with the stored bond failed (%s)", self.address, exc)
        except core.BaseBumbleError as exc:
            _LOGGER.warning("%s: encryption with the stored bond failed (%s)", self.address, exc)

    def _on_disconnection(self, reason: int) -> None:
        if self._connection is None:
            return
        _LOGGER.debug("%s: disconnected (reason 0x%02X)", self.address, reason)
        self._connection = None
        self._subscriptions.clear()
        if self._disconnected_callback is not None:
            self._disconnected_callback()

    async def disconnect(self) -> None:
        """Disconnect within ``DISCONNECT_TIMEOUT_S``; raises `BleakError` if bumble fails."""
        connection = self._connection
        if connection is None:
            return
        try:
            async with asyncio.timeout(DISCONNECT_TIMEOUT_S):
                await connection.disconnect()
        except (core.BaseBumbleError, hci.HCI_Error) as exc:
            raise BleakError(f"{self.address}: disconnect failed ({exc})") from exc

    # -- security ---------------------------------------------------------------------------

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        """Pair and bond, unless already encrypted with a stored bond; raises `BleakError`."""
        connection = self._require_connection()
        if connection.is_encrypted and await self.radio.has_bond(connection.peer_address):
            return
        try:
            await connection.pair()
        except (core.BaseBumbleError, hci.HCI_Error) as exc:
            raise BleakError(f"{self.address}: pairing failed ({exc})") from exc
        _LOGGER.info("%s: paired and bonded", self.address)

    async def unpair(self) -> None:
        """Forget the bond with this device, then disconnect."""
        await self.radio.forget_bond(self.address)
        await self.disconnect()

    # -- GATT ---------------------------------------------------------------------------------

    async def _gatt(self, operation: Awaitable[_T]) -> _T:
        """Run a GATT operation, turning bumble's errors into bleak's."""
        try:
            return await operation
        except att.ATT_Error as exc:
            raise BleakGATTProtocolError(exc.error_code) from exc
        except asyncio.CancelledError:
            # bumble cancels a pending request when the link drops; our own cancellation passes.
            task = asyncio.current_task()
            if self._connection is None and (task is None or not task.cancelling()):
                self._raise_disconnected()
            raise
        except core.TimeoutError as exc:
            raise TimeoutError(f"{self.address}: GATT request timed out") from exc

    def _raise_disconnected(self) -> NoReturn:
        raise BleakError(f"{self.address}: disconnected during a GATT operation")

    async def _discover(self, connection: Connection) -> BleakGATTServiceCollection:
        gatt = connection.gatt_client
        collection = BleakGATTServiceCollection()
        uuids = [core.UUID(value) for value in self._service_filter] if self._service_filter else []
        for service_proxy in await self._gatt(gatt.discover_services(uuids)):
            service = BleakGATTService(
                service_proxy, service_proxy.handle, bleak_uuid(service_proxy.uuid)
            )
            collection.add_service(service)
            for char_proxy in await self._gatt(gatt.discover_characteristics([], service_proxy)):
                characteristic = BleakGATTCharacteristic(
                    char_proxy,
                    char_proxy.handle,
                    bleak_uuid(char_proxy.uuid),
                    _property_names(int(char_proxy.properties)),
                    lambda: int(gatt.mtu) - 3,
                    service,
                )
                collection.add_characteristic(characteristic)
                for descriptor_proxy in await self._gatt(gatt.discover_descriptors(char_proxy)):
                    collection.add_descriptor(
                        BleakGATTDescriptor(
                            descriptor_proxy,
                            descriptor_proxy.handle,
                            bleak_uuid(descriptor_proxy.type),
                            characteristic,
                        )
                    )
        return collection

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        """The characteristic's value (cached if ``use_cached``); raises `BleakError`."""
        gatt = self._require_connection().gatt_client
        if use_cached and (cached := gatt.cached_values.get(characteristic.handle)) is not None:
            return bytearray(cached[1])
        return bytearray(await self._gatt(gatt.read_value(characteristic.handle)))

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        """The descriptor's value (from the GATT cache if ``use_cached``); raises `BleakError`."""
        gatt = self._require_connection().gatt_client
        if use_cached and (cached := gatt.cached_values.get(descriptor.handle)) is not None:
            return bytearray(cached[1])
        return bytearray(await self._gatt(gatt.read_value(descriptor.handle)))

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: SizedBuffer, response: bool
    ) -> None:
        """Write ``data`` with or without response; raises `BleakError`."""
        gatt = self._require_connection().gatt_client
        await self._gatt(
            gatt.write_value(characteristic.handle, bytes(data), with_response=response)
        )

    async def write_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, data: SizedBuffer
    ) -> None:
        """Write ``data`` to the descriptor (with response); raises `BleakError`."""
        gatt = self._require_connection().gatt_client
        await self._gatt(gatt.write_value(descriptor.handle, bytes(data), with_response=True))

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        """Subscribe ``callback``, notifications preferred to indications; raises `BleakError`."""
        self._require_connection()
        proxy = characteristic.obj
        if not isinstance(proxy, CharacteristicProxy):
            raise BleakError(f"{self.address}: {characteristic.uuid} is not from this backend")
        if characteristic.handle in self._subscriptions:
            await self.stop_notify(characteristic)

        def on_value(value: bytes) -> None:
            callback(bytearray(value))

        # Notifications are preferred over indications when both exist, as bleak asks.
        await self._gatt(proxy.subscribe(on_value, prefer_notify=True))
        self._subscriptions[characteristic.handle] = on_value

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        """Unsubscribe from the characteristic (a no-op when not subscribed)."""
        self._require_connection()
        subscriber = self._subscriptions.pop(characteristic.handle, None)
        proxy = characteristic.obj
        if subscriber is None or not isinstance(proxy, CharacteristicProxy):
            return
        await self._gatt(proxy.unsubscribe(subscriber))
