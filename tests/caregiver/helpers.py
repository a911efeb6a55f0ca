"""Helpers for the caregiver tests: a recording subscriber, settings for a broker, alerts."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from typing import TYPE_CHECKING, Any

import aiomqtt

from controller.settings.models import MqttSettings
from controller.store import OutboxAlert

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from controller.caregiver.broker import LocalBroker

# Only a guard against a hung test, never a measure of speed: every wait below ends as soon as its
# condition holds, which on a healthy machine is milliseconds.
HANG_GUARD_S = 30.0

_ids = itertools.count(1)


class Recorder:
    """A caregiver-side client that records every message it receives."""

    def __init__(self, client: aiomqtt.Client) -> None:
        self.client = client
        self.messages: list[aiomqtt.Message] = []
        self._changed = asyncio.Event()

    async def run(self) -> None:
        async for message in self.client.messages:
            self.messages.append(message)
            self._changed.set()

    def on(self, suffix: str) -> list[aiomqtt.Message]:
        return [m for m in self.messages if m.topic.value.endswith(suffix)]

    def json_on(self, suffix: str) -> list[Any]:
        return [json.loads(m.payload) for m in self.on(suffix)]

    async def wait_for(self, predicate: Callable[[Recorder], bool]) -> None:
        async with asyncio.timeout(HANG_GUARD_S):
            while not predicate(self):
                self._changed.clear()
                await self._changed.wait()


@contextlib.asynccontextmanager
async def recorder(
    broker: LocalBroker,
    *topics: str,
    protocol: aiomqtt.ProtocolVersion = aiomqtt.ProtocolVersion.V311,
    **kwargs: Any,
) -> AsyncIterator[Recorder]:
    async with aiomqtt.Client(broker.host, broker.port, protocol=protocol, **kwargs) as client:
        for topic in topics:
            await client.subscribe(topic, qos=1)
        rec = Recorder(client)
        async with asyncio.TaskGroup() as tg:
            task = tg.create_task(rec.run())
            try:
                yield rec
            finally:
                task.cancel()


async def wait_until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(HANG_GUARD_S):
        # Polls a plain attribute (bridge.connected) that has no event to wait on.
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


def settings_for(broker: LocalBroker, device_id: str = "home", **kwargs: Any) -> MqttSettings:
    return MqttSettings(
        enabled=True, host=broker.host, port=broker.port, device_id=device_id, **kwargs
    )


def make_alert(
    device_id: str = "home", code: str = "over_temperature", **kwargs: Any
) -> OutboxAlert:
    n = next(_ids)
    fields: dict[str, Any] = {
        "id": f"alert-{n}-{time.monotonic_ns()}",
        "device_id": device_id,
        "time": time.time(),
        "priority": "high",
        "code": code,
        "message": f"alert number {n}",
        "session_id": None,
    }
    fields.update(kwargs)
    return OutboxAlert(**fields)
