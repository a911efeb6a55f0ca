"""Without mosquitto, the demo's embedded broker is amqtt, which speaks MQTT 3.1.1 only."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from controller.caregiver import broker as broker_module
from controller.caregiver import threaded
from controller.caregiver.threaded import caregiver_side
from controller.settings.models import MqttSettings
from tests.caregiver.helpers import HANG_GUARD_S, make_alert

if TYPE_CHECKING:
    import pytest

    from controller.store import Store


async def test_the_bridge_talks_3_1_1_to_the_amqtt_fallback(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(broker_module, "find_mosquitto", lambda: None)
    monkeypatch.setattr(threaded, "find_mosquitto", lambda: None)
    settings = MqttSettings()  # protocol "5" and no device id: both resolved here
    async with caregiver_side(settings, store, embedded=True) as link:
        assert link.device_id.startswith("sg-")
        alert = make_alert(link.device_id)
        store.enqueue_alert(alert)
        link.alerts_stored(alert)
        async with asyncio.timeout(HANG_GUARD_S):
            while store.alert_counts() != (1, 1):  # noqa: ASYNC110 (the store has no event)
                await asyncio.sleep(0.02)
