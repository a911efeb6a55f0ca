"""Every way out of a session tells the massager STOP before the link closes.

Checked on the simulated firmware itself: the last command it accepted is STOP, it came when the
session was left (not later, by the lease), and the firmware is left with the heater off, a zero
pressure target and no lease running. The process-crossing ways out (Ctrl-C, SIGTERM, SIGKILL) are
in test_processes.py.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import pytest

from controller.errors import LinkError
from controller.protocol import Stop
from controller.safety import EndReason
from controller.service.runner import SessionObserver, SessionRunner
from tests.service.support import (
    PROPAGATION_S,
    DecisionLog,
    Session,
    firmware_running,
    make_settings,
    simulated,
)

if TYPE_CHECKING:
    from controller.safety import Decision

# Long enough that none of these sessions ends by its timer before the test acts.
MINUTES = 5.0
# How far into a running session the tests act: the pressure program and the heater are both up.
ACT_AFTER_RUNNING_S = 20.0


class Injected(RuntimeError):
    """A bug planted by a test."""


def assert_stopped_at(session: Session, left_at: float) -> None:
    """STOP reached the firmware when the session was left, and nothing came after it."""
    tap = session.tap
    assert tap is not None
    assert isinstance(tap.last, Stop), f"last command was {tap.last!r}"
    first_stop_after = next(
        r for r in tap.received if r.time >= left_at and isinstance(r.command, Stop)
    )
    # Sent by the controller as it left, not the firmware timing out its lease (3 s).
    assert first_stop_after.time - left_at <= PROPAGATION_S
    assert tap.firmware_is_off()
    assert session.world is not None
    assert not session.world.physics.heater_on


def start(session: Session, **kwargs: object) -> asyncio.Task[Session]:
    settings = make_settings(**{"session.max_minutes": MINUTES})
    return asyncio.create_task(simulated(settings, session=session, **kwargs))  # type: ignore[arg-type]


async def running_for(session: Session, seconds: float) -> float:
    """Wait until the firmware heats and presses, then ``seconds`` more; returns the time."""
    await session.log.when(firmware_running(session)).wait()
    await asyncio.sleep(seconds)
    assert session.world is not None
    assert session.world.firmware.heater_enabled
    return asyncio.get_running_loop().time()


async def test_cancelled_session_stops_the_massager() -> None:
    session = Session(DecisionLog())
    task = start(session)
    cancelled_at = await running_for(session, ACT_AFTER_RUNNING_S)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert_stopped_at(session, cancelled_at)


async def test_crash_in_the_supervisor_loop_stops_the_massager() -> None:
    session = Session(DecisionLog())
    crashed_at: list[float] = []

    class Breaking(SessionObserver):
        def on_decision(self, now: float, decision: Decision) -> None:
            world = session.world
            if world is not None and world.elapsed() > 60.0 and world.firmware.heater_enabled:
                crashed_at.append(now)
                raise Injected("observer bug")

    task = start(session, observers=(Breaking(),))
    with pytest.raises(ExceptionGroup) as caught:
        await task
    assert caught.group_contains(Injected), caught.value
    assert_stopped_at(session, crashed_at[0])


async def test_crash_in_the_actuator_task_stops_the_massager() -> None:
    session = Session(DecisionLog())
    crashed_at: list[float] = []

    def break_actuator(runner: SessionRunner) -> None:
        # A bug in the actuator task (not a lost link, which it survives): its sends start raising
        # once the session heats. The link's own farewell does not go through ``send``.
        send = runner.massager.send

        async def failing_send(command: object, **kwargs: object) -> None:
            world = session.world
            if world is not None and world.elapsed() > 60.0 and world.firmware.heater_enabled:
                crashed_at.append(asyncio.get_running_loop().time())
                raise Injected("actuator bug")
            await send(command, **kwargs)  # type: ignore[arg-type]

        runner.massager.send = failing_send  # type: ignore[method-assign]

    task = start(session, on_runner=break_actuator)
    with pytest.raises(ExceptionGroup) as caught:
        await task
    assert caught.group_contains(Injected), caught.value
    assert not caught.group_contains(LinkError)
    assert_stopped_at(session, crashed_at[0])


async def test_user_stop_ends_the_session_and_stops_the_massager() -> None:
    session = Session(DecisionLog())
    task = start(session)
    stopped_at = await running_for(session, ACT_AFTER_RUNNING_S)
    assert session.runner is not None
    session.runner.request_stop()
    await task
    assert session.run is not None
    assert session.run.outcome.ended_by is EndReason.USER
    assert session.run.outcome.duration_s < MINUTES * 60
    assert_stopped_at(session, stopped_at)


async def test_timer_ends_the_session_and_stops_the_massager() -> None:
    session = Session(DecisionLog())
    minutes = 1.5
    await simulated(make_settings(**{"session.max_minutes": minutes}), session=session)
    assert session.run is not None
    assert session.run.outcome.ended_by is EndReason.TIMER
    # The step that ended it (the post-session watch steps on after it).
    end = next(i for i, step in enumerate(session.log.steps) if step.decision.ended_by)
    ended_at = session.log.steps[end].now
    # The session heated and pressed until its last moments, then stopped.
    assert session.log.steps[end - 1].decision.command.heater_on
    assert_stopped_at(session, ended_at)
