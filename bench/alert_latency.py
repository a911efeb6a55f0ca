"""Caregiver alert latency and telemetry CPU over loopback MQTT. Prints figures; asserts nothing.

    python bench/alert_latency.py [--alerts 1000] [--samples 1000]

Latency runs from ``CaregiverBridge.raise_alert`` (where the service hands over a supervisor's
safety event; it includes the SQLite outbox write) to receipt by a caregiver client subscribed at
QoS 1, one alert at a time, through mosquitto started here on a free port (amqtt in-process when
mosquitto is not installed). The goal is p99 <= 20 ms. Beside it, raise -> acknowledged: the
caregiver client does what ``soleguard monitor`` does with each alert (its ``MonitorModel`` takes
it in, the screen is rendered, the acknowledgement goes out on ``alert/ack``), and the clock stops
when the controller has journalled the acknowledgement. Telemetry cost is this process's CPU time
for samples published one at a time as at 1 Hz, scaled to an hour.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import aiomqtt

from controller.caregiver import CaregiverBridge, TelemetrySample
from controller.caregiver.bridge import no_delay
from controller.caregiver.broker import (
    AmqttBroker,
    LocalBroker,
    MosquittoBroker,
    find_mosquitto,
)
from controller.cli.monitor import MonitorModel
from controller.settings.models import MqttSettings
from controller.store import OutboxAlert, Store

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).resolve().parents[1]

TIMEOUT_S = 10.0  # per alert: only a guard against a hang, far above any real latency
WARMUP = 20
# Why 2 ms: long enough for one publish to leave before the next sample, short enough to run fast.
PACE_S = 0.002


class _TimedStore(Store):
    """The real store, noting when each acknowledgement was journalled (perf_counter)."""

    acked: dict[str, float]
    on_ack: Callable[[], object] | None = None

    def record_alert_ack(self, condition_id: str, *, client: str, at: float) -> bool:
        known = super().record_alert_ack(condition_id, client=client, at=at)
        self.acked[condition_id] = time.perf_counter()
        if self.on_ack is not None:
            self.on_ack()
        return known


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


async def _wait(condition: Callable[[], bool], event: asyncio.Event) -> None:
    async with asyncio.timeout(TIMEOUT_S):
        while not condition():
            event.clear()
            await event.wait()


SHIPPED_CONF = ROOT / "config" / "mosquitto" / "mosquitto.conf"


async def run(alerts: int, samples: int, shipped_persistence: bool = False) -> None:
    with tempfile.TemporaryDirectory(prefix="soleguard-bench-") as tmp:
        # As config/mosquitto/mosquitto.conf ships it: without TCP_NODELAY, the broker's next small
        # packet to a client waits for that client's delayed ACK of the previous one (~40 ms).
        extra = ["set_tcp_nodelay true"]
        if shipped_persistence:
            extra += [
                line
                for line in SHIPPED_CONF.read_text().splitlines()
                if line.startswith(("autosave_interval ", "autosave_on_changes "))
            ]
        broker: LocalBroker = (
            MosquittoBroker(Path(tmp), extra_config=extra, persistence=shipped_persistence)
            if find_mosquitto()
            else AmqttBroker()
        )
        await broker.start()
        print(f"broker: {broker.kind} on {broker.url}, shipped persistence: {shipped_persistence}")
        settings = MqttSettings(enabled=True, host=broker.host, port=broker.port, device_id="bench")
        received: dict[str, float] = {}
        arrived = asyncio.Event()
        loop = asyncio.get_running_loop()
        try:
            with _TimedStore.open(Path(tmp) / "journal.db") as store:
                store.acked = {}
                # Called in the bridge's worker thread: wake the waiting loop from there.
                store.on_ack = lambda: loop.call_soon_threadsafe(arrived.set)
                async with no_delay(aiomqtt.Client(broker.host, broker.port)) as caregiver:
                    await caregiver.subscribe("soleguard/bench/alert", qos=1)
                    model = MonitorModel("soleguard", client_name="bench-monitor")

                    async def listen() -> None:
                        async for message in caregiver.messages:
                            alert_id = json.loads(message.payload)["id"]
                            received[alert_id] = time.perf_counter()
                            arrived.set()
                            # As soleguard monitor: into the model, onto the screen, then ack.
                            ack = model.apply(message.topic.value, message.payload)
                            model.render()
                            if ack is not None:
                                await caregiver.publish(ack[0], ack[1], qos=1)

                    async with asyncio.TaskGroup() as tg:
                        listener = tg.create_task(listen())
                        async with CaregiverBridge(settings, store) as bridge:
                            await _measure_alerts(bridge, alerts, received, store.acked, arrived)
                            await _measure_telemetry(bridge, samples)
                        listener.cancel()
        finally:
            await broker.stop()


async def _measure_alerts(
    bridge: CaregiverBridge[OutboxAlert],
    alerts: int,
    received: dict[str, float],
    acked: dict[str, float],
    arrived: asyncio.Event,
) -> None:
    latencies: list[float] = []
    ack_latencies: list[float] = []
    call_costs: list[float] = []
    for n in range(WARMUP + alerts):
        alert = OutboxAlert(
            id=f"bench-{n}",
            device_id="bench",
            time=time.time(),
            priority="high",
            code="over_temperature",
            message="bench alert",
            session_id=None,
        )
        t0 = time.perf_counter()
        bridge.raise_alert(alert)
        t1 = time.perf_counter()

        def delivered(alert_id: str = alert.id) -> bool:
            return alert_id in received and alert_id in acked

        await _wait(delivered, arrived)
        if n >= WARMUP:
            latencies.append(received[alert.id] - t0)
            ack_latencies.append(acked[alert.id] - t0)
            call_costs.append(t1 - t0)
    ms = [x * 1000 for x in latencies]
    call_ms = [x * 1000 for x in call_costs]
    print(
        f"alert raise_alert -> caregiver (QoS 1)  n={len(ms)}"
        f"  median {statistics.median(ms):.3f} ms"
        f"  p99 {_percentile(ms, 0.99):.3f} ms  max {max(ms):.3f} ms  (goal p99 <= 20 ms)"
    )
    ack_ms = [x * 1000 for x in ack_latencies]
    print(
        f"alert raise_alert -> acknowledged by the monitor and journalled  n={len(ack_ms)}"
        f"  median {statistics.median(ack_ms):.3f} ms"
        f"  p99 {_percentile(ack_ms, 0.99):.3f} ms  max {max(ack_ms):.3f} ms"
    )
    print(
        f"raise_alert call itself (outbox write)  median {statistics.median(call_ms):.3f} ms"
        f"  p99 {_percentile(call_ms, 0.99):.3f} ms"
    )


async def _paced(bridge: CaregiverBridge[OutboxAlert], samples: int, send: bool) -> float:
    cpu0 = time.process_time()
    for n in range(samples):
        if send:
            bridge.telemetry(TelemetrySample(time.time(), 40.0 + n % 10, 37.0, n % 2 == 0))
        # Paced, so each sample is published on its own as at 1 Hz (no batching).
        await asyncio.sleep(PACE_S)
    return time.process_time() - cpu0


async def _measure_telemetry(bridge: CaregiverBridge[OutboxAlert], samples: int) -> None:
    published_before = bridge.stats.telemetry_published
    idle = await _paced(bridge, samples, send=False)
    busy = await _paced(bridge, samples, send=True)
    published = bridge.stats.telemetry_published - published_before
    per_sample_ms = max(0.0, busy - idle) / samples * 1000
    print(
        f"telemetry CPU: {per_sample_ms:.3f} ms per sample = "
        f"{per_sample_ms * 1000:.0f} ms per 1000 samples = "
        f"{per_sample_ms * 3.6:.2f} CPU s per hour at 1 Hz "
        f"(paced run minus an idle run of the same loop; {published}/{samples} published, "
        f"{bridge.stats.telemetry_dropped} dropped)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--alerts", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument(
        "--shipped-persistence",
        action="store_true",
        help="persistence with the shipped autosave settings (a database write per message)",
    )
    args = parser.parse_args()
    asyncio.run(run(args.alerts, args.samples, args.shipped_persistence))


if __name__ == "__main__":
    main()
