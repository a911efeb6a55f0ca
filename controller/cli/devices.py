"""``soleguard scan`` and ``soleguard pair``: find the massager and the sensor, bond once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from controller.cli.errors import describe
from controller.errors import SoleGuardError, shown
from controller.settings.models import BLUETOOTH_ADDRESS

if TYPE_CHECKING:
    from controller.ble.discovery import FoundDevice

EXIT_USAGE = 2
EXIT_FAILED = 1
# Long enough to catch devices advertising at the slow (1 s+) intervals battery devices use.
DEFAULT_SCAN_S = 5.0

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="Settings file (else the default).")
]


def scan(
    timeout: Annotated[float, typer.Option(help="Seconds to listen.", min=0.5, max=60)] = (
        DEFAULT_SCAN_S
    ),
    config: ConfigOption = None,
) -> None:
    """List SoleGuard massagers and Health Thermometer skin sensors in range."""
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    from controller.ble.access import open_ble  # noqa: PLC0415
    from controller.ble.discovery import scan as scan_devices  # noqa: PLC0415
    from controller.settings import load_settings  # noqa: PLC0415

    async def run() -> list[FoundDevice]:
        settings = load_settings(config)
        async with open_ble(settings.ble) as access:
            return await scan_devices(access, timeout_s=timeout)

    try:
        found = asyncio.run(run())
    except SoleGuardError as exc:
        # The shared table: a settings problem is a usage error (2), a device problem a failure (1).
        line, code = describe(exc)
        typer.echo(line, err=True)
        raise typer.Exit(code) from exc
    if not found:
        typer.echo("no massager or skin sensor found; are they switched on and in range?")
        raise typer.Exit(EXIT_FAILED)
    table = Table(title="Devices found")
    for column in ("kind", "name", "address", "RSSI"):
        table.add_column(column)
    for device in found:
        rssi = "—" if device.rssi is None else f"{device.rssi} dBm"
        table.add_row(str(device.kind), device.name or "—", device.address, rssi)
    Console().print(table)
    typer.echo("pair each one with: soleguard pair ADDRESS")


def pair(
    address: Annotated[str, typer.Argument(help="The device's address, from `soleguard scan`.")],
    config: ConfigOption = None,
) -> None:
    """Bond with a massager or sensor and save it in the settings file."""
    from controller.ble.access import open_ble  # noqa: PLC0415
    from controller.ble.discovery import pair as pair_device  # noqa: PLC0415
    from controller.settings import (  # noqa: PLC0415
        effective_limits,
        load_settings,
        resolve_config_path,
    )
    from controller.settings.writer import remember_device  # noqa: PLC0415

    if not BLUETOOTH_ADDRESS.match(address):
        # At once: scanning 10 s for something that cannot be an address helps nobody.
        typer.echo(
            f"error: ADDRESS: {shown(address)} is not a Bluetooth address; expected six hex pairs "
            "such as F5:0E:6A:AD:00:02 (or a macOS device UUID), as `soleguard scan` lists them",
            err=True,
        )
        raise typer.Exit(EXIT_USAGE)
    try:
        settings = load_settings(config)
        stale_after_s = effective_limits(settings).stale_after_s

        async def run() -> FoundDevice:
            async with open_ble(settings.ble) as access:
                return await pair_device(access, address, stale_after_s=stale_after_s)

        device = asyncio.run(run())
        path = resolve_config_path(config)
        remember_device(path, device.kind, address=address, name=device.name)
    except SoleGuardError as exc:
        # The shared table: a settings problem is a usage error (2), a device problem a failure (1).
        line, code = describe(exc)
        typer.echo(line, err=True)
        raise typer.Exit(code) from exc
    info = device.thermometer
    how = "paired" if info is None or info.encrypted else "added (not bonded: it refused pairing)"
    typer.echo(f"{how} {device.kind} {device.name or ''} {address}; saved in {path}")
    if info is not None:
        typer.echo(f"thermometer: {info.describe()}")
        for line in info.lines():
            typer.echo(f"note: {line}")
