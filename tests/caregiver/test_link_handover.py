"""The session-to-bridge hand-over: safety changes at once, the rest batched, nothing lost.

`CaregiverLink` crosses from the session's loop to the bridge's thread. Posting every state (the
state changes at almost every supervisor step) cost a thread wake-up each; the link now hands a
safety-field change over at once and batches the rest. A recording bridge stands in for the
MQTT side, which these tests are not about; the two loops and the thread are real.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import replace
from typing import TYPE_CHECKING

import pytest

from controller.caregiver import threaded
from controller.caregiver.models import DeviceState, TelemetrySample
from controller.caregiver.threaded import CaregiverLink

if TYPE_CHECKING:
    from collections.abc import Iterator

WAIT_S = 5.0  # a generous bound for a thread to run a posted call; never a timing measurement


class RecordingBridge:
    device_id = "test-device"

    def __init__(self) -> None:
        self.states: list[DeviceState] = []
        self.samples: list[TelemetrySample] = []
        self.changed = threading.Condition()

    def update_state(self, state: DeviceState) -> None:
        with self.changed:
            self.states.append(state)
            self.changed.notify_all()

    def telemetry(self, sample: TelemetrySample) -> None:
        with self.changed:
            self.samples.append(sample)
            self.changed.notify_all()

    def wait_for(self, predicate: object) -> bool:
        with self.changed:
            return self.changed.wait_for(predicate, WAIT_S)  # type: ignore[arg-type]


@pytest.fixture
def bridge_loop() -> Iterator[asyncio.AbstractEventLoop]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    yield loop
    loop.call_soon_threadsafe(loop.stop)
    thread.join(WAIT_S)
    loop.close()


def make_link(loop: asyncio.AbstractEventLoop) -> tuple[CaregiverLink, RecordingBridge]:
    bridge = RecordingBridge()
    link = CaregiverLink(bridge, loop, asyncio.new_event_loop(), "mqtt://127.0.0.1:1")  # type: ignore[arg-type]
    return link, bridge


RUNNING = DeviceState(session_state="running", heater_on=True, skin_temp_c=36.0, sensor_health="ok")


def test_a_drifting_reading_is_batched_and_the_newest_state_arrives(
    bridge_loop: asyncio.AbstractEventLoop,
) -> None:
    link, bridge = make_link(bridge_loop)
    states = [replace(RUNNING, skin_temp_c=36.0 + i / 100) for i in range(500)]
    for state in states:
        link.update_state(state)
    assert bridge.wait_for(lambda: bridge.states and bridge.states[-1] == states[-1])
    # One immediate hand-over (carrying whatever is newest when it runs) and one or two batched
    # ones, in order: never the 500 posts (and thread wake-ups) of one per change.
    assert len(bridge.states) < 10
    assert [states.index(s) for s in bridge.states] == sorted(
        states.index(s) for s in bridge.states
    )


def test_a_safety_change_is_handed_over_without_waiting_for_the_batch(
    bridge_loop: asyncio.AbstractEventLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A batching period far longer than the wait: only an immediate hand-over can pass.
    monkeypatch.setattr(threaded, "STATE_HANDOVER_S", 60.0)
    link, bridge = make_link(bridge_loop)
    link.update_state(RUNNING)
    assert bridge.wait_for(lambda: bridge.states == [RUNNING])
    link.update_state(replace(RUNNING, skin_temp_c=36.5))  # not urgent: waits for the batch
    heater_off = replace(RUNNING, skin_temp_c=36.6, heater_on=False)
    link.update_state(heater_off)
    assert bridge.wait_for(lambda: bridge.states[-1] == heater_off)
    assert bridge.states == [RUNNING, heater_off]


def test_telemetry_samples_all_arrive_in_order(bridge_loop: asyncio.AbstractEventLoop) -> None:
    link, bridge = make_link(bridge_loop)
    samples = [
        TelemetrySample(
            time=1.7e9 + i,
            pressure_mmhg=40.0,
            skin_temp_c=36.0,
            heater_on=True,
            pressure_target_mmhg=40.0,
            session_id=1,
        )
        for i in range(200)
    ]
    for sample in samples:
        link.telemetry(sample)
    assert bridge.wait_for(lambda: len(bridge.samples) == len(samples))
    assert bridge.samples == samples
