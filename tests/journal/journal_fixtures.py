"""Synthetic journal content: a few sessions with a deterministic heating curve, a diary.

A uniquely named module (not conftest) so test modules can import it unambiguously.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from controller.safety import EndReason
from controller.store import ReadingRow, Store

if TYPE_CHECKING:
    from pathlib import Path

# Three mornings, local time; the trend tests treat DAY3 as "today".
DAY1 = dt.date(2024, 6, 3)
DAY2 = DAY1 + dt.timedelta(days=1)
DAY3 = DAY1 + dt.timedelta(days=2)
CUTOFF_C = 40.0
CAP_MMHG = 60.0
SESSION_S = 300


def at(day: dt.date, hour: int, minute: int = 0) -> float:
    return dt.datetime.combine(day, dt.time(hour, minute)).timestamp()


def heating_curve(start: float, seconds: int, cap: float = CAP_MMHG) -> list[ReadingRow]:
    """Skin warms 0.03 °C/s with the heater on, cools 0.01 °C/s off; on below 38.0 °C only.

    Pressure is a 30 s wave up to the cap. The first 3 s have no skin reading (sensor warm-up).
    """
    rows = []
    skin = 32.0
    for second in range(seconds):
        heater = skin < 38.0
        pressure = round(cap * (0.5 - 0.5 * math.cos(2 * math.pi * second / 30.0)), 3)
        rows.append(
            ReadingRow(
                time=start + second,
                skin_c=None if second < 3 else round(skin, 3),
                pressure_mmhg=pressure,
                pressure_cap_mmhg=cap,
                heater_on=heater,
                pad_c=round(skin + 3.0, 3),
            )
        )
        skin += 0.03 if heater else -0.01
    return rows


@dataclass(frozen=True)
class Filled:
    store: Store
    path: Path
    session_ids: tuple[int, ...]  # oldest first
    readings: dict[int, list[ReadingRow]]


def add_session(
    store: Store,
    started_at: float,
    *,
    program: str = "standard",
    ended_by: EndReason = EndReason.TIMER,
    pain: tuple[int | None, int | None] = (None, None),
    alarms: tuple[tuple[float, str, str], ...] = (),
) -> tuple[int, list[ReadingRow]]:
    sid = store.start_session(
        started_at=started_at,
        program=program,
        profile=None,
        scenario=None,
        cutoff_c=CUTOFF_C,
        pressure_cap_mmhg=CAP_MMHG,
    )
    rows = heating_curve(started_at, SESSION_S)
    store.add_readings(sid, rows)
    for offset, code, priority in alarms:
        store.add_alarm(
            sid, time=started_at + offset, code=code, priority=priority, message=code.lower()
        )
    before, after = pain
    if before is not None:
        store.record_pain(sid, when="before", score=before)
    if after is not None:
        store.record_pain(sid, when="after", score=after)
    skins = [r.skin_c for r in rows if r.skin_c is not None]
    store.end_session(
        sid,
        ended_at=started_at + SESSION_S,
        ended_by=ended_by,
        max_skin_c=max(skins),
        max_pressure_mmhg=max(r.pressure_mmhg for r in rows),
        time_above_cutoff_s=0.0,
        heat_s=float(sum(r.heater_on for r in rows)),
    )
    return sid, rows


def fill(store: Store) -> tuple[tuple[int, ...], dict[int, list[ReadingRow]]]:
    ids = []
    readings = {}
    plan = [
        (at(DAY1, 9), "standard", EndReason.TIMER, (6, 4), ()),
        (
            at(DAY2, 9),
            "gentle",
            EndReason.FAULT,
            (5, None),
            ((120.0, "SKIN_OVER_CUTOFF", "high"), (121.5, "SENSOR_STALE", "medium")),
        ),
        (at(DAY3, 8), "standard", EndReason.USER, (5, 2), ()),
        (at(DAY3, 20), "gentle", EndReason.TIMER, (None, None), ()),
    ]
    for started, program, ended_by, pain, alarms in plan:
        sid, rows = add_session(
            store, started, program=program, ended_by=ended_by, pain=pain, alarms=alarms
        )
        ids.append(sid)
        readings[sid] = rows
    store.record_checklist(
        ids[0],
        time=at(DAY1, 8, 55),
        answers={"open_wound": False, "inspected_today": True, "provider_consulted": True},
        blocked=False,
        reason=None,
    )
    store.record_sleep(DAY2, 2, recorded_at=at(DAY2, 7))
    store.record_sleep(DAY3, 4, recorded_at=at(DAY3, 7))
    store.record_inspection(DAY1, frozenset({"none"}), recorded_at=at(DAY1, 8))
    store.record_inspection(DAY2, frozenset({"none"}), recorded_at=at(DAY2, 8))
    store.record_inspection(DAY2, frozenset({"blister", "redness"}), recorded_at=at(DAY2, 21))
    store.add_note(at(DAY2, 10), "left heel felt warm; ça va", session_id=ids[1])
    store.add_note(at(DAY3, 7, 30), "slept better")
    return tuple(ids), readings
