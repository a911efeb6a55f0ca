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

from controller.errors import StoreError
from controller.service.recorder import Recorder
from controller.service.session import (
    SessionObserver,
    SessionOutcome,
    SessionPlan,
    SessionRunner,
)

if TYPE_CHECKING:
    from controller.ble.access import BleAccess
    from controller.safety import Decision
    from controller.service.caregiver import CaregiverRelay
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
    session_id = None
    if store is not None:
        try:
            session_id = store.start_session(
                started_at=loop.time() + wall_offset,
                program=plan.program.name,
                profile=plan.profile,
                scenario=plan.scenario,
                cutoff_c=plan.limits.heater_cutoff_c,
                pressure_cap_mmhg=plan.limits.pressure_cap_mmhg,
            )
        except StoreError as exc:
            _LOGGER.error("journal: cannot start a session record: %s", exc)
    if caregiver is not None:
        caregiver.session_id = session_id
        caregiver.wall_offset = wall_offset
    recorder = Recorder(
        cutoff_c=plan.limits.heater_cutoff_c,
        store=store,
        session_id=session_id,
        wall_offset=wall_offset,
    )
    runner = SessionRunner(
        plan,
        ble,
        recorder=recorder,
        observers=observers,
        caregiver=caregiver,
    )
    if on_runner is not None:
        on_runner(runner)
    with _sigterm_cancels_current_task():
        outcome = await runner.run()
    if store is not None and session_id is not None:
        try:
            store.end_session(
                session_id,
                # Loop time, not the wall clock: under virtual time a 30-minute session may take
                # seconds, and the journal must say 30 minutes.
                ended_at=loop.time() + wall_offset,
                ended_by=outcome.ended_by,
                max_skin_c=outcome.max_skin_reading_c,
                max_pressure_mmhg=outcome.max_pressure_mmhg,
                time_above_cutoff_s=outcome.time_above_cutoff_s,
                heat_s=outcome.heat_s,
            )
        except StoreError as exc:
            _LOGGER.error("journal: cannot close session %s: %s", session_id, exc)
    return outcome


@contextlib.contextmanager
def _sigterm_cancels_current_task() -> Iterator[None]:
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    if task is None:
        yield
        return
    try:
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    except (NotImplementedError, RuntimeError):  # Windows, or not the main thread
        yield
        return
    try:
        yield
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


class LatestDecision(SessionObserver):
    """Keeps the newest decision for views that redraw on their own schedule."""

    def __init__(self) -> None:
        self.now = 0.0
        self.latest: Decision | None = None

    def on_decision(self, now: float, decision: Decision) -> None:
        self.now, self.latest = now, decision
