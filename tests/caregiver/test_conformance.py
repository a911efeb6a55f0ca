"""Pins the aiomqtt/paho internals the bridge relies on: an upgrade that moves them fails here."""

from __future__ import annotations

import inspect
from importlib.metadata import version
from typing import TYPE_CHECKING

import aiomqtt
import paho.mqtt.client as paho

if TYPE_CHECKING:
    from controller.caregiver.broker import LocalBroker


def test_aiomqtt_is_the_2_x_line() -> None:
    assert version("aiomqtt").split(".")[0] == "2"


async def test_aiomqtt_client_wraps_a_paho_client_that_can_drop_its_socket() -> None:
    client = aiomqtt.Client("127.0.0.1", 1)
    assert isinstance(client._client, paho.Client)
    assert callable(client._client._sock_close)
    client._client._sock_close()  # no socket yet: a no-op, never an error


def test_publish_takes_a_per_call_timeout() -> None:
    assert "timeout" in inspect.signature(aiomqtt.Client.publish).parameters


async def test_qos1_publish_returns_after_the_puback(mqtt_broker: LocalBroker) -> None:
    # The outbox marks an alert delivered when publish returns: that must mean PUBACK arrived.
    async with aiomqtt.Client(mqtt_broker.host, mqtt_broker.port) as client:
        info_before = len(client._client._out_messages)
        await client.publish("conformance/qos1", b"x", qos=1)
        assert len(client._client._out_messages) == info_before  # nothing left awaiting PUBACK


async def test_no_delay_reaches_the_socket_through_pahos_on_socket_open(
    mqtt_broker: LocalBroker,
) -> None:
    # aiomqtt installs its own on_socket_open; no_delay wraps it and must still see the socket.
    import socket  # noqa: PLC0415

    from controller.caregiver.bridge import no_delay  # noqa: PLC0415

    client = no_delay(aiomqtt.Client(mqtt_broker.host, mqtt_broker.port))
    async with client:
        sock = client._client.socket()
        assert isinstance(sock, socket.socket)
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
        await client.publish("conformance/nodelay", b"x", qos=1)  # aiomqtt's hook still works
