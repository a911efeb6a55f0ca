"""What the two simulated peripherals share: a bumble `Device`, pairing, advertising, link loss.

A `Peripheral` sits either on an in-process `LocalLink` (it then owns a virtual `Controller`, and
can fake a supervision timeout exactly) or on a bumble HCI transport (a USB dongle, a serial or
TCP HCI), where a link drop is a plain disconnect. It advertises while on air and not connected,
accepts LE Secure Connections pairing with bonding (Just Works: neither device has a display or
buttons), and distributes a random static identity address, so a reconnect by that address finds
the bond (NOTES-ble.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from bumble import hci, ll
from bumble.core import UUID, AdvertisingData, InvalidArgumentError
from bumble.device import Device, DeviceConfiguration
from bumble.pairing import PairingConfig, PairingDelegate
from bumble.transport.common import AsyncPipeSink

from controller.ble.bumble_backend.quiet import QuietController, QuietHost, quiet_gatt

if TYPE_CHECKING:
    from collections.abc import Sequence

    from bumble.controller import Controller
    from bumble.link import LocalLink

__all__ = [
    "DEFAULT_ADVERTISING_INTERVAL_MS",
    "LINK_LOSS_DETECT_S",
    "Peripheral",
    "advertising_payloads",
]

_LOGGER = logging.getLogger(__name__)

# Tests and the demo connect within one advertising interval; 20 ms is the shortest legacy
# interval (Core spec Vol 6 Part B 4.4.2.2) and what fast-connectable accessories use.
DEFAULT_ADVERTISING_INTERVAL_MS = 20.0
# How long a silent link takes to be declared lost: a typical supervision timeout (the spec
# allows 100 ms-32 s; phones and BlueZ pick 2-6 s). Shorter than the 3 s lease on purpose, so the
# controller learns of the loss before the firmware stops on its own.
LINK_LOSS_DETECT_S = 2.0
# A legacy advertising PDU carries at most 31 bytes of data (Core spec Vol 6 Part B 2.3.1).
_LEGACY_ADVERTISING_MAX = 31


def advertising_payloads(
    name: str, *, uuids_16: Sequence[int] = (), uuids_128: Sequence[str] = ()
) -> tuple[bytes, bytes]:
    """Advertising data and scan response within legacy advertising's 31 bytes.

    The service UUIDs always go in the advertising data (bumble's virtual controller repeats the
    advertising data as scan response, so anything only in the scan response would be lost
    in-process); then Flags and the complete name when they fit, else a shortened name. The scan
    response carries the complete name.
    """
    uuid_ad: list[tuple[int, bytes]] = []
    if uuids_16:
        uuid_ad.append(
            (
                AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
                b"".join(u.to_bytes(2, "little") for u in uuids_16),
            )
        )
    if uuids_128:
        uuid_ad.append(
            (
                AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
                b"".join(UUID(u).to_bytes() for u in uuids_128),
            )
        )
    flags = (
        AdvertisingData.FLAGS,
        bytes(
            (
                AdvertisingData.LE_GENERAL_DISCOVERABLE_MODE_FLAG
                | AdvertisingData.BR_EDR_NOT_SUPPORTED_FLAG,
            )
        ),
    )
    encoded_name = name.encode()

    def size(structures: list[tuple[int, bytes]]) -> int:
        return sum(2 + len(value) for _, value in structures)

    structures = [flags, *uuid_ad]
    if size(structures) + 2 + len(encoded_name) > _LEGACY_ADVERTISING_MAX:
        structures = uuid_ad  # Flags are the first thing to give up: scanners list us anyway
    room = _LEGACY_ADVERTISING_MAX - size(structures) - 2
    if len(encoded_name) <= room:
        structures.append((AdvertisingData.COMPLETE_LOCAL_NAME, encoded_name))
    elif room > 0:
        structures.append((AdvertisingData.SHORTENED_LOCAL_NAME, encoded_name[:room]))
    advertising = bytes(AdvertisingData(structures))
    scan_response = bytes(
        AdvertisingData([(AdvertisingData.COMPLETE_LOCAL_NAME, encoded_name[:29])])
    )
    return advertising, scan_response


def _pairing_config(_connection: Any) -> PairingConfig:
    return PairingConfig(
        sc=True,
        mitm=False,  # no display, no buttons: Just Works is all this hardware can do
        bonding=True,
        delegate=PairingDelegate(io_capability=PairingDelegate.IoCapability.NO_OUTPUT_NO_INPUT),
        identity_address_type=PairingConfig.AddressType.RANDOM,
    )


class Peripheral:
    """One simulated BLE peripheral: a bumble device that keeps itself advertising.

    ``address``: its random static address (``XX:XX:XX:XX:XX:XX``); ``advertising``: (advertising
    data, scan response) as `advertising_payloads` builds them; ``advertising_interval_ms`` in
    ms. Give exactly one of ``link`` (in-process virtual radio) or ``hci_transport`` (a bumble
    transport); raises ValueError otherwise.
    """

    def __init__(
        self,
        *,
        name: str,
        address: str,
        advertising: tuple[bytes, bytes],
        link: LocalLink | None = None,
        hci_transport: Any = None,
        advertising_interval_ms: float = DEFAULT_ADVERTISING_INTERVAL_MS,
    ) -> None:
        if (link is None) == (hci_transport is None):
            raise ValueError("give exactly one of link or hci_transport")
        self.name = name
        self.link = link
        self.advertising_interval_ms = advertising_interval_ms
        config = DeviceConfiguration(
            name=name,
            address=hci.Address(address, hci.Address.RANDOM_DEVICE_ADDRESS),
            identity_address_type=hci.Address.RANDOM_DEVICE_ADDRESS,
            advertising_data=advertising[0],
            scan_response_data=advertising[1],
            advertising_interval_min=advertising_interval_ms,
            advertising_interval_max=advertising_interval_ms,
        )
        self.controller: Controller | None = None
        if link is not None:
            self.controller = QuietController(f"{name} controller", link=link)
            host = QuietHost(self.controller, AsyncPipeSink(self.controller))
        else:
            host = QuietHost(hci_transport.source, hci_transport.sink)
        self.device = Device(config=config, host=host)
        quiet_gatt(self.device)
        self.device.pairing_config_factory = _pairing_config
        self.device.on(self.device.EVENT_CONNECTION, self._on_connection)
        self._on_air = True
        self._closing = False
        self._wake = asyncio.Event()
        self._wake.set()

    @property
    def address(self) -> str:
        """The random static address, as bleak spells it."""
        return str(self.device.static_address).removesuffix("/P")

    @property
    def connections(self) -> list[Any]:
        """The bumble connections to this peripheral now."""
        return list(self.device.connections.values())

    @property
    def on_air(self) -> bool:
        """False while off air (out of range, powered down, rebooting): see `set_on_air`."""
        return self._on_air

    def set_on_air(self, on_air: bool) -> None:
        """Off air: not advertising (out of range, powered down, rebooting)."""
        self._on_air = on_air
        self._wake.set()

    def _on_connection(self, connection: Any) -> None:
        _LOGGER.info("%s: connected to %s", self.name, connection.peer_address)
        connection.on(connection.EVENT_DISCONNECTION, self._on_disconnection)
        self._wake.set()

    def _on_disconnection(self, reason: int) -> None:
        _LOGGER.info("%s: disconnected (reason 0x%02X)", self.name, reason)
        self._wake.set()

    async def start(self) -> None:
        """Power the bumble device on."""
        await self.device.power_on()

    async def keep_advertising(self) -> None:
        """Advertise whenever on air and not connected (one central at a time); ends on close.

        It ends by itself rather than by cancellation: bumble's host cannot take a cancelled HCI
        command whose response is still on its way (InvalidStateError in ``on_packet``).
        """
        while True:
            await self._wake.wait()
            self._wake.clear()
            wanted = self._on_air and not self._closing and not self.device.connections
            if wanted and not self.device.is_advertising:
                await self.device.start_advertising(
                    advertising_interval_min=self.advertising_interval_ms,
                    advertising_interval_max=self.advertising_interval_ms,
                )
            elif not wanted and self.device.is_advertising:
                await self.device.stop_advertising()
            if self._closing:
                return

    async def drop_link(self, off_air_s: float) -> None:
        """The radio goes silent: the central sees a supervision timeout; back after `off_air_s`.

        On a LocalLink the silence is exact: data stops both ways, and after
        `LINK_LOSS_DETECT_S` (or `off_air_s`, if shorter) both sides get a Disconnection Complete
        with reason 0x08 (connection timeout), as over the air. On a real HCI transport it is a
        disconnect (reason 0x13, remote user terminated). ``off_air_s``: seconds on the loop's
        clock before it advertises again; returns then.
        """
        loop = asyncio.get_running_loop()
        back_at = loop.time() + off_air_s
        self.set_on_air(False)
        controller, link = self.controller, self.link
        if controller is None or link is None:
            for connection in self.connections:
                with contextlib.suppress(hci.HCI_Error):
                    await connection.disconnect(hci.HCI_REMOTE_USER_TERMINATED_CONNECTION_ERROR)
        else:
            silenced = list(controller.le_connections.values())
            link.remove_controller(controller)
            for connection in silenced:
                connection.link = None  # type: ignore[assignment]  # our transmissions stop too
            await asyncio.sleep(min(LINK_LOSS_DETECT_S, off_air_s))
            for connection in silenced:
                with contextlib.suppress(InvalidArgumentError):  # the central already left
                    link.send_ll_control_pdu(
                        sender_address=connection.self_address,
                        receiver_address=connection.peer_address,
                        packet=ll.TerminateInd(hci.HCI_CONNECTION_TIMEOUT_ERROR),
                    )
                if connection.peer_address in controller.le_connections:
                    controller.on_le_disconnected(connection, hci.HCI_CONNECTION_TIMEOUT_ERROR)
            link.add_controller(controller)
        await asyncio.sleep(max(0.0, back_at - loop.time()))
        self.set_on_air(True)

    async def factory_reset(self) -> None:
        """Forget every bond and restart, as a reset button or a key-wiping firmware update does.

        The key store is emptied and every connection ends at once (the radio restarts: the
        central sees a remote power-off, 0x15); the device then advertises again. A central
        that reconnects with its old keys is refused encryption with PIN or Key Missing (0x06),
        and a new pairing is accepted as on the first day (docs/protocol.md, "Bonds").
        """
        keystore = self.device.keystore
        if keystore is not None:
            for name, _keys in await keystore.get_all():
                await keystore.delete(name)
        for connection in self.connections:
            with contextlib.suppress(hci.HCI_Error):
                await connection.disconnect(
                    hci.HCI_REMOTE_DEVICE_TERMINATED_CONNECTION_DUE_TO_POWER_OFF_ERROR
                )
        _LOGGER.info("%s: factory reset, every bond forgotten", self.name)
        self._wake.set()

    async def bonded_addresses(self) -> list[str]:
        """The centrals this device holds keys for."""
        keystore = self.device.keystore
        return [] if keystore is None else [name for name, _keys in await keystore.get_all()]

    def begin_close(self) -> None:
        """Ask `keep_advertising` to stop advertising and return."""
        self._closing = True
        self._wake.set()

    async def close(self) -> None:
        """Leave the link (after `keep_advertising` has returned)."""
        if self.controller is not None and self.link is not None:
            with contextlib.suppress(KeyError):
                self.link.remove_controller(self.controller)
