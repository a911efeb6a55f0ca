"""``soleguard sim``: the simulated massager and skin sensor, served on a radio until Ctrl-C.

By default both devices live on an in-process virtual radio whose extra controller is exposed on
``tcp-server:127.0.0.1:PORT``: a controller in another process joins it with
``BumbleRadio("tcp-client:127.0.0.1:PORT")``. ``--transport usb:0`` (or any bumble transport spec)
serves the massager on that controller instead, and ``--sensor-transport`` the sensor.
bumble and rich are imported inside the command, so ``soleguard --help`` stays fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import signal
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from controller.cli import exit_codes
from controller.errors import shown

if TYPE_CHECKING:
    from firmware_sim.world import SimWorld

DEFAULT_PORT = 9720  # any free port would do; a fixed default makes the printed hint reusable
# The live readout redraws at this real-time rate: readable, and cheap next to the simulation.
READOUT_PERIOD_REAL_S = 0.5
VIRTUAL_TRANSPORT = "virtual"
# The consumer thermometers the simulated sensor can play (firmware_sim.sensor), as SimWorld
# options: what a user with such a thermometer would meet at `pair` and `session`.
THERMOMETERS: dict[str, dict[str, Any]] = {
    "standard": {},
    "refuses-pairing": {"sensor_refuses_pairing": True},
    "notify": {"sensor_notify": True},
    "slow": {"sensor_period_s": 5.0, "sensor_interval": "fixed"},
    "slow-writable": {"sensor_period_s": 5.0, "sensor_interval": "writable"},
    "slow-unstated": {"sensor_period_s": 5.0},
    "fahrenheit": {"sensor_unit": "fahrenheit", "sensor_type_in_measurement": True},
    "ear": {"sensor_type": "ear"},
}


def sim(
    transport: Annotated[
        str,
        typer.Option(
            help="'virtual' (in-process radio exposed over TCP) or a bumble transport spec "
            "for the massager, e.g. usb:0, serial:/dev/ttyACM0",
        ),
    ] = VIRTUAL_TRANSPORT,
    sensor_transport: Annotated[
        str | None,
        typer.Option(help="bumble transport spec for the skin sensor (real radios only)"),
    ] = None,
    host: Annotated[str, typer.Option(help="where the virtual radio listens")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help="TCP port of the virtual radio (0: any free)", min=0, max=65535)
    ] = DEFAULT_PORT,
    scenario: Annotated[str, typer.Option(help="fault scenario (see --list-scenarios)")] = (
        "normal"
    ),
    onset: Annotated[float | None, typer.Option(help="scenario onset, seconds")] = None,
    duration: Annotated[float | None, typer.Option(help="scenario duration, seconds")] = None,
    speed: Annotated[
        str, typer.Option(help="'real', a factor such as 10, or 'max' (in-process only)")
    ] = "real",
    seed: Annotated[int, typer.Option(help="seed of noise and scenario parameters")] = 0,
    neuropathic: Annotated[bool, typer.Option(help="reduced skin perfusion")] = False,
    thermometer: Annotated[
        str,
        typer.Option(help=f"which skin thermometer to play: {', '.join(THERMOMETERS)}"),
    ] = "standard",
    readout: Annotated[
        bool | None, typer.Option(help="live readout (default: when on a terminal)")
    ] = None,
    list_scenarios: Annotated[
        bool, typer.Option("--list-scenarios", help="list the scenarios and exit")
    ] = False,
) -> None:
    """Run the simulated massager and skin sensor until interrupted (Ctrl-C)."""
    from controller.shutdown import current as current_shutdown  # noqa: PLC0415
    from firmware_sim.clock import parse_speed, run  # noqa: PLC0415 (lazy: fast --help)
    from firmware_sim.scenarios import SCENARIOS, describe  # noqa: PLC0415 (lazy: fast --help)

    if list_scenarios:
        for line in describe():
            typer.echo(line)
        return
    if scenario not in SCENARIOS:
        typer.echo(f"error: unknown scenario {shown(scenario)} (see --list-scenarios)", err=True)
        raise typer.Exit(2)
    if thermometer not in THERMOMETERS:
        typer.echo(
            f"error: --thermometer: {shown(thermometer)} is not one of {', '.join(THERMOMETERS)}",
            err=True,
        )
        raise typer.Exit(2)
    try:
        parsed_speed = parse_speed(speed)
    except ValueError as exc:
        typer.echo(f"error: --speed: {shown(speed)} {exc}", err=True)
        raise typer.Exit(2) from exc
    if parsed_speed == "max" and transport == VIRTUAL_TRANSPORT:
        typer.echo(
            "note: at speed 'max' a controller in another process sees time fly; "
            "use a finite --speed across processes",
            err=True,
        )
    options = _Options(
        transport=transport,
        sensor_transport=sensor_transport,
        host=host,
        port=port,
        scenario=scenario,
        onset=onset,
        duration=duration,
        seed=seed,
        neuropathic=neuropathic,
        thermometer=thermometer,
        readout=sys.stdout.isatty() if readout is None else readout,
        speed=parsed_speed,
    )
    # Ctrl-C must work even when started with SIGINT ignored (a background job of a script), and
    # SIGTERM (a process manager, a test harness) stops it the same clean way. The `soleguard`
    # command has done so already (`controller.shutdown`, with its watchdog); only a bare
    # ``python -m controller.cli.sim`` needs it here.
    if current_shutdown() is None:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _interrupt)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            run(_serve(options), speed=parsed_speed)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        typer.echo(
            f"error: --port {port}: already in use by another program; choose another port, "
            "or --port 0 for any free one",
            err=True,
        )
        raise typer.Exit(exit_codes.FAILED) from None
    typer.echo("simulator stopped")


def _interrupt(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


class _Options:
    def __init__(self, **values: Any) -> None:
        self.__dict__.update(values)

    transport: str
    sensor_transport: str | None
    host: str
    port: int
    scenario: str
    onset: float | None
    duration: float | None
    seed: int
    neuropathic: bool
    thermometer: str
    readout: bool
    speed: float | str | None


async def _serve(options: _Options) -> None:
    from bumble.transport import open_transport  # noqa: PLC0415 (lazy: fast --help)

    from controller.ble.bumble_backend import expose_hci_controller  # noqa: PLC0415 (lazy: fast --help)
    from firmware_sim.scenarios import DEFAULT, schedule  # noqa: PLC0415 (lazy: fast --help)
    from firmware_sim.world import SimWorld  # noqa: PLC0415

    fault = schedule(
        options.scenario,
        onset_s=options.onset,
        duration_s=DEFAULT if options.duration is None else options.duration,
        seed=options.seed,
    )
    async with contextlib.AsyncExitStack() as stack:
        massager_hci = sensor_hci = None
        if options.transport != VIRTUAL_TRANSPORT:
            massager_hci = await stack.enter_async_context(await open_transport(options.transport))
            if options.sensor_transport:
                sensor_hci = await stack.enter_async_context(
                    await open_transport(options.sensor_transport)
                )
        world = await stack.enter_async_context(
            SimWorld(
                scenario=[fault],
                seed=options.seed,
                neuropathic=options.neuropathic,
                massager_transport=massager_hci,
                sensor_transport=sensor_hci,
                **_thermometer_options(options.thermometer),
            )
        )
        if options.transport == VIRTUAL_TRANSPORT:
            endpoint = await stack.enter_async_context(
                expose_hci_controller(world.link, f"tcp-server:{options.host}:{options.port}")
            )
            typer.echo(f"virtual radio: {endpoint.transport_spec}")
            typer.echo("  in the controller's settings file (soleguard.toml), [ble] section:")
            typer.echo(f'  transport = "{endpoint.transport_spec}"')
        else:
            typer.echo(f"massager on {options.transport}")
            if sensor_hci is None:
                typer.echo("  sensor not on the air: give --sensor-transport for it")
        typer.echo(f"massager: {world.massager_name} {world.massager_address}")
        typer.echo(f"sensor:   {world.sensor_name} {world.sensor_address}")
        typer.echo(f"thermometer: {options.thermometer}")
        typer.echo(f"scenario: {options.scenario} (onset {fault.onset_s:g} s), seed {options.seed}")
        sys.stdout.flush()
        if options.readout:
            await _live_readout(world, options.speed)
        else:
            await asyncio.Event().wait()


async def _live_readout(world: SimWorld, speed: float | str | None) -> None:
    from rich.live import Live  # noqa: PLC0415 (lazy: fast --help)
    from rich.table import Table  # noqa: PLC0415 (lazy: fast --help)

    factor = 1.0 if speed is None else (100.0 if speed == "max" else float(speed))

    def table() -> Table:
        snap = world.snapshot()
        grid = Table(title=f"SoleGuard simulator  t = {snap.time_s:8.1f} s", show_header=False)
        grid.add_row("skin (true)", f"{snap.skin_c:6.2f} °C   max {snap.max_skin_c:6.2f} °C")
        grid.add_row("pad", f"{snap.pad_c:6.2f} °C   heater {'ON' if snap.heater_on else 'off'}")
        grid.add_row(
            "pressure",
            f"{snap.pressure_mmhg:5.1f} / {snap.pressure_target_mmhg:5.1f} mmHg"
            f"   max {snap.max_pressure_mmhg:5.1f}",
        )
        grid.add_row("battery", f"{snap.battery_percent:5.1f} %")
        grid.add_row("firmware", f"{_flag_names(snap.flags)}  fault {snap.fault.name}")
        grid.add_row("lease", f"{snap.lease_remaining_ms} ms")
        grid.add_row(
            "links",
            f"massager {'up' if snap.massager_connected else 'down'}, "
            f"sensor {'up' if snap.sensor_connected else 'down'}",
        )
        grid.add_row("faults", ", ".join(snap.active_faults) or "none")
        return grid

    with Live(table(), auto_refresh=False) as live:
        while True:
            await asyncio.sleep(READOUT_PERIOD_REAL_S * factor)
            live.update(table(), refresh=True)


def _flag_names(flags: Any) -> str:
    """``heater energised, pump running`` for a person, not ``<StatusFlags...: 7>``."""
    names = [
        member.name.lower().replace("_", " ")
        for member in type(flags)
        if member.name and member in flags
    ]
    return ", ".join(names) or "none"


def _thermometer_options(name: str) -> dict[str, Any]:
    from controller.protocol import TemperatureType, TemperatureUnit  # noqa: PLC0415

    options = dict(THERMOMETERS[name])
    if "sensor_unit" in options:
        options["sensor_unit"] = TemperatureUnit(options["sensor_unit"])
    if "sensor_type" in options:
        options["sensor_type"] = TemperatureType[options["sensor_type"].upper()]
    return options


if __name__ == "__main__":
    typer.run(sim)
