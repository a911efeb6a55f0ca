"""The quiet controller and host: bumble's behaviour, minus debug text built for nobody.

`controller.ble.bumble_backend.quiet` repeats four small bumble methods without their eager debug
f-strings. These tests pin those methods' upstream source (a bumble release that changes them
fails here, and the copy must be checked against it) and show that packet text is built only when
debug logging is on, when bumble's own method runs unchanged. Every session test in the suite runs
over these classes, so the dispatch itself is exercised everywhere else.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

import pytest
from bumble import hci
from bumble.controller import Controller
from bumble.host import Host
from bumble.link import LocalLink

from controller.ble.bumble_backend.quiet import QuietController

if TYPE_CHECKING:
    from collections.abc import Callable

# sha256 (first 16 hex digits) of each upstream method the quiet classes repeat, in bumble 0.0.236.
UPSTREAM: dict[Callable[..., Any], str] = {
    Controller.on_hci_packet: "62d8e3f11f5b643c",
    Controller.send_hci_packet: "99dac315f5ccc728",
    Host.on_hci_packet: "8a97cd66d5162d55",
    Host.send_hci_packet: "c466fa2806dd157f",
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
