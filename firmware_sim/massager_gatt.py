"""The massager's GATT server: the SoleGuard service, Battery and Device Information.

Wires `MassagerFirmware` to bumble. Writes to Command and subscriptions to Status need an
encrypted link (the central must have paired): bumble answers ATT "insufficient encryption"
(0x0F) before our code runs. Status is notified at `STATUS_PERIOD_S` and at once on every change of
the discrete state (flags, last sequence, pressure target, fault, start-button presses); the
analogue values (pressure, pad temperature, lease remaining) ride on the periodic notifications,
or the noise alone would notify at the tick rate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from bumble import att, gatt, utils
from bumble.profiles.battery_service import BatteryService
from bumble.profiles.device_information_service import DeviceInformationService

from controller.protocol import (
    MASSAGER_COMMAND_UUID,
    MASSAGER_LIMITS_UUID,
    MASSAGER_SERVICE_UUID,
    MASSAGER_STATUS_UUID,
)
from firmware_sim.massager import CommandRefused, MassagerFirmware
from firmware_sim.peripheral import Peripheral, advertising_payloads

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["FIRMWARE_REVISION", "STATUS_PERIOD_S", "MassagerPeripheral"]

_LOGGER = logging.getLogger(__name__)

STATUS_PERIOD_S = 0.2  # 5 Hz, docs/protocol.md
FIRMWARE_REVISION = "sim-1.0"
_CCCD_PERMISSIONS = (
    att.Attribute.READABLE | att.Attribute.WRITEABLE | att.Attribute.WRITE_REQUIRES_ENCRYPTION
)
# A notification can fail when the link drops between our check and the send; the next period
# retries on whatever connection there is then.
_NOTIFY_ERRORS = (att.ATT_Error, asyncio.TimeoutError, ConnectionError)


class MassagerPeripheral(Peripheral):
    """The simulated massager on the air.

    ``firmware``: the logic it serves; ``now``: the world's clock (s), passed to
    ``firmware.handle_write``; ``name``/``address``/``serial_number``: what it advertises and
    serves in Device Information; ``radio``: passed to `Peripheral`. Wire formats:
    docs/protocol.md (Command, Status, Device limits).
    """

    def __init__(
        self,
        firmware: MassagerFirmware,
        now: Callable[[], float],
        *,
        name: str,
        address: str,
        serial_number: str,
        **radio: Any,
    ) -> None:
        super().__init__(
            name=name,
            address=address,
            advertising=advertising_payloads(name, uuids_128=[MASSAGER_SERVICE_UUID]),
            **radio,
        )
        self.firmware = firmware
        self._now = now
        self._changed = asyncio.Event()
        self._notified_state = firmware.discrete_state()
        self.status_notifications = 0
        # Fault injector: the next N ATT Write Commands (writes without response) to Command are
        # lost on the air, as a radio can lose them with no one told (docs/protocol.md).
        self.write_commands_to_lose = 0
        self.write_commands_lost = 0
        # Fault injector: the next N Status notifications each reach the central twice, as a
        # stack that retransmits or a bridge that redelivers would (FAULTS.md class 6).
        self.status_notifications_to_repeat = 0
        self.status_notifications_repeated = 0
        # Write Without Response too: the controller sends cuts that way (docs/protocol.md, "Cuts
        # without response"); the encryption requirement holds for both (bumble checks it in
        # Attribute.write_value and drops a Write Command that fails it, logging the ATT_Error:
        # checked in bumble 0.0.236, att.Attribute.write_value, Server.on_att_write_command).
        self.command = gatt.Characteristic[bytes](
            MASSAGER_COMMAND_UUID,
            gatt.Characteristic.Properties.WRITE
            | gatt.Characteristic.Properties.WRITE_WITHOUT_RESPONSE,
            att.Attribute.WRITEABLE | att.Attribute.WRITE_REQUIRES_ENCRYPTION,
            gatt.CharacteristicValue[bytes](write=self._on_command),
        )
        self.status = gatt.Characteristic[bytes](
            MASSAGER_STATUS_UUID,
            gatt.Characteristic.Properties.NOTIFY,
            att.Attribute.Permissions(0),  # notify only, docs/protocol.md
            b"",
        )
        # Our own CCCD replaces the one bumble would add, to require encryption to subscribe.
        self.status.descriptors = [
            gatt.Descriptor(
                gatt.GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR,
                _CCCD_PERMISSIONS,
                self.device.gatt_server.make_descriptor_value(self.status),
            )
        ]
        self.limits = gatt.Characteristic[bytes](
            MASSAGER_LIMITS_UUID,
            gatt.Characteristic.Properties.READ,
            att.Attribute.READABLE,
            firmware.limits.encode(),
        )
        self.device.add_services(
            [
                gatt.Service(MASSAGER_SERVICE_UUID, [self.command, self.status, self.limits]),
                BatteryService(read_battery_level=self._battery_level),
                DeviceInformationService(
                    manufacturer_name="SoleGuard Simulated Devices",
                    model_number="SG-M1 heated massager",
                    serial_number=serial_number,
                    firmware_revision=FIRMWARE_REVISION,
                ),
            ]
        )
        self._install_write_command_loss()

    def _install_write_command_loss(self) -> None:
        server = self.device.gatt_server
        deliver = server.on_att_write_command

        # As bumble's own handler: it runs in its own task (bumble's decorator is untyped).
        @utils.AsyncRunner.run_in_task()  # type: ignore[untyped-decorator]
        async def write_command(bearer: Any, value: bytes) -> None:
            # A Write Command gets no response, not even an error (Core Spec Vol 3 Part F
            # 3.4.5.3): a refused command (logged by _on_command) or a write without the
            # required encryption is dropped here, where bumble would log a traceback for it.
            with contextlib.suppress(att.ATT_Error):
                await self.command.write_value(bearer, value)

        def on_att_write_command(bearer: Any, request: Any) -> Any:
            if request.attribute_handle != self.command.handle:
                return deliver(bearer, request)
            if self.write_commands_to_lose > 0:
                self.write_commands_to_lose -= 1
                self.write_commands_lost += 1
                _LOGGER.info("%s: lost a write without response (fault injector)", self.name)
                return None
            return write_command(bearer, request.attribute_value)

        # bumble's server finds its handler by name on the instance (`on_gatt_pdu`).
        server.on_att_write_command = on_att_write_command

    def _battery_level(self, _connection: Any) -> int:
        return max(0, min(100, round(self.firmware.physics.battery_percent)))

    def _on_connection(self, connection: Any) -> None:
        super()._on_connection(connection)
        # "Rebooted since the last connection": a status seen on an earlier connection does not
        # count; the new central must see the fault itself.
        self.firmware.connection_started()

    async def factory_reset(self) -> None:
        """A reset restarts the firmware too: heater and pressure off at once, lease gone."""
        self.firmware.reboot()
        await super().factory_reset()

    def press_start_button(self) -> None:
        """The user presses the massager's start button once: counted, and notified at once.

        See `MassagerFirmware.press_start`; the device itself starts nothing.
        """
        self.firmware.press_start()
        self.check_changed()

    def _on_command(self, connection: Any, value: bytes) -> None:
        try:
            command = self.firmware.handle_write(value, self._now())
        except CommandRefused as exc:
            _LOGGER.info(
                "%s: refused %s from %s: %s (ATT 0x%02X)",
                self.name,
                bytes(value).hex(),
                connection.peer_address,
                exc,
                exc.att_error,
            )
            raise att.ATT_Error(exc.att_error) from exc
        _LOGGER.debug("%s: executed %s", self.name, command)
        self.check_changed()

    def check_changed(self) -> None:
        """Notify at once if the discrete state changed (after a command or a tick)."""
        if self.firmware.discrete_state() != self._notified_state:
            self._changed.set()

    async def notify_status(self) -> None:
        """Notify Status every `STATUS_PERIOD_S` (5 Hz) and at once on change, forever.

        Runs until cancelled; frames are stamped with the loop's clock (s). A failed notification
        is logged at DEBUG and skipped, never raised.
        """
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            periodic = loop.time() >= due
            if not periodic:
                try:
                    async with asyncio.timeout_at(due):
                        await self._changed.wait()
                except TimeoutError:
                    periodic = True
            now = loop.time()
            if periodic:
                # Hold 5 Hz on average, but never burst to catch up after a stall.
                due = max(due + STATUS_PERIOD_S, now)
            self._changed.clear()
            self._notified_state = self.firmware.discrete_state()
            frame = self.firmware.status(now).encode()
            if self.firmware.faults.pressure_sensor_open:
                # An open sensor input reads full scale: 0xFFFF, outside the protocol's range.
                frame = frame[:4] + b"\xff\xff" + frame[6:]
            await self._notify(frame)
            if self.status_notifications_to_repeat > 0:
                self.status_notifications_to_repeat -= 1
                self.status_notifications_repeated += 1
                _LOGGER.info("%s: status notified twice (fault injector)", self.name)
                await self._notify(frame)

    async def _notify(self, frame: bytes) -> None:
        for connection in self.connections:
            try:
                await self.device.notify_subscriber(connection, self.status, frame)
            except _NOTIFY_ERRORS as exc:
                _LOGGER.debug("%s: status notification failed: %s", self.name, exc)
            else:
                if self._subscribed(connection):
                    self.status_notifications += 1
                    self.firmware.status_sent()

    def _subscribed(self, connection: Any) -> bool:
        """Whether the central has notifications on: bumble skips the others silently."""
        subscribers = self.device.gatt_server.subscribers.get(connection) or {}
        cccd: bytes | None = subscribers.get(self.status.handle)
        return cccd is not None and len(cccd) == 2 and bool(cccd[0] & 0x01)
