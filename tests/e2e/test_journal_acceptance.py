"""Issue 6 acceptance end to end: three demos, then history and reports from their journal.

The demo records into its own journal next to the user's (issue 11: simulated sessions never
mix with the clinical record), so history and report read it with ``--db``; the user's own
history stays empty.
"""

from __future__ import annotations

import base64
import json
import re
import struct
from pathlib import Path

import pytest

from controller.journal.report_data import session_report_data, trend_report_data
from controller.store import Store
from tests.e2e.helpers import run_cli

pytestmark = pytest.mark.slow

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
DEMO_S = 120.0


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_MAGIC
    width, height = struct.unpack(">II", data[16:24])  # IHDR comes first
    return width, height


async def test_three_demos_then_history_and_reports(
    user_env: dict[str, str], tmp_path: Path
) -> None:
    summaries = []
    for seed in range(3):
        code, out, err = await run_cli(
            user_env,
            "demo",
            "--speed",
            "max",
            "--minutes",
            "2",
            "--no-mqtt",
            "--json",
            "--seed",
            str(seed),
        )
        assert code == 0, err
        summaries.append(json.loads(out))
    ids = [s["session_id"] for s in summaries]
    folder = Path(user_env["XDG_DATA_HOME"]) / "soleguard"
    journal = folder / "demo.sqlite3"
    assert journal.is_file()  # the demo journal, not a throwaway one
    # Simulated sessions are shown only when asked for, in the demo's journal too.
    db = ("--db", str(journal), "--simulated")

    code, out, err = await run_cli(user_env, "history", "--json")
    assert code == 0, err
    assert json.loads(out) == []  # nothing simulated in the user's own history

    code, out, err = await run_cli(user_env, "history", "--json", *db)
    assert code == 0, err
    rows = json.loads(out)
    assert sorted(row["id"] for row in rows) == sorted(ids)
    by_id = {row["id"]: row for row in rows}
    for summary in summaries:
        row = by_id[summary["session_id"]]
        assert row["program"] == summary["program"] == "standard"
        assert row["ended_by"] == "timer"
        assert row["duration_s"] == pytest.approx(DEMO_S, abs=2.0)
        assert row["max_skin_c"] == pytest.approx(summary["max_skin_reading_c"], abs=0.01)
        assert row["alarms"] == len(summary["alarms"])
    code, out, err = await run_cli(user_env, "history", *db)
    assert code == 0, err
    assert len(re.findall(r"\b2:00\b", out)) == 3  # the table a person reads

    week = tmp_path / "week.png"
    code, out, err = await run_cli(user_env, "report", "--weeks", "1", "--out", str(week), *db)
    assert code == 0, err
    width, height = png_size(week.read_bytes())
    assert width >= 800
    assert height >= 500
    assert week.stat().st_size > 20_000

    chosen = summaries[1]
    page = tmp_path / "s.html"
    code, out, err = await run_cli(
        user_env, "report", str(chosen["session_id"]), "--out", str(page), *db
    )
    assert code == 0, err
    html = page.read_text()
    image = re.search(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", html)
    assert image is not None
    assert png_size(base64.b64decode(image.group(1)))[0] >= 800
    assert f"Session {chosen['session_id']}" in html
    assert "<td>ended by</td><td>timer</td>" in html

    # What the report plotted, against what the session itself reported.
    with Store.open(journal) as store:
        trend = trend_report_data(store, weeks=1, simulated=True)
        data = session_report_data(store, chosen["session_id"])
    assert sum(count for _, count in trend.sessions_per_day) == 3
    assert {p.session_id for p in trend.pain} <= set(ids)
    assert data.t_s[0] == pytest.approx(0.0, abs=1.5)
    assert data.t_s[-1] == pytest.approx(DEMO_S, abs=1.5)
    assert 0.9 * DEMO_S <= len(data.t_s) <= DEMO_S + 2  # 1 Hz
    skins = [c for c in data.skin_c if c is not None]
    assert max(skins) == pytest.approx(chosen["max_skin_reading_c"], abs=0.2)
    assert max(skins) < data.cutoff_c == chosen["cutoff_c"]
    assert max(data.pressure_mmhg) == pytest.approx(chosen["max_pressure_mmhg"], abs=1.0)
    assert all(p <= cap for p, cap in zip(data.pressure_mmhg, data.pressure_cap_mmhg, strict=True))
    assert data.heater_on_s == pytest.approx(chosen["heat_s"], abs=3.0)
    assert [a.code for a in data.alarms] == [a["code"] for a in chosen["alarms"]]
