"""Alarm conditions for caregivers: one ongoing condition is one alert, raised, updated, cleared.

IEC 60601-1-8 separates the alarm *condition* (what is wrong) from the alarm *signal* (how it is
announced). The supervisor raises an alarm each time a condition (re)appears; a sensor whose
readings come and go (FAULTS.md class 4) would raise one every few seconds. A caregiver wants one
alert for it: raised once, updated when it recurs or escalates, cleared when it has been gone for
a while. Pure: no I/O, no clock of its own; the caller passes the session clock in seconds.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

from controller.safety.decision import priority_rank

__all__ = [
    "CLEAR_HOLD_S",
    "UPDATE_MIN_INTERVAL_S",
    "AlarmConditions",
    "ConditionEvent",
]

ConditionEventKind = Literal["raised", "updated", "cleared"]

# Why 60 s: a condition that comes back within a minute is the same problem to a caregiver
# (a loose sensor, a flapping link); one that stays away a minute is over, and its clearing is
# news worth sending.
CLEAR_HOLD_S = 60.0
# Why 60 s: recurrences of an open condition are counted and reported at most once a minute, so
# a condition that recurs every second is a handful of messages an hour, not thousands; an
# escalation to a higher priority is reported at once.
UPDATE_MIN_INTERVAL_S = 60.0


@dataclass(frozen=True, slots=True)
class ConditionEvent:
    """One message about a condition; ``condition_id`` is the same for all of them."""

    condition_id: str
    event: ConditionEventKind
    code: str
    priority: str
    message: str
    time: float  # session clock, seconds
    occurrences: int


@dataclass(slots=True)
class _Open:
    condition_id: str
    code: str
    priority: str
    message: str
    occurrences: int
    reported_occurrences: int
    reported_at: float
    gone_since: float | None = None


@dataclass(slots=True)
class AlarmConditions:
    """Turns the supervisor's alarms (each recurrence) into condition events, keyed by code.

    Call :meth:`step` once per supervisor decision with its new alarms and the codes still
    active; it returns the events to send, in order.
    """

    clear_hold_s: float = CLEAR_HOLD_S
    update_min_interval_s: float = UPDATE_MIN_INTERVAL_S
    new_id: Callable[[], str] = field(default=lambda: uuid.uuid4().hex)
    _open: dict[str, _Open] = field(default_factory=dict)

    @property
    def open_codes(self) -> frozenset[str]:
        """The alarm codes whose alert condition is open now."""
        return frozenset(self._open)

    def step(
        self,
        now: float,
        new_alarms: Iterable[tuple[str, str, str]],
        active_codes: Iterable[str],
    ) -> list[ConditionEvent]:
        """``new_alarms``: (code, priority, message) raised at ``now``; ``active_codes``: the
        codes the supervisor still holds active. Returns raised/updated/cleared events."""
        events: list[ConditionEvent] = []
        for code, priority, message in new_alarms:
            cond = self._open.get(code)
            if cond is None:
                cond = self._open[code] = _Open(self.new_id(), code, priority, message, 1, 1, now)
                events.append(self._event(cond, "raised", now))
                continue
            cond.occurrences += 1
            cond.gone_since = None
            cond.message = message
            if priority_rank(priority) > priority_rank(cond.priority):
                cond.priority = priority
                events.append(self._report(cond, now))
        active = set(active_codes)
        for code, cond in list(self._open.items()):
            if code in active:
                cond.gone_since = None
            elif cond.gone_since is None:
                cond.gone_since = now
            if cond.gone_since is not None and now - cond.gone_since >= self.clear_hold_s:
                del self._open[code]
                events.append(self._event(cond, "cleared", now))
            elif (
                cond.occurrences > cond.reported_occurrences
                and now - cond.reported_at >= self.update_min_interval_s
            ):
                events.append(self._report(cond, now))
        return events

    def finish(self, now: float, active_codes: Iterable[str]) -> list[ConditionEvent]:
        """At the end of a session: clear at once every condition no longer active, and report
        recurrences not yet reported; conditions still active stay open."""
        active = set(active_codes)
        events: list[ConditionEvent] = []
        for code, cond in list(self._open.items()):
            if code not in active:
                del self._open[code]
                events.append(self._event(cond, "cleared", now))
            elif cond.occurrences > cond.reported_occurrences:
                events.append(self._report(cond, now))
        return events

    def _report(self, cond: _Open, now: float) -> ConditionEvent:
        cond.reported_occurrences = cond.occurrences
        cond.reported_at = now
        return self._event(cond, "updated", now)

    @staticmethod
    def _event(cond: _Open, kind: ConditionEventKind, now: float) -> ConditionEvent:
        return ConditionEvent(
            cond.condition_id, kind, cond.code, cond.priority, cond.message, now, cond.occurrences
        )
