"""Running a whole session the way the CLI commands do: journal, live view, signals.

``soleguard session`` (real devices) and ``soleguard demo`` (simulated devices) share this; they
differ only in where the radio and the devices come from.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from controller.ble.access import open_ble
from controller.errors import ConfigError, Interrupted
from controller.safety import DeviceKind, EndReason
from controller.service.recorder import Recorder
from controller.service.runner import (
    SessionObserver,
    SessionOutcome,
    SessionPlan,
    SessionRunner,
)
from controller.settings import effective_limits
from controller.shutdown import current as current_shutdown
from controller.shutdown import signal_reason
from controller.store.writer import JournalWriter
from controller.treatment.programs import PROGRAMS

if TYPE_CHECKING:
    import concurrent.futures
    from collections.abc import Awaitable, Callable

    from controller.ble.access import BleAccess
    from controller.safety import Decision
    from controller.safety.events import ChecklistResult
    from controller.service.caregiver import CaregiverRelay
    from controller.settings import Settings
    from controller.store import Store

_LOGGER = logging.getLogger(__name__)

# How long a session's start waits for its journal record (real seconds, off the loop): a
# healthy journal takes milliseconds; a locked one gets a second, then the session goes on and
# records what it can once the writer gets through.
START_RECORD_WAIT_S = 1.0


@dataclass(frozen=True, slots=True)
class Journal:
    """Where the session is written; None parts mean 'do not record'.

    ``simulated``: the session runs against simulated devices (the demo), and is marked so.
    """

    store: Store | None
    simulated: bool = False


# A forced exit closes the session's record on a connection of its own, waiting at most this
# long for the journal: the whole forced exit must stay within the 2 s promise.
FORCED_CLOSE_S = 0.2


async def run_session(
    plan: SessionPlan,
    ble: BleAccess,
    *,
    journal: Journal,
    observers: tuple[SessionObserver, ...] = (),
    caregiver: CaregiverRelay | None = None,
    on_runner: Callable[[SessionRunner], None] | None = None,
) -> SessionOutcome:
    """Run one session to its end.

    Under an installed `controller.shutdown.Shutdown`, a signal (Ctrl-C, SIGTERM, SIGHUP) during
    the session ends it through the supervisor (STOP first) and the outcome's ``ended_by`` names
    the signal (`signal_reason`); before the session starts it raises `Interrupted`.
    Raises what `SessionRunner.run` raises (`AlarmLatched`, `LinkError`). The journal's end of
    the session is written before this returns, unless the writer's close bound
    (`controller.store.writer.CLOSE_TIMEOUT_S`) runs out first (then logged).
    """
    loop = asyncio.get_running_loop()
    wall_offset = time.time() - loop.time()
    store = journal.store
    # Every journal write of the session on one thread of its own: the safety loop only queues.
    writer = JournalWriter() if store is not None else None
    recorder = Recorder(
        cutoff_c=plan.limits.heater_cutoff_c, store=store, wall_offset=wall_offset, writer=writer
    )
    if caregiver is not None:
        caregiver.wall_offset = wall_offset
        caregiver.cutoff_c = plan.limits.heater_cutoff_c

    def started(now: float) -> Awaitable[None] | None:
        # The record starts when the supervised session does, not while devices connect.
        if store is None or writer is None:
            return None

        def start_record() -> None:
            # A session left unfinished by a process that died (SIGKILL, a power cut) is
            # closed now, as interrupted, before this one is recorded.
            store.close_interrupted()
            recorder.session_id = store.start_session(
                started_at=now + wall_offset,
                program=plan.program.name,
                profile=plan.profile,
                scenario=plan.scenario,
                cutoff_c=plan.limits.heater_cutoff_c,
                pressure_cap_mmhg=plan.limits.pressure_cap_mmhg,
                simulated=journal.simulated,
            )
            if caregiver is not None:
                caregiver.session_id = recorder.session_id

        record = writer.call(start_record)
        # Waited for (off the loop, bounded) so that alerts and telemetry carry the session's id;
        # a journal that cannot answer in time costs the id, never the session.
        return asyncio.to_thread(_wait_quietly, record, START_RECORD_WAIT_S)

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
    task = asyncio.current_task()
    assert task is not None

    def on_signal(signum: int) -> None:
        if runner.supervising:
            # The orderly way: the supervisor ends the session and STOP goes out at once.
            runner.request_stop(signal_reason(signum))
        else:
            # Still connecting: nothing is actuated yet; the links say farewell as they end.
            task.cancel()

    shutdown = current_shutdown()
    # How the session ended, once the supervisor said so: a forced exit (a second signal, a
    # stuck way out) closes its record with that, or with the signal, never leaving it open to
    # be called `interrupted` at the next start.
    ending: list[EndReason] = []
    forced_exit = contextlib.ExitStack()
    if shutdown is not None and store is not None:

        def close_record() -> None:
            signum = shutdown.signum
            how = ending[-1] if ending else signal_reason(signum) if signum else None
            if recorder.session_id is not None and how is not None:
                store.close_forced(recorder.session_id, ended_by=how, timeout_s=FORCED_CLOSE_S)

        forced_exit.enter_context(shutdown.on_forced(close_record))
    try:
        with contextlib.ExitStack() as stack:
            if shutdown is not None:
                stack.enter_context(shutdown.on_signal(loop, on_signal))
                stack.enter_context(shutdown.on_emergency(loop, runner.actuator.stop))
            try:
                outcome = await runner.run()
            except asyncio.CancelledError:
                if shutdown is None or shutdown.signum is None:
                    raise
                # Our own handler cancelled us before the session started. Clean up the rest
                # (radio, broker) in a task that is no longer being cancelled, and turn the
                # signal into an error the command line reports.
                task.uncancel()
                raise Interrupted(shutdown.signum, "no session was started") from None
        ending.append(outcome.ended_by)
        if store is not None and writer is not None:
            # Loop time, not the wall clock: under virtual time a 30-minute session may take
            # seconds, and the journal must say 30 minutes.
            ended_at = (outcome.ended_at or loop.time()) + wall_offset

            def end_record() -> None:
                if recorder.session_id is not None:
                    store.end_session(
                        recorder.session_id,
                        ended_at=ended_at,
                        ended_by=outcome.ended_by,
                        max_skin_c=outcome.max_skin_reading_c,
                        max_pressure_mmhg=outcome.max_pressure_mmhg,
                        time_above_cutoff_s=outcome.time_above_cutoff_s,
                        heat_s=outcome.heat_s,
                    )

            writer.submit(end_record)
    finally:
        if writer is not None:
            # Bounded: a journal locked by another process costs records, never the way out.
            await asyncio.to_thread(writer.close)
        forced_exit.close()
    outcome.session_id = recorder.session_id
    return outcome


def _wait_quietly(future: concurrent.futures.Future[Any], timeout_s: float) -> None:
    """Wait for a journal write; its failure is the writer's to log."""
    with contextlib.suppress(Exception):
        future.result(timeout_s)


class LatestDecision(SessionObserver):
    """Keeps the newest decision for views that redraw on their own schedule."""

    def __init__(self) -> None:
        self.now = 0.0
        self.latest: Decision | None = None
        # Lines the session told the user (a too slow or non-skin thermometer), oldest first.
        self.notices: list[str] = []

    def on_decision(self, now: float, decision: Decision) -> None:
        """Keep the latest decision and its time (monotonic s)."""
        self.now, self.latest = now, decision

    def on_notice(self, text: str) -> None:
        """Keep a line the session told the user."""
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
    """A session with the paired devices named in the settings, over the configured radio.

    Raises `ConfigError` (one line naming ``soleguard scan`` and ``pair``) when the massager or
    the sensor is not paired yet; otherwise as `run_session`.
    """
    massager, sensor = settings.devices.massager.address, settings.devices.sensor.address
    if massager is None or sensor is None:
        missing = " and ".join(
            kind
            for kind, address in ((DeviceKind.MASSAGER, massager), (DeviceKind.SENSOR, sensor))
            if not address
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
