"""One bad incoming message never ends the caregiver channel (break-cg F1).

Against a real mosquitto: an acknowledgement carrying a JSON lone surrogate (a Python str no UTF-8
encoder accepts) used to reach SQLite, raise UnicodeEncodeError and end the bridge, after which a
caregiver's ``stop`` was ignored while availability still said online.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

from controller.caregiver import CaregiverBridge
from controller.store import OutboxAlert, Store
from tests.caregiver.helpers import (
    HANG_GUARD_S,
    Recorder,
    make_alert,
    recorder,
    settings_for,
    wait_until,
)

if TYPE_CHECKING:
    from controller.caregiver.broker import LocalBroker

SURROGATE_ACK = b'{"id":"\\ud800","client":"x"}'


async def _stop_gets_through(
    bridge: CaregiverBridge[OutboxAlert], rec: Recorder, device: str
) -> None:
    await rec.client.publish(
        f"soleguard/{device}/command/care", b'{"action":"stop","request_id":"s1"}', qos=1
    )
    async with asyncio.timeout(HANG_GUARD_S):
        command = await bridge.next_command()
    assert (command.action, command.request_id) == ("stop", "s1")


async def test_a_lone_surrogate_in_an_ack_is_refused_and_the_channel_keeps_working(
    mqtt_broker: LocalBroker, store: Store
) -> None:
    async with (
        recorder(mqtt_broker, "soleguard/sur/command/result") as rec,
        CaregiverBridge(settings_for(mqtt_broker, "sur"), store) as bridge,
    ):
        bridge.raise_alert(make_alert("sur", priority="high", condition_id="real"))
        await wait_until(lambda: bridge.stats.alerts_published == 1)
        for bad in (SURROGATE_ACK, b'{"id":"real","client":"\\udfff"}'):
            await rec.client.publish("soleguard/sur/alert/ack", bad, qos=1)
        await wait_until(lambda: bridge.stats.acks_refused == 2)
        await rec.client.publish("soleguard/sur/alert/ack", b'{"id":"real","client":"anna"}', qos=1)
        await wait_until(lambda: bridge.stats.alerts_acknowledged == 1)
        # A command whose request_id is a lone surrogate: refused with one clear line.
        await rec.client.publish(
            "soleguard/sur/command/care", b'{"action":"stop","request_id":"\\ud800"}', qos=1
        )
        await rec.wait_for(lambda r: len(r.on("/command/result")) == 1)
        [result] = rec.json_on("/command/result")
        assert result["accepted"] is False
        assert "request_id must be valid UTF-8 text" in result["reason"]
        await _stop_gets_through(bridge, rec, "sur")
        assert bridge.connected
        assert bridge.stats.messages_dropped == 0
    [history] = [h for h in store.alert_history() if h.condition_id == "real"]
    assert history.acknowledged_by == ("anna",)


class _BrokenJournal(Store):
    """A real journal whose acknowledgement write fails in a way nobody planned for."""

    def record_alert_ack(self, condition_id: str, *, client: str, at: float) -> bool:
        raise RuntimeError("injected fault: an unexpected error while journalling an ack")


async def test_an_unexpected_error_handling_one_message_drops_only_that_message(
    mqtt_broker: LocalBroker, tmp_path: object
) -> None:
    from pathlib import Path  # noqa: PLC0415

    assert isinstance(tmp_path, Path)
    with _BrokenJournal.open(tmp_path / "journal.db") as journal:
        async with (
            recorder(mqtt_broker, "soleguard/brk/alert") as rec,
            CaregiverBridge(settings_for(mqtt_broker, "brk"), journal) as bridge,
        ):
            bridge.raise_alert(make_alert("brk", priority="high", condition_id="c1"))
            await wait_until(lambda: bridge.stats.alerts_published == 1)
            ack = json.dumps({"id": "c1", "client": "anna"})
            await rec.client.publish("soleguard/brk/alert/ack", ack, qos=1)
            await wait_until(lambda: bridge.stats.messages_dropped == 1)
            # The channel lives on: commands still arrive, alerts are still published.
            await _stop_gets_through(bridge, rec, "brk")
            bridge.raise_alert(make_alert("brk", priority="high", condition_id="c2"))
            await rec.wait_for(lambda r: any(m["id"] == "c2" for m in r.json_on("/alert")))
            assert bridge.connected
            assert bridge.stats.connects == 1
