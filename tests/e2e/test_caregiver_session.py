"""A whole simulated session watched by a caregiver over a real mosquitto (issue 5, section 7).

Each test runs a session the way the demo does (its own loop on virtual time, the bridge on its
own real-time thread, a real broker process) while the test plays the caregiver with aiomqtt.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import statistics
import time
import uuid
from typing import TYPE_CHECKING, Any

import aiomqtt
import pytest

from controller.caregiver import bridge as bridge_module
from controller.caregiver.bridge import STATE_MIN_INTERVAL_S
from controller.caregiver.commands import RATE_LIMIT_BURST, RATE_LIMIT_PER_S
from controller.safety import EndReason
from tests.e2e.helpers import (
    BASE,
    BackgroundSession,
    caregiver,
    first_occurrences,
    iso_seconds,
    session_settings,
    wait_until,
)

if TYPE_CHECKING:
    from controller.caregiver.broker import LocalBroker
    from controller.store import Store

pytestmark = pytest.mark.slow

# The true skin temperature may pass the cut-off by this much at most (DESIGN.md section 3).
SKIN_MARGIN_C = 0.3
# sensor-spikes: spikes and NaN readings from 30 s on; each stale/invalid episode is an alarm.
ALARMING_SCENARIO = "sensor-spikes"
STATE_FIELDS = {
    "session_state",
    "pressure_mmhg",
    "pressure_cap_mmhg",
    "heater_on",
    "skin_temp_c",
    "sensor_health",
    "battery_pct",
    "alarms",
}
ALERT_FIELDS = {"id", "message_id", "event", "priority", "code", "message", "time"}


async def test_caregiver_sees_availability_state_telemetry_and_every_alert_once(
    mqtt_broker: LocalBroker, store: Store
) -> None:
    settings = session_settings(2)
    async with caregiver(mqtt_broker) as watcher:
        session = BackgroundSession(
            settings, store, mqtt_broker.url, scenario=ALARMING_SCENARIO, speed=20.0
        ).start()
        # Mid-session, a caregiver who only now opens the app gets the retained topics.
        await wait_until(lambda: len(watcher.on("telemetry")) >= 5 and session.running)
        async with caregiver(mqtt_broker, f"{BASE}/availability", f"{BASE}/state") as late:
            await wait_until(lambda: bool(late.on("availability")) and bool(late.on("state")))
        result = await session.result()

    run = result.run
    assert run.outcome.ended_by is EndReason.TIMER
    assert [(m.payload, m.retain) for m in late.on("availability")] == [(b"online", True)]
    late_state = late.on("state")[0]
    assert late_state.retain
    assert json.loads(late_state.payload)["session_state"] == "running"

    assert watcher.on("availability")[0].payload == b"online"
    states = watcher.json_on("state")
    assert all(state.keys() >= STATE_FIELDS for state in states)
    running = [s for s in states if s["session_state"] == "running"]
    assert running
    assert all(s["pressure_target_mmhg"] <= s["pressure_cap_mmhg"] for s in running)
    # The measured pressure is published (not the commanded one): it moves on its own.
    assert any(s["pressure_mmhg"] not in (None, s["pressure_target_mmhg"]) for s in running)
    # The faults show on the state too, not only as alerts.
    assert any(s["sensor_health"] != "ok" and s["alarms"] for s in running)
    assert states[-1]["session_state"] == "ended"

    # 1 Hz of session time: the session ran ~120 s of virtual time in ~6 s of real time.
    telemetry = watcher.json_on("telemetry")
    duration = run.outcome.duration_s
    assert 0.8 * duration <= len(telemetry) <= duration + 2
    assert {t["session_id"] for t in telemetry} == {run.outcome.session_id}
    times = [iso_seconds(t["time"]) for t in telemetry]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert 0.95 <= statistics.median(gaps) <= 1.15

    alerts = watcher.json_on("alert")
    assert all(a.keys() >= ALERT_FIELDS for a in alerts)
    assert {a["priority"] for a in alerts} <= {"high", "medium", "low"}
    received = [a["message_id"] for a in alerts]
    assert len(result.alert_ids) == len(set(result.alert_ids)) >= 3  # unique ids
    assert received == result.alert_ids  # each exactly once, in the order raised
    # Alerts are alarm conditions: every alarm code the session raised is an alert, and a code
    # that recurs (the spikes come and go) is one alert, updated, not one per recurrence.
    raised = [a for a in alerts if a["event"] == "raised"]
    assert {a["code"] for a in raised} == {a["code"] for a in run.outcome.alarms}
    assert len(raised) < len(run.outcome.alarms)
    for alert in alerts:
        assert alert["id"] in {r["id"] for r in raised}
    assert result.raised == result.delivered == len(result.alert_ids)
    assert store.alert_counts() == (len(received), len(received))


async def _persistent_alert_ids(broker: LocalBroker, received: list[str]) -> None:
    """A caregiver with a persistent session (QoS 1) that reconnects whenever it can."""
    while True:
        try:
            async with aiomqtt.Client(
                broker.host, broker.port, identifier="e2e-caregiver", clean_session=False
            ) as client:
                await client.subscribe(f"{BASE}/alert", qos=1)
                async for message in client.messages:
                    received.append(json.loads(message.payload)["message_id"])
        except aiomqtt.MqttError:
            await asyncio.sleep(0.1)


async def test_alerts_raised_while_the_broker_is_down_arrive_afterwards_in_order(
    mqtt_broker: LocalBroker, store: Store
) -> None:
    if mqtt_broker.kind != "mosquitto":
        pytest.skip("needs mosquitto's persistent sessions across a restart")
    settings = session_settings(2)
    received: list[str] = []
    collector = asyncio.create_task(_persistent_alert_ids(mqtt_broker, received), name="collector")
    try:
        session = BackgroundSession(
            settings, store, mqtt_broker.url, scenario=ALARMING_SCENARIO, speed=10.0
        ).start()
        await wait_until(lambda: session.elapsed_s >= 40.0 and len(received) >= 1)
        await mqtt_broker.stop()
        down_from, down_at_s = session.raised_count, session.elapsed_s
        # Down for a while in session time, with several alerts raised meanwhile.
        await wait_until(
            lambda: session.raised_count >= down_from + 3 and session.elapsed_s >= down_at_s + 15
        )
        down_until = session.raised_count
        still_running = session.running
        await mqtt_broker.start()
        result = await session.result()
        await wait_until(lambda: set(result.alert_ids) <= set(received))
    finally:
        collector.cancel()

    raised_while_down = result.alert_ids[down_from:down_until]
    assert len(raised_while_down) >= 3
    assert still_running  # the outage did not end the session
    assert first_occurrences(received) == result.alert_ids  # none lost, in order
    assert result.raised == result.delivered == len(result.alert_ids)

    run = result.run.summary()
    assert run["ended_by"] == "timer"
    assert run["max_skin_c"] < run["cutoff_c"] + SKIN_MARGIN_C
    assert run["max_measured_pressure_mmhg"] <= run["pressure_cap_mmhg"]
    assert run["max_pressure_mmhg"] <= run["pressure_cap_mmhg"]


async def test_remote_stop_ends_the_session_within_a_second_and_raising_is_refused(
    mqtt_broker: LocalBroker, store: Store
) -> None:
    settings = session_settings(3)
    async with caregiver(mqtt_broker, f"{BASE}/command/result", f"{BASE}/state") as person:
        # Real time: the one-second promise is about the caregiver's clock as much as the session's.
        session = BackgroundSession(settings, store, mqtt_broker.url, speed=None).start()
        await wait_until(lambda: session.running and session.elapsed_s >= 2.0)
        cap_before = session.decisions[-1][1].pressure_cap_mmhg

        refused: dict[str, dict[str, Any]] = {
            "raise": {"action": "raise_pressure", "request_id": "r-raise"},
            "negative": {"action": "lower_pressure", "amount_mmhg": -10, "request_id": "r-neg"},
        }
        for command in refused.values():
            await person.send(command)
        await wait_until(lambda: all(person.result_for(c["request_id"]) for c in refused.values()))
        for command in refused.values():
            answer = person.result_for(command["request_id"])
            assert answer is not None
            assert answer["accepted"] is False
            assert answer["reason"]
        after_refusals = len(session.decisions)
        await wait_until(lambda: len(session.decisions) >= after_refusals + 10)
        assert session.running
        assert all(
            d.pressure_cap_mmhg == cap_before and not d.command_results and d.ended_by is None
            for _, d in session.decisions[after_refusals:]
        )

        stop_id = f"stop-{uuid.uuid4().hex[:8]}"
        sent_at = session.session_time()
        await person.send({"action": "stop", "request_id": stop_id})
        await wait_until(lambda: person.result_for(stop_id) is not None)
        result = await session.result()

    assert result.run.outcome.ended_by is EndReason.CAREGIVER
    ended_at = next(now for now, d in session.decisions if d.ended_by is not None)
    assert ended_at - sent_at <= 1.0
    stop_answer = person.result_for(stop_id)
    assert stop_answer is not None
    assert stop_answer["accepted"] is True
    assert "CAREGIVER_STOP" in [a["code"] for a in result.run.outcome.alarms]
    assert result.raised == result.delivered
    assert session.decisions[-1][1].pressure_cap_mmhg == cap_before


async def test_a_repeated_lower_pressure_lowers_the_ceiling_once(
    mqtt_broker: LocalBroker, store: Store
) -> None:
    """The same request delivered twice (QoS 1 redelivery, an app's retry): 60 -> 50, not 40."""
    settings = session_settings(3)
    async with caregiver(mqtt_broker, f"{BASE}/command/result") as person:
        session = BackgroundSession(settings, store, mqtt_broker.url, speed=None).start()
        await wait_until(lambda: session.running and session.elapsed_s >= 1.0)
        cap_before = session.decisions[-1][1].pressure_cap_mmhg
        lower = {"action": "lower_pressure", "amount_mmhg": 10, "request_id": "cg-1"}
        await person.send(lower)
        await wait_until(lambda: person.result_for("cg-1") is not None)
        await person.send(lower)  # again, after the first was applied and answered
        # A later, different command shows the repeat has been handled (commands are in order).
        await person.send({"action": "heater_off", "request_id": "cg-2"})
        await wait_until(lambda: person.result_for("cg-2") is not None)
        await wait_until(lambda: len(_answers(person, "cg-1")) == 2)
        cap_after = session.decisions[-1][1].pressure_cap_mmhg
        await person.send({"action": "stop", "request_id": "cg-3"})
        await session.result()
    assert cap_after == cap_before - 10
    answers = _answers(person, "cg-1")
    assert len(answers) == 2
    assert answers[0] == answers[1]  # the repeat is answered with the first result
    assert answers[0]["accepted"] is True


def _answers(person: Any, request_id: str) -> list[dict[str, Any]]:
    return [r for r in person.json_on("command/result") if r["request_id"] == request_id]


async def test_a_stop_sent_during_a_command_flood_ends_the_session_within_a_second(
    mqtt_broker: LocalBroker, store: Store
) -> None:
    settings = session_settings(3)
    flood = 3000
    async with (
        caregiver(mqtt_broker, f"{BASE}/command/result") as alice,
        aiomqtt.Client(mqtt_broker.host, mqtt_broker.port, identifier="mallory") as mallory,
    ):
        session = BackgroundSession(settings, store, mqtt_broker.url, speed=None).start()
        await wait_until(lambda: session.running and session.elapsed_s >= 1.0)
        junk = json.dumps({"action": "raise_pressure", "request_id": "junk"})

        async def flood_it() -> None:
            for _ in range(flood):
                await mallory.publish(f"{BASE}/command/mallory", junk, qos=1)

        flood_started = time.monotonic()
        flooding = asyncio.create_task(flood_it(), name="flood")
        try:
            await asyncio.sleep(0.2)
            sent_at = session.session_time()
            await alice.client.publish(
                f"{BASE}/command/alice",
                json.dumps({"action": "stop", "request_id": "alice-stop"}),
                qos=1,
            )
            result = await session.result()
        finally:
            await flooding
        await wait_until(lambda: any(r.get("refused") for r in alice.json_on("command/result")))
        # The bridge had handled the whole flood by the time its summary arrived.
        flood_span_s = time.monotonic() - flood_started
    assert result.run.outcome.ended_by is EndReason.CAREGIVER
    ended_at = next(now for now, d in session.decisions if d.ended_by is not None)
    assert ended_at - sent_at <= 1.0
    stop = alice.result_for("alice-stop")
    assert stop is not None
    assert stop["accepted"] is True
    summaries = [r for r in alice.json_on("command/result") if r.get("refused")]
    assert len(summaries) == 1
    assert summaries[0]["client"] == "mallory"
    # The burst's answers and what the bucket refilled while the flood lasted, then one summary:
    # not thousands of results. The refill depends on how long the flood took to handle (longer on
    # a loaded machine), so the bound is computed from that span, never a fixed count.
    answered = len([r for r in alice.json_on("command/result") if r["request_id"] == "junk"])
    assert answered <= RATE_LIMIT_BURST + RATE_LIMIT_PER_S * flood_span_s, (answered, flood_span_s)
    assert answered < flood / 10


def _safety_key_of_payload(state: dict[str, Any]) -> tuple[object, ...]:
    return (
        state["session_state"],
        state["heater_on"],
        state["over_temperature"],
        state["sensor_health"],
        state["pressure_cap_mmhg"],
        state["massager_connected"],
        state["sensor_connected"],
        tuple((a["code"], a["priority"]) for a in state["alarms"]),
    )


# The rate limit's interval for the at-once test: four times the product's, so that a change held
# back by the limit (it waits up to the interval) stands far apart from a loaded machine's delays
# (0.7 s was seen at a load average of 14 on 2 cores). What the test proves holds for any
# interval: safety-relevant changes skip the limit.
WIDE_STATE_INTERVAL_S = 4 * STATE_MIN_INTERVAL_S
# Published "at once": well inside the rate limit's interval, which a held-back change would wait.
AT_ONCE_S = WIDE_STATE_INTERVAL_S / 2


async def test_every_safety_relevant_state_change_reaches_a_caregiver_at_once(
    mqtt_broker: LocalBroker, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real time: decision time (the session loop's monotonic clock) to receipt (the same clock
    here), for each change of a safety-relevant field, in a session whose sensor comes and goes.

    What the test proves is that such a change is published at once, never held back by the
    state rate limit (one message per STATE_MIN_INTERVAL_S, widened here to WIDE_STATE_INTERVAL_S):
    each arrives well inside that interval. The latency itself (milliseconds; the goal is 100 ms)
    is printed with ``-s`` and recorded in docs/performance.md, not asserted: a loaded machine may
    stretch a delivery, and a timed assertion would turn that into a failure."""

    from controller.caregiver.bridge import no_delay  # noqa: PLC0415
    from controller.service.caregiver import device_state  # noqa: PLC0415

    monkeypatch.setattr(bridge_module, "STATE_MIN_INTERVAL_S", WIDE_STATE_INTERVAL_S)
    settings = session_settings(1.0)
    received: list[tuple[float, tuple[object, ...]]] = []

    async def watch(client: aiomqtt.Client) -> None:
        async for message in client.messages:
            state = json.loads(message.payload)
            received.append((time.monotonic(), _safety_key_of_payload(state)))

    async with no_delay(aiomqtt.Client(mqtt_broker.host, mqtt_broker.port)) as client:
        await client.subscribe(f"{BASE}/state", qos=1)
        watcher = asyncio.create_task(watch(client), name="state-watch")
        try:
            session = BackgroundSession(
                settings, store, mqtt_broker.url, scenario=ALARMING_SCENARIO, speed=None
            ).start()
            await session.result()
            await wait_until(lambda: bool(received) and received[-1][1][0] == "ended")
        finally:
            watcher.cancel()

    changes: list[tuple[float, tuple[object, ...]]] = []
    last: tuple[object, ...] | None = None
    for now, decision in session.decisions:
        s = device_state(decision)
        key = (
            s.session_state,
            s.heater_on,
            s.over_temperature,
            s.sensor_health,
            s.pressure_cap_mmhg,
            s.massager_connected,
            s.sensor_connected,
            tuple((a.code, a.priority) for a in s.active_alarms),
        )
        if key != last:
            changes.append((now, key))
            last = key
    latencies = []
    for i, (at, changed) in enumerate(changes[1:], start=1):
        superseded_at = changes[i + 1][0] if i + 1 < len(changes) else float("inf")
        seen = next((t for t, k in received if k == changed and t >= at), None)
        if seen is None or seen > superseded_at + AT_ONCE_S:
            # Replaced almost at once by the next change, which the caregiver does see.
            assert superseded_at - at < AT_ONCE_S, (at, changed)
            continue
        latencies.append(seen - at)
    assert len(latencies) >= 10
    print(
        f"\nsafety-relevant changes: {len(changes) - 1}, measured {len(latencies)}, "
        f"median {statistics.median(latencies) * 1000:.1f} ms, max {max(latencies) * 1000:.1f} ms"
    )
    assert max(latencies) < AT_ONCE_S
