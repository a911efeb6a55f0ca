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
from typing import TYPE_CHECKING

from controller.caregiver.conditions import AlarmConditions, ConditionEvent
from controller.caregiver.models import ActiveAlarm, DeviceState, TelemetrySample
from controller.errors import StoreError
from controller.safety.decision import SessionState
from controller.safety.events import CaregiverAction, CaregiverRequest
from controller.service.runner import SessionObserver
from controller.settings.limits import HEATER_CUTOFF_C
from controller.store import OutboxAlert
from controller.timing import reached

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from controller.caregiver.fallback import FallbackOutbox
    from controller.caregiver.port import CaregiverPort
    from controller.safety import Decision
    from controller.store import Store

_LOGGER = logging.getLogger(__name__)

# The design's telemetry rate during a session.
TELEMETRY_PERIOD_S = 1.0
# Skin temperature in the retained state is rounded so that noise alone does not count as a
# change worth publishing; telemetry carries the full resolution.
STATE_SKIN_RESOLUTION_C = 0.1
_SHOWN_EPSILON_C = 1e-9
# How often drain() looks at the outbox, and how far back: a session raises tens of alerts at most.
DRAIN_POLL_S = 0.02
UNDELIVERED_SCAN_LIMIT = 10_000


class CaregiverRelay(SessionObserver):
    """Relays a session to the caregiver bridge: state, telemetry and alerts out, commands in.

    Alerts are journalled first (the store's outbox) and then published. ``wall_offset`` (s) turns
    the session's monotonic clock into epoch seconds.
    """

    def __init__(
        self,
        bridge: CaregiverPort,
        store: Store,
        *,
        wall_offset: float = 0.0,
        cutoff_c: float = HEATER_CUTOFF_C.default,
    ) -> None:
        self._bridge = bridge
        self._store = store
        # Through the bridge's outbox when it has one: an alert the journal cannot take is
        # then kept in memory and still published (`controller.caregiver.fallback`).
        self._outbox: Store | FallbackOutbox = getattr(bridge, "outbox", None) or store
        self.wall_offset = wall_offset
        self.cutoff_c = cutoff_c
        self._alerts: asyncio.Queue[OutboxAlert] = asyncio.Queue()
        self._storing: asyncio.Task[None] | None = None
        self._next_telemetry = -float("inf")
        self.session_id: int | None = None
        self.raised: list[str] = []
        self._last_state: DeviceState | None = None
        self._conditions = AlarmConditions()
        self._last_decision: Decision | None = None
        self._last_now = 0.0
        self._wall_clock: Callable[[], float] = time.time

    # -- out: called from the supervisor loop, never blocking ---------------------------------

    def on_decision(self, now: float, decision: Decision) -> None:
        """Publish the state if changed, telemetry when due, an alert per new alarm condition."""
        self._last_now = now
        state = device_state(decision, cutoff_c=self.cutoff_c)
        if state != self._last_state:
            # Only changes cross to the bridge's thread; it repeats the retained state itself.
            self._last_state = state
            self._bridge.update_state(state)
        if decision.state is SessionState.RUNNING and reached(now, self._next_telemetry):
            self._next_telemetry = now + TELEMETRY_PERIOD_S
            self._bridge.telemetry(
                TelemetrySample(
                    time=now + self.wall_offset,
                    # Telemetry carries readings: the measured pressure (only while the
                    # massager's status is fresh, as on the state), the commanded one as target.
                    pressure_mmhg=(
                        decision.measured_pressure_mmhg if decision.massager_fresh else None
                    ),
                    # The same rule as the state (full resolution): only a fresh, valid reading.
                    skin_temp_c=decision.skin_c if state.sensor_health == "ok" else None,
                    heater_on=decision.command.heater_on,
                    pressure_target_mmhg=decision.command.pressure_mmhg,
                    session_id=self.session_id,
                )
            )
        if decision.new_alarms or self._conditions.open_codes:
            events = self._conditions.step(
                now,
                ((a.code, str(a.priority), a.message) for a in decision.new_alarms),
                (a.code for a in decision.active_alarms),
            )
            for event in events:
                self._queue_alert(event)
        self._last_decision = decision
        for result in decision.command_results:
            self._bridge.command_result(result.request_id, result.accepted, result.reason or None)

    def _queue_alert(self, event: ConditionEvent) -> None:
        alert = OutboxAlert(
            id=uuid.uuid4().hex,
            device_id=self._bridge.device_id,
            # Wall-clock time, as a person reads it: in an accelerated demo the session's clock
            # runs ahead of the wall, and a caregiver would see alerts from the future.
            time=self._wall_clock(),
            priority=event.priority,
            code=event.code,
            message=event.message,
            session_id=self.session_id,
            condition_id=event.condition_id,
            event=event.event,
            occurrences=event.occurrences,
        )
        self.raised.append(alert.id)
        self._alerts.put_nowait(alert)

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
        self._bridge.alerts_stored(alert)

    async def flush(self) -> None:
        """Store the alerts still queued or being written (at the end of a session); conditions
        that are no longer active are cleared now rather than after the hold time."""
        last = self._last_decision
        active = () if last is None else (a.code for a in last.active_alarms)
        for event in self._conditions.finish(self._last_now, active):
            self._queue_alert(event)
        if self._storing is not None:
            await self._storing
        while not self._alerts.empty():
            await self._store_alert(self._alerts.get_nowait())

    async def drain(self, real_timeout_s: float) -> tuple[int, int]:
        """Wait (in real time: the broker is real even when the session's clock is not) until
        every alert this relay raised is published (the broker's PUBACK); return (raised,
        published). Published is not acknowledged by a person: see :meth:`acknowledged_count`."""
        await self.flush()
        ours = set(self.raised)
        # Polled in a thread that sleeps in real time. On a virtual clock at speed "max" an
        # asyncio.sleep here would jump the session's clock at every poll while the real broker
        # takes its time (a run's virtual-time guard fired in the campaign), and the busy polls
        # would starve the bridge thread that handles the PUBACKs; while a job runs in a thread
        # the virtual loop waits in real time instead (firmware_sim.clock).
        waiting = await asyncio.to_thread(self._wait_published, ours, real_timeout_s)
        return len(ours), len(ours) - waiting

    def _wait_published(self, ours: set[str], real_timeout_s: float) -> int:
        """Blocking: how many of ``ours`` are still unpublished when all are, or at the timeout."""
        deadline = time.monotonic() + real_timeout_s
        while True:
            pending = {
                alert.id
                for alert in self._outbox.undelivered_alerts(
                    device_id=self._bridge.device_id, limit=UNDELIVERED_SCAN_LIMIT
                )
            }
            waiting = ours & pending
            if not waiting or time.monotonic() >= deadline:
                return len(waiting)
            time.sleep(DRAIN_POLL_S)

    def acknowledged_count(self) -> int:
        """How many of the alerts this relay raised a caregiver client acknowledged (showed to a
        person, ``alert/ack``): not the broker's PUBACK. Reads the journal (blocking)."""
        ours = set(self.raised)
        return sum(
            1
            for h in self._store.alert_history(limit=UNDELIVERED_SCAN_LIMIT)
            if h.id in ours and h.acknowledged_at is not None
        )

    # -- in: caregiver commands as supervisor requests -----------------------------------------

    async def requests(self) -> AsyncIterator[CaregiverRequest]:
        """Caregivers' commands as supervisor `CaregiverRequest` events, until the bridge ends."""
        async for command in self._bridge.commands():
            yield CaregiverRequest(
                CaregiverAction(command.action), command.amount_mmhg, command.request_id
            )


