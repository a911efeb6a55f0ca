"""The bridge against a real broker: what a caregiver receives, and what survives outages."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import time
from typing import TYPE_CHECKING

import aiomqtt
import pytest

from controller.caregiver import ActiveAlarm, CaregiverBridge, DeviceState, TelemetrySample
from controller.safety import Priority
from tests.caregiver.helpers import (
    HANG_GUARD_S,
    make_alert,
    recorder,
    settings_for,
    wait_until,
)

if TYPE_CHECKING:
    from pathlib import Path

    from controller.caregiver.broker import LocalBroker
    from controller.store import Store

RUNNING = DeviceState(
    session_state="running",
    pressure_mmhg=42.5,
    pressure_cap_mmhg=60.0,
    heater_on=True,
    skin_temp_c=37.25,
    sensor_health="ok",
    battery_pct=81,
    remaining_s=900.0,
    massager_connected=True,
    sensor_connected=True,
    active_alarms=(ActiveAlarm("battery_low", Priority.LOW),),
)


async def test_state_telemetry_and_alerts_reach_a_caregiver(
    mqtt_broker: LocalBroker, store: Store
) -> None:
    settings = settings_for(mqtt_broker, "kitchen")
    async with recorder(mqtt_broker, "soleguard/#") as rec:
        async with CaregiverBridge(settings, store) as bridge:
            bridge.update_state(RUNNING)
            for i in range(3):
                bridge.telemetry(TelemetrySample(time.time(), 40.0 + i, 37.0, True, session_id=7))
            alert = make_alert("kitchen", priority="high", code="over_temperature")
            bridge.raise_alert(alert)
            await rec.wait_for(
                lambda r: (
                    bool(r.on("/alert")) and len(r.on("/telemetry")) == 3 and bool(r.on("/state"))
                )
            )
        await rec.wait_for(lambda r: len(r.on("/availability")) == 2)

    [online, offline] = rec.on("/availability")
    assert (online.payload, online.qos) == (b"online", 1)
    assert offline.payload == b"offline"

    [state_msg] = rec.on("/state")
    assert state_msg.topic.value == "soleguard/kitchen/state"
    assert state_msg.qos == 1
    state = json.loads(state_msg.payload)
    assert state["session_state"] == "running"
    assert state["pressure_mmhg"] == 42.5
    assert state["pressure_cap_mmhg"] == 60.0
    assert state["heater_on"] is True
    assert state["skin_temp_c"] == 37.25
    assert state["sensor_health"] == "ok"
    assert state["battery_pct"] == 81
    assert state["alarms"] == [{"code": "battery_low", "priority": "low"}]

    telemetry = rec.on("/telemetry")
    assert [m.qos for m in telemetry] == [0, 0, 0]
    assert [json.loads(m.payload)["pressure_mmhg"] for m in telemetry] == [40, 41, 42]

    [alert_msg] = rec.on("/alert")
    assert alert_msg.qos == 1
    body = json.loads(alert_msg.payload)
    assert body["id"] == alert.id
    assert body["priority"] == "high"
    assert body["code"] == "over_temperature"
    assert body["message"] == alert.message
    assert body["device"] == "kitchen"
    assert body["time"].endswith("Z")
    assert "T" in body["time"]

    # Delivered means acknowledged by the broker: nothing is left in the outbox.
    assert store.undelivered_alerts() == []
    assert store.alert_counts() == (1, 1)

    # A caregiver who connects later still gets the state and availability, as retained messages.
    async with recorder(
        mqtt_broker, "soleguard/kitchen/state", "soleguard/kitchen/availability"
    ) as late:
        await late.wait_for(lambda r: len(r.messages) == 2)
    assert all(m.retain for m in late.messages)
    assert late.on("/availability")[0].payload == b"offline"
    assert json.loads(late.on("/state")[0].payload)["session_state"] == "running"


async def test_latest_state_wins_and_unchanged_state_is_not_resent(
    mqtt_broker: LocalBroker, store: Store
) -> None:
    settings = settings_for(mqtt_broker, "hall")
    async with (
        recorder(mqtt_broker, "soleguard/hall/#") as rec,
        CaregiverBridge(settings, store) as bridge,
    ):
        await wait_until(lambda: bridge.connected)
        # Three updates in one go, before the bridge's task runs: only the newest goes out.
        for pressure in (10.0, 20.0, 30.0):
            bridge.update_state(DeviceState(session_state="running", pressure_mmhg=pressure))
        bridge.telemetry(TelemetrySample(time.time(), 30.0, None, False))
        await rec.wait_for(lambda r: bool(r.on("/telemetry")))
        bridge.update_state(DeviceState(session_state="running", pressure_mmhg=30.0))
        bridge.telemetry(TelemetrySample(time.time(), 30.0, None, False))
        await rec.wait_for(lambda r: len(r.on("/telemetry")) == 2)
    states = rec.json_on("/state")
    assert [s["pressure_mmhg"] for s in states] == [30.0]


async def test_clean_shutdown_publishes_offline_retained(
    mqtt_broker: LocalBroker, store: Store
) -> None:
    async with CaregiverBridge(settings_for(mqtt_broker, "porch"), store) as bridge:
        await wait_until(lambda: bridge.connected)
    async with recorder(mqtt_broker, "soleguard/porch/availability") as rec:
        await rec.wait_for(lambda r: bool(r.messages))
    [message] = rec.messages
    assert (message.payload, message.retain) == (b"offline", True)


_KILLED_CONTROLLER = textwrap.dedent(
    """
    import asyncio, sys
    from controller.caregiver import CaregiverBridge
    from controller.settings.models import MqttSettings
    from controller.store import Store

    async def main() -> None:
        settings = MqttSettings(enabled=True, host="127.0.0.1", port=int(sys.argv[1]),
                                device_id="attic")
        with Store.open(sys.argv[2]) as store:
            async with CaregiverBridge(settings, store) as bridge:
                while not bridge.connected:
                    await asyncio.sleep(0.01)
                print("connected", flush=True)
                await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


