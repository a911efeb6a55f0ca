"""A massager that loses its bond mid-session: the caregiver is told, over a real broker
(issue 18, item 2). The session runs as the demo runs it (virtual time on its own thread, the
bridge on its own, a real broker process); the simulated massager is factory-reset while it heats
and presses, and the alert comes through the same outbox and bridge as every other alarm."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pytest

from controller.caregiver.threaded import caregiver_side
from controller.safety import EndReason
from controller.service.caregiver import CaregiverRelay
from controller.service.simulated import run_simulated_session
from controller.treatment.checklist import NO_CONTRAINDICATIONS
from tests.e2e.helpers import (
    DRAIN_S,
    BackgroundSession,
    SessionResult,
    caregiver,
    session_settings,
    wait_until,
)

if TYPE_CHECKING:
    from controller.caregiver.broker import LocalBroker
    from controller.safety import Decision
    from controller.store import Store
    from firmware_sim.world import SimWorld

pytestmark = pytest.mark.slow


@dataclass
class FactoryResetSession(BackgroundSession):
    """The helper's session, with the massager factory-reset once it heats and presses."""

    world: SimWorld | None = None
    reset: asyncio.Task[None] | None = None

    async def _session(self) -> SessionResult:
        self.loop = asyncio.get_running_loop()
        async with caregiver_side(self.settings.mqtt, self.store, broker=self.broker_url) as link:
            relay = CaregiverRelay(link, self.store)
            self.relay = relay
            run = await run_simulated_session(
                self.settings,
                answers=NO_CONTRAINDICATIONS,
                store=self.store,
                observers=(self,),
                caregiver=relay,
                on_runner=self._got_runner,
                on_world=self._got_world,
            )
            if self.reset is not None:
                await self.reset
            raised, delivered = await relay.drain(DRAIN_S)
        return SessionResult(run, raised, delivered, list(relay.raised))

    def _got_world(self, world: SimWorld) -> None:
        self.world = world

    def on_decision(self, now: float, decision: Decision) -> None:
        super().on_decision(now, decision)
        world = self.world
        if (
            self.reset is None
            and world is not None
            and decision.command.heater_on
            and world.firmware.pressure_target_mmhg > 0.0
        ):
            self.reset = asyncio.get_running_loop().create_task(
                world.massager.factory_reset(), name="factory-reset"
            )


async def test_caregiver_is_told_when_the_massager_loses_its_bond(
    mqtt_broker: LocalBroker, store: Store
) -> None:
    settings = session_settings(2)
    async with caregiver(mqtt_broker) as watcher:

        def alerts() -> list[dict[str, str]]:
            return watcher.json_on("alert")

        session = FactoryResetSession(settings, store, mqtt_broker.url, speed=20.0).start()
        result = await session.result()
        assert session.world is not None
        address = session.world.massager_address
        await wait_until(lambda: any(a["code"] == "MASSAGER_BOND_LOST" for a in alerts()))

    assert result.run.outcome.ended_by is EndReason.FAULT
    [alert] = [a for a in alerts() if a["code"] == "MASSAGER_BOND_LOST"]
    assert alert["priority"] == "medium"
    assert f"soleguard pair {address}" in alert["message"]
    assert "pairing mode" in alert["message"]
    # The retained state shows it too, and the session as ended with nothing on.
    last_state = watcher.json_on("state")[-1]
    assert last_state["session_state"] == "ended"
    assert not last_state["heater_on"]
    assert any(alarm["code"] == "MASSAGER_BOND_LOST" for alarm in last_state["alarms"])
    # Journalled with the session, as every alarm is.
    session_id = result.run.outcome.session_id
    assert session_id is not None
    assert [a.code for a in store.alarms(session_id)].count("MASSAGER_BOND_LOST") == 1
