"""Alerts are alarm conditions, acknowledged by a person's client (issue 12, items 2 and 3).

The condition logic runs on the session clock at realistic values; the bridge parts against a
real mosquitto; Apprise against a local HTTP receiver.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
from typing import TYPE_CHECKING, Any

import aiomqtt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.caregiver import CaregiverBridge
from controller.caregiver.conditions import (
    CLEAR_HOLD_S,
    UPDATE_MIN_INTERVAL_S,
    AlarmConditions,
)
from controller.caregiver.discovery import ALERT_EVENT_TYPES, build_discovery
from controller.caregiver.topics import Topics
from tests.caregiver.helpers import HANG_GUARD_S, make_alert, recorder, settings_for, wait_until

if TYPE_CHECKING:
    from collections.abc import Iterator

    from controller.caregiver.broker import LocalBroker
    from controller.store import Store

T0 = 1_000_000.0  # a session clock long after boot


def _spiky(start: float, spikes: int, every_s: float) -> list[tuple[float, bool]]:
    """(time, alarm active) at 0.1 s ticks: the condition appears for 2 s every ``every_s``."""
    ticks = []
    t = start
    end = start + spikes * every_s
    while t < end:
        ticks.append((round(t, 1), (t - start) % every_s < 2.0))
        t += 0.1
    return ticks


def _run(cond: AlarmConditions, ticks: list[tuple[float, bool]], code: str = "SKIN_STALE") -> list:  # type: ignore[type-arg]
    events = []
    was = False
    for now, active in ticks:
        new = [(code, "medium", "skin reading stale")] if active and not was else []
        events += cond.step(now, new, [code] if active else [])
        was = active
    return events


def test_a_condition_that_recurs_every_15_s_for_10_minutes_is_one_alert() -> None:
    # sensor-spikes: about 40 recurrences in 10 minutes used to be about 40 alerts.
    cond = AlarmConditions()
    events = _run(cond, _spiky(T0, 40, 15.0))
    raised = [e for e in events if e.event == "raised"]
    assert len(raised) == 1
    assert {e.condition_id for e in events} == {raised[0].condition_id}
    updates = [e for e in events if e.event == "updated"]
    # Recurrences are counted, and reported at most once a minute.
    assert len(updates) <= 600 / UPDATE_MIN_INTERVAL_S + 1
    assert updates[-1].occurrences <= 40
    # Gone for longer than the hold: cleared once.
    after = cond.step(T0 + 600 + CLEAR_HOLD_S + 1, [], [])
    assert [e.event for e in after] == ["cleared"]
    assert after[0].condition_id == raised[0].condition_id


def test_an_escalation_is_reported_at_once_and_a_new_episode_later_is_a_new_alert() -> None:
    cond = AlarmConditions()
    [raised] = cond.step(T0, [("PRESSURE", "medium", "m")], ["PRESSURE"])
    [escalated] = cond.step(T0 + 1, [("PRESSURE", "high", "h")], ["PRESSURE"])
    assert (escalated.event, escalated.priority) == ("updated", "high")
    assert escalated.condition_id == raised.condition_id
    assert cond.step(T0 + 2, [], []) == []  # gone, but within the hold
    [cleared] = cond.step(T0 + 2 + CLEAR_HOLD_S, [], [])
    assert cleared.event == "cleared"
    [again] = cond.step(T0 + 500, [("PRESSURE", "medium", "m")], ["PRESSURE"])
    assert again.event == "raised"
    assert again.condition_id != raised.condition_id


@settings(max_examples=60, deadline=None)
@given(
    start=st.floats(min_value=1e3, max_value=1e9, allow_nan=False),
    pattern=st.lists(st.booleans(), min_size=1, max_size=300),
)
def test_every_condition_is_raised_once_and_cleared_at_most_once(
    start: float, pattern: list[bool]
) -> None:
    cond = AlarmConditions()
    ticks = [(start + i * 1.0, active) for i, active in enumerate(pattern)]
    events = _run(cond, ticks)
    events += cond.finish(ticks[-1][0] + 1.0, [])
    by_id: dict[str, list[str]] = {}
    for e in events:
        by_id.setdefault(e.condition_id, []).append(e.event)
    for kinds in by_id.values():
        assert kinds[0] == "raised"
        assert kinds.count("raised") == 1
        assert kinds.count("cleared") == 1
        assert kinds[-1] == "cleared"
    # Two alerts of one code never overlap: a new one only after the previous cleared.
    open_ids: set[str] = set()
    for e in events:
        if e.event == "raised":
            assert not open_ids
            open_ids.add(e.condition_id)
        elif e.event == "cleared":
            open_ids.discard(e.condition_id)


def test_home_assistant_event_entity_maps_priority_to_the_event_type() -> None:
    jinja2 = pytest.importorskip("jinja2")
    _, config = build_discovery(Topics("soleguard", "porch"), sw_version="1")
    event = config["cmps"]["alert"]
    assert event["p"] == "event"
    assert event["state_topic"] == "soleguard/porch/alert"
    assert set(event["event_types"]) == set(ALERT_EVENT_TYPES)
    template = jinja2.Environment().from_string(event["value_template"])
    for kind, priority, expected in (
        ("raised", "high", "high"),
        ("reannounced", "high", "high"),
        ("cleared", "high", "cleared"),
        ("raised", "low", "low"),
    ):
        alert = json.loads(
            _payload(make_alert("porch", priority=priority, code="SKIN_HOT"), kind).decode()
        )
        rendered = json.loads(template.render(value_json=alert))
        assert rendered["event_type"] == expected in event["event_types"]
        assert (rendered["code"], rendered["id"]) == ("SKIN_HOT", alert["id"])
        assert rendered["message"] == alert["message"]


def _payload(alert: Any, event: str) -> bytes:
    from controller.caregiver.models import alert_payload  # noqa: PLC0415

    return alert_payload(alert, event=event)


async def test_an_unacknowledged_high_alert_is_reannounced_until_a_client_acks_it(
    mqtt_broker: LocalBroker, store: Store
) -> None:
    settings_ = settings_for(mqtt_broker, "ward")
    high = make_alert("ward", priority="high", code="SKIN_HOT", condition_id="c-high")
    low = make_alert("ward", priority="low", code="BATTERY_LOW", condition_id="c-low")
    async with (
        recorder(mqtt_broker, "soleguard/ward/alert") as rec,
        CaregiverBridge(settings_, store, reannounce_s=0.3) as bridge,
    ):
        bridge.raise_alert(high)
        bridge.raise_alert(low)
        # Announced again (and again) while nobody acknowledges: only the HIGH one.
        await rec.wait_for(lambda r: _events(r, "c-high").count("reannounced") >= 2)
        assert "reannounced" not in _events(rec, "c-low")
        await rec.client.publish(
            "soleguard/ward/alert/ack", json.dumps({"id": "c-high", "client": "monitor"}), qos=1
        )
        await wait_until(lambda: bridge.stats.alerts_acknowledged == 1)
        # Re-announcements the bridge published before it handled the ack may still be on their
        # way (two were, on a loaded machine): the broker delivers one client's messages on a
        # topic in order, so the first announcement of an alert raised now marks their end.
        bridge.raise_alert(make_alert("ward", priority="high", condition_id="sentinel"))
        await rec.wait_for(lambda r: "raised" in _events(r, "sentinel"))
        after_ack = len(_events(rec, "c-high"))
        # The sentinel announced twice more spans two intervals: c-high stayed silent meanwhile.
        await rec.wait_for(lambda r: _events(r, "sentinel").count("reannounced") >= 2)
        assert len(_events(rec, "c-high")) == after_ack
    history = {h.condition_id: h for h in store.alert_history()}
    assert history["c-high"].published_at is not None
    assert history["c-high"].acknowledged_by == ("monitor",)
    assert history["c-high"].acknowledged_at is not None
    assert history["c-high"].raised_at <= history["c-high"].published_at
    assert history["c-low"].acknowledged_at is None


async def test_a_cleared_high_alert_is_no_longer_reannounced(
    mqtt_broker: LocalBroker, store: Store
) -> None:
    async with (
        recorder(mqtt_broker, "soleguard/bay/alert") as rec,
        CaregiverBridge(settings_for(mqtt_broker, "bay"), store, reannounce_s=0.3) as bridge,
    ):
        bridge.raise_alert(make_alert("bay", priority="high", condition_id="c1"))
        await rec.wait_for(lambda r: "reannounced" in _events(r, "c1"))
        bridge.raise_alert(make_alert("bay", priority="high", condition_id="c1", event="cleared"))
        await rec.wait_for(lambda r: "cleared" in _events(r, "c1"))
        settled = len(_events(rec, "c1"))
        await _sentinel(bridge, rec, "bay")
        assert len(_events(rec, "c1")) == settled


async def test_bad_acknowledgements_are_refused_and_change_nothing(
    mqtt_broker: LocalBroker, store: Store
) -> None:
    async with (
        recorder(mqtt_broker) as rec,
        CaregiverBridge(settings_for(mqtt_broker, "ack"), store, reannounce_s=0.3) as bridge,
    ):
        bridge.raise_alert(make_alert("ack", priority="high", condition_id="real"))
        await wait_until(lambda: bridge.stats.alerts_published == 1)
        for bad in (b"not json", b"[]", b'{"id": 5}', b'{"id": "never-raised"}', b"\xff"):
            await rec.client.publish("soleguard/ack/alert/ack", bad, qos=1)
        await wait_until(lambda: bridge.stats.acks_refused == 5)
        assert bridge.stats.alerts_acknowledged == 0
    assert all(h.acknowledged_at is None for h in store.alert_history())


async def _sentinel(bridge: CaregiverBridge[Any], rec: Any, device: str) -> None:
    """Raise another HIGH alert and wait until it has been re-announced twice."""
    bridge.raise_alert(make_alert(device, priority="high", condition_id="sentinel"))
    await rec.wait_for(lambda r: _events(r, "sentinel").count("reannounced") >= 2)


def _events(rec: Any, condition_id: str) -> list[str]:
    return [m["event"] for m in rec.json_on("/alert") if m["id"] == condition_id]


# -- Apprise, against a local HTTP receiver ----------------------------------------------------


class _Receiver(http.server.BaseHTTPRequestHandler):
    received: list[dict[str, Any]]

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", 0))
        self.received.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []
    handler = type("Handler", (_Receiver,), {"received": received})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"json://127.0.0.1:{server.server_address[1]}/alerts", received
    finally:
        server.shutdown()
        server.server_close()


async def test_alerts_reach_apprise_urls_with_the_priority_mapped(
    mqtt_broker: LocalBroker, store: Store, receiver: tuple[str, list[dict[str, Any]]]
) -> None:
    pytest.importorskip("apprise")
    url, received = receiver
    settings_ = settings_for(mqtt_broker, "phone", apprise_urls=[url])
    async with CaregiverBridge(settings_, store) as bridge:
        bridge.raise_alert(make_alert("phone", priority="high", code="SKIN_HOT"))
        bridge.raise_alert(make_alert("phone", priority="low", code="BATTERY_LOW"))
        bridge.raise_alert(make_alert("phone", priority="high", code="SKIN_HOT", event="cleared"))
        async with asyncio.timeout(HANG_GUARD_S):
            while len(received) < 3:  # noqa: ASYNC110 (a plain list filled by the server)
                await asyncio.sleep(0.02)
    assert [r["type"] for r in received] == ["failure", "info", "success"]
    assert "HIGH SKIN_HOT" in received[0]["title"]
    assert "cleared" in received[2]["title"]


async def test_apprise_urls_without_apprise_or_with_a_bad_url_are_one_clear_error(
    mqtt_broker: LocalBroker, store: Store
) -> None:
    pytest.importorskip("apprise")
    from controller.errors import ConfigError  # noqa: PLC0415

    bad = settings_for(mqtt_broker, "bad", apprise_urls=["nonsense-scheme://x"])
    with pytest.raises(ConfigError, match="apprise_urls entry 1"):
        async with CaregiverBridge(bad, store):
            pass


async def test_after_a_reconnect_every_unacknowledged_alert_is_sent_again(
    mqtt_broker: LocalBroker, store: Store
) -> None:
    """A crashed broker may have acknowledged an alert it never wrote to disk."""
    async with CaregiverBridge(settings_for(mqtt_broker, "again"), store) as bridge:
        bridge.raise_alert(make_alert("again", priority="low", condition_id="seen"))
        bridge.raise_alert(make_alert("again", priority="medium", condition_id="unseen"))
        await wait_until(lambda: bridge.stats.alerts_published == 2)
        async with recorder(mqtt_broker) as person:
            await person.client.publish(
                "soleguard/again/alert/ack", b'{"id": "seen", "client": "anna"}', qos=1
            )
            await wait_until(lambda: bridge.stats.alerts_acknowledged == 1)
        assert bridge.stats.alerts_reannounced == 0  # not HIGH: no periodic repeat
        # A caregiver app with a persistent session, offline during the restart.
        async with aiomqtt.Client(
            mqtt_broker.host, mqtt_broker.port, identifier="app", clean_session=False
        ) as app:
            await app.subscribe("soleguard/again/alert", qos=1)
        await mqtt_broker.stop()
        await mqtt_broker.start()
        await wait_until(lambda: bridge.stats.alerts_reannounced == 1)
    async with (
        aiomqtt.Client(
            mqtt_broker.host, mqtt_broker.port, identifier="app", clean_session=False
        ) as app,
        asyncio.timeout(HANG_GUARD_S),
    ):
        message = await anext(aiter(app.messages))
    body = json.loads(message.payload)
    assert (body["id"], body["event"]) == ("unseen", "reannounced")


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=2048), st.text(max_size=200).map(str.encode)))
def test_parse_ack_never_raises_and_accepts_only_an_id(payload: bytes) -> None:
    from controller.caregiver.outbox import MAX_ACK_ID_CHARS, parse_ack  # noqa: PLC0415

    result = parse_ack(payload)
    if isinstance(result, tuple):
        cid, who = result
        assert 0 < len(cid) <= MAX_ACK_ID_CHARS
        assert 0 < len(who) <= MAX_ACK_ID_CHARS
    else:
        assert "\n" not in result  # one line
