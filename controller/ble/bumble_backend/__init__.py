"""A bleak backend on bumble: bleak's public client and scanner over bumble's radios.

The same production code then runs over bumble's in-process virtual radio (``LocalLink``: tests,
demo), a virtual radio shared across processes (`expose_hci_controller` on the simulator side,
``BumbleRadio("tcp-client:HOST:PORT")`` on the controller side) or a real HCI dongle
(``usb:0``, ``serial:/dev/ttyACM0``)::

    async with BumbleRadio(link_or_spec, keystore=path) as radio:
        device = await BleakScanner.find_device_by_address(addr, backend=radio.scanner_backend())
        async with BleakClient(device, backend=radio.client_backend(), timeout=10) as client:
            ...

Importing this package is cheap; bumble (about 0.3 s) loads on first use of a name below.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from controller.ble.bumble_backend.client import BumbleClientBackend
    from controller.ble.bumble_backend.radio import BumbleRadio, IoCapability, PairingPolicy
    from controller.ble.bumble_backend.scanner import BumbleScannerBackend
    from controller.ble.bumble_backend.virtual import (
        HciEndpoint,
        IntervalLink,
        VirtualController,
        expose_hci_controller,
    )

_EXPORTS = {
    "BumbleClientBackend": "client",
    "BumbleRadio": "radio",
    "BumbleScannerBackend": "scanner",
    "HciEndpoint": "virtual",
    "IntervalLink": "virtual",
    "IoCapability": "radio",
    "PairingPolicy": "radio",
    "VirtualController": "virtual",
    "expose_hci_controller": "virtual",
}

__all__ = [
    "BumbleClientBackend",
    "BumbleRadio",
    "BumbleScannerBackend",
    "HciEndpoint",
    "IntervalLink",
    "IoCapability",
    "PairingPolicy",
    "VirtualController",
    "expose_hci_controller",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
