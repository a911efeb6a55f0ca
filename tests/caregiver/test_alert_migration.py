"""An outbox written before alert conditions existed still publishes after the upgrade."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from controller.store import Store
from controller.store.schema import MIGRATIONS, migrate

if TYPE_CHECKING:
    from pathlib import Path

CONDITIONS = next(
    n for n, m in enumerate(MIGRATIONS) if any("condition_id" in s for s in m)
)  # the migration that added them; never a hard-coded version


def test_alerts_queued_before_the_upgrade_are_their_own_condition(tmp_path: Path) -> None:
    path = tmp_path / "journal.db"
    conn = sqlite3.connect(path, isolation_level=None)
    migrate(conn, MIGRATIONS[:CONDITIONS])
    conn.execute(
        "INSERT INTO alert_outbox (id, device_id, time, priority, code, message) "
        "VALUES ('old-1', 'home', 1.7e9, 'high', 'SKIN_HOT', 'queued before the upgrade')"
    )
    conn.close()
    with Store.open(path) as store:
        [alert] = store.undelivered_alerts()
        assert (alert.condition, alert.event, alert.occurrences) == ("old-1", "raised", 1)
        assert store.record_alert_ack("old-1", client="monitor", at=1.7e9 + 5)
        [history] = store.alert_history()
        assert history.acknowledged_by == ("monitor",)
