"""``soleguard alarm reset``: the alarm reset (IEC 60601-1-8) of the over-temperature latch."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from controller.cli.errors import reported

app = typer.Typer(help="Alarms that outlive a session (the over-temperature latch).")


@app.command("reset")
def reset(
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="Settings file (else the default).")
    ] = None,
) -> None:
    """Clear the over-temperature latch: needs a fresh skin reading below the re-enable level."""
    with reported():
        from controller.ble.access import open_ble  # noqa: PLC0415 (bumble is slow to import)
        from controller.service.alarm_reset import reset_latch  # noqa: PLC0415
        from controller.settings import effective_limits, load_settings  # noqa: PLC0415
        from controller.store import Store  # noqa: PLC0415

        settings = load_settings(config)
        limits = effective_limits(settings)

        async def run() -> str:
            with Store.open(settings.storage.path) as store:
                async with open_ble(settings.ble) as ble:
                    address = settings.devices.sensor.address or ""
                    device_id = settings.mqtt.device_id if settings.mqtt.enabled else None
                    return await reset_latch(store, limits, ble, address, device_id=device_id)

        typer.echo(asyncio.run(run()))
