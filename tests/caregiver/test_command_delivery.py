"""Commands act once and stop always gets through (issue 12, item 4), over a real mosquitto."""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any

import aiomqtt
import pytest

from controller.caregiver import CaregiverBridge, CaregiverCommand
from controller.caregiver.commands import RATE_LIMIT_BURST, RATE_LIMIT_PER_S
from controller.caregiver.inbox import (
    FLOOD_QUIET_S,
    FLOOD_SUMMARY_EVERY_S,
    LEDGER_PER_CLIENT,
    ClientLimits,
    CommandInbox,
    CommandLedger,
)
from tests.caregiver.helpers import HANG_GUARD_S, recorder, settings_for, wait_until

if TYPE_CHECKING:
    from controller.caregiver.broker import LocalBroker
    from controller.store import Store

T0 = 86_400.0 * 3  # a loop clock three days after boot, not 0


def _j(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj).encode()


LOWER = {"action": "lower_pressure", "amount_mmhg": 10, "request_id": "cg-1"}


async def _online(broker: LocalBroker, device: str) -> None:
    # `online` is published after the subscriptions: from then on a command is heard.
    async with recorder(broker, f"soleguard/{device}/availability") as avail:
        await avail.wait_for(lambda r: r.messages[-1].payload == b"online" if r.messages else False)


async def _next(bridge: CaregiverBridge[Any]) -> CaregiverCommand:
    async with asyncio.timeout(HANG_GUARD_S):
        return await bridge.next_command()


async def test_a_command_delivered_twice_acts_once_and_the_repeat_gets_the_first_result(
    mqtt_broker: LocalBroker, store: Store
) -> None:
    async with (
        recorder(mqtt_broker, "soleguard/twice/command/result") as rec,
        CaregiverBridge(settings_for(mqtt_broker, "twice"), store) as bridge,
    ):
        await _online(mqtt_broker, "twice")
        await rec.client.publish("soleguard/twice/command", _j(LOWER), qos=1)
        first = await _next(bridge)
        # The session applies it (60 -> 50 mmHg) and answers.
        bridge.command_result(first.request_id, True, None)
        await rec.wait_for(lambda r: len(r.messages) == 1)
        # A QoS 1 redelivery or an app's retry: the same request id again.
        await rec.client.publish("soleguard/twice/command", _j(LOWER), qos=1)
        await rec.wait_for(lambda r: len(r.messages) == 2)
    assert bridge.stats.commands_forwarded == 1
    assert bridge.stats.commands_duplicate == 1
    first_result, repeat = rec.messages[0].payload, rec.messages[1].payload
    assert repeat == first_result  # answered with the first result, byte for byte
    assert json.loads(first_result)["accepted"] is True


async def test_the_ledger_survives_a_reconnect(mqtt_broker: LocalBroker, store: Store) -> None:
    async with CaregiverBridge(settings_for(mqtt_broker, "rc"), store) as bridge:
        await _online(mqtt_broker, "rc")
        async with aiomqtt.Client(mqtt_broker.host, mqtt_broker.port) as sender:
            await sender.publish("soleguard/rc/command", _j(LOWER), qos=1)
            first = await _next(bridge)
            bridge.command_result(first.request_id, True, None)
        # The broker goes away and comes back; the bridge reconnects.
        await mqtt_broker.stop()
        await mqtt_broker.start()
        await wait_until(lambda: bridge.stats.connects == 2 and bridge.connected)
        await _online(mqtt_broker, "rc")
        async with recorder(mqtt_broker, "soleguard/rc/command/result") as rec:
            # Delivered again after the reconnect: recognised, answered, not applied.
            await rec.client.publish("soleguard/rc/command", _j(LOWER), qos=1)
            await rec.wait_for(lambda r: len(r.messages) == 1)
        assert bridge.stats.commands_forwarded == 1
        assert bridge.stats.commands_duplicate == 1
        assert rec.json_on("/result")[0]["accepted"] is True


