"""What the store hands out and takes in: frozen records and the allowed values of each field."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final, Literal

from controller.safety import EndReason, Finding, Priority

if TYPE_CHECKING:
    import datetime as dt

__all__ = [
    "ALARM_PRIORITIES",
    "ENDED_BY",
    "FINDINGS",
    "OPEN_WOUND_FINDINGS",
    "PAIN_MAX",
    "PAIN_MIN",
    "PAIN_MOMENTS",
    "SLEEP_MAX",
    "SLEEP_MIN",
    "AlarmRecord",
    "ChecklistRecord",
    "InspectionRecord",
    "NoteRecord",
    "OutboxAlert",
    "ReadingRow",
    "SessionRecord",
    "SleepEntry",
]

PainMoment = Literal["before", "after"]

# How a session ended (`EndReason`): by the supervisor (timer ... checklist), by a signal to its
# process (sigint, sigterm, sighup), or "interrupted": its process died, and the next start
# closed it. The journal's CHECK constraint (schema.py, migration 4) holds the same values.
ENDED_BY: Final = frozenset(reason.value for reason in EndReason)
# IEC 60601-1-8 alarm priorities (DESIGN.md section 3): the supervisor's, as text in the journal.
ALARM_PRIORITIES: Final = frozenset(priority.value for priority in Priority)
PAIN_MOMENTS: Final = frozenset({"before", "after"})
# The usual 0-10 numeric rating scale for pain.
PAIN_MIN: Final = 0
PAIN_MAX: Final = 10
# Sleep quality on a five-point scale (1 very poor .. 5 very good).
SLEEP_MIN: Final = 1
SLEEP_MAX: Final = 5
# What a daily foot inspection may find (`Finding`); "none" stands alone.
FINDINGS: Final = frozenset(finding.value for finding in Finding)
# Findings that block every session until the person records them healed.
OPEN_WOUND_FINDINGS: Final = frozenset({Finding.OPEN_WOUND.value, Finding.ULCER.value})


@dataclass(frozen=True, slots=True)
class ReadingRow:
    """One reading of a session, downsampled to 1 Hz by the caller. ``time`` is epoch seconds."""

    time: float
    skin_c: float | None
    pressure_mmhg: float
    pressure_cap_mmhg: float
    heater_on: bool
    pad_c: float | None


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A session with its outcome, alarm count and pain scores (``None`` where not recorded).

    Times are epoch seconds, temperatures °C, pressures mmHg, durations s; ``ended_by`` is the
    `EndReason` (None while the session has not ended).
    """

    id: int
    uid: str
    started_at: float
    program: str
    profile: str | None
    scenario: str | None
    cutoff_c: float
    pressure_cap_mmhg: float
    ended_at: float | None
    ended_by: EndReason | None
    max_skin_c: float | None
    max_pressure_mmhg: float | None
    time_above_cutoff_s: float | None
    heat_s: float | None
    alarm_count: int
    pain_before: int | None
    pain_after: int | None
    # A session against simulated devices (the demo): kept out of history and reports.
    simulated: bool = False

    @property
    def duration_s(self) -> float | None:
        """Seconds from start to end; None while the session has not ended."""
        return None if self.ended_at is None else self.ended_at - self.started_at


@dataclass(frozen=True, slots=True)
class AlarmRecord:
    """A journalled alarm: session (None: outside any), time (epoch s), code, priority, message."""

    session_id: int | None
    time: float
    code: str
    priority: str
    message: str


@dataclass(frozen=True, slots=True)
class ChecklistRecord:
    """A journalled checklist: its answers, whether it blocked the session and why (epoch s)."""

    session_id: int | None
    time: float
    answers: dict[str, bool | str]
    blocked: bool
    reason: str | None


@dataclass(frozen=True, slots=True)
class OutboxAlert:
    """A caregiver alert, written to the outbox before it is published (issue 5)."""

    id: str
    device_id: str
    time: float
    priority: str
    code: str
    message: str
    session_id: int | None
    # The alarm condition this message is about (its id on the `alert` topic and in acks); None
    # for an alert that is its own condition. `event`: raised, updated or cleared.
    condition_id: str | None = None
    event: str = "raised"
    occurrences: int = 1

    @property
    def condition(self) -> str:
        """The id caregivers see and acknowledge: the condition's, else the alert's own."""
        return self.condition_id or self.id


@dataclass(frozen=True, slots=True)
class AlertHistory:
    """One outbox message as the journal keeps it: raised, published (PUBACK), acknowledged."""

    id: str
    condition_id: str
    event: str
    code: str
    priority: str
    raised_at: float
    published_at: float | None
    acknowledged_at: float | None
    acknowledged_by: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SleepEntry:
    """Sleep quality for the night that ended on the morning of ``date``."""

    date: dt.date
    quality: int
    recorded_at: float


@dataclass(frozen=True, slots=True)
class NoteRecord:
    """A free-text diary note at ``time`` (epoch s), optionally about a session."""

    time: float
    text: str
    session_id: int | None


@dataclass(frozen=True, slots=True)
class InspectionRecord:
    """A daily foot inspection: its local date, findings, and when it was recorded (epoch s)."""

    date: dt.date
    findings: frozenset[str]
    recorded_at: float
