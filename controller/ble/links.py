"""Links to the massager and the skin sensor, on ``bleak.BleakClient``.

A link owns the whole life of one device connection: connect with a timeout (a fresh client per
attempt, because a client that failed half-way can keep stale backend state; bleak-retry-
connector's ``establish_connection``, by contrast, builds one client and calls ``connect`` on it
again), bond, subscribe, decode every notification through ``controller.protocol``, and
reconnect with capped exponential backoff and full jitter (`controller.backoff.Backoff`). It
reports what it sees through plain callbacks; it never decides anything about safety.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from bleak import BleakClient
from bleak.exc import BleakError

from controller.backoff import Backoff
from controller.ble.bonds import BleakBondLostError, BondLostError
from controller.ble.thermometer import ThermometerInfo
from controller.ble.thermometer import inspect as inspect_thermometer
from controller.errors import LinkError, ProtocolError
from controller.protocol import (
    MASSAGER_COMMAND_UUID,
    MASSAGER_STATUS_UUID,
    TEMPERATURE_MEASUREMENT_UUID,
    Command,
    MassagerStatus,
    PartialStatus,
    Stop,
    TemperatureMeasurement,
    decode_status,
    encode_command,
    next_sequence,
)
from controller.safety import DeviceKind
from controller.settings.limits import STALE_AFTER_S
from controller.shutdown import raise_if_cancelling

if TYPE_CHECKING:
    from collections.abc import Callable

    from bleak.backends.characteristic import BleakGATTCharacteristic
    from bleak.backends.client import BaseBleakClient

_LOGGER = logging.getLogger(__name__)

# Backoff: the first retry comes quickly (a dropped link usually returns at once), later ones
# spread out so a switched-off device does not keep the radio busy. Capped so a device that comes
# back is found within half a minute.
BACKOFF_BASE_S = 0.25
BACKOFF_CAP_S = 30.0
BLE_BACKOFF = Backoff(initial_s=BACKOFF_BASE_S, cap_s=BACKOFF_CAP_S)  # full jitter
# A write that has not been acknowledged in this long is treated as a lost link: the lease (3 s)
# must not run out while a command waits.
WRITE_TIMEOUT_S = 1.0
# Stopping on shutdown gets a little longer than a normal write: it is the last thing we send.
STOP_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class LinkOptions:
    """How to reach devices: the same for every link of one radio.

    ``connect_timeout_s`` bounds each connection attempt (seconds); ``pair`` asks the backend to
    bond on connection; ``backoff`` spaces the attempts after a failure or a lost link.
    """

    # None: bleak's platform backend (BlueZ, CoreBluetooth, WinRT); else a backend class such as
    # the one a ``BumbleRadio`` makes.
    backend: type[BaseBleakClient] | None = None
    connect_timeout_s: float = 10.0
    pair: bool = True
    backoff: Backoff = BLE_BACKOFF


class DeviceLink:
    """Keeps one device connected until cancelled; subclasses subscribe and decode."""

    kind: ClassVar[DeviceKind]  # each subclass names its device

    def __init__(
        self,
        address: str,
        options: LinkOptions,
        on_link_change: Callable[[bool], None],
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.address = address
        self._options = options
        self._on_link_change = on_link_change
        self._rng = rng or random.Random()  # noqa: S311 (backoff jitter, not a secret)
        self._client: BleakClient | None = None
        self._connected = asyncio.Event()
        self.connections = 0

    @property
    def is_connected(self) -> bool:
        """True while a client is connected to the device."""
        return self._client is not None and self._client.is_connected

    async def wait_connected(self) -> None:
        """Return once the device is connected (at least once); unbounded: callers time it."""
        await self._connected.wait()

    async def run(self) -> None:
        """Connect, stay connected, reconnect; returns only by cancellation.

        Raises `BondLostError` when the device refuses the stored bond: it is not retried.
        """
        attempt = 0
        while True:
            raise_if_cancelling()
            lost = asyncio.Event()
            client = self._new_client(lost)
            try:
                await self._connect(client)
            except BleakBondLostError as exc:
                # Not a failure to retry: the device has lost its keys, and pairing again is the
                # user's decision (controller/ble/bonds.py). The link ends here.
                await _disconnect_quietly(client)
                _LOGGER.error("%s %s: lost its bond; not pairing again", self.kind, self.address)
                raise BondLostError(self.kind, self.address) from exc
            except (BleakError, TimeoutError, OSError, LinkError) as exc:
                delay = self._options.backoff.delay(attempt, self._rng)
                attempt += 1
                _LOGGER.info(
                    "%s %s: connect failed (%s); retry %d in %.2f s",
                    self.kind,
                    self.address,
                    exc or type(exc).__name__,
                    attempt,
                    delay,
                )
                await _disconnect_quietly(client)
                await asyncio.sleep(delay)
                continue
            attempt = 0
            self._client = client
            self.connections += 1
            self._connected.set()
            self._on_link_change(True)
            _LOGGER.info("%s %s: connected", self.kind, self.address)
            try:
                # Subscribing after the link is announced: the first notification then always
                # finds the link up, so nothing it says (a reboot, a fault) is lost.
                await self._subscribe(client)
                await lost.wait()
                _LOGGER.warning("%s %s: link lost", self.kind, self.address)
            except (BleakError, TimeoutError, OSError) as exc:
                _LOGGER.warning("%s %s: cannot subscribe (%s)", self.kind, self.address, exc)
            finally:
                # Also on cancellation: the device hears a farewell before the link closes.
                self._connected.clear()
                self._client = None
                if client.is_connected:
                    await self._farewell(client)
                await _disconnect_quietly(client)
                self._on_link_change(False)

    def _new_client(self, lost: asyncio.Event) -> BleakClient:
        return BleakClient(
            self.address,
            disconnected_callback=lambda _client: lost.set(),
            timeout=self._options.connect_timeout_s,
            backend=self._options.backend,
        )

    async def _connect(self, client: BleakClient) -> None:
        async with asyncio.timeout(self._options.connect_timeout_s):
            await client.connect()
            if self._options.pair:
                await client.pair()

    async def _subscribe(self, client: BleakClient) -> None:
        raise NotImplementedError

    async def _farewell(self, client: BleakClient) -> None:
        """What to tell the device before this process lets go of it."""


class MassagerLink(DeviceLink):
    """The massager: status notifications in, commands out."""

    kind = DeviceKind.MASSAGER

    def __init__(
        self,
        address: str,
        options: LinkOptions,
        on_link_change: Callable[[bool], None],
        on_status: Callable[[MassagerStatus | PartialStatus], None],
    ) -> None:
        super().__init__(address, options, on_link_change)
        self._on_status = on_status
        self._sequence = 0
        # The newest status and how many arrived: the actuator confirms a cut sent without
        # response by a status received after it (docs/protocol.md, "Cuts without response").
        self.last_status: MassagerStatus | PartialStatus | None = None
        self.statuses_received = 0

    def next_sequence(self) -> int:
        """The next Command sequence number (1, 2, ... wrapping from 65535 to 0)."""
        self._sequence = next_sequence(self._sequence)
        return self._sequence

    async def _subscribe(self, client: BleakClient) -> None:
        await client.start_notify(MASSAGER_STATUS_UUID, self._status_received)

    def _status_received(self, _char: BleakGATTCharacteristic, data: bytearray) -> None:
        try:
            # A frame with an out-of-range measurement still carries its cut-out flag, fault
            # and heater flag: decode_status keeps them (PartialStatus) for the supervisor.
            status = decode_status(bytes(data))
        except ProtocolError as exc:
            # A frame of the wrong length or version says nothing reliable: drop it; the
            # supervisor notices the missing reports, and the lease protects the foot meanwhile.
            _LOGGER.warning("massager %s: bad status %s: %s", self.address, data.hex(" "), exc)
            return
        self.last_status = status
        self.statuses_received += 1
        self._on_status(status)

    async def send(
        self, command: Command, *, timeout_s: float = WRITE_TIMEOUT_S, response: bool = True
    ) -> None:
        """Write ``command`` to the Command characteristic within ``timeout_s`` (s): with response,
        or, with ``response=False``, as an ATT Write Command that nothing answers (the caller
        confirms it by a later status, `controller.service.actuator`).

        Raises `LinkError` when not connected, or when the write fails or times out.
        """
        client = self._client
        if client is None or not client.is_connected:
            raise LinkError(f"massager {self.address}: not connected")
        await self._write(client, command, timeout_s, response=response)

    async def _write(
        self, client: BleakClient, command: Command, timeout_s: float, *, response: bool = True
    ) -> None:
        try:
            async with asyncio.timeout(timeout_s):
                await client.write_gatt_char(
                    MASSAGER_COMMAND_UUID, encode_command(command), response
                )
        except (BleakError, TimeoutError, OSError) as exc:
            raise LinkError(f"massager {self.address}: {type(command).__name__} failed") from exc

    async def _farewell(self, client: BleakClient) -> None:
        # Whatever ends this link (shutdown, crash, Ctrl-C), the massager is told to stop first;
        # if even that fails, the firmware's lease stops it within the lease time.
        try:
            await self._write(client, Stop(self.next_sequence()), STOP_TIMEOUT_S)
            _LOGGER.info("massager %s: stopped before disconnecting", self.address)
        except LinkError as exc:
            _LOGGER.warning("%s; the lease will stop the massager", exc)


class SensorLink(DeviceLink):
    """The skin sensor: Health Thermometer indications in."""

    kind = DeviceKind.SENSOR

    def __init__(
        self,
        address: str,
        options: LinkOptions,
        on_link_change: Callable[[bool], None],
        on_measurement: Callable[[TemperatureMeasurement | None], None],
        *,
        stale_after_s: float = STALE_AFTER_S.default,
    ) -> None:
        super().__init__(address, options, on_link_change)
        self._on_measurement = on_measurement
        self._stale_after_s = stale_after_s
        # What the thermometer said about itself at the latest connection.
        self.info: ThermometerInfo | None = None
        self._pairing_refused = False
        # Loop time of this connection's first measurement, until the second one gives the pace.
        self._first_at: float | None = None
        self._paced = False

    async def _connect(self, client: BleakClient) -> None:
        # Pairing is optional for a thermometer: many consumer ones do not bond, and reading an
        # indication needs no encryption. Only the massager, an actuator, insists on a bond.
        async with asyncio.timeout(self._options.connect_timeout_s):
            await client.connect()
            encrypted = False
            if self._options.pair and not self._pairing_refused:
                try:
                    await client.pair()
                    encrypted = True
                except BleakError as exc:
                    # Asked once per link: some stacks (BlueZ) drop the connection with the
                    # refusal, and the next attempt must then connect without asking again.
                    self._pairing_refused = True
                    _LOGGER.warning(
                        "sensor %s: refused pairing (%s); reading it unencrypted",
                        self.address,
                        exc,
                    )
                    if not client.is_connected:
                        raise
            self.info = await inspect_thermometer(
                client, self.address, encrypted=encrypted, stale_after_s=self._stale_after_s
            )
            self._first_at, self._paced = None, False

    async def _subscribe(self, client: BleakClient) -> None:
        await client.start_notify(TEMPERATURE_MEASUREMENT_UUID, self._measurement_received)

    def _measurement_received(self, _char: BleakGATTCharacteristic, data: bytearray) -> None:
        try:
            measurement = TemperatureMeasurement.decode(bytes(data))
        except ProtocolError as exc:
            _LOGGER.warning("sensor %s: bad measurement %s: %s", self.address, data.hex(" "), exc)
            # Reported as an unusable reading, so the supervisor counts it as invalid data.
            self._on_measurement(None)
            return
        info = self.info
        if (
            info is not None
            and measurement.temperature_type is not None
            and measurement.temperature_type != info.temperature_type
        ):
            # HTS 1.0 §3.1: the type is stated either in a characteristic or in each measurement.
            info = self.info = dataclasses.replace(
                info, temperature_type=measurement.temperature_type
            )
        if info is not None and not self._paced:
            now = asyncio.get_running_loop().time()
            if self._first_at is None:
                self._first_at = now
            else:
                self._paced = True
                self.info = dataclasses.replace(info, first_gap_s=now - self._first_at)
        self._on_measurement(measurement)


async def _disconnect_quietly(client: BleakClient) -> None:
    try:
        async with asyncio.timeout(STOP_TIMEOUT_S):
            await client.disconnect()
    except (BleakError, TimeoutError, OSError) as exc:
        _LOGGER.debug("disconnect of %s failed: %s", client.address, exc)
