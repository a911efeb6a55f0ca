"""Bumble's controller and host without the cost of debug lines nobody reads.

Bumble 0.0.236 formats every HCI packet it passes for ``logger.debug`` with an f-string, so the
text (field by field, with terminal colours) is built whether or not debug logging is on: about a
quarter of the wall time of a simulated session (`bench/virtual_time.py`, profiled). These
subclasses keep bumble's behaviour exactly and only skip building that text when the module's
logger would drop it; with debug on for ``bumble.controller`` or ``bumble.host`` they call bumble's
own methods unchanged. The fix is upstreamable as it stands (lazy ``%s`` logging in bumble).

The dispatch below repeats bumble's; ``tests/ble/test_bleak_conformance.py`` pins the upstream
methods' source, so a bumble release that changes them fails a test instead of drifting silently.
Only bumble is imported here (no bleak), so the simulated firmware can use these too.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from bumble import att, gatt_client, gatt_server, hci
from bumble.colors import color
from bumble.controller import Controller
from bumble.host import Host

if TYPE_CHECKING:
    from bumble.device import Connection, Device

__all__ = ["QuietController", "QuietGattClient", "QuietGattServer", "QuietHost", "quiet_gatt"]

_CONTROLLER_LOGGER = logging.getLogger("bumble.controller")
_HOST_LOGGER = logging.getLogger("bumble.host")
_GATT_CLIENT_LOGGER = logging.getLogger("bumble.gatt_client")
_GATT_SERVER_LOGGER = logging.getLogger("bumble.gatt_server")


class QuietController(Controller):
    """`bumble.controller.Controller` whose HCI traffic is formatted only when debug is on."""

    def on_hci_packet(self, packet: hci.HCI_Packet) -> None:
        """Dispatch a packet from the host, formatting it for the log only at debug level."""
        if _CONTROLLER_LOGGER.isEnabledFor(logging.DEBUG):
            super().on_hci_packet(packet)
            return
        match packet:
            case hci.HCI_Command():
                self.on_hci_command_packet(packet)
            case hci.HCI_AclDataPacket():
                self.on_hci_acl_data_packet(packet)
            case hci.HCI_Event():
                self.on_hci_event_packet(packet)
            case _:
                _CONTROLLER_LOGGER.warning("!!! unknown packet type %s", packet.hci_packet_type)

    def send_hci_packet(self, packet: hci.HCI_Packet) -> None:
        """Hand a packet to the host on the next loop turn, formatting it only at debug level."""
        if _CONTROLLER_LOGGER.isEnabledFor(logging.DEBUG):
            super().send_hci_packet(packet)
            return
        if self.host:
            asyncio.get_running_loop().call_soon(self.host.on_packet, bytes(packet))


class QuietHost(Host):
    """`bumble.host.Host` whose HCI traffic is formatted only when debug is on."""

    def on_hci_packet(self, packet: hci.HCI_Packet) -> None:
        """Dispatch a packet from the controller, formatting it for the log only at debug level."""
        if _HOST_LOGGER.isEnabledFor(logging.DEBUG):
            super().on_hci_packet(packet)
            return
        if self.snooper:
            super().on_hci_packet(packet)
            return
        match packet:
            case hci.HCI_Command():
                self.on_hci_command_packet(packet)
            case hci.HCI_Event():
                self.on_hci_event_packet(packet)
            case hci.HCI_AclDataPacket():
                self.on_hci_acl_data_packet(packet)
            case hci.HCI_SynchronousDataPacket():
                self.on_hci_sco_data_packet(packet)
            case hci.HCI_IsoDataPacket():
                self.on_hci_iso_data_packet(packet)
            case _:
                _HOST_LOGGER.warning("!!! unknown packet type %s", packet.hci_packet_type)

    def send_hci_packet(self, packet: hci.HCI_Packet) -> None:
        """Hand a packet to the controller, formatting it for the log only at debug level."""
        if _HOST_LOGGER.isEnabledFor(logging.DEBUG) or self.snooper:
            super().send_hci_packet(packet)
            return
        if self.hci_sink:
            self.hci_sink.on_packet(bytes(packet))


class QuietGattServer(gatt_server.Server):
    """`bumble.gatt_server.Server` whose ATT PDUs are formatted only when debug is on.

    Bumble writes each PDU it serves, notifies or answers into an eager debug f-string (field by
    field, with terminal colours): per status notification that cost more than building and
    sending the PDU (`bench/virtual_time.py`, profiled). It adds no state, so `quiet_gatt` can
    give a device's existing server this class.
    """

    def send_response(self, bearer: att.Bearer, response: att.ATT_PDU) -> None:
        """Send an ATT response, formatting it for the log only at debug level."""
        if _GATT_SERVER_LOGGER.isEnabledFor(logging.DEBUG):
            super().send_response(bearer, response)
            return
        self.send_gatt_pdu(bearer, bytes(response))

    async def _notify_single_subscriber(
        self, bearer: att.Bearer, attribute: att.Attribute[Any], value: Any, force: bool
    ) -> None:
        if _GATT_SERVER_LOGGER.isEnabledFor(logging.DEBUG):
            await super()._notify_single_subscriber(bearer, attribute, value, force)
            return
        # Bumble's method without its debug lines: subscribed to notifications?
        if not force:
            subscribers = self.subscribers.get(bearer)
            if not subscribers:
                return
            cccd = subscribers.get(attribute.handle)
            if not cccd or len(cccd) != 2 or (cccd[0] & 0x01 == 0):
                return
        value_as_bytes = (
            await attribute.read_value(bearer) if value is None else attribute.encode_value(value)
        )
        if len(value_as_bytes) > bearer.att_mtu - 3:
            value_as_bytes = value_as_bytes[: bearer.att_mtu - 3]
        notification = att.ATT_Handle_Value_Notification(
            attribute_handle=attribute.handle, attribute_value=value_as_bytes
        )
        self.send_gatt_pdu(bearer, bytes(notification))

    def on_gatt_pdu(self, bearer: att.Bearer, att_pdu: att.ATT_PDU) -> None:
        """Dispatch an ATT PDU from a client, formatting it for the log only at debug level."""
        if _GATT_SERVER_LOGGER.isEnabledFor(logging.DEBUG):
            super().on_gatt_pdu(bearer, att_pdu)
            return
        handler = getattr(self, f"on_{att_pdu.name.lower()}", None)
        if handler is None:
            # Bumble's own path (a generic request handler, or a warning): rare, so unchanged.
            super().on_gatt_pdu(bearer, att_pdu)
            return
        try:
            handler(bearer, att_pdu)
        except att.ATT_Error as error:
            response = att.ATT_Error_Response(
                request_opcode_in_error=att_pdu.op_code,
                attribute_handle_in_error=error.att_handle,
                error_code=error.error_code,
            )
            self.send_response(bearer, response)
        except Exception:
            _GATT_SERVER_LOGGER.exception(color("!!! Exception in handler:", "red"))
            response = att.ATT_Error_Response(
                request_opcode_in_error=att_pdu.op_code,
                attribute_handle_in_error=0x0000,
                error_code=att.ATT_UNLIKELY_ERROR_ERROR,
            )
            self.send_response(bearer, response)
            raise


class QuietGattClient(gatt_client.Client):
    """`bumble.gatt_client.Client` whose incoming ATT PDUs are formatted only when debug is on.

    Every notification, indication and response a central receives passes `on_gatt_pdu`, whose
    first line formats the PDU for ``logger.debug``. It adds no state (see `quiet_gatt`).
    """

    def send_confirmation(self, confirmation: att.ATT_Handle_Value_Confirmation) -> None:
        """Send a Handle Value Confirmation, formatting it for the log only at debug level."""
        if _GATT_CLIENT_LOGGER.isEnabledFor(logging.DEBUG):
            super().send_confirmation(confirmation)
            return
        self.send_gatt_pdu(bytes(confirmation))

    def on_gatt_pdu(self, att_pdu: att.ATT_PDU) -> None:
        """Dispatch an ATT PDU from the server, formatting it for the log only at debug level."""
        if _GATT_CLIENT_LOGGER.isEnabledFor(logging.DEBUG):
            super().on_gatt_pdu(att_pdu)
            return
        if att_pdu.op_code in att.ATT_RESPONSES:
            if self.pending_request is None:
                _GATT_CLIENT_LOGGER.warning("!!! unexpected response, there is no pending request")
                return
            # The response must match the pending request unless it is an error response.
            if att_pdu.op_code != att.Opcode.ATT_ERROR_RESPONSE:
                expected_response_name = self.pending_request.name.replace("_REQUEST", "_RESPONSE")
                if att_pdu.name != expected_response_name:
                    _GATT_CLIENT_LOGGER.warning(
                        "!!! mismatched response: expected %s", expected_response_name
                    )
                    return
            assert self.pending_response is not None
            self.pending_response.set_result(att_pdu)
            return
        handler = getattr(self, f"on_{att_pdu.name.lower()}", None)
        if handler is None:
            super().on_gatt_pdu(att_pdu)  # bumble's warning, unchanged: rare
            return
        handler(att_pdu)


def quiet_gatt(device: Device) -> None:
    """Give ``device``'s GATT server, and the GATT client of each connection it makes, the quiet
    classes above.

    Bumble builds both itself (`Device.__init__`, `Connection.__init__`) with no factory to pass,
    and other objects already hold the server (event forwarding), so the objects are kept and
    only their class changes; the quiet classes add no attributes, so this is safe. Call it
    before the device connects.
    """
    device.gatt_server.__class__ = QuietGattServer

    def on_connection(connection: Connection) -> None:
        if type(connection.gatt_client) is gatt_client.Client:
            connection.gatt_client.__class__ = QuietGattClient

    device.on(device.EVENT_CONNECTION, on_connection)
