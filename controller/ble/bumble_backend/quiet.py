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

from bumble import hci
from bumble.controller import Controller
from bumble.host import Host

__all__ = ["QuietController", "QuietHost"]

_CONTROLLER_LOGGER = logging.getLogger("bumble.controller")
_HOST_LOGGER = logging.getLogger("bumble.host")


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
