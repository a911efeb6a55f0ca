"""One supervised session: links, supervisor loop, actuator, recorder, caregiver bridge.

Everything runs in one ``asyncio.TaskGroup``. The supervisor loop is the only place decisions are
made; it never awaits the radio, the broker or the disk. Every way out (the session ends, Ctrl-C,
SIGTERM, an exception in any task, cancellation) passes through the massager link's farewell,
which sends STOP before the link closes; if even that cannot reach the massager, the firmware's
lease switches it off within ``lease_s``.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from controller.ble.bonds import BondLostError, bond_lost_alarm_code
from controller.ble.links import DeviceLink, MassagerLink, SensorLink
from controller.errors import AlarmLatched, ConfigError, LinkError, SoleGuardError
from controller.protocol import MassagerStatus, PartialStatus, TemperatureMeasurement
from controller.safety import Decision, Supervisor
from controller.safety.decision import Alarm, EndReason, Priority
from controller.safety.events import (
    DeviceKind,
    Event,
    LatchInForce,
    LinkChanged,
    MassagerReport,
    SensorPace,
    SkinReading,
    StartSession,
    UserRequest,
    UserStop,
    WatchCutShort,
)
from controller.service.actuator import Actuator, Wanted
from controller.service.aftercare import wait_for_event, watch_after_session

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Coroutine

    from controller.ble.access import BleAccess
    from controller.ble.thermometer import ThermometerInfo
    from controller.safety.events import ChecklistResult
    from controller.service.caregiver import CaregiverRelay
    from controller.service.recorder import Recorder
    from controller.settings import SafetyLimits
    from controller.treatment.programs import Program

_LOGGER = logging.getLogger(__name__)

# 10 Hz, as the design asks; readings and status
# notifications wake the loop at once anyway, so reaction time does not depend on this.
TICK_S = 0.1
# How long to wait for both devices before giving up on a session.
CONNECT_DEADLINE_S = 30.0
# On the way out the helper tasks are cancelled, then cancelled again this often while any is
# still running: a cancel swallowed inside bumble (3.11's ``wait_for``, cpython issue 86296)
# then reaches the task at its next await instead of leaving it running for ever.
RECANCEL_S = 0.05
# How long the way out waits for its helper tasks in all; the links' farewell STOP (2 s timeout)
# fits. A task still running after that is reported; the process-level watchdog ends the rest.
SETTLE_S = 3.0
# After a signal the process has to end within 2 s: the watch after the session gets this long
# (STOP was sent already); the watchdog of controller.shutdown ends the process at 1.2 s anyway.
SIGNALLED_WATCH_S = 0.5
# The actuator finishes the write it has in flight before it returns (a GATT write cut in half
# leaves bumble a reply for a cancelled request); one write is bounded by the 1 s write timeout.
ACTUATOR_CLOSE_S = 1.5


@dataclass(frozen=True, slots=True)
class SessionPlan:
    """Everything a session needs before it starts: limits, program, checklist and both devices."""

    limits: SafetyLimits
    program: Program
    checklist: ChecklistResult
    massager_address: str
    sensor_address: str
    profile: str | None = None
    scenario: str | None = None
    # sensor.non_skin_site = "refuse": no session with an ear, mouth, ... thermometer.
    refuse_non_skin_site: bool = False


@dataclass(slots=True)
class SessionOutcome:
    """How a session ended and what it reached: maxima (°C, mmHg), seconds of heat and above the
    cut-off, and the alarms raised (code, priority, message).

    ``ended_by`` is the supervisor's `EndReason`, or the signal that stopped the session in
    place of USER; ``duration_s`` is session time (s), the watch after it excluded.
    """

    ended_by: EndReason
    duration_s: float
    max_skin_reading_c: float | None
    time_above_cutoff_s: float
    max_pressure_mmhg: float
    max_measured_pressure_mmhg: float
    heat_s: float
    alarms: list[dict[str, str]] = field(default_factory=list)
    session_id: int | None = None
    # The watch after the session: "safe", "fault" (POST_SESSION_UNSAFE raised, and ended_by is
    # FAULT whatever ended the session first) or None (refused, or no verdict).
    after_session: str | None = None
    # When the session ended, on the session's clock (the watch after it is not session time).
    ended_at: float | None = None


def report_from_status(status: MassagerStatus | PartialStatus, now: float) -> MassagerReport:
    """The supervisor's event for one Status notification received at ``now`` (monotonic s)."""
    invalid = status.invalid_fields if isinstance(status, PartialStatus) else ()
    return MassagerReport(
        time=now,
        pressure_mmhg=status.pressure_mmhg,
        heater_energised=status.heater_energised,
        cutout_latched=status.cutout_latched,
        fault=int(status.fault),
        battery_percent=status.battery_percent,
        pad_c=status.pad_temperature_c,
        lease_active=status.lease_active,
        pressure_target_mmhg=status.pressure_target_mmhg,
        invalid_fields=invalid,
    )


