"""Alerts for an offline persistent caregiver are never dropped by state (break-cg F7).

mosquitto queues QoS 1 messages for an offline persistent session in one queue per client
(`max_queued_messages`, shipped 1000). Retained state arrives about once a second per device; a
caregiver subscribed to state at QoS 1 had its queue filled by states within minutes, and the
broker then dropped the alerts. With the shipped queue and persistence settings and the
subscriptions ``soleguard monitor`` makes (alerts QoS 1, state QoS 0) every alert arrives.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import TYPE_CHECKING

import aiomqtt
import pytest

from controller.caregiver.bridge import no_delay
from controller.caregiver.topics import CAREGIVER_SUBSCRIPTIONS
from tests.caregiver.helpers import HANG_GUARD_S

if TYPE_CHECKING:
    from controller.caregiver.broker import MosquittoBroker
    from tests.conftest import MakeMosquitto

SHIPPED_CONF = Path(__file__).parents[2] / "config" / "mosquitto" / "mosquitto.conf"
SHIPPED_QUEUE_KEYS = (
    "autosave_interval ",
    "autosave_on_changes ",
    "max_queued_messages ",
    "queue_qos0_messages ",
    "message_size_limit ",
)
ALERTS = 10
# More states than the shipped queue holds: about 20 minutes of one device's state.
STATES = 1200
CAREGIVER_ID = "offline-caregiver"
# Sent after the caregiver is back: everything queued for it arrives before this.
_MARKER = b'{"marker": true}'
# How often the marker is sent again while the broker may still be dropping it.
_MARKER_EVERY_S = 0.2


def _shipped_queue_settings() -> list[str]:
    lines = [
        line
        for line in SHIPPED_CONF.read_text().splitlines()
        if line.startswith(SHIPPED_QUEUE_KEYS)
    ]
    assert any(line.startswith("max_queued_messages ") for line in lines)
    return lines


async def _subscribe(client: aiomqtt.Client, subscriptions: tuple[tuple[str, int], ...]) -> None:
    for kind, qos in subscriptions:
        # Back from offline, the broker sends the session's queue (up to 1000 messages) before
        # the SUBACK: aiomqtt's default 10 s ran out once under load, so the hang guard bounds it.
        await client.subscribe(f"soleguard/+/{kind}", qos=qos, timeout=HANG_GUARD_S)


async def _offline_then_back(
    broker: MosquittoBroker, subscriptions: tuple[tuple[str, int], ...]
) -> tuple[list[int], list[int]]:
    """(alert numbers, state numbers) the caregiver got after its time offline."""
    caregiver = {"identifier": CAREGIVER_ID, "clean_session": False}
    async with aiomqtt.Client(broker.host, broker.port, **caregiver) as client:  # type: ignore[arg-type]
        await _subscribe(client, subscriptions)
    # The controller publishes as the bridge does: state retained QoS 1, alerts QoS 1.
    async with no_delay(aiomqtt.Client(broker.host, broker.port)) as controller:
        every = STATES // ALERTS
        for n in range(STATES):
            state = json.dumps({"n": n}).encode()
            await controller.publish("soleguard/home/state", state, qos=1, retain=True)
            if n % every == every - 1:
                alert = json.dumps({"n": n // every}).encode()
                await controller.publish("soleguard/home/alert", alert, qos=1)
    alerts: list[int] = []
    states: list[int] = []
    async with aiomqtt.Client(broker.host, broker.port, **caregiver) as client:  # type: ignore[arg-type]
        await _subscribe(client, subscriptions)  # as the monitor does on every connect
        # One more alert, sent now: the broker delivers what it queued for the session first,
        # so once it arrives nothing queued is still on its way (no waiting for silence). While
        # the session's queue is still full the broker drops it too, so it is sent again until
        # one gets through; every message queued while offline was queued before any of them.
        async with (
            aiomqtt.Client(broker.host, broker.port) as controller,
            asyncio.TaskGroup() as tasks,
        ):

            async def mark() -> None:
                while True:
                    await controller.publish("soleguard/home/alert", _MARKER, qos=1)
                    await asyncio.sleep(_MARKER_EVERY_S)

            marking = tasks.create_task(mark())
            async with asyncio.timeout(HANG_GUARD_S):
                async for message in client.messages:
                    if message.payload == _MARKER:
                        break
                    n = json.loads(message.payload)["n"]
                    (alerts if message.topic.value.endswith("/alert") else states).append(n)
            marking.cancel()
    return alerts, states


async def test_states_never_push_out_alerts_for_an_offline_caregiver(
    make_mosquitto: MakeMosquitto,
) -> None:
    broker = await make_mosquitto(persistence=True, extra_config=_shipped_queue_settings())
    alerts, states = await _offline_then_back(broker, CAREGIVER_SUBSCRIPTIONS)
    assert alerts == list(range(ALERTS))
    # The newest state still arrives (retained), without the 1199 older ones queued.
    assert states[-1] == STATES - 1
    assert len(states) <= 2


@pytest.mark.slow
async def test_counter_check_state_at_qos_1_fills_the_queue_and_alerts_are_dropped(
    make_mosquitto: MakeMosquitto,
) -> None:
    broker = await make_mosquitto(persistence=True, extra_config=_shipped_queue_settings())
    everything_qos1 = tuple((kind, 1) for kind, _ in CAREGIVER_SUBSCRIPTIONS)
    alerts, _ = await _offline_then_back(broker, everything_qos1)
    assert len(alerts) < ALERTS


async def test_soleguard_monitors_persistent_session_gets_every_alert_after_time_offline(
    make_mosquitto: MakeMosquitto,
) -> None:
    """The subscriptions ``soleguard monitor`` itself makes, with the shipped queue settings."""
    from controller.caregiver.broker import parse_broker_url  # noqa: PLC0415
    from controller.cli.monitor import MonitorModel, _ClientHolder, _stay_connected  # noqa: PLC0415

    broker = await make_mosquitto(persistence=True, extra_config=_shipped_queue_settings())
    subscribed = asyncio.Event()

    class Screen:
        def update(self, _renderable: object) -> None:
            subscribed.set()  # the monitor redraws once its subscriptions are made

    def make_client() -> aiomqtt.Client:
        return aiomqtt.Client(
            broker.host, broker.port, identifier=CAREGIVER_ID, clean_session=False
        )

    model = MonitorModel("soleguard", client_name=CAREGIVER_ID)
    target = parse_broker_url(f"mqtt://{broker.host}:{broker.port}")
    watch = asyncio.create_task(
        _stay_connected(make_client, target, model, Screen(), _ClientHolder())
    )
    async with asyncio.timeout(HANG_GUARD_S):
        await subscribed.wait()
    watch.cancel()  # the caregiver's laptop goes to sleep
    with pytest.raises(asyncio.CancelledError):
        await watch
    async with no_delay(aiomqtt.Client(broker.host, broker.port)) as controller:
        every = STATES // ALERTS
        for n in range(STATES):
            state = json.dumps({"n": n}).encode()
            await controller.publish("soleguard/home/state", state, qos=1, retain=True)
            if n % every == every - 1:
                await controller.publish(
                    "soleguard/home/alert", json.dumps({"n": n // every}).encode(), qos=1
                )
    # Back: what the broker kept for the monitor's session (no new subscription made).
    alerts: list[int] = []
    queued_states = 0
    async with aiomqtt.Client(
        broker.host, broker.port, identifier=CAREGIVER_ID, clean_session=False
    ) as client:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(HANG_GUARD_S):
                async for message in client.messages:
                    if message.topic.value.endswith("/alert"):
                        alerts.append(json.loads(message.payload)["n"])
                    else:
                        queued_states += 1
                    if len(alerts) == ALERTS:
                        break
    assert alerts == list(range(ALERTS))
    assert queued_states == 0
