"""Bond loss is a decision for the user (issue 18, item 2).

A bonded massager or sensor that has lost its keys (the simulated firmware's factory reset) is
refused encryption with PIN or Key Missing through the real ``BleakClient`` path. The controller
then does not pair again on its own: the session stops or does not start (the massager stays
off), the alarm names the device and says how to pair again, and it is journalled. Only the
user's ``soleguard pair`` makes a new bond, after which sessions run again.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

import pytest

from controller.ble.access import BleAccess, open_ble
from controller.ble.bonds import BondLostError
from controller.ble.discovery import pair
from controller.protocol import Command, SetHeater, SetPressure, Stop
from controller.safety import EndReason
from controller.safety.events import DeviceKind
from controller.service.app import Journal, run_session
from controller.service.runner import SessionPlan
from controller.settings import effective_limits
from controller.store import Store
from controller.treatment.checklist import NO_CONTRAINDICATIONS
from controller.treatment.programs import PROGRAMS
from firmware_sim.world import SimWorld
from tests.service.support import (
    DecisionLog,
    FirmwareTap,
    Session,
    firmware_running,
    make_settings,
    simulated,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

# The link notices the reset at once (remote power-off), reconnects within its first backoff
# (at most 0.25 s) and is refused encryption within one connect: a second is ample.
NOTICED_WITHIN_S = 1.0
# What `soleguard pair` passes for a thermometer's measurement interval: the default stale limit.
STALE_AFTER_S = make_settings().sensor.stale_after_s


def _energising(command: Command) -> bool:
    return (isinstance(command, SetHeater) and command.on) or (
        isinstance(command, SetPressure) and command.target_mmhg > 0.0
    )


def _pair_command(address: str) -> str:
    return f"soleguard pair {address}"


async def test_massager_factory_reset_mid_session_stops_it_and_asks_the_user() -> None:
    settings = make_settings(**{"session.max_minutes": 2.0})
    session = Session(DecisionLog())
    running = session.log.when(firmware_running(session))
    reset_at: list[float] = []

    async def factory_reset_while_running() -> None:
        await running.wait()
        assert session.world is not None
        reset_at.append(asyncio.get_running_loop().time())
        await session.world.massager.factory_reset()

    resetter = asyncio.create_task(factory_reset_while_running(), name="factory-reset")
    try:
        await simulated(settings, session=session)
    finally:
        resetter.cancel()
    assert session.run is not None
    assert session.world is not None
    assert session.tap is not None
    assert session.runner is not None
    [reset] = reset_at
    address = session.world.massager_address

    # Stopped, and called a fault, soon after the reset (the post-session watch goes on after).
    outcome = session.run.outcome
    assert outcome.ended_by is EndReason.FAULT
    ended = next(step for step in session.log.steps if step.decision.ended_by is not None)
    assert ended.now - reset < NOTICED_WITHIN_S
    assert ended.decision.command.stop
    # One alarm that names the device and says how to pair again.
    bond_alarms = [a for a in session.log.new_alarms() if a.code == "MASSAGER_BOND_LOST"]
    assert len(bond_alarms) == 1
    assert _pair_command(address) in bond_alarms[0].message
    assert "pairing mode" in bond_alarms[0].message
    assert any(a["code"] == "MASSAGER_BOND_LOST" for a in outcome.alarms)
    # Not paired again: the massager holds no keys, the link never came back, and nothing
    # reached the firmware after the reset (which restarted it, all off).
    assert await session.world.massager.bonded_addresses() == []
    assert session.runner.massager.connections == 1
    assert [r for r in session.tap.received if r.time > reset] == []
    assert session.tap.firmware_is_off()


async def test_sensor_factory_reset_mid_session_stops_the_massager_and_asks_the_user() -> None:
    settings = make_settings(**{"session.max_minutes": 2.0})
    session = Session(DecisionLog())
    running = session.log.when(firmware_running(session))
    reset_at: list[float] = []

    async def factory_reset_while_running() -> None:
        await running.wait()
        assert session.world is not None
        reset_at.append(asyncio.get_running_loop().time())
        await session.world.sensor.factory_reset()

    resetter = asyncio.create_task(factory_reset_while_running(), name="factory-reset")
    try:
        await simulated(settings, session=session)
    finally:
        resetter.cancel()
    assert session.run is not None
    assert session.world is not None
    assert session.tap is not None
    assert session.runner is not None
    [reset] = reset_at

    assert session.run.outcome.ended_by is EndReason.FAULT
    ended = next(step for step in session.log.steps if step.decision.ended_by is not None)
    assert ended.now - reset < NOTICED_WITHIN_S
    [alarm] = [a for a in session.log.new_alarms() if a.code == "SENSOR_BOND_LOST"]
    assert _pair_command(session.world.sensor_address) in alarm.message
    assert await session.world.sensor.bonded_addresses() == []
    assert session.runner.sensor.connections == 1
    # The massager, still reachable, was told to stop, and nothing energised it afterwards.
    after = [r.command for r in session.tap.received if r.time > reset]
    assert any(isinstance(command, Stop) for command in after)
    assert not any(_energising(command) for command in after)
    assert session.tap.firmware_is_off()


@contextlib.asynccontextmanager
async def _paired_world(tmp_path: Path) -> AsyncIterator[tuple[SimWorld, BleAccess]]:
    """A simulated massager and sensor, both paired by the user, on a radio with a bond file."""
    settings = make_settings(**{"ble.keystore": str(tmp_path / "bonds.json")})
    async with SimWorld() as world, open_ble(settings.ble, local_link=world.link) as ble:
        for address in (world.massager_address, world.sensor_address):
            await pair(ble, address, stale_after_s=STALE_AFTER_S)
        yield world, ble


def _plan(world: SimWorld) -> SessionPlan:
    settings = make_settings(**{"session.max_minutes": 1.0})
    return SessionPlan(
        limits=effective_limits(settings),
        program=PROGRAMS[settings.session.program],
        checklist=NO_CONTRAINDICATIONS.result(inspection_required=False),
        massager_address=world.massager_address,
        sensor_address=world.sensor_address,
    )


@pytest.mark.parametrize("kind", [DeviceKind.MASSAGER, DeviceKind.SENSOR])
async def test_a_device_reset_between_sessions_keeps_the_next_one_from_starting(
    kind: DeviceKind, tmp_path: Path
) -> None:
    async with _paired_world(tmp_path) as (world, ble):
        tap = FirmwareTap(world)
        device = world.massager if kind is DeviceKind.MASSAGER else world.sensor
        address = world.massager_address if kind is DeviceKind.MASSAGER else world.sensor_address
        await device.factory_reset()

        with Store.open(tmp_path / "journal.sqlite3") as store:
            with pytest.raises(BondLostError) as caught:
                await run_session(_plan(world), ble, journal=Journal(store))
            # The error the command line prints: the device, and how to pair it again.
            message = str(caught.value)
            assert message.startswith(f"{kind} {address} has lost its bond")
            assert _pair_command(address) in message
            # Journalled as an alarm outside any session; no session was recorded.
            [alarm] = store.alarms(None)
            assert alarm.code == f"{kind.upper()}_BOND_LOST"
            assert alarm.priority == "medium"
            assert store.sessions() == []
        # No new bond behind the user's back, and the massager was never actuated.
        assert await device.bonded_addresses() == []
        assert not any(_energising(r.command) for r in tap.received)
        assert tap.firmware_is_off()

        # The user's own `soleguard pair` forgets the stale keys and bonds anew; then it runs.
        await pair(ble, address, stale_after_s=STALE_AFTER_S)
        assert len(await device.bonded_addresses()) == 1
        outcome = await run_session(_plan(world), ble, journal=Journal(None))
        assert outcome.ended_by is EndReason.TIMER
