"""The caregiver alert outbox: written before publishing, in order, never lost, never doubled."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import uuid
from typing import TYPE_CHECKING

from controller.store import OutboxAlert, Store

if TYPE_CHECKING:
    from pathlib import Path


def _alert(n: int, device_id: str = "home", session_id: int | None = None) -> OutboxAlert:
    return OutboxAlert(
        id=uuid.uuid4().hex,
        device_id=device_id,
        time=1000.0 + n,
        priority="high" if n % 2 else "low",
        code=f"CODE_{n}",
        message=f"alert {n}",
        session_id=session_id,
    )


def test_undelivered_in_enqueue_order_and_marking(tmp_path: Path) -> None:
    with Store.open(tmp_path / "j.sqlite3") as store:
        # Enqueue order, not alert time, decides: give the later alert the earlier time.
        alerts = [_alert(5), _alert(1), _alert(3)]
        for alert in alerts:
            store.enqueue_alert(alert)
        assert store.undelivered_alerts() == alerts
        store.mark_alert_delivered(alerts[1].id, at=2000.0)
        assert store.undelivered_alerts() == [alerts[0], alerts[2]]
        assert store.alert_counts() == (3, 1)
        assert store.undelivered_alerts(limit=1) == [alerts[0]]


def test_same_id_twice_is_a_no_op(tmp_path: Path) -> None:
    with Store.open(tmp_path / "j.sqlite3") as store:
        alert = _alert(1)
        store.enqueue_alert(alert)
        store.enqueue_alert(alert)
        store.mark_alert_delivered(alert.id, at=1.0)
        store.enqueue_alert(alert)  # a replay after delivery does not resurrect it
        store.mark_alert_delivered(alert.id, at=2.0)
        assert store.alert_counts() == (1, 1)
        assert store.undelivered_alerts() == []


def test_undelivered_survive_a_crash_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    first, second = _alert(1), _alert(2)
    store = Store.open(path)
    store.enqueue_alert(first)
    store.enqueue_alert(second)
    store.mark_alert_delivered(first.id, at=5.0)
    # No close(): the process dies here. A new process opens the same file.
    with Store.open(path) as reopened:
        assert reopened.undelivered_alerts() == [second]
        assert reopened.alert_counts() == (2, 1)
    store.close()


def test_filter_by_device(tmp_path: Path) -> None:
    with Store.open(tmp_path / "j.sqlite3") as store:
        a, b, c = _alert(1, "bed-1"), _alert(2, "bed-2"), _alert(3, "bed-1")
        for alert in (a, b, c):
            store.enqueue_alert(alert)
        assert store.undelivered_alerts("bed-1") == [a, c]
        assert store.undelivered_alerts("bed-2") == [b]
        assert store.undelivered_alerts() == [a, b, c]


def test_alert_with_unknown_session_is_still_kept(tmp_path: Path) -> None:
    with Store.open(tmp_path / "j.sqlite3") as store:
        sid = store.start_session(
            started_at=1.0, program="gentle", profile=None, cutoff_c=40.0, pressure_cap_mmhg=30.0
        )
        known, stale = _alert(1, session_id=sid), _alert(2, session_id=999)
        store.enqueue_alert(known)
        store.enqueue_alert(stale)
        got = store.undelivered_alerts()
        assert [a.id for a in got] == [known.id, stale.id]
        assert got[0].session_id == sid
        assert got[1].session_id is None


def test_undelivered_survive_a_killed_process(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite3"
    script = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from controller.store import OutboxAlert, Store
        store = Store.open(Path({str(path)!r}))
        for n in range(3):
            store.enqueue_alert(OutboxAlert(f"id{{n}}", "home", n, "high", "C", "m", None))
        store.mark_alert_delivered("id0", at=9.0)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], check=False, timeout=60)
    assert result.returncode == -9
    with Store.open(path) as store:
        assert [a.id for a in store.undelivered_alerts()] == ["id1", "id2"]
        assert store.alert_counts() == (3, 1)