async def test_a_flood_gets_one_summary_and_a_stop_sent_during_it_gets_through(
    mqtt_broker: LocalBroker, store: Store
) -> None:
    flood = 2000
    async with (
        recorder(mqtt_broker, "soleguard/gate/command/result") as rec,
        CaregiverBridge(settings_for(mqtt_broker, "gate"), store) as bridge,
    ):
        await _online(mqtt_broker, "gate")
        async with (
            aiomqtt.Client(mqtt_broker.host, mqtt_broker.port, identifier="mallory") as mallory,
            aiomqtt.Client(mqtt_broker.host, mqtt_broker.port, identifier="alice") as alice,
        ):

            async def flood_it() -> None:
                for i in range(flood):
                    payload = _j({**LOWER, "request_id": f"f{i}"})
                    await mallory.publish("soleguard/gate/command/mallory", payload, qos=1)

            async def stop_midway() -> None:
                await wait_until(lambda: bridge.stats.commands_rate_limited > flood // 4)
                await alice.publish(
                    "soleguard/gate/command/alice",
                    _j({"action": "stop", "request_id": "alice-stop"}),
                    qos=1,
                )
                # Alice's own rate limit is untouched by Mallory's flood.
                await alice.publish(
                    "soleguard/gate/command/alice", _j({**LOWER, "request_id": "alice-1"}), qos=1
                )

            started = time.monotonic()
            await asyncio.gather(flood_it(), stop_midway())
            # The stop comes out first, ahead of the flood commands already waiting.
            assert (await _next(bridge)).request_id == "alice-stop"

            def handled() -> int:
                stats = bridge.stats
                return (
                    stats.commands_forwarded + stats.commands_refused + stats.commands_rate_limited
                )

            # Every command handled, then summaries for all that the rate limit refused: one
            # once the flood has been quiet for FLOOD_QUIET_S, and one every
            # FLOOD_SUMMARY_EVERY_S while it lasts (a loaded machine can stretch it past that).
            await wait_until(lambda: handled() == flood + 2)
            await rec.wait_for(
                lambda r: (
                    sum(m.get("refused") or 0 for m in r.json_on("/result"))
                    == bridge.stats.commands_rate_limited
                )
            )
            span_s = time.monotonic() - started
    summaries = [m for m in rec.json_on("/result") if m.get("refused")]
    assert 1 <= len(summaries) <= 1 + span_s // FLOOD_SUMMARY_EVERY_S, (len(summaries), span_s)
    assert {m["client"] for m in summaries} == {"mallory"}
    assert all("rate limit" in m["reason"] for m in summaries)
    stats = bridge.stats
    assert stats.commands_rate_limited > flood // 2
    # What the bucket let through of the flood: the burst and its refill while it lasted.
    passed = stats.commands_forwarded - 2 + stats.commands_refused  # minus alice's two
    assert RATE_LIMIT_BURST <= passed <= RATE_LIMIT_BURST + RATE_LIMIT_PER_S * span_s
    # Each busy one answered, and nothing else but the summaries.
    assert stats.commands_refused == len(rec.json_on("/result")) - len(summaries)


async def test_a_retained_command_published_while_connected_is_refused(
    mqtt_broker: LocalBroker, store: Store
) -> None:
    async with (
        recorder(mqtt_broker, "soleguard/live/command/result") as rec,
        CaregiverBridge(settings_for(mqtt_broker, "live", protocol="5"), store) as bridge,
    ):
        await _online(mqtt_broker, "live")
        await rec.client.publish(
            "soleguard/live/command",
            _j({"action": "stop", "request_id": "sticky"}),
            qos=1,
            retain=True,
        )
        await rec.wait_for(lambda r: bool(r.messages))
        await rec.client.publish("soleguard/live/command", b"", qos=1, retain=True)
    [result] = rec.json_on("/result")
    assert result["accepted"] is False
    assert "retained" in result["reason"]
    assert bridge.stats.commands_forwarded == 0


# -- the parts on their own, on a driven clock -------------------------------------------------


def _cmd(action: str, rid: str) -> CaregiverCommand:
    return CaregiverCommand.model_validate({"action": action, "request_id": rid})


async def test_stop_and_heater_off_leave_the_inbox_before_anything_queued_earlier() -> None:
    inbox = CommandInbox(maxsize=2)
    assert inbox.put(_cmd("lower_pressure", "a"))
    assert inbox.put(_cmd("lower_pressure", "b"))
    assert not inbox.put(_cmd("lower_pressure", "c"))  # full for ordinary commands...
    assert inbox.put(_cmd("stop", "s"))  # ...never for a stop
    assert inbox.put(_cmd("heater_off", "h"))
    order = [(await inbox.get()).request_id for _ in range(4)]
    assert order == ["s", "h", "a", "b"]


def test_the_ledger_is_bounded_per_client_and_forgets_the_oldest() -> None:
    ledger = CommandLedger(per_client=3, max_clients=2)
    for rid in "abcd":
        ledger.begin("", rid)
    assert len(ledger) == 3
    assert ledger.seen("", "a") == (False, None)
    assert ledger.seen("", "d") == (True, None)
    ledger.delivered("", "d", urgent=False)
    assert ledger.answer("d") == ("", False)
    ledger.record("", "d", b"first")
    ledger.record("", "d", b"second")
    assert ledger.seen("", "d") == (True, b"first")
    assert ledger.seen("other-client", "d") == (False, None)


def test_one_clients_flood_never_evicts_another_clients_ids() -> None:
    ledger = CommandLedger()
    ledger.begin("alice", "A1")
    for i in range(10 * LEDGER_PER_CLIENT):
        ledger.begin("bob", f"b{i}")
    assert ledger.seen("alice", "A1") == (True, None)
    # Two clients with the same id: each is its own command, answered in delivery order.
    ledger.begin("bob", "A1")
    ledger.delivered("alice", "A1", urgent=False)
    ledger.delivered("bob", "A1", urgent=True)
    assert ledger.answer("A1") == ("alice", False)
    assert ledger.answer("A1") == ("bob", True)
    assert ledger.answer("A1") is None


@pytest.mark.parametrize("start", [T0, 1e9])
def test_limits_are_per_client_and_a_flood_is_summarised_once(start: float) -> None:
    limits = ClientLimits(start)
    now = start
    taken = sum(limits.take("mallory", now) for _ in range(500))
    assert taken == RATE_LIMIT_BURST
    assert limits.take("alice", now)  # her own bucket
    assert limits.due(now) == []  # still flooding
    due_at = limits.next_due()
    assert due_at == pytest.approx(now + FLOOD_QUIET_S)
    [summary] = limits.due(now + FLOOD_QUIET_S)
    assert (summary.client, summary.refused) == ("mallory", 500 - RATE_LIMIT_BURST)
    assert limits.due(now + 5 * FLOOD_QUIET_S) == []


# -- per-client memory and results, over a real mosquitto (break-cg F4, F5) --------------------


async def test_another_clients_flood_never_makes_a_repeated_command_act_twice(
    mqtt_broker: LocalBroker, store: Store
) -> None:
    a1 = _j({"action": "lower_pressure", "amount_mmhg": 2, "request_id": "A1"})
    async with (
        recorder(mqtt_broker, "soleguard/evict/command/result") as rec,
        CaregiverBridge(settings_for(mqtt_broker, "evict"), store) as bridge,
    ):
        await _online(mqtt_broker, "evict")
        await rec.client.publish("soleguard/evict/command/alice", a1, qos=1)
        first = await _next(bridge)
        bridge.command_result(first.request_id, True, None)
        applied: list[str] = []

        async def session() -> None:  # takes and answers every command, as the service does
            while True:
                command = await bridge.next_command()
                applied.append(command.request_id)
                bridge.command_result(command.request_id, True, None)

        async with asyncio.TaskGroup() as tg:
            taker = tg.create_task(session())
            # Bob floods heater_off (never rate limited) with more ids than the ledger held.
            flood = 1100
            for i in range(flood):
                body = _j({"action": "heater_off", "request_id": f"b{i}"})
                await rec.client.publish("soleguard/evict/command/bob", body, qos=1)
            await rec.wait_for(lambda r: len(_bob(r)) == flood)
            await rec.client.publish("soleguard/evict/command/alice", a1, qos=1)
            await wait_until(lambda: bridge.stats.commands_duplicate == 1)
            await rec.wait_for(
                lambda r: [m["request_id"] for m in r.json_on("/result")].count("A1") == 2
            )
            taker.cancel()
    assert applied.count("A1") == 0  # taken before the session task: by _next above
    assert bridge.stats.commands_forwarded == 1 + len(applied)
    answers = [m for m in rec.json_on("/result") if m["request_id"] == "A1"]
    assert answers[0] == answers[1]
    assert answers[0]["client"] == "alice"
    # Every one of bob's commands got its result (applied, or refused as busy): none dropped.
    assert sorted(m["request_id"] for m in _bob(rec)) == sorted(f"b{i}" for i in range(flood))
    assert bridge.stats.results_dropped == 0


def _bob(rec: Any) -> list[Any]:
    return [m for m in rec.json_on("/result") if m["client"] == "bob"]


async def test_two_clients_with_the_same_request_id_each_get_their_own_result(
    mqtt_broker: LocalBroker, store: Store
) -> None:
    async with (
        recorder(mqtt_broker, "soleguard/same/command/result") as rec,
        CaregiverBridge(settings_for(mqtt_broker, "same"), store) as bridge,
    ):
        await _online(mqtt_broker, "same")
        lower = _j({"action": "lower_pressure", "amount_mmhg": 5, "request_id": "1"})
        stop = _j({"action": "stop", "request_id": "1"})
        await rec.client.publish("soleguard/same/command/anna", lower, qos=1)
        await rec.client.publish("soleguard/same/command/ben", stop, qos=1)
        await wait_until(lambda: bridge.stats.commands_forwarded == 2)
        # The stop comes out first; the session answers in the order it took them.
        got = [await _next(bridge), await _next(bridge)]
        assert [c.action for c in got] == ["stop", "lower_pressure"]
        bridge.command_result("1", True, None)
        bridge.command_result("1", False, "not lower than the current ceiling")
        await rec.wait_for(lambda r: len(r.messages) == 2)
        # Each repeats its command: each gets its own first result again, nothing re-applied.
        await rec.client.publish("soleguard/same/command/anna", lower, qos=1)
        await rec.client.publish("soleguard/same/command/ben", stop, qos=1)
        await rec.wait_for(lambda r: len(r.messages) == 4)
        assert bridge.stats.commands_forwarded == 2
    by_client: dict[str, list[bool]] = {}
    for m in rec.json_on("/result"):
        by_client.setdefault(m["client"], []).append(m["accepted"])
    assert by_client == {"ben": [True, True], "anna": [False, False]}


async def test_a_burst_of_stop_and_heater_off_results_is_never_dropped(
    mqtt_broker: LocalBroker, store: Store
) -> None:
    # The session answers a whole batch in one tick (decision.command_results): many more
    # results at once than the ordinary result queue holds.
    burst = 300
    async with (
        recorder(mqtt_broker, "soleguard/burst/command/result") as rec,
        CaregiverBridge(settings_for(mqtt_broker, "burst"), store) as bridge,
    ):
        await _online(mqtt_broker, "burst")
        taken: list[str] = []

        async def session() -> None:
            while True:
                taken.append((await bridge.next_command()).request_id)

        async with asyncio.TaskGroup() as tg:
            taker = tg.create_task(session())
            for i in range(burst):
                body = _j({"action": "heater_off", "request_id": f"h{i}"})
                await rec.client.publish("soleguard/burst/command/bob", body, qos=1)
            await wait_until(
                lambda: bridge.stats.commands_forwarded + bridge.stats.commands_refused == burst
            )
            taker.cancel()
        assert len(taken) == bridge.stats.commands_forwarded
        for rid in taken:  # one synchronous burst, as one session tick would
            bridge.command_result(rid, True, None)
        await rec.wait_for(lambda r: len(r.messages) == burst)
        assert bridge.stats.results_dropped == 0
    assert sorted(m["request_id"] for m in rec.json_on("/result")) == sorted(
        f"h{i}" for i in range(burst)
    )
