"""A broker that accepts TCP and never answers must not slow the safety side by a single tick."""

from __future__ import annotations

import asyncio
import inspect
import os
import threading
import time
from typing import TYPE_CHECKING

from controller.caregiver import CaregiverBridge, DeviceState, TelemetrySample
from controller.caregiver import bridge as bridge_module
from controller.caregiver.bridge import TELEMETRY_QUEUE_MAX
from controller.caregiver.broker import free_port
from controller.settings.models import MqttSettings
from tests.caregiver.helpers import make_alert, wait_until
from tests.starvation import RunqueueWait

if TYPE_CHECKING:
    import pytest

    from controller.store import Store

TICK_S = 0.1
RUN_S = 2.0


class SilentBroker:
    """Accepts connections, reads whatever arrives, never writes a byte back."""

    def __init__(self) -> None:
        self.connections = 0
        self.bytes_read = 0
        self._writers: list[asyncio.StreamWriter] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(writer)
        while chunk := await reader.read(4096):
            self.bytes_read += len(chunk)

    def close_all(self) -> None:
        for writer in self._writers:
            writer.close()


def test_the_service_api_is_synchronous() -> None:
    # The safety loop calls these without awaiting: none of them may be a coroutine.
    for name in ("update_state", "telemetry", "raise_alert", "command_result"):
        assert not inspect.iscoroutinefunction(getattr(CaregiverBridge, name)), name


async def test_silent_broker_never_blocks_or_slows_the_supervisor(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Short network timeouts so the test sees several connect attempts time out and retry.
    monkeypatch.setattr(bridge_module, "OPERATION_TIMEOUT_S", 0.3)
    monkeypatch.setattr(bridge_module, "RECONNECT_INITIAL_S", 0.05)
    silent = SilentBroker()
    server = await asyncio.start_server(silent.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    settings = MqttSettings(enabled=True, host="127.0.0.1", port=port, device_id="stuck")
    loop = asyncio.get_running_loop()
    ticks = 0
    calls = 0
    # The loop's own thread: its waits for a CPU are the machine's, not the bridge's.
    starved = RunqueueWait(os.getpid(), threading.get_native_id())
    try:
        async with CaregiverBridge(settings, store) as bridge:
            starved.sample()
            start = loop.time()
            while loop.time() - start < RUN_S:
                # What the service does each supervisor tick; each call returns at once.
                bridge.update_state(DeviceState(session_state="running", pressure_mmhg=ticks))
                bridge.telemetry(TelemetrySample(time.time(), 30.0, 36.0, True))
                bridge.raise_alert(make_alert("stuck", code=f"tick_{ticks}"))
                calls += 3
                ticks += 1
                await asyncio.sleep(TICK_S)
            starved.sample()
            await wait_until(lambda: silent.connections >= 2)
            assert not bridge.connected
        # Exiting did not need the broker either (it is bounded by SHUTDOWN_TIMEOUT_S).
    finally:
        silent.close_all()
        server.close()
        await server.wait_closed()

    # A loop blocked by network I/O (a 0.3 s operation timeout per attempt) would manage a
    # handful of ticks; a free one about 20. A loaded machine removes ticks too, but only by
    # keeping the loop's thread waiting for a CPU, which is counted and not held against it
    # (at load 17, 7 ticks of 20 were seen); a blocked thread sleeps and is not on a run queue.
    expected = (RUN_S - starved.seconds) / TICK_S
    assert ticks >= expected / 2, (ticks, starved.seconds)
    assert calls == 3 * ticks
    assert silent.bytes_read > 0  # the bridge did try: it sent CONNECT packets
    raised, delivered = store.alert_counts()
    assert (raised, delivered) == (ticks, 0)  # every alert kept for later, none claimed sent
    assert bridge.stats.telemetry_dropped == max(0, ticks - TELEMETRY_QUEUE_MAX)


async def test_unreachable_broker_port_does_not_block_either(store: Store) -> None:
    settings = MqttSettings(enabled=True, host="127.0.0.1", port=free_port(), device_id="gone")
    async with CaregiverBridge(settings, store) as bridge:
        bridge.raise_alert(make_alert("gone"))
        bridge.update_state(DeviceState())
        await asyncio.sleep(0.3)
        assert not bridge.connected
    assert store.alert_counts() == (1, 0)
