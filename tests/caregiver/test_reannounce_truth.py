"""Re-announcement follows the journal and escalations (break-cg F3 and F6), on a real mosquitto.

F3: the unacknowledged set lived only in the bridge's memory, so a HIGH alert nobody acknowledged
was never announced again after the process ended. F6: acknowledging a MEDIUM alert silenced the
HIGH escalation of the same condition.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from controller.caregiver import CaregiverBridge
from controller.errors import StoreError
from controller.store import OutboxAlert, Store
from tests.caregiver.helpers import make_alert, recorder, settings_for, wait_until

if TYPE_CHECKING:
    from pathlib import Path

    from controller.caregiver.broker import LocalBroker


def _events(rec: Any, condition_id: str) -> list[str]:
    return [m["event"] for m in rec.json_on("/alert") if m["id"] == condition_id]


async def _ack(rec: Any, device: str, condition_id: str) -> None:
    body = json.dumps({"id": condition_id, "client": "anna"})
    await rec.client.publish(f"soleguard/{device}/alert/ack", body, qos=1)


async def test_a_new_process_reannounces_the_journals_unacknowledged_high_alerts(
    mqtt_broker: LocalBroker, tmp_path: Path
) -> None:
    journal = tmp_path / "journal.db"
    settings_ = settings_for(mqtt_broker, "night")
    # First process: three HIGH conditions published; one acknowledged, one cleared.
    with Store.open(journal) as store:
        async with (
            recorder(mqtt_broker) as rec,
            CaregiverBridge(settings_, store, reannounce_s=3600) as bridge,
        ):
            for cid in ("vent-stuck", "acked", "gone"):
                bridge.raise_alert(make_alert("night", priority="high", condition_id=cid))
            bridge.raise_alert(
                make_alert("night", priority="high", condition_id="gone", event="cleared")
            )
            await wait_until(lambda: bridge.stats.alerts_published == 4)
            await _ack(rec, "night", "acked")
            await wait_until(lambda: bridge.stats.alerts_acknowledged == 1)
    # The process ended. The next one, on the same journal, re-announces the one left open,
    # at once and then every interval, until it is acknowledged.
    with Store.open(journal) as store:
        assert [a.condition for a in store.unacknowledged_alerts(device_id="night")] == [
            "vent-stuck"
        ]
        async with (
            recorder(mqtt_broker, "soleguard/night/alert") as rec,
            CaregiverBridge(settings_, store, reannounce_s=0.3) as bridge,
        ):
            await rec.wait_for(lambda r: _events(r, "vent-stuck").count("reannounced") >= 2)
            await _ack(rec, "night", "vent-stuck")
            await wait_until(lambda: bridge.stats.alerts_acknowledged == 1)
            # A sentinel re-announced twice spans two intervals; nothing else was repeated.
            bridge.raise_alert(make_alert("night", priority="high", condition_id="sentinel"))
            await rec.wait_for(lambda r: _events(r, "sentinel").count("reannounced") >= 2)
            settled = len(_events(rec, "vent-stuck"))
            await rec.wait_for(lambda r: _events(r, "sentinel").count("reannounced") >= 4)
            assert len(_events(rec, "vent-stuck")) == settled
            assert _events(rec, "acked") == []
            assert _events(rec, "gone") == []
        assert [a.condition for a in store.unacknowledged_alerts(device_id="night")] == ["sentinel"]


async def test_acknowledging_a_medium_alert_does_not_silence_its_high_escalation(
    mqtt_broker: LocalBroker, store: Store
) -> None:
    async with (
        recorder(mqtt_broker, "soleguard/esc/alert") as rec,
        CaregiverBridge(settings_for(mqtt_broker, "esc"), store, reannounce_s=0.3) as bridge,
    ):
        bridge.raise_alert(make_alert("esc", priority="medium", condition_id="p1"))
        await wait_until(lambda: bridge.stats.alerts_published == 1)
        await _ack(rec, "esc", "p1")
        await wait_until(lambda: bridge.stats.alerts_acknowledged == 1)
        assert store.unacknowledged_alerts(device_id="esc") == []
        # The condition escalates: a new acknowledgement is needed, and the HIGH alert repeats.
        bridge.raise_alert(make_alert("esc", priority="high", condition_id="p1", event="updated"))
        await rec.wait_for(lambda r: _events(r, "p1").count("reannounced") >= 2)
        [open_alert] = store.unacknowledged_alerts(device_id="esc")
        assert (open_alert.condition, open_alert.priority) == ("p1", "high")
        await _ack(rec, "esc", "p1")
        await wait_until(lambda: bridge.stats.alerts_acknowledged == 2)
        assert store.unacknowledged_alerts(device_id="esc") == []
        # Acknowledged at HIGH: a later update at the same priority stays quiet.
        bridge.raise_alert(make_alert("esc", priority="high", condition_id="p1", event="updated"))
        bridge.raise_alert(make_alert("esc", priority="high", condition_id="sentinel"))
        await rec.wait_for(lambda r: _events(r, "sentinel").count("reannounced") >= 2)
        assert _events(rec, "p1")[-1] == "updated"


class _UnreadableJournal(Store):
    """A real journal whose read of unacknowledged alerts fails (an I/O error, say)."""

    def unacknowledged_alerts(self, *, device_id: str) -> list[OutboxAlert]:
        raise StoreError("injected fault: disk I/O error")


async def test_a_journal_that_cannot_say_what_is_unacknowledged_never_holds_alerts_back(
    mqtt_broker: LocalBroker, tmp_path: Path
) -> None:
    with _UnreadableJournal.open(tmp_path / "journal.db") as journal:
        async with (
            recorder(mqtt_broker, "soleguard/io/alert") as rec,
            CaregiverBridge(settings_for(mqtt_broker, "io"), journal) as bridge,
        ):
            bridge.raise_alert(make_alert("io", priority="high", condition_id="c1"))
            await rec.wait_for(lambda r: "raised" in _events(r, "c1"))
            assert bridge.connected
            assert bridge.stats.connects == 1