async def test_last_will_marks_a_killed_controller_offline(
    mqtt_broker: LocalBroker, tmp_path: Path
) -> None:
    async with recorder(mqtt_broker, "soleguard/attic/availability") as rec:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _KILLED_CONTROLLER,
            str(mqtt_broker.port),
            str(tmp_path / "attic.db"),
            stdout=subprocess.PIPE,
        )
        try:
            assert process.stdout is not None
            async with asyncio.timeout(HANG_GUARD_S):
                line = await process.stdout.readline()
            assert line.strip() == b"connected"
            await rec.wait_for(lambda r: [m.payload for m in r.messages] == [b"online"])
            process.kill()  # no DISCONNECT is ever sent: the broker must publish the will
        finally:
            if process.returncode is None:
                process.kill()
            await process.wait()
        await rec.wait_for(lambda r: len(r.messages) == 2)
    assert [m.payload for m in rec.messages] == [b"online", b"offline"]
    async with recorder(mqtt_broker, "soleguard/attic/availability") as late:
        await late.wait_for(lambda r: bool(r.messages))
    assert (late.messages[0].payload, late.messages[0].retain) == (b"offline", True)


async def _collect_alerts_across_restarts(
    broker: LocalBroker, received: list[str], current: list[aiomqtt.Client]
) -> None:
    """A caregiver with a persistent session that reconnects whenever the broker comes back."""
    while True:
        try:
            async with aiomqtt.Client(
                broker.host, broker.port, identifier="caregiver-ward", clean_session=False
            ) as client:
                await client.subscribe("soleguard/+/alert", qos=1)
                current[:] = [client]
                async for message in client.messages:
                    body = json.loads(message.payload)
                    # Re-announcements (of alerts nobody acknowledged) are counted apart.
                    tag = "+" if body["event"] == "reannounced" else ""
                    received.append(tag + body["id"])
        except aiomqtt.MqttError:
            await asyncio.sleep(0.05)


def _originals(received: list[str]) -> list[str]:
    return [r for r in received if not r.startswith("+")]


