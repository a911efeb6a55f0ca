"""Bumble's virtual radio, made fit for a controller that must survive timeouts and restarts.

Three pieces, all on top of ``bumble.link.LocalLink``:

- `VirtualController`: bumble's ``Controller`` with a working *LE Create Connection Cancel*.
  Stock bumble 0.0.236 answers the cancel with success but neither clears the pending connect nor
  sends the *LE Connection Complete (Unknown Connection Identifier)* event the spec requires, so a
  timed-out connect would hang and every later connect would be refused as "command disallowed".
- `IntervalLink`: a ``LocalLink`` that delivers link-layer data one connection interval late, in
  order, for realistic timing (``LocalLink`` reports intervals but delivers with ``call_soon``).
- `expose_hci_controller`: one more controller on a link, its HCI reachable over TCP, so a
  controller process can join a simulator's link with ``BumbleRadio("tcp-client:HOST:PORT")``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bumble import core, hci, ll
from bumble.link import LocalLink
from bumble.transport.common import StreamPacketSource

from controller.ble.bumble_backend.quiet import QuietController

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from bumble.controller import Controller

_LOGGER = logging.getLogger(__name__)

# Reason given to peripherals when the host of an exposed controller goes away: from their side
# the central vanished without a word, which a real radio reports as a supervision timeout.
_HOST_LOST_REASON = hci.HCI_ErrorCode.CONNECTION_TIMEOUT_ERROR


class VirtualController(QuietController):
    """A bumble virtual controller whose LE connect can be cancelled (Core 5.4 Vol 4 E 7.8.13)."""

    def on_hci_le_create_connection_cancel_command(
        self, _command: hci.HCI_LE_Create_Connection_Cancel_Command
    ) -> hci.HCI_StatusReturnParameters:
        """Cancel a pending LE connection (Core 5.4 Vol 4 Part E 7.8.13).

        Answers Command Disallowed when none is pending.
        """
        pending = self.pending_le_connection
        if pending is None:
            return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.COMMAND_DISALLOWED_ERROR)
        self.pending_le_connection = None
        peer_address = pending.peer_address
        failure = hci.HCI_LE_Connection_Complete_Event(
            status=hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR,
            connection_handle=0,
            role=hci.Role.CENTRAL,
            peer_address_type=peer_address.address_type,
            peer_address=peer_address,
            connection_interval=0,
            peripheral_latency=0,
            supervision_timeout=0,
            central_clock_accuracy=0,
        )
        # The Command Complete for this cancel is queued with call_soon once we return; queueing
        # the failure event one step later keeps the order the spec requires.
        asyncio.get_running_loop().call_soon(self.send_hci_packet, failure)
        return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.SUCCESS)

    def drop_all_le_connections(self, reason: int) -> None:
        """Terminate every LE link of this controller, telling the peers, as a power loss would."""
        for connection in list(self.le_connections.values()):
            connection.send_ll_control_pdu(ll.TerminateInd(reason))
            del self.le_connections[connection.peer_address]
        self.pending_le_connection = None


class IntervalLink(LocalLink):
    """A `LocalLink` that delivers ACL data and LL control PDUs one connection interval late.

    Order is kept: deliveries go through one FIFO drained by a single timer, because equal
    ``call_later`` deadlines are not guaranteed to run in submission order and a reordered
    L2CAP PDU would corrupt the ATT exchange. Advertising is not delayed (it has its own timers).
    """

    def __init__(self, interval_s: float = 0.0075) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, got {interval_s}")
        self.interval_s = interval_s
        self._queue: deque[tuple[float, Callable[[], None]]] = deque()
        self._timer: asyncio.TimerHandle | None = None

    def _deliver_later(self, deliver: Callable[[], None]) -> None:
        loop = asyncio.get_running_loop()
        self._queue.append((loop.time() + self.interval_s, deliver))
        if self._timer is None:
            self._timer = loop.call_at(self._queue[0][0], self._drain)

    def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        self._timer = None
        now = loop.time()
        while self._queue and self._queue[0][0] <= now:
            _, deliver = self._queue.popleft()
            deliver()
        if self._queue:
            self._timer = loop.call_at(self._queue[0][0], self._drain)

    def send_acl_data(
        self,
        sender_controller: Controller,
        destination_address: hci.Address,
        transport: core.PhysicalTransport,
        data: bytes,
    ) -> None:
        """Deliver LE ACL data one connection interval late, in order; other transports at once."""
        if transport != core.PhysicalTransport.LE:
            super().send_acl_data(sender_controller, destination_address, transport, data)
            return
        destination = self.find_le_controller(destination_address)
        if destination is None:
            return
        source_address = sender_controller.random_address
        self._deliver_later(lambda: destination.on_link_acl_data(source_address, transport, data))

    def send_ll_control_pdu(
        self,
        sender_address: hci.Address,
        receiver_address: hci.Address,
        packet: ll.ControlPdu,
    ) -> None:
        """Deliver an LL control PDU one connection interval late, in order.

        Raises bumble's `InvalidArgumentError` for an unknown receiver.
        """
        receiver = self.find_le_controller(receiver_address)
        if receiver is None:
            raise core.InvalidArgumentError(
                f"Unable to find controller for address {receiver_address}"
            )
        self._deliver_later(lambda: receiver.on_ll_control_pdu(sender_address, packet))


@dataclass(frozen=True, slots=True)
class HciEndpoint:
    """Where a controller process finds an exposed controller."""

    host: str
    port: int

    @property
    def transport_spec(self) -> str:
        """The bumble transport spec for `BumbleRadio` in the other process."""
        return f"tcp-client:{self.host}:{self.port}"


class _HciSession(asyncio.Protocol):
    """One TCP host attached to a fresh `VirtualController` on the link, for its lifetime.

    A fresh controller per host means a restarted controller process never inherits the previous
    one's half-open links, and when a host vanishes its peripherals see the links drop and can
    advertise again, as they would if a real central lost power.
    """

    def __init__(self, link: LocalLink, sessions: set[_HciSession]) -> None:
        self._link = link
        self._sessions = sessions
        self._transport: asyncio.Transport | None = None
        self._source = StreamPacketSource()
        self._controller: VirtualController | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        if self._sessions:
            # A controller serves one host; a second one would fight over the same radio.
            _LOGGER.warning("HCI endpoint: refusing a second host, one is already attached")
            transport.close()
            return
        self._transport = transport
        self._sessions.add(self)
        self._controller = VirtualController(
            "exposed", host_source=self._source, host_sink=self, link=self._link
        )
        _LOGGER.info("HCI endpoint: host attached from %s", transport.get_extra_info("peername"))

    def on_packet(self, packet: bytes) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(packet)

    def data_received(self, data: bytes) -> None:
        self._source.data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.detach()

    def detach(self) -> None:
        if self._controller is None:
            return
        controller, self._controller = self._controller, None
        controller.drop_all_le_connections(_HOST_LOST_REASON)
        controller.le_legacy_advertiser.stop()
        self._link.remove_controller(controller)
        self._sessions.discard(self)
        if self._transport is not None:
            self._transport.close()
        _LOGGER.info("HCI endpoint: host detached")


@contextlib.asynccontextmanager
async def expose_hci_controller(
    link: LocalLink, spec: str = "tcp-server:127.0.0.1:0"
) -> AsyncIterator[HciEndpoint]:
    """Expose a virtual central controller on ``link`` over TCP, for a controller process.

    ``spec`` is ``tcp-server:HOST:PORT`` (port 0 picks a free one; read it from the endpoint).
    Only one host at a time; when it disconnects its links are dropped and the next host gets a
    fresh controller.
    """
    scheme, _, rest = spec.partition(":")
    host, _, port_text = rest.rpartition(":")
    if scheme != "tcp-server" or not host or not port_text.isdigit():
        raise ValueError(f"expected 'tcp-server:HOST:PORT', got {spec!r}")
    sessions: set[_HciSession] = set()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _HciSession(link, sessions), host, int(port_text))
    sockname: Any = server.sockets[0].getsockname()
    endpoint = HciEndpoint(host=host, port=int(sockname[1]))
    _LOGGER.info("HCI endpoint listening on %s", endpoint.transport_spec)
    try:
        async with server:
            yield endpoint
    finally:
        for session in list(sessions):
            session.detach()
