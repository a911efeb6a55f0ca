"""`BumbleRadio`: one bumble central device on one HCI transport, shared by bleak clients.

The radio owns what a real adapter owns in an operating system's Bluetooth stack: the identity
address, the bond store, the pairing policy, the scan state and the one LE connect the controller
can have pending. bleak's clients and scanners reach it through the backend classes
`client_backend()` and `scanner_backend()` return.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from bumble import core, hci
from bumble.core import AdvertisingData
from bumble.device import Advertisement, Connection, Device, DeviceConfiguration
from bumble.keys import JsonKeyStore, KeyStore, MemoryKeyStore
from bumble.link import LocalLink
from bumble.pairing import PairingConfig, PairingDelegate
from bumble.transport import open_transport
from bumble.transport.common import AsyncPipeSink, Transport

from controller.ble.bumble_backend.client import BumbleClientBackend
from controller.ble.bumble_backend.quiet import QuietHost, quiet_gatt
from controller.ble.bumble_backend.scanner import BumbleScannerBackend
from controller.ble.bumble_backend.virtual import VirtualController
from controller.errors import ConfigError, LinkError

if TYPE_CHECKING:
    from types import TracebackType

    from bleak.backends.client import BaseBleakClient
    from bleak.backends.scanner import BaseBleakScanner

_LOGGER = logging.getLogger(__name__)

# Closing the radio disconnects each link; a peer that has already vanished never answers, and
# closing must not hang on it. One second is many round trips on any transport.
CLOSE_DISCONNECT_TIMEOUT_S = 1.0

AdvertisementListener = Callable[[Advertisement], None]


class IoCapability(enum.IntEnum):
    """What the controller's user interface can do during pairing (Core Vol 3 H 2.3.2)."""

    DISPLAY_ONLY = PairingDelegate.IoCapability.DISPLAY_OUTPUT_ONLY
    DISPLAY_YES_NO = PairingDelegate.IoCapability.DISPLAY_OUTPUT_AND_YES_NO_INPUT
    KEYBOARD_ONLY = PairingDelegate.IoCapability.KEYBOARD_INPUT_ONLY
    NO_INPUT_NO_OUTPUT = PairingDelegate.IoCapability.NO_OUTPUT_NO_INPUT
    KEYBOARD_DISPLAY = PairingDelegate.IoCapability.DISPLAY_OUTPUT_AND_KEYBOARD_INPUT


@dataclass(frozen=True, slots=True)
class PairingPolicy:
    """LE Secure Connections with bonding; Just Works unless MITM protection is asked for.

    ``compare_numbers`` answers a numeric comparison (the six digits shown on both sides);
    ``get_passkey`` supplies a passkey typed by the user. Both default to refusing, so MITM
    pairing never silently accepts.
    """

    io_capability: IoCapability = IoCapability.NO_INPUT_NO_OUTPUT
    mitm: bool = False
    compare_numbers: Callable[[int], Awaitable[bool]] | None = None
    get_passkey: Callable[[], Awaitable[int | None]] | None = None

    def __post_init__(self) -> None:
        if self.mitm and self.io_capability == IoCapability.NO_INPUT_NO_OUTPUT:
            raise ConfigError("pairing: MITM protection needs an IO capability other than none")


class _PolicyDelegate(PairingDelegate):
    def __init__(self, policy: PairingPolicy) -> None:
        super().__init__(io_capability=PairingDelegate.IoCapability(policy.io_capability))
        self._policy = policy

    async def compare_numbers(self, number: int, digits: int) -> bool:
        if self._policy.compare_numbers is None:
            return not self._policy.mitm
        return await self._policy.compare_numbers(number)

    async def get_number(self) -> int | None:
        if self._policy.get_passkey is None:
            return None
        return await self._policy.get_passkey()


def _advertised_name(advertisement: Advertisement) -> str | None:
    """The complete local name in one advertising PDU, else the shortened one, else None."""
    shortened = None
    for ad_type, payload in advertisement.data.ad_structures:
        if ad_type == AdvertisingData.COMPLETE_LOCAL_NAME:
            return payload.decode("utf-8", errors="replace")
        if ad_type == AdvertisingData.SHORTENED_LOCAL_NAME:
            shortened = payload.decode("utf-8", errors="replace")
    return shortened


