"""Between a session and the caregiver bridge: state, telemetry, alerts out; requests in.

Nothing here awaits the broker or the disk on the supervisor's path: state and telemetry are
handed to the bridge's latest-wins slot and bounded queue; alerts go through a queue to a task that
writes them durably to the outbox in a worker thread (an fsync takes milliseconds) and only then
wakes the bridge, which publishes and marks them delivered on PUBACK.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from controller.caregiver.models import ActiveAlarm, DeviceState, TelemetrySample
from controller.errors import StoreError
from controller.safety.decision import SessionState
from controller.safety.events import CaregiverAction, CaregiverRequest
from controller.service.session import SessionObserver
from controller.store import OutboxAlert
from controller.timing import reached

if TYPE_CHECKING:
    from controller.caregiver.fallback import FallbackOutbox
    from controller.caregiver.threaded import CaregiverLink
    from controller.safety import Alarm, Decision
    from controller.store import Store

_LOGGER = logging.getLogger(__name__)

# The design's telemetry rate during a session.
TELEMETRY_PERIOD_S = 1.0
# Skin temperature in the retained state is rounded so that noise alone does not count as a
# change worth publishing; telemetry carries the full resolution.
STATE_SKIN_RESOLUTION_C = 0.1
# How often drain() looks at the outbox, and how far back: a session raises tens of alerts at most.
DRAIN_POLL_S = 0.02
UNDELIVERED_SCAN_LIMIT = 10_000


class CaregiverRelay(SessionObserver):
    def __init__(
        self,
        bridge: CaregiverLink,
        store: Store,
        *,
        wall_offset: float = 0.0,
    ) -> None:
        self._bridge = bridge
        self._store = store
        # Through the bridge's outbox when it has one: an alert the journal cannot take is
        # then kept in memory and still published (`controller.caregiver.fallback`).
        self._outbox: Store | FallbackOutbox = bridge.outbox or store
        self.wall_offset = wall_offset
        self._alerts: asyncio.Queue[OutboxAlert] = asyncio.Queue()
        self._storing: asyncio.Task[None] | None = None
        self._next_telemetry = -float("inf")
        self.session_id: int | None = None
        self.raised: list[str] = []
        self._last_state: DeviceState | None = None

    # -- out: called from the supervisor loop, never blocking ---------------------------------

    def on_decision(self, now: float, decision: Decision) -> None:
        state = device_state(decision)
        if state != self._last_state:
            # Only changes cross to the bridge's thread; it repeats the retained state itself.
            self._last_state = state
            self._bridge.update_state(state)
        if decision.state is SessionState.RUNNING and reached(now, self._next_telemetry):
            self._next_telemetry = now + TELEMETRY_PERIOD_S
            self._bridge.telemetry(
                TelemetrySample(
                    time=now + self.wall_offset,
                    # Telemetry carries readings: the measured pressure, with the commanded one
                    # as its target.
                    pressure_mmhg=decision.measured_pressure_mmhg or 0.0,
                    skin_temp_c=decision.skin_c,
                    heater_on=decision.command.heater_on,
                    pressure_target_mmhg=decision.command.pressure_mmhg,
                    session_id=self.session_id,
                )
            )
        for alarm in decision.new_alarms:
            alert = self._outbox_alert(alarm)
            self.raised.append(alert.id)
            self._alerts.put_nowait(alert)
        for result in decision.command_results:
            self._bridge.command_result(result.request_id, result.accepted, result.reason or None)

    def _outbox_alert(self, alarm: Alarm) -> OutboxAlert:
        return OutboxAlert(
            id=uuid.uuid4().hex,
            device_id=self._bridge.device_id,
            time=alarm.time + self.wall_offset,
            priority=str(alarm.priority),
            code=alarm.code,
            message=alarm.message,
            session_id=self.session_id,
        )

    async def deliver_alerts(self) -> None:
        """Write each alert durably, then let the bridge publish it; runs until cancelled."""
        while True:
            alert = await self._alerts.get()
            # Shielded: the session cancels this task as soon as it ends, which is exactly when
            # its last alert (time up, caregiver stop) is being written. The write finishes in its
            # thread regardless; without the shield the bridge would never be told, and the alert
            # would wait in the outbox until the next reconnect. flush() waits for it instead.
            self._storing = asyncio.create_task(self._store_alert(alert), name="caregiver-store")
            await asyncio.shield(self._storing)

    async def _store_alert(self, alert: OutboxAlert) -> None:
        try:
            await asyncio.to_thread(self._outbox.enqueue_alert, alert)
        except StoreError as exc:
            # Nothing more durable exists to fall back on: say so loudly and still try to
            # publish, so a caregiver hears of it while the broker is up.
            _LOGGER.error("alert %s (%s) not stored: %s", alert.id, alert.code, exc)
        self._bridge.alerts_stored()

    async def flush(self) -> None:
        """Store the alerts still queued or being written (at the end of a session)."""
        if self._storing is not None:
            await self._storing
        while not self._alerts.empty():
            await self._store_alert(self._alerts.get_nowait())

    async def drain(self, real_timeout_s: float) -> tuple[int, int]:
        """Wait (in real time: the broker is real even when the session's clock is not) until
        every alert this relay raised is acknowledged; return (raised, delivered)."""
        await self.flush()
        deadline = time.monotonic() + real_timeout_s
        ours = set(self.raised)
        while True:
            pending = {
                alert.id
                for alert in await asyncio.to_thread(
                    self._outbox.undelivered_alerts,
                    device_id=self._bridge.device_id,
                    limit=UNDELIVERED_SCAN_LIMIT,
                )
            }
            waiting = ours & pending
            if not waiting or time.monotonic() >= deadline:
                return len(ours), len(ours) - len(waiting)
            await asyncio.sleep(DRAIN_POLL_S)

    # -- in: caregiver commands as supervisor requests -----------------------------------------

    async def requests(self) -> AsyncIterator[CaregiverRequest]:
        async for command in self._bridge.commands():
            yield CaregiverRequest(
                CaregiverAction(command.action), command.amount_mmhg, command.request_id
            )


def device_state(decision: Decision) -> DeviceState:
    if not decision.sensor_connected:
        health = "disconnected"
    elif decision.skin_fresh:
        health = "ok"
    elif not decision.skin_valid:
        health = "invalid"
    else:
        health = "stale"
    skin = decision.skin_c
    return DeviceState(
        session_state=str(decision.state),
        pressure_mmhg=round(decision.command.pressure_mmhg, 1),
        pressure_cap_mmhg=decision.pressure_cap_mmhg,
        heater_on=decision.command.heater_on,
        skin_temp_c=None
        if skin is None
        else round(skin / STATE_SKIN_RESOLUTION_C) * STATE_SKIN_RESOLUTION_C,
        sensor_health=health,
        battery_pct=None if decision.battery_percent is None else round(decision.battery_percent),
        remaining_s=round(decision.remaining_s) if decision.state is SessionState.RUNNING else None,
        over_temperature=decision.state is SessionState.LATCHED,
        massager_connected=decision.massager_connected,
        sensor_connected=decision.sensor_connected,
        active_alarms=tuple(
            ActiveAlarm(code=alarm.code, priority=alarm.priority.value)
            for alarm in decision.active_alarms
        ),
    )