async def test_alerts_raised_while_broker_is_down_are_all_delivered_in_order(
    mqtt_broker: LocalBroker, store: Store
) -> None:
    if mqtt_broker.kind != "mosquitto":
        pytest.skip("needs mosquitto's persistent sessions across a restart")
    received: list[str] = []
    ticks = 0

    async def supervisor_loop() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.1)

    raised: list[str] = []
    current: list[aiomqtt.Client] = []
    async with asyncio.TaskGroup() as tg:
        collector = tg.create_task(_collect_alerts_across_restarts(mqtt_broker, received, current))
        ticker = tg.create_task(supervisor_loop())
        async with CaregiverBridge(settings_for(mqtt_broker, "ward"), store) as bridge:
            await wait_until(lambda: bridge.connected)
            for _ in range(3):
                alert = make_alert("ward")
                raised.append(alert.id)
                bridge.raise_alert(alert)
            await wait_until(lambda: len(received) == 3)
            # A round trip from the caregiver: the broker has now processed its PUBACKs, so the
            # restart below cannot redeliver these three (broker-to-caregiver QoS 1 would be
            # at-least-once, and this test counts what the bridge sends).
            await current[0].publish("sync/ward", b"", qos=1)

            await mqtt_broker.stop()
            await wait_until(lambda: not bridge.connected)
            for _ in range(20):
                alert = make_alert("ward", priority="medium", code="sensor_lost")
                raised.append(alert.id)
                bridge.raise_alert(alert)
            assert len(store.undelivered_alerts(device_id="ward")) == 20
            ticks_while_down = ticks
            await asyncio.sleep(0.5)
            assert ticks > ticks_while_down  # the safety side kept running meanwhile

            await mqtt_broker.start()
            await wait_until(lambda: len(_originals(received)) >= len(raised))
            await wait_until(lambda: not store.undelivered_alerts(device_id="ward"))
        collector.cancel()
        ticker.cancel()

    assert _originals(received) == raised  # every alert, in order, none twice
    # After the reconnect the three alerts nobody acknowledged were announced once more.
    assert sorted(r[1:] for r in received if r.startswith("+")) == sorted(raised[:3])
    assert store.alert_counts() == (23, 23)
    assert bridge.stats.connects >= 2


async def test_home_assistant_restart_gets_discovery_and_state_again(
    mqtt_broker: LocalBroker, store: Store
) -> None:
    settings = settings_for(mqtt_broker, "den")
    async with (
        recorder(mqtt_broker, "homeassistant/device/den/config", "soleguard/den/state") as rec,
        CaregiverBridge(settings, store) as bridge,
    ):
        bridge.update_state(RUNNING)
        await rec.wait_for(lambda r: len(r.on("/config")) == 1 and len(r.on("/state")) == 1)
        await rec.client.publish("homeassistant/status", b"online", qos=1)
        await rec.wait_for(lambda r: len(r.on("/config")) == 2 and len(r.on("/state")) == 2)
        await rec.client.publish("homeassistant/status", b"offline", qos=1)
        bridge.update_state(DeviceState(session_state="done"))
        await rec.wait_for(lambda r: len(r.on("/state")) == 3)
    assert len(rec.on("/config")) == 2  # `offline` from HA asks for nothing
    config = json.loads(rec.on("/config")[0].payload)
    assert config["cmps"]["stop"]["command_topic"] == "soleguard/den/command"


async def test_mqtt5_mode_publishes_and_takes_commands(
    mqtt_broker: LocalBroker, store: Store
) -> None:
    if mqtt_broker.kind != "mosquitto":
        pytest.skip("amqtt speaks MQTT 3.1.1 only")
    settings = settings_for(mqtt_broker, "loft", protocol="5")
    v5 = aiomqtt.ProtocolVersion.V5
    async with recorder(mqtt_broker, "soleguard/loft/#", protocol=v5) as rec:
        async with CaregiverBridge(settings, store) as bridge:
            await rec.wait_for(lambda r: [m.payload for m in r.on("/availability")] == [b"online"])
            bridge.update_state(RUNNING)
            bridge.raise_alert(make_alert("loft"))
            await rec.client.publish(
                "soleguard/loft/command", json.dumps({"action": "stop", "request_id": "v5"}), qos=1
            )
            async with asyncio.timeout(HANG_GUARD_S):
                command = await bridge.next_command()
            await rec.wait_for(lambda r: bool(r.on("/alert")) and bool(r.on("/state")))
        await rec.wait_for(lambda r: len(r.on("/availability")) == 2)
    assert (command.action, command.request_id) == ("stop", "v5")
    assert rec.on("/availability")[-1].payload == b"offline"
    assert store.undelivered_alerts() == []


async def test_bridge_cannot_be_entered_twice(mqtt_broker: LocalBroker, store: Store) -> None:
    bridge = CaregiverBridge(settings_for(mqtt_broker, "twice"), store)
    async with bridge:
        with pytest.raises(RuntimeError, match="only once"):
            await bridge.__aenter__()


async def test_alert_for_another_device_is_refused(mqtt_broker: LocalBroker, store: Store) -> None:
    async with CaregiverBridge(settings_for(mqtt_broker, "one"), store) as bridge:
        with pytest.raises(ValueError, match="this bridge publishes for 'one'"):
            bridge.raise_alert(make_alert("two"))
    assert store.alert_counts() == (0, 0)
