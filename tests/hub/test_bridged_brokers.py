"""Two hubs, each on its own mosquitto, joined by the shipped bridge (config/mosquitto/).

A caregiver on one broker sees both hubs' alerts and acknowledges them; each acknowledgement
crosses back and is journalled by the hub that raised the alert. Alert consumers on MQTT 5
shared subscriptions split the alerts between them. Real mosquitto processes, the project's own
caregiver bridge (controller.caregiver) and the monitor's caregiver logic (MonitorModel), real
SQLite journals. Every wait is on a condition with the caregiver tests' hang guard.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import string
from pathlib import Path
from typing import TYPE_CHECKING

import aiomqtt
import pytest

from controller.caregiver import CaregiverBridge
from controller.caregiver.topics import CAREGIVER_SUBSCRIPTIONS
from controller.cli.monitor import MonitorModel
from controller.store import Store
from tests.caregiver.helpers import HANG_GUARD_S, make_alert, settings_for, wait_until

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from controller.caregiver.broker import MosquittoBroker
    from tests.conftest import MakeMosquitto

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "config" / "mosquitto" / "bridge.conf.template"
BASE = "soleguard"
# How long one probe waits before it is sent again: not a measure of anything, only how often a
# probe that crossed no bridge yet is repeated; the whole wait is bounded by HANG_GUARD_S.
PROBE_RETRY_S = 0.25
_probes = itertools.count(1)


def bridge_lines(name: str, remote: MosquittoBroker) -> list[str]:
    """The shipped template with this test's names and the remote broker's (free) port."""
    text = string.Template(TEMPLATE.read_text()).safe_substitute(
        BRIDGE_NAME=name, REMOTE_HOST=remote.host, REMOTE_PORT=str(remote.port)
    )
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    assert not [line for line in lines if "${" in line], "a placeholder left unfilled"
    return lines


async def probe(sender: MosquittoBroker, receiver: MosquittoBroker) -> None:
    """Return once a message published on ``sender`` arrives on ``receiver``.

    The bridge connects and subscribes on its own schedule (its notification comes before its
    subscriptions are in place), so a probe is sent again until one crosses.
    """
    topic = f"{BASE}/bridge-probe-{next(_probes)}/state"
    async with (
        aiomqtt.Client(receiver.host, receiver.port) as listener,
        aiomqtt.Client(sender.host, sender.port) as talker,
    ):
        await listener.subscribe(topic, qos=1)
        messages = aiter(listener.messages)
        async with asyncio.timeout(HANG_GUARD_S):
            while True:
                await talker.publish(topic, b"probe", qos=1)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(PROBE_RETRY_S):
                        await anext(messages)
                        return


async def bridged_pair(make_mosquitto: MakeMosquitto) -> tuple[MosquittoBroker, MosquittoBroker]:
    """Brokers A and B; B runs the shipped bridge to A, and messages cross both ways."""
    broker_a = await make_mosquitto()
    broker_b = await make_mosquitto(extra_config=bridge_lines("hub-b-to-a", broker_a))
    await probe(broker_a, broker_b)
    await probe(broker_b, broker_a)
    return broker_a, broker_b


class Caregiver:
    """A caregiver client as `soleguard monitor` is: its subscriptions, and it acknowledges each
    alert it shows (MonitorModel decides what to acknowledge and where)."""

    def __init__(self, client: aiomqtt.Client, name: str) -> None:
        self.client = client
        self.model = MonitorModel(BASE, client_name=name)
        self.alerts: list[dict[str, object]] = []
        self._changed = asyncio.Event()

    async def run(self) -> None:
        async for message in self.client.messages:
            payload = message.payload
            assert isinstance(payload, bytes)
            ack = self.model.apply(message.topic.value, payload)
            if message.topic.value.endswith("/alert"):
                self.alerts.append(json.loads(payload))
                self._changed.set()
            if ack is not None:
                await self.client.publish(*ack, qos=1)

    async def wait_for_alerts(self, count: int) -> None:
        async with asyncio.timeout(HANG_GUARD_S):
            while len(self.alerts) < count:
                self._changed.clear()
                await self._changed.wait()


@contextlib.asynccontextmanager
async def caregiver(broker: MosquittoBroker, name: str) -> AsyncIterator[Caregiver]:
    async with aiomqtt.Client(broker.host, broker.port, identifier=name) as client:
        for suffix, qos in CAREGIVER_SUBSCRIPTIONS:
            await client.subscribe(f"{BASE}/+/{suffix}", qos=qos)
        carer = Caregiver(client, name)
        task = asyncio.create_task(carer.run())
        try:
            yield carer
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def acknowledged_by(store: Store, condition: str) -> tuple[str, ...]:
    return next(h.acknowledged_by for h in store.alert_history() if h.condition_id == condition)


async def test_a_caregiver_on_one_broker_sees_and_acknowledges_both_hubs_alerts(
    make_mosquitto: MakeMosquitto, tmp_path: Path
) -> None:
    broker_a, broker_b = await bridged_pair(make_mosquitto)
    with (
        Store.open(tmp_path / "hub-a.sqlite3") as store_a,
        Store.open(tmp_path / "hub-b.sqlite3") as store_b,
    ):
        async with (
            caregiver(broker_b, "caregiver-anna") as anna,
            CaregiverBridge(settings_for(broker_a, "hub-a"), store_a) as hub_a,
            CaregiverBridge(settings_for(broker_b, "hub-b"), store_b) as hub_b,
        ):
            alert_a = make_alert("hub-a", code="over_temperature")
            alert_b = make_alert("hub-b", code="sensor_lost")
            hub_a.raise_alert(alert_a)
            hub_b.raise_alert(alert_b)
            await anna.wait_for_alerts(2)
            # Each hub hears the acknowledgement of its own alert, across the bridge for hub A.
            hubs = (hub_a, hub_b)
            await wait_until(lambda: all(h.stats.alerts_acknowledged == 1 for h in hubs))
        seen = {(a["device"], a["code"], a["id"]) for a in anna.alerts}
        assert seen == {
            ("hub-a", "over_temperature", alert_a.condition),
            ("hub-b", "sensor_lost", alert_b.condition),
        }
        assert acknowledged_by(store_a, alert_a.condition) == ("caregiver-anna",)
        assert acknowledged_by(store_b, alert_b.condition) == ("caregiver-anna",)
        # Neither hub refused an acknowledgement (one for an alert it never raised would be).
        assert hub_a.stats.acks_refused == hub_b.stats.acks_refused == 0


async def test_without_the_bridge_hub_a_alerts_never_reach_broker_b(
    make_mosquitto: MakeMosquitto, tmp_path: Path
) -> None:
    # The counter-check: the caregiver sees hub A only through the bridge.
    broker_a = await make_mosquitto()
    broker_b = await make_mosquitto()
    with Store.open(tmp_path / "hub-a.sqlite3") as store_a, Store.open(tmp_path / "b") as store_b:
        async with (
            caregiver(broker_b, "caregiver-anna") as anna,
            CaregiverBridge(settings_for(broker_a, "hub-a"), store_a) as hub_a,
            CaregiverBridge(settings_for(broker_b, "hub-b"), store_b) as hub_b,
        ):
            hub_a.raise_alert(make_alert("hub-a"))
            await wait_until(lambda: hub_a.stats.alerts_published == 1)
            # Hub B's alert, published after hub A's, is a marker: once it is in, hub A's would
            # have been too had it been forwarded.
            hub_b.raise_alert(make_alert("hub-b"))
            await anna.wait_for_alerts(1)
    assert [a["device"] for a in anna.alerts] == ["hub-b"]


@contextlib.asynccontextmanager
async def shared_consumer(
    broker: MosquittoBroker, name: str, received: list[str]
) -> AsyncIterator[None]:
    """An alert consumer in the MQTT 5 shared subscription group ``alert-consumers``."""
    async with aiomqtt.Client(
        broker.host, broker.port, identifier=name, protocol=aiomqtt.ProtocolVersion.V5
    ) as client:
        await client.subscribe(f"$share/alert-consumers/{BASE}/+/alert", qos=1)

        async def run() -> None:
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                received.append(json.loads(message.payload)["message_id"])

        task = asyncio.create_task(run())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_alert_consumers_share_both_hubs_alerts_with_a_shared_subscription(
    make_mosquitto: MakeMosquitto, tmp_path: Path
) -> None:
    broker_a, broker_b = await bridged_pair(make_mosquitto)
    first: list[str] = []
    second: list[str] = []
    per_hub = 4
    with Store.open(tmp_path / "a") as store_a, Store.open(tmp_path / "b") as store_b:
        async with (
            shared_consumer(broker_b, "consumer-1", first),
            shared_consumer(broker_b, "consumer-2", second),
            CaregiverBridge(settings_for(broker_a, "hub-a"), store_a) as hub_a,
            CaregiverBridge(settings_for(broker_b, "hub-b"), store_b) as hub_b,
        ):
            raised = []
            for n in range(per_hub):
                for hub, device in ((hub_a, "hub-a"), (hub_b, "hub-b")):
                    alert = make_alert(device, code=f"code_{n}", priority="medium")
                    hub.raise_alert(alert)
                    raised.append(alert.id)
            await wait_until(lambda: set(first) | set(second) >= set(raised))
    # Every alert reached the group, and the group split them: neither consumer had them all.
    assert set(first) | set(second) == set(raised)
    assert 0 < len(set(first)) < len(raised)
    assert 0 < len(set(second)) < len(raised)


@pytest.mark.parametrize("placeholder", ["BRIDGE_NAME", "REMOTE_HOST", "REMOTE_PORT"])
def test_the_template_names_each_placeholder_it_needs(placeholder: str) -> None:
    assert "${" + placeholder + "}" in TEMPLATE.read_text()
