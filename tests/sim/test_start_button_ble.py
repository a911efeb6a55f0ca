"""The massager's start button over the real BLE path: bumble's virtual radio, bleak's client.

A press on the simulated massager reaches the controller's decoded Status, and
`StartPressTracker` counts it exactly once although the notification carrying it arrives twice
(the `status_notifications_to_repeat` fault injector) and the periodic statuses after it repeat
the same counter (docs/protocol.md, "Start button").
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from controller.protocol import StartPressTracker
from tests.sim.support import WAIT_S, massager, world_and_radio

if TYPE_CHECKING:
    from collections.abc import Callable

    from tests.sim.support import Log


async def _until(log: Log, condition: Callable[[], bool]) -> None:
    """Wait for ``condition`` to hold after a notification, at most `WAIT_S` of virtual time."""
    async with asyncio.timeout(WAIT_S):
        while not condition():
            log.changed.clear()
            await log.changed.wait()


def _frames_with(log: Log, start_presses: int) -> int:
    return sum(1 for status in log.values if status.start_presses == start_presses)


async def test_a_press_reaches_the_controller_once_although_notified_twice() -> None:
    async with world_and_radio() as (world, radio):
        peripheral = world.massager
        # Pressed twice before any controller connected: the first frame is only a baseline.
        peripheral.press_start_button()
        peripheral.press_start_button()
        async with massager(world, radio) as (_client, log):
            await _until(log, lambda: _frames_with(log, 2) >= 1)
            before = log.mark()
            # No await between the two: the notification carrying the press is the repeated one.
            peripheral.status_notifications_to_repeat = 1
            peripheral.press_start_button()
            await _until(log, lambda: _frames_with(log, 3) >= 2)
            assert peripheral.status_notifications_repeated == 1
            # The duplicate arrives back to back, identical, before anything else.
            first_with_press = next(
                i for i, s in enumerate(log.values) if i >= before and s.start_presses == 3
            )
            assert log.values[first_with_press] == log.values[first_with_press + 1]
            # And periodic statuses keep repeating the counter.
            await _until(log, lambda: _frames_with(log, 3) >= 5)
        tracker = StartPressTracker()
        counted = [tracker.observe(status) for status in log.values]
        assert counted[0] == 0  # the counter 2 at connection started nothing
        assert sum(counted) == 1
        assert counted[first_with_press] == 1
        assert {status.start_presses for status in log.values} == {2, 3}
