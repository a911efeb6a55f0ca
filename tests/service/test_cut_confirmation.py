"""Cuts go as writes without response and are confirmed by status; a lost one is sent again.

On the real stack (bleak over bumble's virtual radio, the simulated firmware): the massager's
radio loses ATT Write Commands (the fault injector in firmware_sim/massager_gatt.py), and the
firmware must still follow every lowered pressure within `CUT_CONFIRM_S` plus propagation,
because the actuator resends an unconfirmed cut with response (docs/protocol.md, "Cuts without
response").
"""

from __future__ import annotations

import asyncio

from controller.protocol import SetPressure
from controller.service.actuator import CUT_CONFIRM_S, PRESSURE_STEP_MMHG
from tests.service.support import (
    PROPAGATION_S,
    DecisionLog,
    Session,
    Step,
    firmware_running,
    make_settings,
    simulated,
)

MINUTES = 5.0
# Long enough for several waves of the standard program (8 s period): many lowered set-points.
OBSERVE_S = 30.0
# A cut must be in the firmware this long after it was decided, lost or not.
CUT_BOUND_S = CUT_CONFIRM_S + PROPAGATION_S


def overdue_pressure(steps: list[Step], since: float) -> list[tuple[float, float, float]]:
    """Decisions (from ``since``) where the firmware's target was above every pressure commanded
    in the `CUT_BOUND_S` before: a cut that never arrived. (time, firmware, highest commanded)."""
    late = []
    for step in steps:
        if step.now < since + CUT_BOUND_S:
            continue
        window = [
            s.decision.command.pressure_mmhg
            for s in steps
            if step.now - CUT_BOUND_S <= s.now <= step.now
        ]
        if step.firmware_pressure_target_mmhg > max(window) + PRESSURE_STEP_MMHG / 2:
            late.append((step.now, step.firmware_pressure_target_mmhg, max(window)))
    return late


async def run_with_losses(lose: int) -> tuple[Session, float]:
    session = Session(DecisionLog())
    settings = make_settings(**{"session.max_minutes": MINUTES, "session.program": "standard"})
    task = asyncio.create_task(simulated(settings, session=session))
    await session.log.when(firmware_running(session)).wait()
    assert session.world is not None
    session.world.massager.write_commands_to_lose = lose
    since = asyncio.get_running_loop().time()
    await asyncio.sleep(OBSERVE_S)
    assert session.runner is not None
    session.runner.request_stop()
    await task
    return session, since


async def test_cuts_without_loss_are_confirmed_by_status_and_never_resent() -> None:
    session, since = await run_with_losses(0)
    assert session.runner is not None
    assert session.tap is not None
    lowered = [
        r
        for before, r in zip(session.tap.received, session.tap.received[1:], strict=False)
        if isinstance(r.command, SetPressure)
        and isinstance(before.command, SetPressure)
        and r.command.target_mmhg < before.command.target_mmhg
    ]
    assert len(lowered) >= 3, "the program lowered the pressure: cuts were sent"
    assert session.runner.actuator.cuts_resent == 0
    assert overdue_pressure(session.log.steps, since) == []


async def test_lost_cuts_are_resent_with_response_and_reach_the_firmware() -> None:
    # Every write without response is lost: only the resends (with response) get through.
    session, since = await run_with_losses(10**9)
    assert session.world is not None
    assert session.runner is not None
    assert session.world.massager.write_commands_lost >= 3
    assert session.runner.actuator.cuts_resent >= 3
    assert overdue_pressure(session.log.steps, since) == []