class _NotStarted(Exception):
    """Carries the error that kept a session from starting out of its task group."""

    def __init__(self, error: SoleGuardError) -> None:
        super().__init__(str(error))
        self.error = error


class SessionObserver:
    """Hooks for whoever watches the session (live view, caregiver bridge, store)."""

    def on_decision(self, now: float, decision: Decision) -> None:
        """Called after every supervisor step; must not block."""

    def on_notice(self, text: str) -> None:
        """Called with one line the user should read (a too slow thermometer); must not block."""


class SessionRunner:
    """Runs one supervised session over the massager and sensor links until it ends.

    The supervisor loop, the actuator, the recorder and the observers; ``run`` returns the
    `SessionOutcome`.
    """

    def __init__(
        self,
        plan: SessionPlan,
        ble: BleAccess,
        *,
        recorder: Recorder | None = None,
        observers: tuple[SessionObserver, ...] = (),
        caregiver: CaregiverRelay | None = None,
        clock: Callable[[], float] | None = None,
        on_start: Callable[[float], Awaitable[None] | None] | None = None,
    ) -> None:
        self._plan = plan
        self._ble = ble
        self._recorder = recorder
        self._observers = observers if caregiver is None else (*observers, caregiver)
        self._caregiver = caregiver
        self._clock = clock or asyncio.get_running_loop().time
        self._on_start = on_start or (lambda _now: None)
        self._events: deque[Event] = deque()
        self._wake = asyncio.Event()
        self._first_reading = asyncio.Event()
        self._stop_requested = False
        self.stop_reason: EndReason | None = None
        self.supervising = False
        self.supervisor = Supervisor(plan.limits)
        self.massager = MassagerLink(
            plan.massager_address,
            ble.links,
            lambda up: self._link_changed(DeviceKind.MASSAGER, up),
            self._status_received,
        )
        self.sensor = SensorLink(
            plan.sensor_address,
            ble.links,
            lambda up: self._link_changed(DeviceKind.SENSOR, up),
            self._measurement_received,
            stale_after_s=plan.limits.stale_after_s,
        )
        # The thermometer facts already told to the user, so each is told once.
        self._told: set[str] = set()
        self._checked_info: ThermometerInfo | None = None
        self.notices: list[str] = []
        # Loop time of the latest massager status report (the live view shows its age).
        self.last_status_at: float | None = None
        self.actuator = Actuator(
            self.massager, renew_s=plan.limits.lease_renew_s, clock=self._clock
        )
        self.last_decision: Decision | None = None
        # A device that lost its bond ends the session (controller/ble/bonds.py).
        self.bond_lost: BondLostError | None = None
        self._bond_alarm: Alarm | None = None
        self._bond_alarm_raised = False
        self._bond_lost_event = asyncio.Event()

    # -- intake: callbacks from the links, never blocking ------------------------------------

    def _push(self, event: Event) -> None:
        self._events.append(event)
        self._wake.set()

    def _link_changed(self, device: DeviceKind, connected: bool) -> None:
        if device is DeviceKind.MASSAGER and connected:
            self.actuator.forget_sent()
        self._push(LinkChanged(device, connected, self._clock()))

    def _status_received(self, status: MassagerStatus | PartialStatus) -> None:
        self.last_status_at = self._clock()
        self._push(report_from_status(status, self._clock()))
        if self._recorder is not None and isinstance(status, MassagerStatus):
            self._recorder.massager_status(status)

    def _measurement_received(self, measurement: TemperatureMeasurement | None) -> None:
        celsius = math.nan if measurement is None else measurement.to_celsius()
        self._push(SkinReading(time=self._clock(), celsius=celsius))
        self._first_reading.set()

    def request_stop(self, reason: EndReason | None = None) -> None:
        """The user asked to stop (a key in the live view, a signal).

        ``reason`` (e.g. `EndReason.SIGTERM`) replaces `EndReason.USER` as the outcome's
        ``ended_by``.
        """
        if not self._stop_requested and reason is not None:
            self.stop_reason = reason
        self._stop_requested = True
        self._wake.set()

    # -- the session -----------------------------------------------------------------------

    async def run(self) -> SessionOutcome:
        """Run the session to its end and the watch after it.

        Raises :class:`~controller.errors.AlarmLatched` before connecting anything when the
        journal holds an over-temperature latch not yet reset, LinkError when the devices are not
        reached in time.
        """
        self._refuse_if_latched()
        start = self._clock()
        refused = Supervisor(self._plan.limits).step(start, [StartSession(self._plan.checklist)])
        if refused.ended_by is not None:
            # Refused before anything is connected: nothing can be actuated at all.
            await self._started(start)
            self._notify(start, refused)
            return self._outcome(refused, start, start)
        not_started: SoleGuardError | None = None
        async with asyncio.TaskGroup() as group:
            actuator = group.create_task(self.actuator.run(), name="actuator")
            tasks = [
                group.create_task(self._keep_link(self.massager), name="massager-link"),
                group.create_task(self._keep_link(self.sensor), name="sensor-link"),
            ]
            if self._caregiver is not None:
                tasks.append(group.create_task(self._relay_caregiver(), name="caregiver-in"))
                tasks.append(
                    group.create_task(self._caregiver.deliver_alerts(), name="caregiver-alerts")
                )
            try:
                outcome = await self._supervise()
            except _NotStarted as exc:
                # Devices not reached, or a thermometer the settings refuse: nothing ran. The
                # person gets that one error, after the links have closed, not a group of one.
                not_started = exc.error
            finally:
                # The actuator first, once its write in flight is done; then the links (each
                # sends its farewell STOP) and the helpers. Bounded whatever the tasks do.
                self.actuator.close()
                await settle([actuator], first_wait_s=ACTUATOR_CLOSE_S)
                await settle(tasks)
        if self._caregiver is not None:
            # Also when nothing started: a lost bond's alarm must still reach the caregivers.
            await self._caregiver.flush()
        if not_started is not None:
            raise not_started
        return outcome

    async def _keep_link(self, link: DeviceLink) -> None:
        """Run a link; a lost bond ends the session instead of the task group (and no retry)."""
        try:
            await link.run()
        except BondLostError as exc:
            if self.bond_lost is None:
                self.bond_lost = exc
                self._bond_alarm = Alarm(
                    Priority.MEDIUM, bond_lost_alarm_code(exc.kind), str(exc), self._clock()
                )
            self._bond_lost_event.set()
            self._wake.set()

    def _with_bond_alarm(self, decision: Decision) -> Decision:
        """The decision, with the lost bond's alarm among its alarms and the end called a fault.

        The supervisor never sees the bond: a session it is told to stop ends all-off, and the
        alarm rides on its decision to every observer (live view, journal, caregivers).
        """
        alarm = self._bond_alarm
        if alarm is None:
            return decision
        new, self._bond_alarm_raised = not self._bond_alarm_raised, True
        ended_by = EndReason.FAULT if decision.ended_by is not None else None
        return decision._replace(
            new_alarms=(*decision.new_alarms, alarm) if new else decision.new_alarms,
            active_alarms=(*decision.active_alarms, alarm),
            ended_by=ended_by,
        )

    def _refuse_if_latched(self) -> None:
        store = self._recorder.store if self._recorder is not None else None
        if store is None:
            return
        from controller.store.latch import latch_in_force  # noqa: PLC0415 (optional part)

        latch = latch_in_force(store)
        if latch is None:
            return
        # The supervisor refuses too (belt and braces): it is told the latch is in force.
        self.supervisor.step(self._clock(), [LatchInForce(latch.skin_c)])
        from controller.journal.blocks import latch_reason, refusal  # noqa: PLC0415

        raise AlarmLatched(refusal(latch_reason(latch)))

    async def _relay_caregiver(self) -> None:
        assert self._caregiver is not None
        async for request in self._caregiver.requests():
            self._push(request)

    async def _devices_ready(self) -> None:
        await self.massager.wait_connected()
        await self.sensor.wait_connected()
        # Start with a fresh reading in hand, taken after both links are up: otherwise
        # the first seconds read as a stale sensor.
        self._first_reading.clear()
        await self._first_reading.wait()

    async def _supervise(self) -> SessionOutcome:
        """The session; raises `_NotStarted` when it cannot start (a lost bond among others)."""
        ready = asyncio.create_task(self._devices_ready(), name="devices-ready")
        bond_lost = asyncio.create_task(self._bond_lost_event.wait(), name="bond-lost")
        try:
            async with asyncio.timeout(CONNECT_DEADLINE_S):
                await asyncio.wait((ready, bond_lost), return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError as exc:
            missing = [
                f"{link.kind} {link.address}"
                for link in (self.massager, self.sensor)
                if not link.is_connected
            ]
            # The person's way out, in the same line: what to check, and how to see what is there.
            fix = (
                "check that it is switched on, charged and within a few metres, then start "
                "again (`soleguard scan` lists the devices in range)"
                if missing
                else "check that the skin sensor sits on the foot and measures"
            )
            error = LinkError(
                f"no session: {' and '.join(missing or ['a first skin reading'])} not reached "
                f"in {CONNECT_DEADLINE_S:.0f} s; {fix}"
            )
            raise _NotStarted(error) from exc
        finally:
            for task in (ready, bond_lost):
                task.cancel()
            await asyncio.gather(ready, bond_lost, return_exceptions=True)
        if self.bond_lost is not None:
            # A device lost its bond before the session could start: nothing was actuated.
            now = self._clock()
            self._notify(now, self._with_bond_alarm(self.supervisor.step(now, [])))
            raise _NotStarted(self.bond_lost)
        try:
            self._check_thermometer()
        except ConfigError as exc:
            raise _NotStarted(exc) from exc
        started = self._clock()
        self.supervising = True
        await self._started(started)
        self._push(StartSession(self._plan.checklist))
        while True:
            try:
                async with asyncio.timeout(TICK_S):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._wake.clear()
            now = self._clock()
            self._check_thermometer()  # may add a SensorPace to this step's events
            events = list(self._events)
            self._events.clear()
            if self._stop_requested or self.bond_lost is not None:
                events.append(UserStop())
            events.append(self._program_request(now - started))
            decision = self._with_bond_alarm(self.supervisor.step(now, events))
            self.last_decision = decision
            command = decision.command
            self.actuator.want(
                Wanted(
                    command.pressure_mmhg, command.heater_on, command.pad_target_c, command.lease_s
                )
            )
            self._notify(now, decision)
            if decision.ended_by is not None:
                # One more write cycle so STOP-equivalent (all off) reaches the massager now,
                # not only at the link's farewell.
                await self.actuator.stop()
                # Then keep watching until the massager shows it is off (docs/safety.md).
                watch = watch_after_session(
                    decision,
                    bound_s=self._plan.limits.post_session_bound_s,
                    clock=self._clock,
                    step=self._step_after_session,
                    wait=lambda timeout: wait_for_event(self._wake, timeout),
                    tick_s=TICK_S,
                )
                if self.stop_reason is None:
                    decision = await watch
                else:
                    decision = await self._watch_briefly(watch)
                return self._outcome(decision, started, now)

    async def _watch_briefly(self, watch: Coroutine[Any, Any, Decision]) -> Decision:
        """The watch after a session ended by a signal: the process must end within 2 s.

        STOP was sent and acknowledged (or the lease ends within 3 s); the watch goes on for
        `SIGNALLED_WATCH_S`, then the supervisor judges what the massager has shown so far
        (`WatchCutShort`): a heater still energised is a post-session fault (HIGH alarm),
        anything else not yet confirmed is "unverified".
        """
        try:
            async with asyncio.timeout(SIGNALLED_WATCH_S):
                return await watch
        except TimeoutError:
            _LOGGER.warning(
                "post-session watch cut short by %s: STOP was sent; the lease ends within %.0f s",
                self.stop_reason,
                self._plan.limits.lease_s,
            )
            self._events.append(WatchCutShort())
            return self._step_after_session()

    async def _started(self, now: float) -> None:
        # The journal may take a moment to create the session's record (off this loop, bounded
        # by its owner): nothing is actuated yet, and no supervisor step waits for it.
        pending = self._on_start(now)
        if pending is not None:
            await pending

    def _step_after_session(self) -> Decision:
        """One supervisor step after the session: events in, nothing actuated (STOP was sent)."""
        now = self._clock()
        events = list(self._events)
        self._events.clear()
        decision = self._with_bond_alarm(self.supervisor.step(now, events))
        self.last_decision = decision
        self._notify(now, decision)
        return decision

    def _program_request(self, elapsed_s: float) -> UserRequest:
        limits = self._plan.limits
        return UserRequest(
            pressure_mmhg=self._plan.program.pressure_mmhg(elapsed_s, limits.pressure_cap_mmhg),
            # A thermometer that says it measures too rarely never asks for heat: between its
            # readings the supervisor would see a stale sensor and flicker the heater.
            heat_on=not self.sensor_too_slow,
        )

    @property
    def sensor_too_slow(self) -> bool:
        """True while the connected thermometer says it measures too rarely for heat."""
        info = self.sensor.info
        return info is not None and info.too_slow

    def _check_thermometer(self) -> None:
        """Tell the user (once each) what the thermometer said; refuse a non-skin one if asked;
        tell the supervisor its pace (a `SensorPace`, whenever a connection brings a new one).

        Raises ConfigError when ``refuse_non_skin_site`` is set and the sensor states a site
        other than the skin.
        """
        info = self.sensor.info
        if info is None or info is self._checked_info:
            return  # nothing new since the last tick
        self._checked_info = info
        pace = info.pace_s
        if pace is not None:
            self._push(SensorPace(pace))
        if self._plan.refuse_non_skin_site and not info.skin_site:
            raise ConfigError(f"no session: {info.site_refusal_line()}")
        for line in info.lines():
            if line not in self._told:
                self._told.add(line)
                self.notices.append(line)
                _LOGGER.info("%s", line)
                for observer in self._observers:
                    observer.on_notice(line)

    def _notify(self, now: float, decision: Decision) -> None:
        if self._recorder is not None:
            self._recorder.decision(now, decision)
        for observer in self._observers:
            observer.on_decision(now, decision)

    def _outcome(self, decision: Decision, started: float, now: float) -> SessionOutcome:
        recorder = self._recorder
        # An outcome is only made once the supervisor ended the session; were it not, FAULT
        # rather than an invented reason.
        ended_by = decision.ended_by if decision.ended_by is not None else EndReason.FAULT
        if ended_by is EndReason.USER and self.stop_reason is not None:
            ended_by = self.stop_reason
        return SessionOutcome(
            ended_by=ended_by,
            duration_s=now - started,
            max_skin_reading_c=recorder.max_skin_c if recorder else None,
            time_above_cutoff_s=recorder.time_above_cutoff_s if recorder else 0.0,
            max_pressure_mmhg=recorder.max_pressure_mmhg if recorder else 0.0,
            max_measured_pressure_mmhg=recorder.max_measured_pressure_mmhg if recorder else 0.0,
            heat_s=recorder.heat_s if recorder else 0.0,
            alarms=[
                {"code": alarm.code, "priority": str(alarm.priority), "message": alarm.message}
                for alarm in (recorder.alarms if recorder else decision.active_alarms)
            ],
            session_id=recorder.session_id if recorder else None,
            after_session=decision.after_session,
            ended_at=now,
        )


async def settle(
    tasks: list[asyncio.Task[None]], *, first_wait_s: float = 0.0, bound_s: float = SETTLE_S
) -> None:
    """Wait for ``tasks`` to end, cancelling (again) every `RECANCEL_S`, for at most ``bound_s``.

    ``first_wait_s``: how long they get to end on their own before the first cancel. Never
    raises for the tasks' errors (their owner, a TaskGroup, reports those).
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + bound_s
    pending = {task for task in tasks if not task.done()}
    if pending and first_wait_s > 0:
        _, pending = await asyncio.wait(pending, timeout=first_wait_s)
    while pending:
        for task in pending:
            task.cancel()
        left = deadline - loop.time()
        if left <= 0:
            _LOGGER.error(
                "tasks still running %.1f s after the session: %s",
                bound_s,
                ", ".join(task.get_name() for task in pending),
            )
            return
        _, pending = await asyncio.wait(pending, timeout=min(RECANCEL_S, left))
