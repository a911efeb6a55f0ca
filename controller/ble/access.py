"""Which radio the controller uses: bleak's platform backend or a bumble one, from settings.

The rest of the controller only ever sees bleak's public API plus the backend classes chosen here,
so the same links run over BlueZ/CoreBluetooth/WinRT, a USB or serial HCI dongle, a simulator in
another process (``tcp-client:``) or bumble's in-process virtual radio.
"""

from __future__ import annotations

import contextlib
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from controller.ble.links import LinkOptions
from controller.errors import LinkError, SoleGuardError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from bleak.backends.scanner import BaseBleakScanner
    from bumble.link import LocalLink

    from controller.settings.models import BleSettings

PLATFORM = "platform"
TRANSPORT_HINT = (
    'is the adapter or dongle plugged in and free? ble.transport may be "platform" (BlueZ, '
    'CoreBluetooth, WinRT), "usb:0", "serial:/dev/ttyACM0" or "tcp-client:HOST:PORT"'
)


def platform_unavailable(exc: BaseException) -> LinkError:
    """The one-line error for bleak's platform backend failing to reach the OS's Bluetooth."""
    detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return LinkError(
        f"Bluetooth: the system's Bluetooth service is not reachable ({detail}); on Linux start "
        f"BlueZ (bluetoothd), or set ble.transport to a bumble transport: {TRANSPORT_HINT}"
    )


def default_keystore_path() -> Path:
    """The bond file in the platform's user data folder (platformdirs), existing or not."""
    import platformdirs  # noqa: PLC0415

    return Path(platformdirs.user_data_dir("soleguard")) / "bonds.json"


@dataclass(frozen=True, slots=True)
class BleAccess:
    """An opened radio: the options every link uses, the scanner backend and a line for the user.

    ``scanner_backend`` None means bleak's platform scanner.
    """

    links: LinkOptions
    # None: bleak's platform scanner.
    scanner_backend: type[BaseBleakScanner] | None
    description: str


@asynccontextmanager
async def open_ble(
    settings: BleSettings, *, local_link: LocalLink | None = None
) -> AsyncIterator[BleAccess]:
    """Open the radio the settings name, or join ``local_link`` (the in-process simulator).

    Yields a `BleAccess` until the block ends, then powers a bumble radio off. Raises
    `LinkError` (one line with the fix) when a bumble transport cannot be opened and
    `ConfigError` for an unreadable bond store or radio address; the platform backend is only
    reached by the first scan or connection (see `platform_unavailable`).
    """
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
    async with contextlib.AsyncExitStack() as stack:
        try:
            radio = await stack.enter_async_context(BumbleRadio(transport, keystore=keystore))
        except SoleGuardError:
            raise
        except Exception as exc:
            # Opening a transport fails in each library's own way (usb1.USBError, serial's
            # SerialException, OSError, bumble's TransportInitError, ValueError for a bad
            # spec): all mean the same to a user, and get the same one line.
            raise LinkError(
                f"ble.transport {settings.transport!r}: cannot open it "
                f"({type(exc).__name__}: {exc}); {TRANSPORT_HINT}"
            ) from exc
        yield BleAccess(
            LinkOptions(
                backend=radio.client_backend(), connect_timeout_s=settings.connect_timeout_s
            ),
            radio.scanner_backend(),
            "virtual radio" if local_link is not None else f"bumble on {settings.transport}",
        )