def _ignore_advertisement(_advertisement: Advertisement) -> None:
    pass


def _load_or_create_identity(keystore_path: Path | None) -> hci.Address:
    """Reuse the identity the bond file was written under, or make a new random static one.

    Peripherals file our bond under our address: a new address every run would orphan them.
    """
    if keystore_path is not None and keystore_path.exists():
        try:
            namespaces = json.loads(keystore_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"bond store {keystore_path}: unreadable ({exc})") from exc
        if isinstance(namespaces, dict) and len(namespaces) == 1:
            (namespace,) = namespaces
            with contextlib.suppress(ValueError, core.InvalidArgumentError):
                address = hci.Address(namespace, hci.Address.RANDOM_DEVICE_ADDRESS)
                if address.is_static:
                    return address
    return hci.Address.generate_static_address()


# Bonds hold long-term keys: whoever reads them can impersonate the controller to the massager.
# Readable by the owner only, as the settings file is.
KEYSTORE_FILE_MODE = 0o600
KEYSTORE_DIR_MODE = 0o700


class _PrivateJsonKeyStore(JsonKeyStore):
    """bumble's JSON bond store, written owner-only (bumble's own writes it 0644 by umask)."""

    async def save(self, db: dict[str, dict[str, dict[str, Any]]]) -> None:
        # A few hundred bytes, written at pairing time only: as bumble's own save, inline.
        _write_private_json(Path(self.filename), db)


def _write_private_json(target: Path, data: object) -> None:
    """Write ``data`` as JSON to ``target`` atomically, readable by the owner only."""
    target.parent.mkdir(mode=KEYSTORE_DIR_MODE, parents=True, exist_ok=True)
    temp = target.with_name(target.name + ".tmp")
    # Created with the final mode, so the keys are never readable by others, not even between
    # the write and a chmod.
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, KEYSTORE_FILE_MODE)
    with os.fdopen(fd, "w", encoding="utf-8") as output:
        os.fchmod(output.fileno(), KEYSTORE_FILE_MODE)  # an older .tmp may have other bits
        json.dump(data, output, sort_keys=True, indent=4)
    os.replace(temp, target)


def _make_keystore(keystore_path: Path | None, address: hci.Address) -> KeyStore:
    if keystore_path is None:
        return MemoryKeyStore()
    if keystore_path.exists() and keystore_path.stat().st_mode & 0o077:
        # A bond file written by an earlier version: tighten it now rather than at the next bond.
        keystore_path.chmod(KEYSTORE_FILE_MODE)
    return _PrivateJsonKeyStore(
        namespace=address.to_string(False), filename=os.fspath(keystore_path)
    )


