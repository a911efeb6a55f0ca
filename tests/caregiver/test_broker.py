"""The demo's embedded broker and the --broker URL parser."""

from __future__ import annotations

import asyncio
import socket
from typing import TYPE_CHECKING

import pytest

from controller.caregiver import CaregiverBridge
from controller.caregiver import broker as broker_module
from controller.caregiver.broker import (
    BrokerError,
    BrokerUrl,
    MosquittoBroker,
    embedded_broker,
    parse_broker_url,
)
from controller.errors import ConfigError
from controller.settings.models import MqttSettings
from tests.caregiver.helpers import HANG_GUARD_S, make_alert, wait_until

if TYPE_CHECKING:
    from pathlib import Path

    from controller.store import Store


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://127.0.0.1:1883", BrokerUrl("127.0.0.1", 1883, False)),
        ("mqtt://broker.lan", BrokerUrl("broker.lan", 1883, False)),
        ("mqtts://broker.lan", BrokerUrl("broker.lan", 8883, True)),
        ("mqtts://broker.lan:9883", BrokerUrl("broker.lan", 9883, True)),
        ("broker.lan:1884", BrokerUrl("broker.lan", 1884, False)),
        ("mqtt://[::1]:1883", BrokerUrl("::1", 1883, False)),
    ],
)
def test_broker_urls(url: str, expected: BrokerUrl) -> None:
    assert parse_broker_url(url) == expected


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://broker:1883", "scheme"),
        ("mqtt://broker:99999", "port"),
        ("mqtt://broker:0", "port"),
        ("mqtt://:1883", "host"),
        ("mqtt://user:pw@broker", "credentials"),
        ("mqtt://broker/topic", "only mqtt://HOST:PORT"),
    ],
)
def test_bad_broker_urls_are_config_errors(url: str, reason: str) -> None:
    with pytest.raises(ConfigError, match=reason):
        parse_broker_url(url)


def test_url_round_trips() -> None:
    assert str(parse_broker_url("mqtts://h:1")) == "mqtts://h:1"


@pytest.mark.parametrize("prefer_mosquitto", [True, False], ids=["mosquitto", "amqtt"])
async def test_embedded_broker_carries_a_bridge(
    prefer_mosquitto: bool, store: Store, mosquitto_executable: str | None
) -> None:
    if prefer_mosquitto and mosquitto_executable is None:
        pytest.skip("needs the mosquitto binary")
    async with embedded_broker(prefer_mosquitto=prefer_mosquitto) as url:
        broker = parse_broker_url(url)
        assert broker.host == "127.0.0.1"
        # amqtt speaks MQTT 3.1.1 only (and drops a 5 CONNECT without an answer).
        settings = MqttSettings(
            enabled=True,
            host=broker.host,
            port=broker.port,
            device_id="demo",
            protocol="5" if prefer_mosquitto else "3.1.1",
        )
        async with CaregiverBridge(settings, store) as bridge:
            bridge.raise_alert(make_alert("demo"))
            async with asyncio.timeout(HANG_GUARD_S):
                await wait_until(lambda: store.alert_counts() == (1, 1))


async def test_a_port_taken_before_mosquitto_binds_it_is_replaced(
    tmp_path: Path, mosquitto_executable: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parallel test workers (or any program) may take the port free_port() chose before
    mosquitto binds it: the broker starts on another port instead of failing the test run."""
    if mosquitto_executable is None:
        pytest.skip("needs the mosquitto binary")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        # Not listening: a listener would accept the readiness probe; this one only holds the port.
        taken = squatter.getsockname()[1]
        chosen = iter([taken])
        real_free_port = broker_module.free_port
        monkeypatch.setattr(
            broker_module,
            "free_port",
            lambda host="127.0.0.1": next(chosen, None) or real_free_port(host),
        )
        broker = MosquittoBroker(tmp_path, executable=mosquitto_executable)
        assert broker.port == taken
        await broker.start()
        try:
            assert broker.port != taken
            _, writer = await asyncio.open_connection(broker.host, broker.port)
            writer.close()
        finally:
            await broker.stop()


async def test_a_port_given_by_the_user_is_never_silently_replaced(
    tmp_path: Path, mosquitto_executable: str | None
) -> None:
    """A configured port in use is the user's problem to see, with mosquitto's own reason."""
    if mosquitto_executable is None:
        pytest.skip("needs the mosquitto binary")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        taken = squatter.getsockname()[1]
        broker = MosquittoBroker(tmp_path, port=taken, executable=mosquitto_executable)
        with pytest.raises(BrokerError, match="Address already in use"):
            await broker.start()
        assert broker.port == taken
