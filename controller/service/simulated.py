"""A supervised session against the simulated devices, start to finish.

The one way the demo, the end-to-end tests and the fault campaign run the product without
hardware: ``firmware_sim`` serves the massager and the sensor on bumble's in-process virtual
radio, and the controller reaches them through the same ``BleakClient`` links as real devices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from controller.ble.access import open_ble
from controller.service.app import Journal, run_session
from controller.service.runner import SessionObserver, SessionOutcome, SessionPlan
from controller.settings import effective_limits
from controller.treatment.programs import PROGRAMS

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from controller.service.caregiver import CaregiverRelay
    from controller.service.runner import SessionRunner
    from controller.settings import Settings
    from controller.store import Store
    from controller.treatment.checklist import ChecklistAnswers
    from firmware_sim.world import SimWorld, WorldSnapshot

# Skin temperatures whose time-above the simulator accumulates, besides the cut-off in force.
LATCH_WATCH_C = 43.0


@dataclass(frozen=True, slots=True)
class SimulatedRun:
    """A session against the simulated world: its plan, outcome and the world's own truth."""

    scenario: str
    plan: SessionPlan
    outcome: SessionOutcome
    truth: WorldSnapshot

    def summary(self) -> dict[str, Any]:
        """The machine-readable result (``soleguard demo --json``, the fault campaign).

        A JSON-ready dict: ``ended_by`` (`EndReason` text), durations in s, temperatures in °C
        (the simulator's truth and what the sensor reported), pressures in mmHg, the alarms
        (code, priority, message); floats rounded, NaN given as None.
        """
        limits = self.plan.limits

        def rounded(value: float | None, digits: int = 2) -> float | None:
            return None if value is None or math.isnan(value) else round(value, digits)

        return {
            "scenario": self.scenario,
            "program": self.plan.program.name,
            "profile": self.plan.profile,
            "ended_by": self.outcome.ended_by,
            "after_session": self.outcome.after_session,
            "duration_s": rounded(self.outcome.duration_s, 1),
            # The simulator's true skin temperature, not only what the sensor reported.
            "max_skin_c": rounded(self.truth.max_skin_c),
            "max_skin_reading_c": rounded(self.outcome.max_skin_reading_c),
            "cutoff_c": limits.heater_cutoff_c,
            "latch_c": limits.latch_c,
            "time_above_cutoff_s": rounded(
                self.truth.seconds_above_c.get(limits.heater_cutoff_c, 0.0), 1
            ),
            "max_pressure_mmhg": rounded(self.outcome.max_pressure_mmhg, 1),
            "max_measured_pressure_mmhg": rounded(self.truth.max_pressure_mmhg, 1),
            "pressure_cap_mmhg": limits.pressure_cap_mmhg,
            "heat_s": rounded(self.outcome.heat_s, 1),
            "firmware_cutouts": self.truth.cutouts,
            "alarms": self.outcome.alarms,
            "session_id": self.outcome.session_id,
        }


async def run_simulated_session(
    settings: Settings,
    *,
    answers: ChecklistAnswers,
    scenario: str = "normal",
    seed: int = 0,
    store: Store | None = None,
    observers: tuple[SessionObserver, ...] = (),
    caregiver: CaregiverRelay | None = None,
    world_options: Mapping[str, Any] | None = None,
    on_runner: Callable[[SessionRunner], None] | None = None,
    on_world: Callable[[SimWorld], None] | None = None,
) -> SimulatedRun:
    """Build the simulated world, run one session over it, and report what really happened.

    ``scenario`` names a `firmware_sim.scenarios` fault script (ValueError for an unknown one);
    ``seed`` makes the world's noise and faults repeatable. Raises what `SessionRunner.run`
    raises.
    """
    from firmware_sim.world import SimWorld  # noqa: PLC0415 (bumble is slow to import)

    limits = effective_limits(settings)
    inspection_required = True
    if store is not None:
        from controller.journal.blocks import inspection_due  # noqa: PLC0415

        inspection_required = inspection_due(store)
    async with SimWorld(
        scenario=scenario,
        seed=seed,
        watch_c=(limits.heater_cutoff_c, LATCH_WATCH_C),
        **dict(world_options or {}),
    ) as world:
        if on_world is not None:
            on_world(world)
        async with open_ble(settings.ble, local_link=world.link) as ble:
            plan = SessionPlan(
                limits=limits,
                program=PROGRAMS[settings.session.program],
                checklist=answers.result(inspection_required=inspection_required),
                massager_address=world.massager_address,
                sensor_address=world.sensor_address,
                profile=settings.profile.name,
                refuse_non_skin_site=settings.sensor.non_skin_site == "refuse",
                scenario=scenario,
            )
            outcome = await run_session(
                plan,
                ble,
                journal=Journal(store, simulated=True),
                observers=observers,
                caregiver=caregiver,
                on_runner=on_runner,
            )
        truth = world.snapshot()
    return SimulatedRun(scenario, plan, outcome, truth)