class BumbleRadio:
    """One powered-on bumble central on a `LocalLink` or an HCI transport; an async context manager.

    ``transport`` is a `LocalLink` (in-process virtual radio) or a bumble transport spec such as
    ``tcp-client:127.0.0.1:9000``, ``usb:0`` or ``serial:/dev/ttyACM0``. ``keystore`` is the JSON
    bond file (created on first bond); ``None`` keeps bonds in memory for this run only.
    ``address`` fixes the random static identity address; by default the bond file's is reused.
    """

    def __init__(
        self,
        transport: LocalLink | str,
        *,
        name: str = "SoleGuard",
        address: str | None = None,
        keystore: str | os.PathLike[str] | None = None,
        pairing: PairingPolicy | None = None,
    ) -> None:
        self._transport_spec = transport
        self._name = name
        self._keystore_path = Path(keystore) if keystore is not None else None
        self._requested_address = address
        self.pairing_policy = pairing or PairingPolicy()
        self._device: Device | None = None
        self._transport: Transport | None = None
        self._controller: VirtualController | None = None
        self._entered = False
        self.connect_lock = asyncio.Lock()
        self._scan_lock = asyncio.Lock()
        self._scan_listeners: dict[object, AdvertisementListener] = {}
        self._seen_addresses: dict[str, hci.Address] = {}
        self._seen_names: dict[str, str] = {}
        self._client_backend: type[BaseBleakClient] | None = None
        self._scanner_backend: type[BaseBleakScanner] | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._entered:
            raise RuntimeError("BumbleRadio cannot be entered twice")
        self._entered = True
        try:
            await self._power_on()
        except BaseException:
            await self._close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._close()

    async def _power_on(self) -> None:
        if self._requested_address is not None:
            address = hci.Address(self._requested_address, hci.Address.RANDOM_DEVICE_ADDRESS)
            if not address.is_static:
                raise ConfigError(f"radio address {self._requested_address}: not random static")
        else:
            address = _load_or_create_identity(self._keystore_path)

        config = DeviceConfiguration()
        config.name = self._name
        config.address = address
        config.identity_address_type = hci.Address.RANDOM_DEVICE_ADDRESS
        config.io_capability = self.pairing_policy.io_capability
        config.advertising_data = b""

        if isinstance(self._transport_spec, LocalLink):
            self._controller = VirtualController(f"{self._name}-central", link=self._transport_spec)
            host = QuietHost(self._controller, AsyncPipeSink(self._controller))
        else:
            try:
                self._transport = await open_transport(self._transport_spec)
            except (OSError, ValueError, RuntimeError) as exc:
                raise LinkError(f"radio {self._transport_spec}: cannot open ({exc})") from exc
            host = QuietHost(self._transport.source, self._transport.sink)

        device = Device(config=config, host=host)
        quiet_gatt(device)
        device.keystore = _make_keystore(self._keystore_path, address)
        policy = self.pairing_policy
        device.pairing_config_factory = lambda _connection: PairingConfig(
            sc=True,
            mitm=policy.mitm,
            bonding=True,
            delegate=_PolicyDelegate(policy),
            identity_address_type=PairingConfig.AddressType.RANDOM,
        )
        device.on(device.EVENT_ADVERTISEMENT, self._on_advertisement)
        await device.power_on()
        self._device = device
        _LOGGER.info("radio %s: powered on as %s", self._transport_spec, self.address)

    async def _close(self) -> None:
        device, self._device = self._device, None
        if device is not None:
            for connection in list(device.connections.values()):
                with contextlib.suppress(core.BaseBumbleError, hci.HCI_Error, TimeoutError):
                    async with asyncio.timeout(CLOSE_DISCONNECT_TIMEOUT_S):
                        await connection.disconnect()
            # Every step of a close is bounded: a controller that stopped answering (a dongle
            # pulled out, a simulator process gone) must not keep this process from exiting.
            with contextlib.suppress(hci.HCI_Error, TimeoutError):
                if device.is_scanning:
                    async with asyncio.timeout(CLOSE_DISCONNECT_TIMEOUT_S):
                        await device.stop_scanning()
        if self._controller is not None:
            self._controller.link.remove_controller(self._controller)
            self._controller = None
        if self._transport is not None:
            transport, self._transport = self._transport, None
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_DISCONNECT_TIMEOUT_S):
                    await transport.close()

    # -- what bleak and the links see ------------------------------------------------------

    @property
    def device(self) -> Device:
        """The bumble device (for the backend classes; not part of the product's API)."""
        if self._device is None:
            raise LinkError("radio is not powered on (use 'async with BumbleRadio(...)')")
        return self._device

    @property
    def address(self) -> str:
        """Our random static identity address, as bleak writes addresses."""
        return str(self.device.random_address.to_string(False))

    def client_backend(self) -> type[BaseBleakClient]:
        """The class to pass as ``BleakClient(..., backend=...)`` for this radio."""
        if self._client_backend is None:
            self._client_backend = type("BumbleClient", (BumbleClientBackend,), {"radio": self})
        return self._client_backend

    def scanner_backend(self) -> type[BaseBleakScanner]:
        """The class to pass as ``BleakScanner(..., backend=...)`` for this radio."""
        if self._scanner_backend is None:
            self._scanner_backend = type("BumbleScanner", (BumbleScannerBackend,), {"radio": self})
        return self._scanner_backend

    async def bonded_addresses(self) -> list[str]:
        """Addresses we hold a bond for, as bleak writes addresses."""
        keystore = self.device.keystore
        if keystore is None:
            return []
        return [hci.Address(name).to_string(False) for name, _ in await keystore.get_all()]

    async def has_bond(self, address: hci.Address) -> bool:
        """True when the bond store holds keys for ``address``."""
        keystore = self.device.keystore
        return keystore is not None and await keystore.get(str(address)) is not None

    async def forget_bond(self, address: str) -> bool:
        """Delete the bond with ``address``; returns whether there was one."""
        keystore = self.device.keystore
        if keystore is None:
            return False
        for name, _ in await keystore.get_all():
            if hci.Address(name).to_string(False).upper() == address.upper():
                await keystore.delete(name)
                return True
        return False

    # -- scanning: one controller scan shared by every bleak scanner -----------------------

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        key = advertisement.address.to_string(False).upper()
        self._seen_addresses[key] = advertisement.address
        if (name := _advertised_name(advertisement)) is not None:
            self._seen_names[key] = name
        for listener in list(self._scan_listeners.values()):
            listener(advertisement)

    def seen_address(self, address: str) -> hci.Address | None:
        """The typed address last advertised under ``address``, if one was seen."""
        return self._seen_addresses.get(address.upper())

    def seen_name(self, address: str) -> str | None:
        """The local name last advertised under ``address``, if one was heard."""
        return self._seen_names.get(address.upper())

    async def add_scan_listener(self, token: object, listener: AdvertisementListener) -> None:
        """Register ``listener`` under ``token``; starts the shared active scan if not running."""
        async with self._scan_lock:
            self._scan_listeners[token] = listener
            if not self.device.is_scanning:
                # Active scanning: the name and UUIDs often come in the scan response.
                await self.device.start_scanning(active=True, filter_duplicates=False)

    async def remove_scan_listener(self, token: object) -> None:
        """Remove the listener of ``token``; the scan stops with the last one."""
        async with self._scan_lock:
            if self._scan_listeners.pop(token, None) is None:
                return
            if not self._scan_listeners and self._device is not None and self.device.is_scanning:
                await self.device.stop_scanning()

    @contextlib.asynccontextmanager
    async def scanning(self, listener: AdvertisementListener) -> AsyncIterator[None]:
        """Scan with ``listener`` for the duration of the ``async with`` block."""
        token = object()
        await self.add_scan_listener(token, listener)
        try:
            yield
        finally:
            await self.remove_scan_listener(token)

    async def find_address(self, address: str) -> hci.Address:
        """The typed address of a peripheral given as a string: from a past scan or a new one.

        Waits until it advertises; the caller bounds the wait.
        """
        if (known := self.seen_address(address)) is not None:
            return known
        found: asyncio.Future[hci.Address] = asyncio.get_running_loop().create_future()

        def on_advertisement(advertisement: Advertisement) -> None:
            if (
                not found.done()
                and advertisement.address.to_string(False).upper() == address.upper()
            ):
                found.set_result(advertisement.address)

        async with self.scanning(on_advertisement):
            return await found

    # -- connecting: one LE connect at a time ----------------------------------------------

    async def connect(self, peer_address: hci.Address, deadline: float) -> Connection:
        """An LE connection to ``peer_address``, waiting for the radio's one pending connect.

        ``deadline`` (event loop time) bounds the LE connection itself; the caller bounds the wait
        for the radio and the address resolution below.
        """
        async with self.connect_lock:
            device = self.device
            resolver = device.address_resolver
            if (
                resolver is not None
                and not device.address_resolution_offload
                and resolver.can_resolve_to(peer_address)
            ):
                # With an IRK for the peer (a bond), bumble first listens for the peer's current
                # address, scanning only if the controller is not scanning yet, and stops that
                # scan afterwards. A controller has one scan: a scan of ours that ended meanwhile
                # (another link found its device) would leave bumble listening to silence until
                # the timeout, and bumble stopping its own would starve our listeners. Holding the
                # shared scan across the connect keeps it one scan with one owner.
                async with self.scanning(_ignore_advertisement):
                    return await self._connect_now(peer_address, deadline)
            return await self._connect_now(peer_address, deadline)

    async def _connect_now(self, peer_address: hci.Address, deadline: float) -> Connection:
        remaining = max(deadline - asyncio.get_running_loop().time(), 0.0)
        return await self.device.connect(peer_address, timeout=remaining)