def device_state(decision: Decision, *, cutoff_c: float = HEATER_CUTOFF_C.default) -> DeviceState:
    """What a caregiver is shown of one decision; nothing stale is shown as a value.

    ``skin_temp_c`` is the latest reading only while it is fresh and valid (else ``None``);
    ``pressure_mmhg`` is the measured bladder pressure (``None`` unless the massager is
    connected and its status fresh);
    ``over_temperature`` is on at or above ``cutoff_c`` (°C) as well as while latched.
    """
    if not decision.sensor_connected:
        health = "disconnected"
    elif decision.skin_fresh:
        health = "ok"
    elif not decision.skin_valid:
        health = "invalid"
    else:
        health = "stale"
    skin = decision.skin_c if health == "ok" else None
    # over_temperature judges the value shown, not the unrounded one: a caregiver never reads
    # 40.0 °C beside "not over" at a 40.0 °C cut-off. Rounding up to the cut-off turns the flag
    # on up to half a step (0.05 °C) early, the safe side for a warning; never later.
    shown = (
        None if skin is None else round(skin / STATE_SKIN_RESOLUTION_C) * STATE_SKIN_RESOLUTION_C
    )
    # Like the skin rule: a measurement only while the massager's status is fresh (connected
    # but silent, as in MASSAGER_SILENT, the last pressure is history, not the bladder now).
    measured = decision.measured_pressure_mmhg if decision.massager_fresh else None
    return DeviceState(
        session_state=str(decision.state),
        pressure_mmhg=None if measured is None else round(measured, 1),
        pressure_target_mmhg=round(decision.command.pressure_mmhg, 1),
        pressure_cap_mmhg=decision.pressure_cap_mmhg,
        heater_on=decision.command.heater_on,
        skin_temp_c=shown,
        sensor_health=health,
        battery_pct=None if decision.battery_percent is None else round(decision.battery_percent),
        remaining_s=round(decision.remaining_s) if decision.state is SessionState.RUNNING else None,
        over_temperature=decision.state is SessionState.LATCHED
        # The tolerance only absorbs float error of `steps * 0.1` (40.00000000000001 etc.).
        or (shown is not None and shown >= cutoff_c - _SHOWN_EPSILON_C)
        or (skin is not None and skin >= cutoff_c),
        massager_connected=decision.massager_connected,
        sensor_connected=decision.sensor_connected,
        active_alarms=tuple(
            ActiveAlarm(code=alarm.code, priority=alarm.priority)
            for alarm in decision.active_alarms
        ),
    )
