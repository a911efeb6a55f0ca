"""Running a whole session the way the CLI commands do: journal, live view, signals.

``soleguard session`` (real devices) and ``soleguard demo`` (simulated devices) share this; they
differ only in where the radio and the devices come from.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from controller.ble.access import open_ble
from controller.errors import ConfigError, Interrupted, StoreError
from controller.service.recorder import Recorder
from controller.service.session import (
    SessionObserver,
    SessionOutcome,
    SessionPlan,
    SessionRunner,
)
from controller.session.programs import PROGRAMS
from controller.settings import effective_limits

if TYPE_CHECKING:
    from controller.ble.access import BleAccess
    from controller.safety import Decision
    from controller.safety.events import ChecklistResult
    from controller.service.caregiver import CaregiverRelay
    from controller.settings import Settings
    from controller.store import Store

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Journal:
    """Where the session is written; None parts mean 'do not record'."""

    store: Store | None


async def run_session(
    plan: SessionPlan,
    ble: BleAccess,
    *,
    journal: Journal,
    observers: tuple[SessionObserver, ...] = (),
    caregiver: CaregiverRelay | None = None,
    on_runner: Callable[[SessionRunner], None] | None = None,
) -> SessionOutcome:
    """Run one session to its end; SIGTERM ends it as safely as Ctrl-C does."""
    loop = asyncio.get_running_loop()
    wall_offset = time.time() - loop.time()
    store = journal.store
    recorder = Recorder(cutoff_c=plan.limits.heater_cutoff_c, store=store, wall_offset=wall_offset)
    if caregiver is not None:
        caregiver.wall_offset = wall_offset
        caregiver.cutoff_c = plan.limits.heater_cutoff_c

    def started(now: float) -> None:
        # The record starts when the supervised session does, not while devices connect.
        if store is None:
            return
        try:
            recorder.session_id = store.start_session(
                started_at=now + wall_offset,
                program=plan.program.name,
                profile=plan.profile,
                scenario=plan.scenario,
                cutoff_c=plan.limits.heater_cutoff_c,
                pressure_cap_mmhg=plan.limits.pressure_cap_mmhg,
            )
        except StoreError as exc:
            _LOGGER.error("journal: cannot start a session record: %s", exc)
        if caregiver is not None:
            caregiver.session_id = recorder.session_id

    runner = SessionRunner(
        plan,
        ble,
        recorder=recorder,
        observers=observers,
        caregiver=caregiver,
        on_start=started,
    )
    if on_runner is not None:
        on_runner(runner)
    with _signals_cancel_current_task() as received:
        try:
            outcome = await runner.run()
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if received.signal is None or task is None:
                raise
            # Our own handler cancelled us: the links have already sent STOP on the way out.
            # Clean up the rest (radio, broker) in a task that is no longer being cancelled, and
            # turn the signal into an error the command line reports.
            task.uncancel()
            raise Interrupted(received.signal) from None
    session_id = recorder.session_id
    if store is not None and session_id is not None:
        try:
            store.end_session(
                session_id,
                # Loop time, not the wall clock: under virtual time a 30-minute session may take
                # seconds, and the journal must say 30 minutes.
                ended_at=(outcome.ended_at or loop.time()) + wall_offset,
                ended_by=outcome.ended_by,
                max_skin_c=outcome.max_skin_reading_c,
                max_pressure_mmhg=outcome.max_pressure_mmhg,
                time_above_cutoff_s=outcome.time_above_cutoff_s,
                heat_s=outcome.heat_s,
            )
        except StoreError as exc:
            _LOGGER.error("journal: cannot close session %s: %s", session_id, exc)
    return outcome


@dataclass(slots=True)
class _Received:
    signal: signal.Signals | None = None


@contextlib.contextmanager
def _signals_cancel_current_task() -> Iterator[_Received]:
    """While inside, Ctrl-C and SIGTERM cancel the current task; ``signal`` says which came."""
    received = _Received()
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    installed: list[signal.Signals] = []

    def on_signal(signum: signal.Signals) -> None:
        if received.signal is None and task is not None:
            received.signal = signum
            task.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, on_signal, signum)
        except (NotImplementedError, RuntimeError, ValueError):  # Windows, or not main thread
            continue
        installed.append(signum)
    try:
        yield received
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


class LatestDecision(SessionObserver):
    """Keeps the newest decision for views that redraw on their own schedule."""

    def __init__(self) -> None:
        self.now = 0.0
        self.latest: Decision | None = None
        # Lines the session told the user (a too slow or non-skin thermometer), oldest first.
        self.notices: list[str] = []

    def on_decision(self, now: float, decision: Decision) -> None:
        self.now, self.latest = now, decision

    def on_notice(self, text: str) -> None:
        self.notices.append(text)


async def run_configured_session(
    settings: Settings,
    checklist: ChecklistResult,
    *,
    store: Store | None,
    observers: tuple[SessionObserver, ...] = (),
    caregiver: CaregiverRelay | None = None,
    on_runner: Callable[[SessionRunner], None] | None = None,
) -> SessionOutcome:
    """A session with the paired devices named in the settings, over the configured radio."""
    massager, sensor = settings.devices.massager.address, settings.devices.sensor.address
    if massager is None or sensor is None:
        missing = " and ".join(
            kind for kind, address in (("massager", massager), ("sensor", sensor)) if not address
        )
        raise ConfigError(
            f"devices: no {missing} paired yet; run `soleguard scan`, then `soleguard pair ADDRESS`"
        )
    plan = SessionPlan(
        limits=effective_limits(settings),
        program=PROGRAMS[settings.session.program],
        checklist=checklist,
        massager_address=massager,
        sensor_address=sensor,
        profile=settings.profile.name,
        refuse_non_skin_site=settings.sensor.non_skin_site == "refuse",
    )
    async with open_ble(settings.ble) as ble:
        return await run_session(
            plan,
            ble,
            journal=Journal(store),
            observers=observers,
            caregiver=caregiver,
            on_runner=on_runner,
        )
