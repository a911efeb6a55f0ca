"""An alert the journal cannot store still reaches the caregiver, and so does the fault itself.

Real parts: mosquitto, the bridge on its thread, the session's relay, a real SQLite journal whose
``alert_outbox`` table every statement is refused (an SQLite authorizer: the same
``sqlite3.DatabaseError`` a corrupt page gives). Issue 11 met it as silence: the bridge dropped its
broker connection on each outbox error and no alert went out while the broker was fine.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

from controller.caregiver.fallback import JOURNAL_FAULT
from controller.caregiver.threaded import caregiver_side
from controller.safety import Supervisor
from controller.safety.events import StartSession
from controller.service.caregiver import CaregiverRelay
from controller.settings import Settings, effective_limits
from controller.treatment.checklist import ChecklistAnswers
from tests.caregiver.helpers import recorder, settings_for, wait_until

if TYPE_CHECKING:
    from controller.caregiver.broker import LocalBroker
    from controller.store import Store

DEVICE = "faulty"
# A realistic monotonic clock value (not 0): hours after boot.
NOW = 86_400.0 + 1234.5


def refuse_outbox(store: Store) -> None:
    def authorizer(action: int, table: str | None, *_args: Any) -> int:
        return sqlite3.SQLITE_DENY if table == "alert_outbox" else sqlite3.SQLITE_OK

    store._conn.set_authorizer(authorizer)  # type: ignore[union-attr]


async def test_alerts_reach_the_broker_when_the_outbox_cannot_be_written(
    mqtt_broker: LocalBroker, store: Store
) -> None:
    settings = settings_for(mqtt_broker, DEVICE)
    async with (
        recorder(mqtt_broker, f"soleguard/{DEVICE}/alert") as rec,
        caregiver_side(settings, store) as link,
    ):
        await wait_until(lambda: link._bridge.connected)
        refuse_outbox(store)
        relay = CaregiverRelay(link, store)
        # A real decision with a new alarm: a session refused for an open wound.
        answers = ChecklistAnswers(
            open_wound=True, ulcer=False, infection=False, severe_inflammation=False
        )
        supervisor = Supervisor(effective_limits(Settings()))
        decision = supervisor.step(NOW, [StartSession(answers.result(inspection_required=False))])
        assert decision.new_alarms
        relay.on_decision(NOW, decision)
        await relay.flush() if relay._alerts.empty() else None
        while not relay._alerts.empty():
            await relay._store_alert(relay._alerts.get_nowait())
        codes = {alarm.code for alarm in decision.new_alarms}
        await rec.wait_for(
            lambda r: codes | {JOURNAL_FAULT} <= {a["code"] for a in r.json_on("/alert")}
        )
        assert link._bridge.stats.connects == 1  # the connection was never dropped
        assert link.outbox is not None
        outbox = link.outbox
        # All published, and acknowledged: the broker's PUBACK reaches the bridge a moment after
        # the caregiver has the alert, so wait for it (asserting at once failed 1 run in 5).
        await wait_until(lambda: outbox.kept() == 0)
