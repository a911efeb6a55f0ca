"""`soleguard journal alerts`: each alert's raised, published and acknowledged, from the journal."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import typer
from typer.testing import CliRunner

from controller.cli import journal_io
from controller.store import Store
from tests.caregiver.helpers import make_alert

if TYPE_CHECKING:
    from pathlib import Path


def test_journal_alerts_shows_raised_published_and_acknowledged(tmp_path: Path) -> None:
    db = tmp_path / "journal.db"
    now = time.time()
    with Store.open(db) as store:
        seen = make_alert("home", code="SKIN_HOT", condition_id="c-seen", time=now)
        unseen = make_alert("home", code="BATTERY_LOW", priority="low", condition_id="c-unseen")
        store.enqueue_alert(seen)
        store.enqueue_alert(unseen)
        store.mark_alert_delivered(seen.id, at=now + 0.01)
        assert store.record_alert_ack("c-seen", client="monitor-anna", at=now + 0.02)
        assert not store.record_alert_ack("never-raised", client="x", at=now)
    app = typer.Typer()
    app.add_typer(journal_io.app, name="journal")
    result = CliRunner().invoke(app, ["journal", "alerts", "--db", str(db)])
    assert result.exit_code == 0, result.output
    seen_line, unseen_line = result.stdout.strip().splitlines()
    assert "SKIN_HOT" in seen_line
    assert "by monitor-anna" in seen_line
    assert "published -" not in seen_line
    assert "BATTERY_LOW" in unseen_line
    assert "published -" in unseen_line
    assert unseen_line.endswith("acknowledged -")
