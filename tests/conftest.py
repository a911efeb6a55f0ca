"""Shared fixtures: a real MQTT broker process per test.

``mqtt_broker`` starts mosquitto (Debian: /usr/sbin/mosquitto) on 127.0.0.1 and a free port with a
config written to the test's tmp_path, never the machine's own broker; ``await broker.stop()`` and
``await broker.start()`` take it away and bring it back on the same port (with persistence, so
retained messages and persistent sessions survive, as on a real deployment). Without mosquitto it
falls back to amqtt in-process, unless ``SOLEGUARD_REQUIRE_MOSQUITTO=1`` (set by CI), which makes a
missing mosquitto a failure. ``make_mosquitto`` starts one with extra config lines (ACL tests).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from controller.caregiver.broker import (
    AmqttBroker,
    LocalBroker,
    MosquittoBroker,
    find_mosquitto,
)

MakeMosquitto = Callable[..., Awaitable[MosquittoBroker]]


@pytest.fixture(scope="session")
def mosquitto_executable() -> str | None:
    """The mosquitto binary, or None (a failure when SOLEGUARD_REQUIRE_MOSQUITTO=1)."""
    found = find_mosquitto()
    if found is None and os.environ.get("SOLEGUARD_REQUIRE_MOSQUITTO") == "1":
        pytest.fail("SOLEGUARD_REQUIRE_MOSQUITTO=1 but mosquitto is not installed")
    return found


@pytest.fixture
async def make_mosquitto(
    tmp_path: Path, mosquitto_executable: str | None
) -> AsyncIterator[MakeMosquitto]:
    """Start mosquitto brokers with extra config; skips the test when mosquitto is missing."""
    if mosquitto_executable is None:
        pytest.skip("needs the mosquitto binary")
    started: list[MosquittoBroker] = []

    async def make(**kwargs: Any) -> MosquittoBroker:
        workdir = tmp_path / f"mosquitto-{len(started)}"
        workdir.mkdir()
        broker = MosquittoBroker(workdir, executable=mosquitto_executable, **kwargs)
        started.append(broker)
        await broker.start()
        return broker

    yield make
    for broker in started:
        await broker.stop()


@pytest.fixture
async def mqtt_broker(
    tmp_path: Path, mosquitto_executable: str | None
) -> AsyncIterator[LocalBroker]:
    """A running broker on a free port; ``broker.kind`` says which one."""
    broker: LocalBroker
    if mosquitto_executable is not None:
        workdir = tmp_path / "mqtt-broker"
        workdir.mkdir()
        broker = MosquittoBroker(workdir, executable=mosquitto_executable, persistence=True)
    else:
        broker = AmqttBroker()
    await broker.start()
    yield broker
    await broker.stop()
