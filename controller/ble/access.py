"""Which radio the controller uses: bleak's platform backend or a bumble one, from settings.

The rest of the controller only ever sees bleak's public API plus the backend classes chosen here,
so the same links run over BlueZ/CoreBluetooth/WinRT, a USB or serial HCI dongle, a simulator in
another process (``tcp-client:``) or bumble's in-process virtual radio.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from controller.ble.links import LinkOptions
from controller.settings.models import BleSettings

if TYPE_CHECKING:
    from bleak.backends.scanner import BaseBleakScanner
    from bumble.link import LocalLink

PLATFORM = "platform"


def default_keystore_path() -> Path:
    import platformdirs  # noqa: PLC0415

    return Path(platformdirs.user_data_dir("soleguard")) / "bonds.json"


@dataclass(frozen=True, slots=True)
class BleAccess:
    links: LinkOptions
    # None: bleak's platform scanner.
    scanner_backend: type[BaseBleakScanner] | None
    description: str


@asynccontextmanager
async def open_ble(
    settings: BleSettings, *, local_link: LocalLink | None = None
) -> AsyncIterator[BleAccess]:
    """Open the radio the settings name, or join ``local_link`` (the in-process simulator)."""
    if local_link is None and settings.transport == PLATFORM:
        yield BleAccess(
            LinkOptions(backend=None, connect_timeout_s=settings.connect_timeout_s),
            None,
            "bleak platform backend",
        )
        return
    from controller.ble.bumble_backend.radio import BumbleRadio  # noqa: PLC0415 (bumble is slow)

    transport: LocalLink | str = local_link if local_link is not None else settings.transport
    keystore = settings.keystore
    if keystore is None and local_link is None:
        # Bonds with real (or out-of-process) devices must outlive this process.
        keystore = default_keystore_path()
    async with BumbleRadio(transport, keystore=keystore) as radio:
        yield BleAccess(
            LinkOptions(
                backend=radio.client_backend(), connect_timeout_s=settings.connect_timeout_s
            ),
            radio.scanner_backend(),
            "virtual radio" if local_link is not None else f"bumble on {settings.transport}",
        )
