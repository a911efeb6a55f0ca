"""The quiet controller, host and GATT client/server: bumble's behaviour, minus debug text.

`controller.ble.bumble_backend.quiet` repeats small bumble methods without their eager debug
f-strings. These tests pin those methods' upstream source (a bumble release that changes them
fails here, and the copy must be checked against it) and show that packet text is built only when
debug logging is on, when bumble's own method runs unchanged. Every session test in the suite runs
over these classes, so the dispatch itself is exercised everywhere else.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import logging
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

import pytest
from bleak import BleakClient
from bumble import att, gatt_client, gatt_server, hci
from bumble.controller import Controller
from bumble.host import Host
from bumble.link import LocalLink

from controller.ble.bumble_backend import BumbleRadio
from controller.ble.bumble_backend.quiet import QuietController
from controller.protocol import MASSAGER_STATUS_UUID, MassagerStatus
from firmware_sim.clock import run
from firmware_sim.world import SimWorld

if TYPE_CHECKING:
    from collections.abc import Callable

# sha256 (first 16 hex digits) of each upstream method the quiet classes repeat, in bumble 0.0.236.
UPSTREAM: dict[Callable[..., Any], str] = {
    Controller.on_hci_packet: "62d8e3f11f5b643c",
    Controller.send_hci_packet: "99dac315f5ccc728",
    Host.on_hci_packet: "8a97cd66d5162d55",
    Host.send_hci_packet: "c466fa2806dd157f",
    gatt_server.Server.send_response: "ad31b8aa5809f646",
    gatt_server.Server._notify_single_subscriber: "a1806576bd04084a",
    gatt_server.Server.on_gatt_pdu: "ba695c067c8fc8bb",
    gatt_client.Client.send_confirmation: "05dc2d34eede1510",
    gatt_client.Client.on_gatt_pdu: "adbd3a89b98d648f",
}


@pytest.mark.parametrize("method", list(UPSTREAM), ids=lambda m: m.__qualname__)
def test_upstream_methods_are_the_ones_the_quiet_copies_repeat(method: Callable[..., Any]) -> None:
    digest = hashlib.sha256(inspect.getsource(method).encode()).hexdigest()[:16]
    assert digest == UPSTREAM[method], (
        f"bumble {version('bumble')} changed {method.__qualname__}: compare it with "
        "controller/ble/bumble_backend/quiet.py, then update the digest here"
    )


async def test_packet_text_is_built_only_when_debug_is_on(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    controller = QuietController("quiet", link=LocalLink())
    packet = hci.HCI_Reset_Command()
    formatted: list[str] = []

    def text(_packet: object) -> str:
        formatted.append("reset")
        return "RESET-PACKET"

    monkeypatch.setattr(type(packet), "__str__", text)

    with caplog.at_level(logging.INFO, logger="bumble.controller"):
        controller.send_hci_packet(packet)  # no host attached: nothing to deliver
    assert formatted == []

    with caplog.at_level(logging.DEBUG, logger="bumble.controller"):
        controller.send_hci_packet(packet)
    assert formatted == ["reset"]
    assert "RESET-PACKET" in caplog.text


def _status_notifications(seconds: float) -> list[MassagerStatus]:
    """Status notifications a BleakClient receives from the simulated massager in ``seconds``."""
    received: list[MassagerStatus] = []

    async def session() -> None:
        async with SimWorld(seed=1) as world, BumbleRadio(world.link) as radio:
            client = BleakClient(world.massager_address, backend=radio.client_backend())
            async with client:
                await client.pair()
                await client.start_notify(
                    MASSAGER_STATUS_UUID,
                    lambda _c, data: received.append(MassagerStatus.decode(bytes(data))),
                )
                await asyncio.sleep(seconds)

    run(session(), speed="max")
    return received


@pytest.mark.parametrize("debug", [False, True], ids=["debug-off", "debug-on"])
def test_gatt_pdus_are_formatted_only_when_debug_is_on(
    debug: bool, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    formatted: list[str] = []

    def text(pdu: att.ATT_PDU) -> str:
        formatted.append(pdu.name)
        return pdu.name

    monkeypatch.setattr(att.ATT_PDU, "__str__", text)
    level = logging.DEBUG if debug else logging.INFO
    with (
        caplog.at_level(level, logger="bumble.gatt_server"),
        caplog.at_level(level, logger="bumble.gatt_client"),
    ):
        statuses = _status_notifications(3.0)
    # The massager's status still arrives at its rate (5 Hz) over the quiet server and client.
    assert len(statuses) >= 14
    notifications = formatted.count("ATT_HANDLE_VALUE_NOTIFICATION")
    if debug:
        assert notifications >= 2 * len(statuses)  # sent by the server, received by the client
    else:
        assert notifications == 0
