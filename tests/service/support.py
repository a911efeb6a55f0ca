"""What the end-to-end service tests share: settings, a tap on the firmware, a decision log.

Nothing here stands in for the product: sessions run through ``run_simulated_session`` (bleak
links over bumble's virtual radio to ``firmware_sim``); these helpers only watch both ends.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from controller.protocol import Command, Stop
from controller.service.runner import SessionObserver, SessionRunner
from controller.service.simulated import SimulatedRun, run_simulated_session
from controller.settings import Settings
from controller.treatment.checklist import NO_CONTRAINDICATIONS, ChecklistAnswers

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from controller.safety import Decision
    from firmware_sim.world import SimWorld

# The hard limits of DESIGN.md §3 that no setting may loosen.
LATCH_C = 43.0
HARD_PRESSURE_CAP_MMHG = 70.0
# The design's bound on skin overshoot above the cut-off (issue 4 §6).
OVERSHOOT_BOUND_C = 0.3
# Writes are asynchronous to decisions: a command decided now reaches the firmware after a few
# ATT round trips (well under a millisecond of virtual time over LocalLink). Firmware state is
# compared with decisions only after this much virtual time has passed since the decision changed.
PROPAGATION_S = 0.5


def make_settings(**dotted: Any) -> Settings:
    """Settings from defaults plus ``{"session.max_minutes": 6}``-style overrides only.

    Built from scratch (not ``load_settings``) so a config file in the user's home cannot leak in.
    """
    data: dict[str, Any] = {}
    for name, value in dotted.items():
        *parents, leaf = name.split(".")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return Settings.model_validate(data)


@dataclass(frozen=True, slots=True)
class Received:
    """One command the simulated firmware accepted, on the world's clock."""

    time: float
    command: Command
    # Status notifications the massager had sent (to anyone) when this command arrived.
    status_notifications: int


class FirmwareTap:
    """Records every command the simulated firmware accepts (wraps ``handle_write``)."""

    def __init__(self, world: SimWorld) -> None:
        self.world = world
        self.received: list[Received] = []
        self.refused = 0
        self._changed = asyncio.Event()
        firmware = world.firmware
        original = firmware.handle_write
        original_tick = firmware.tick

        def tick(now: float) -> None:
            original_tick(now)
            self._changed.set()

        def handle_write(data: bytes, now: float) -> Command:
            try:
                command = original(data, now)
            except ValueError:  # CommandRefused is a ProtocolError(ValueError)
                self.refused += 1
                raise
            self.received.append(Received(now, command, world.massager.status_notifications))
            self._changed.set()
            return command

        firmware.handle_write = handle_write  # type: ignore[method-assign]
        firmware.tick = tick  # type: ignore[method-assign]

    async def until(self, predicate: Callable[[], bool]) -> float:
        """Wait until ``predicate`` holds after a firmware tick or command; returns the time."""
        while not predicate():
            self._changed.clear()
            await self._changed.wait()
        return asyncio.get_running_loop().time()

    @property
    def last(self) -> Command | None:
        return self.received[-1].command if self.received else None

    def firmware_is_off(self) -> bool:
        """Heater off, pressure target 0, no lease running: what STOP leaves behind."""
        firmware = self.world.firmware
        return (
            not firmware.heater_enabled
            and not firmware.element_on
            and firmware.pressure_target_mmhg == 0.0
            and firmware.lease_deadline is None
        )

    def stops(self) -> list[Received]:
        return [r for r in self.received if isinstance(r.command, Stop)]


@dataclass(frozen=True, slots=True)
class Step:
    """One supervisor decision, with what the simulated world looked like at that moment."""

    now: float
    elapsed: float  # since the world started: the scenarios' clock (faults start at 30 s)
    decision: Decision
    firmware_heater_enabled: bool
    firmware_pressure_target_mmhg: float
    true_skin_c: float


@dataclass
class DecisionLog(SessionObserver):
    """Keeps every decision of the session (not only maxima) and the world beside it."""

    world: SimWorld | None = None
    steps: list[Step] = field(default_factory=list)
    hooks: list[Callable[[float, Decision], None]] = field(default_factory=list)

    def on_decision(self, now: float, decision: Decision) -> None:
        world = self.world
        if world is None:  # refused before the world was wired in: nothing is running
            self.steps.append(Step(now, now, decision, False, 0.0, float("nan")))
        else:
            self.steps.append(
                Step(
                    now,
                    world.elapsed(),
                    decision,
                    world.firmware.heater_enabled,
                    world.firmware.pressure_target_mmhg,
                    world.physics.skin_c,
                )
            )
        for hook in self.hooks:
            hook(now, decision)

    def new_alarm_codes(self) -> list[str]:
        return [alarm.code for step in self.steps for alarm in step.decision.new_alarms]

    def new_alarms(self) -> list[Any]:
        return [alarm for step in self.steps for alarm in step.decision.new_alarms]

    def when(self, predicate: Callable[[Decision], bool]) -> asyncio.Event:
        """An event set at the first decision for which ``predicate`` holds."""
        event = asyncio.Event()

        def hook(_now: float, decision: Decision) -> None:
            if predicate(decision):
                event.set()

        self.hooks.append(hook)
        return event

    def settled(self, index: int) -> bool:
        """True if the heater command of step ``index`` has had time to reach the firmware."""
        step = self.steps[index]
        decided_at = step.now
        for earlier in reversed(self.steps[:index]):
            if earlier.decision.command.heater_on != step.decision.command.heater_on:
                break
            decided_at = earlier.now
        return step.now - decided_at >= PROPAGATION_S


@dataclass
class Session:
    """Handles to a running or finished simulated session."""

    log: DecisionLog
    world: SimWorld | None = None
    tap: FirmwareTap | None = None
    runner: SessionRunner | None = None
    run: SimulatedRun | None = None


def heating_and_pressing(decision: Decision) -> bool:
    return decision.command.heater_on and decision.command.pressure_mmhg > 0.0


def firmware_running(session: Session) -> Callable[[Decision], bool]:
    """A predicate for ``DecisionLog.when``: the massager really heats and presses now."""

    def predicate(decision: Decision) -> bool:
        world = session.world
        return (
            heating_and_pressing(decision)
            and world is not None
            and world.firmware.heater_enabled
            and world.firmware.pressure_target_mmhg > 0.0
            and world.firmware.lease_deadline is not None
        )

    return predicate


async def simulated(
    settings: Settings,
    *,
    answers: ChecklistAnswers = NO_CONTRAINDICATIONS,
    scenario: str = "normal",
    seed: int = 0,
    world_options: Mapping[str, Any] | None = None,
    observers: tuple[SessionObserver, ...] = (),
    session: Session | None = None,
    on_runner: Callable[[SessionRunner], None] | None = None,
) -> Session:
    """Run one simulated session with a firmware tap and a decision log; returns the handles."""
    handles = session if session is not None else Session(DecisionLog())

    def on_world(world: SimWorld) -> None:
        handles.world = world
        handles.log.world = world
        handles.tap = FirmwareTap(world)

    def runner_ready(runner: SessionRunner) -> None:
        handles.runner = runner
        if on_runner is not None:
            on_runner(runner)

    handles.run = await run_simulated_session(
        settings,
        answers=answers,
        scenario=scenario,
        seed=seed,
        observers=(handles.log, *observers),
        world_options=world_options,
        on_world=on_world,
        on_runner=runner_ready,
    )
    return handles
