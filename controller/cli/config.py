"""``soleguard config``: check a settings file and show the limits it results in."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from controller.cli import exit_codes
from controller.errors import ConfigError

app = typer.Typer(help="Check settings and show the effective safety limits.", no_args_is_help=True)

if TYPE_CHECKING:
    from rich.table import Table

    from controller.settings import Settings

# Exit code for invalid input, from the one table (controller/cli/exit_codes.py).
EXIT_USAGE = exit_codes.USAGE


# Inside the wheel (pyproject force-include), else the source tree's config/ folder.
_EXAMPLE_PLACES = (
    Path(__file__).resolve().parents[1] / "settings" / "soleguard.example.toml",
    Path(__file__).resolve().parents[2] / "config" / "soleguard.example.toml",
)


@app.command("example")
def example() -> None:
    """Print the annotated example settings (save as soleguard.toml and edit)."""
    for place in _EXAMPLE_PLACES:
        if place.is_file():
            typer.echo(place.read_text(encoding="utf-8"), nl=False)
            return
    typer.echo("error: the example settings are missing from this installation", err=True)
    raise typer.Exit(EXIT_USAGE)


@app.command("check")
def check(
    path: Annotated[
        Path | None,
        typer.Argument(help="Settings file; default: $SOLEGUARD_CONFIG, else the user config dir."),
    ] = None,
) -> None:
    """Validate a settings file and print the effective safety limits, or every problem."""
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    from controller.settings import effective_limits, load_settings  # noqa: PLC0415
    from controller.settings.loader import resolve_config_path  # noqa: PLC0415

    try:
        settings = load_settings(path)
        limits = effective_limits(settings)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from exc

    source = resolve_config_path(path)
    origin = str(source) if source.exists() else f"defaults; no file at {source}"
    table = Table(title=f"Effective safety limits ({origin})")
    table.add_column("limit")
    table.add_column("value", justify="right")
    profile = settings.profile.name or "none"
    rows = [
        ("profile", profile),
        ("pressure cap", f"{limits.pressure_cap_mmhg:.1f} mmHg"),
        ("pressure ramp", f"{limits.pressure_ramp_mmhg_per_s:.1f} mmHg/s"),
        ("heater allowed", "yes" if limits.heater_allowed else "no"),
        ("heater target (skin)", f"{limits.heater_target_c:.1f} °C"),
        ("heater cut-off (skin)", f"{limits.heater_cutoff_c:.1f} °C"),
        (
            "heater re-enable",
            f"below {limits.heater_reenable_below_c:.1f} °C, after {limits.heater_min_off_s:.0f} s",
        ),
        ("over-temperature latch", f"{limits.latch_c:.1f} °C"),
        ("heat per session", f"{limits.max_heat_s / 60:.0f} min"),
        ("session length", f"{limits.max_session_s / 60:.0f} min"),
        ("stale reading", f"{limits.stale_after_s:.1f} s"),
        ("valid skin range", f"{limits.valid_min_c:.0f}-{limits.valid_max_c:.0f} °C"),
        ("max skin rate", f"{limits.max_skin_rate_c_per_s:.1f} °C/s"),
        ("actuator lease", f"{limits.lease_s:.1f} s, renewed every {limits.lease_renew_s:.1f} s"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console = Console()
    console.print(table)
    console.print(_connections(settings))
    if settings.hub.residents:
        console.print(_residents(settings))


def _connections(settings: Settings) -> Table:
    """Where the devices and caregivers are reached: radio, paired devices, MQTT."""
    from rich.table import Table  # noqa: PLC0415

    table = Table(title="Devices and caregivers")
    table.add_column("setting")
    table.add_column("value")
    ble, mqtt = settings.ble, settings.mqtt
    keystore = str(ble.keystore) if ble.keystore is not None else "default (user data folder)"
    rows = [
        ("ble.transport", ble.transport),
        ("ble.keystore", keystore),
        ("ble.connect_timeout_s", f"{ble.connect_timeout_s:g} s"),
        ("massager", settings.devices.massager.address or "not paired"),
        ("skin sensor", settings.devices.sensor.address or "not paired"),
        ("sensor.non_skin_site", settings.sensor.non_skin_site),
        ("mqtt", "enabled" if mqtt.enabled else "disabled: no caregiver is told anything"),
    ]
    if mqtt.enabled:
        rows += [
            ("mqtt broker", f"{mqtt.host}:{mqtt.port} (MQTT {mqtt.protocol})"),
            ("mqtt tls", "yes" if mqtt.tls is not None else "no"),
            ("mqtt login", mqtt.username or "none"),  # never the password
            ("mqtt topics", f"{mqtt.base_topic}/{mqtt.device_id}/..."),
            ("home assistant discovery", f"{mqtt.discovery_prefix}/..."),
        ]
    for name, value in rows:
        table.add_row(name, value)
    return table


def _residents(settings: Settings) -> Table:
    """A hub's residents: their devices, radio, checklist policy and own tightest limits."""
    from rich.table import Table  # noqa: PLC0415

    from controller.settings import effective_limits  # noqa: PLC0415

    transports = {radio.id: radio.transport for radio in settings.hub.radios}
    table = Table(title=f"Hub: {len(settings.hub.residents)} resident(s)")
    for column in ("id", "name", "massager", "sensor", "radio", "profile", "checklist", "limits"):
        table.add_column(column)
    for resident in settings.hub.residents:
        # Valid by now: load_settings resolved every resident's profile.
        limits = effective_limits(settings, resident_profile=resident.profile)
        radio = resident.radio or ""
        heat = f"cut-off {limits.heater_cutoff_c:.1f} °C" if limits.heater_allowed else "no heat"
        table.add_row(
            resident.id,
            resident.name,
            resident.massager,
            resident.sensor,
            f"{radio} ({transports.get(radio, '?')})",
            resident.profile or settings.profile.name or "none",
            resident.checklist,
            f"{limits.pressure_cap_mmhg:.0f} mmHg, {heat}",
        )
    return table
