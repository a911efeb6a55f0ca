"""What a report plots, computed from the journal without drawing anything.

Tests check these series; :mod:`controller.journal.render` only draws them. Times in a session
report are seconds since the session started; dates in a trend report are local calendar dates.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from controller import localdate
from controller.safety import Finding
from controller.settings.limits import LATCH_C
from controller.store.validation import check_int_range

if TYPE_CHECKING:
    from controller.store import SessionRecord, Store

__all__ = [
    "MAX_WEEKS",
    "AlarmMarker",
    "PainPoint",
    "ReportData",
    "SessionReportData",
    "TrendReportData",
    "session_report_data",
    "trend_report_data",
]

# Ten years: a longer window is a typo, and would build a plot with thousands of day slots.
MAX_WEEKS: Final = 520


@dataclass(frozen=True, slots=True)
class AlarmMarker:
    """An alarm on the session chart: seconds into the session, code, priority, message."""

    t_s: float
    code: str
    priority: str
    message: str


@dataclass(frozen=True, slots=True)
class SessionReportData:
    """One session's series: skin and pad temperature, heater, pressure and its cap, alarms."""

    session: SessionRecord
    t_s: tuple[float, ...]
    skin_c: tuple[float | None, ...]
    pad_c: tuple[float | None, ...]
    heater_on: tuple[bool, ...]
    pressure_mmhg: tuple[float, ...]
    pressure_cap_mmhg: tuple[float, ...]
    cutoff_c: float
    latch_c: float
    alarms: tuple[AlarmMarker, ...]

    @property
    def title(self) -> str:
        """The chart title: session id, local start time, program and how it ended."""
        started = localdate.time_of(self.session.started_at).strftime("%Y-%m-%d %H:%M")
        ended = self.session.ended_by or "unfinished"
        return f"Session {self.session.id}, {started}: {self.session.program} program ({ended})"

    @property
    def heater_on_s(self) -> float:
        """Seconds with the heater on: each reading with it on counts until the next reading.

        The last reading counts nothing, whatever the heater did after it.
        """
        return sum(
            b - a for a, b, on in zip(self.t_s, self.t_s[1:], self.heater_on, strict=False) if on
        )


@dataclass(frozen=True, slots=True)
class PainPoint:
    """Pain before and after one session (0-10, None if not asked), at its local start time."""

    session_id: int
    started: dt.datetime
    before: int | None
    after: int | None


@dataclass(frozen=True, slots=True)
class TrendReportData:
    """A window of days: pain per session, sleep, sessions per day and inspection findings."""

    first_day: dt.date
    last_day: dt.date
    pain: tuple[PainPoint, ...]
    sleep: tuple[tuple[dt.date, int], ...]
    sessions_per_day: tuple[tuple[dt.date, int], ...]
    findings_per_day: tuple[tuple[dt.date, frozenset[str]], ...]

    @property
    def weeks(self) -> int:
        """Whole weeks in the window."""
        return ((self.last_day - self.first_day).days + 1) // 7

    @property
    def title(self) -> str:
        """The report title: the window's first and last day and its length in weeks."""
        return (
            f"Foot-care journal, {self.first_day.isoformat()} to {self.last_day.isoformat()} "
            f"({self.weeks} week{'s' if self.weeks != 1 else ''})"
        )


ReportData = SessionReportData | TrendReportData


def session_report_data(
    store: Store, session_id: int, *, latch_c: float = LATCH_C.default
) -> SessionReportData:
    """The series of one session; raises ``UnknownSessionError`` for an unknown id."""
    session = store.get_session(session_id)
    readings = store.readings(session_id)
    start = session.started_at
    return SessionReportData(
        session=session,
        t_s=tuple(r.time - start for r in readings),
        skin_c=tuple(r.skin_c for r in readings),
        pad_c=tuple(r.pad_c for r in readings),
        heater_on=tuple(r.heater_on for r in readings),
        pressure_mmhg=tuple(r.pressure_mmhg for r in readings),
        pressure_cap_mmhg=tuple(r.pressure_cap_mmhg for r in readings),
        cutoff_c=session.cutoff_c,
        latch_c=latch_c,
        alarms=tuple(
            AlarmMarker(a.time - start, a.code, a.priority, a.message)
            for a in store.alarms(session_id)
        ),
    )


def trend_report_data(
    store: Store, *, weeks: int, today: dt.date | None = None, simulated: bool = False
) -> TrendReportData:
    """The last ``weeks`` weeks up to and including ``today`` (local dates).

    Simulated sessions (the demo's) are counted only with ``simulated``. Raises
    InvalidValueError naming ``weeks`` when it is not a whole number from 1 to `MAX_WEEKS`,
    StoreError if the journal cannot be read.
    """
    check_int_range("weeks", weeks, 1, MAX_WEEKS)
    last = localdate.today() if today is None else today
    first = last - dt.timedelta(days=7 * weeks - 1)
    after_window = dt.datetime.combine(last + dt.timedelta(days=1), dt.time.min).timestamp()
    since = dt.datetime.combine(first, dt.time.min).timestamp()
    in_window = store.sessions(since=since, simulated=simulated)
    sessions = [s for s in in_window if s.started_at < after_window]
    sessions.sort(key=lambda s: (s.started_at, s.id))

    per_day: dict[dt.date, int] = defaultdict(int)
    for session in sessions:
        per_day[localdate.date_of(session.started_at)] += 1
    days = [first + dt.timedelta(days=n) for n in range((last - first).days + 1)]

    findings: dict[dt.date, set[str]] = defaultdict(set)
    for inspection in store.inspections(since=first):
        if inspection.date <= last:
            findings[inspection.date] |= inspection.findings
    for day, found in findings.items():
        if len(found) > 1:
            # An inspection that found nothing and a later one that found something: the finding.
            found.discard(Finding.NONE)
            findings[day] = found

    return TrendReportData(
        first_day=first,
        last_day=last,
        pain=tuple(
            PainPoint(s.id, localdate.wall_clock_of(s.started_at), s.pain_before, s.pain_after)
            for s in sessions
            if s.pain_before is not None or s.pain_after is not None
        ),
        sleep=tuple(
            (e.date, e.quality) for e in store.sleep_entries(since=first) if e.date <= last
        ),
        sessions_per_day=tuple((day, per_day.get(day, 0)) for day in days),
        findings_per_day=tuple((day, frozenset(findings[day])) for day in sorted(findings)),
    )
