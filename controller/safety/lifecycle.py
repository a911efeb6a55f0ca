"""Session lifecycle: start (checklist), end, latch and alarm reset, caregiver requests, and
the watch after the session.

A session runs from an accepted StartSession to its end (timer, user, caregiver, fault); the
over-temperature latch stops it and holds until an alarm reset with a fresh reading below
re-enable; after every end the massager is watched until it shows heater off, bladder vented and
lease released (docs/safety.md, "After the session").
"""

from __future__ import annotations

import math

from controller.safety._state import (
    AFTER_FAULT,
    AFTER_SAFE,
    AFTER_UNVERIFIED,
    AFTER_WATCHING,
    SupervisorState,
    _isfinite,
)
from controller.safety.alarms import AlarmCode
from controller.safety.decision import (
    CommandResult,
    EndReason,
    SessionState,
)
from controller.safety.events import (
    BLOCKING_FINDINGS,
    CaregiverAction,
    CaregiverRequest,
    ChecklistResult,
)


class SessionLifecycle(SupervisorState):
    """Session lifecycle: start (checklist), end, latch and alarm reset, caregiver requests.

    The rules and their sources: docs/safety.md, "Session, checklist, caregiver, garbage",
    "Over-temperature latch and alarm reset", "After the session" and "Session state machine";
    the numbers (``max_session_s``, ``latch_c``, ``heater_reenable_below_c``, ``post_session_*``,
    ``caregiver_lower_default_mmhg``) are :class:`~controller.settings.effective.SafetyLimits`
    fields, each bound and source in controller/settings/limits.py.
    """

    def _on_start(self, checklist: ChecklistResult, now: float, refusals: list[str]) -> None:
        if self._state is SessionState.RUNNING:
            refusals.append("a session is already running")
            return
        if self._state is SessionState.LATCHED:
            refusals.append(
                "over-temperature latch in force: no session until an alarm reset with the foot "
                "cooled"
            )
            return
        self._alarms.clear_session()
        self._session_id += 1
        self._start = self._ended_at = now
        self._requested_pressure = 0.0
        self._requested_heat = False
        self._ceiling = self._hard_cap
        self._cap_before_lowering = self._hard_cap
        self._cap_lowered_at = -math.inf
        self._over_events = 0
        self._heat_used = 0.0
        self._heat_time_alarmed = False
        self._heat_disabled = False
        self._thermostat_heating = True
        self._follow.reset()
        self._overshoot = 0.0
        self._after = None
        self._report_after_end = False
        problems = _checklist_problems(checklist)
        if problems:
            self._state = SessionState.ENDED
            self._ended_by = EndReason.CHECKLIST
            self._raise(
                AlarmCode.CONTRAINDICATION,
                "session refused: " + "; ".join(problems),
                now,
            )
            return
        self._state = SessionState.RUNNING
        self._ended_by = None

    def _on_acknowledge(self, now: float, refusals: list[str]) -> None:
        if self._state is not SessionState.LATCHED:
            return
        lim = self._lim
        if not self._skin_fresh(now):
            refusals.append("latch kept: no fresh valid skin reading shows the foot has cooled")
            return
        if self._fresh_c >= lim.heater_reenable_below_c:
            refusals.append(
                f"latch kept: skin {self._fresh_c:.1f} °C, must be below "
                f"{lim.heater_reenable_below_c:.1f} °C"
            )
            return
        self._state = SessionState.ENDED
        self._clear(AlarmCode.OVER_TEMPERATURE_LATCH)

    def _on_caregiver(self, request: CaregiverRequest, now: float) -> CommandResult:
        rid = (
            request.request_id if isinstance(request.request_id, str) else repr(request.request_id)
        )
        try:
            action = CaregiverAction(request.action)
        except (ValueError, TypeError):
            return CommandResult(rid, str(request.action), False, "unknown action")
        running = self._state is SessionState.RUNNING
        if action is CaregiverAction.STOP:
            if not running:
                return CommandResult(rid, action, True, "no session running")
            self._raise(AlarmCode.CAREGIVER_STOP, "a caregiver stopped the session", now)
            self._end(EndReason.CAREGIVER, now)
            return CommandResult(rid, action, True, "session stopped")
        if action is CaregiverAction.HEATER_OFF:
            if not running:
                return CommandResult(rid, action, True, "no session running; the heater is off")
            self._heat_disabled = True
            return CommandResult(rid, action, True, "heater off for the rest of the session")
        amount = request.amount_mmhg
        if amount is None:
            amount = self._lim.caregiver_lower_default_mmhg
        if isinstance(amount, bool) or not isinstance(amount, (int, float)):
            return CommandResult(rid, action, False, "amount must be a number of mmHg")
        if not _isfinite(amount) or amount <= 0.0:
            return CommandResult(rid, action, False, "amount must be a positive number of mmHg")
        if not running:
            return CommandResult(rid, action, False, "no session running")
        before = self._cap_in_force()
        self._ceiling = max(0.0, self._ceiling - amount)
        self._cap_before_lowering = max(before, self._over_cap_reference(now))
        self._cap_lowered_at = now
        return CommandResult(
            rid, action, True, f"pressure ceiling now {self._cap_in_force():.1f} mmHg"
        )

    def _over_pressure_event(self, now: float) -> None:
        self._pressure_hold = True
        self._over_events += 1
        if self._over_events >= self._lim.pressure_over_cap_max_events:
            self._end(EndReason.FAULT, now)

    def _end(self, reason: EndReason, now: float) -> None:
        if self._state is SessionState.RUNNING:
            self._state = SessionState.ENDED
            self._ended_by = reason
            self._ended_at = now
            self._start_after_watch()

    def _start_after_watch(self) -> None:
        """Supervision goes on after the session until the massager shows it is safe."""
        self._after = AFTER_WATCHING
        self._report_after_end = False
        self._first_end = None
        self._settled_since = None

    def _latch(self, celsius: float, now: float) -> None:
        if self._state is SessionState.LATCHED:
            return
        if self._state is SessionState.RUNNING:
            self._ended_at = now
            self._start_after_watch()
        self._state = SessionState.LATCHED
        self._ended_by = EndReason.FAULT
        self._raise(
            AlarmCode.OVER_TEMPERATURE_LATCH,
            f"skin at {celsius:.1f} °C (latch {self._lim.latch_c:.1f} °C): session stopped; "
            "take your foot out, check it for burns, and once it has cooled make an alarm "
            "reset (soleguard alarm reset)",
            now,
        )

    def _post_session_fault(self, now: float, problem: str) -> None:
        """An actuator fault found after the session, even once it had looked safe."""
        if (
            self._after not in (AFTER_WATCHING, AFTER_SAFE, AFTER_UNVERIFIED)
            or self._state is SessionState.RUNNING
        ):
            return
        self._after_fault(now, [problem])

    def _after_fault(self, now: float, problems: list[str]) -> None:
        self._after = AFTER_FAULT
        first = self._first_end if self._first_end is not None else self._ended_by
        self._first_end = first
        self._ended_by = EndReason.FAULT
        self._raise(
            AlarmCode.POST_SESSION_UNSAFE,
            f"after the session ended ({first}), "
            + ", ".join(problems)
            + ": take your foot out of the massager and unplug it",
            now,
        )

    def _on_watch_cut_short(self, now: float) -> None:
        """The process ends before the watch is done: judge what the massager has shown."""
        if self._after != AFTER_WATCHING:
            return
        if self._report_after_end and self._reported_energised:
            # Told to stop, it still reports heating: the lease is the only thing left to end it.
            self._after_fault(now, ["SoleGuard was stopped while the heater was still energised"])
            return
        self._after = AFTER_UNVERIFIED

    def _evaluate_after_session(self, now: float) -> None:
        """After a session: heater off, bladder vented and lease released within the bound."""
        if self._after != AFTER_WATCHING:
            return
        lim = self._lim
        problems = []
        if not self._report_after_end:
            problems.append("no status from the massager since")
        else:
            if self._reported_energised:
                problems.append("the heater is still energised")
            p = self._reported_pressure
            if p is None or p >= lim.post_session_pressure_floor_mmhg:
                shown = "unknown" if p is None else f"{p:.0f} mmHg"
                problems.append(f"the bladder still holds {shown}")
            if self._reported_lease is True:
                problems.append("it still holds an actuator lease")
        if not problems:
            if self._settled_since is None:
                self._settled_since = now
            if now - self._settled_since >= lim.post_session_confirm_s:
                self._after = AFTER_SAFE
            return
        self._settled_since = None
        if now - self._ended_at < lim.post_session_bound_s:
            return
        self._after_fault(now, [f"{lim.post_session_bound_s:.0f} s on", *problems])


def _checklist_problems(checklist: object) -> list[str]:
    """Why the checklist refuses the session; empty when it allows it. Garbage refuses."""
    if not isinstance(checklist, ChecklistResult):
        return ["checklist missing"]
    try:
        contraindications = sorted(str(c) for c in checklist.contraindications)
        findings = sorted(str(f) for f in checklist.inspection_findings if f in BLOCKING_FINDINGS)
    except TypeError:
        return ["checklist unreadable"]
    problems = []
    if contraindications:
        problems.append("contraindication: " + ", ".join(contraindications))
    if findings:
        problems.append("foot inspection found: " + ", ".join(findings))
    if checklist.inspection_required is not False and checklist.inspection_done is not True:
        problems.append("the daily foot inspection was not done")
    return problems
