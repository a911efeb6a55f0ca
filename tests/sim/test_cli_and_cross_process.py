"""``soleguard sim`` as a command, and the simulator in another process over the TCP radio."""

from __future__ import annotations

import asyncio
import re
import signal
import sys

import pytest
import typer
from bleak import BleakClient
from typer.testing import CliRunner

from controller.ble.bumble_backend import BumbleRadio
from controller.cli.sim import sim
from controller.protocol import (
    MASSAGER_STATUS_UUID,
    TEMPERATURE_MEASUREMENT_UUID,
    MassagerStatus,
    SetHeater,
    StatusFlags,
    TemperatureMeasurement,
)
from firmware_sim.scenarios import SCENARIOS
from tests.sim.support import send

# Real time here (another process): generous bounds for a shared 2-core machine, never waited out
# on success.
STARTUP_TIMEOUT_S = 30.0
EXCHANGE_TIMEOUT_S = 30.0


def _app() -> typer.Typer:
    app = typer.Typer()
    app.command()(sim)

    @app.command()
    def other() -> None:  # a second command keeps typer from collapsing the app into one command
        """Unused."""

    return app


def test_list_scenarios_prints_one_line_each() -> None:
    result = CliRunner().invoke(_app(), ["sim", "--list-scenarios"])
    assert result.exit_code == 0
    lines = result.output.strip().splitlines()
    assert [line.split()[0] for line in lines] == list(SCENARIOS)


def test_unknown_scenario_is_one_clear_error() -> None:
    result = CliRunner().invoke(_app(), ["sim", "--scenario", "nope"])
    assert result.exit_code == 2
    assert "unknown scenario" in result.output


@pytest.mark.real_time
async def test_controller_in_this_process_drives_the_sim_in_another() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "controller.cli.sim",
        "--port",
        "0",
        "--no-readout",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        spec = addresses = None
        async with asyncio.timeout(STARTUP_TIMEOUT_S):
            lines: list[str] = []
            while addresses is None or spec is None:
                line = (await process.stdout.readline()).decode()
                assert line, "simulator exited early"
                lines.append(line)
                if match := re.match(r"virtual radio: (\S+)", line):
                    spec = match.group(1)
                if line.startswith("sensor:"):
                    addresses = [
                        ln.split()[-1] for ln in lines if ln.startswith(("massager:", "sensor:"))
                    ]
        massager_address, sensor_address = addresses
        statuses: asyncio.Queue[MassagerStatus] = asyncio.Queue()
        readings: asyncio.Queue[TemperatureMeasurement] = asyncio.Queue()
        async with asyncio.timeout(EXCHANGE_TIMEOUT_S), BumbleRadio(spec) as radio:
            async with BleakClient(massager_address, backend=radio.client_backend()) as massager:
                await massager.pair()
                await massager.start_notify(
                    MASSAGER_STATUS_UUID,
                    lambda _c, d: statuses.put_nowait(MassagerStatus.decode(bytes(d))),
                )
                await send(massager, SetHeater(42, 3000, True, 41.0))
                while not (
                    (status := await statuses.get()).last_sequence == 42
                    and StatusFlags.HEATER_ENABLED in status.flags
                ):
                    pass
            async with BleakClient(sensor_address, backend=radio.client_backend()) as sensor:
                await sensor.start_notify(
                    TEMPERATURE_MEASUREMENT_UUID,
                    lambda _c, d: readings.put_nowait(TemperatureMeasurement.decode(bytes(d))),
                )
                reading = await readings.get()
                assert 25.0 < reading.to_celsius() < 40.0
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        async with asyncio.timeout(STARTUP_TIMEOUT_S):
            rc = await process.wait()
    assert rc == 0
