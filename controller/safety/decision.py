"""What the safety supervisor answers: the actuator command, the session state, alarms, figures."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import NamedTuple

__all__ = [
    "PRIORITY_RANK",
    "ActuatorCommand",
    "Alarm",
    "CommandResult",
    "Decision",
    "EndReason",
    "Priority",
    "SessionState",
    "priority_rank",
]


class SessionState(enum.StrEnum):
    """Where the supervisor is in the life of a session."""

    IDLE = "idle"  # no session since the supervisor was created
    RUNNING = "running"  # the only state in which anything may be actuated
    ENDED = "ended"  # the last session ended (see ``ended_by``); a new one may start
    LATCHED = "latched"  # over-temperature latch: nothing starts until acknowledged


class EndReason(enum.StrEnum):
    """Why a session ended, as the journal (``sessions.ended_by``), JSON and MQTT spell it.

    The supervisor decides the first five; the last four are recorded above it: a signal to
    the process replaces USER (the service), and INTERRUPTED closes a session whose process
    died (the store, at the next start).
    """

    TIMER = "timer"
    USER = "user"
    CAREGIVER = "caregiver"
    FAULT = "fault"
    CHECKLIST = "checklist"
    SIGINT = "sigint"
    SIGTERM = "sigterm"
    SIGHUP = "sighup"
    INTERRUPTED = "interrupted"


class Priority(enum.StrEnum):
    """Alarm priorities, as IEC 60601-1-8 names them (high, medium, low).

    Source: IEC 60601-1-8 (alarm systems in medical electrical equipment); which condition gets
    which priority is the design's rule (DESIGN.md section 3, its last paragraph), listed code by
    code in docs/safety.md, "Alarm codes"; :class:`~controller.safety.alarms.AlarmCode` holds
    each code's priority. The values are the strings the journal, JSON and MQTT alerts carry.
    """

    HIGH = "high"  # burn or pressure risk, latch, an actuator not obeying
    MEDIUM = "medium"  # a sensor or link that cannot be trusted, refused session
    LOW = "low"  # information signals: battery, heat or session time up, caregiver stop


PRIORITY_RANK = {Priority.LOW: 0, Priority.MEDIUM: 1, Priority.HIGH: 2}


def priority_rank(text: str) -> int:
    """The rank of a priority given as text (the journal's, the wire's): low 0, medium 1, high 2.

    Unknown text ranks 0, as low; raises nothing.
    """
    try:
        return PRIORITY_RANK[Priority(text)]
    except ValueError:
        return 0


@dataclass(frozen=True, slots=True)
class Alarm:
    """One active alarm: IEC 60601-1-8 priority, code (docs/safety.md), message, raise time (s).

    ``time`` is on the supervisor's monotonic clock.
    """

    priority: Priority
    code: str  # stable UPPER_SNAKE, see docs/safety.md
    message: str
    time: float


@dataclass(frozen=True, slots=True)
class ActuatorCommand:
    """What the massager must be told now.

    ``stop``: send STOP (no session running, or a step with a non-finite clock); otherwise send
    the pressure (``pressure_mmhg``, mmHg, already capped and ramped) and heater (``heater_on``,
    with the pad thermostat target ``pad_target_c`` in degC: the skin cut-off, never above
    ``pad_target_max_c``) commands, each carrying ``lease_s`` (s, the firmware's lease; DESIGN.md
    section 3, [APS]). Protocol fields: docs/protocol.md.
    """

    pressure_mmhg: float
    heater_on: bool
    pad_target_c: float
    lease_s: float
    stop: bool


@dataclass(frozen=True, slots=True)
class CommandResult:
    """The answer to one caregiver request, for ``command/result``."""

    request_id: str
    action: str
    accepted: bool
    reason: str


class Decision(NamedTuple):
    """The supervisor's answer to one step. Immutable.

    A NamedTuple rather than a frozen dataclass: a frozen dataclass's ``__init__`` sets each of
    these fields through ``object.__setattr__`` (about 4.5 µs here, a quarter of a step), a
    tuple is built in one call (0.8 µs). The supervisor builds it by keyword, so a field added or
    moved cannot shift the others.
    """

    command: ActuatorCommand
    state: SessionState
    ended_by: EndReason | None
    new_alarms: tuple[Alarm, ...]
    active_alarms: tuple[Alarm, ...]
    command_results: tuple[CommandResult, ...]
    # Local requests that were not carried out (a start while latched, an acknowledge while the
    # skin is still hot), each as one human sentence.
    refusals: tuple[str, ...]
    session_id: int  # increments on every session start, refused ones included
    elapsed_s: float
    remaining_s: float
    heat_used_s: float
    heat_remaining_s: float
    pressure_cap_mmhg: float  # the ceiling in force (profile, caregiver, hard limit)
    measured_pressure_mmhg: float | None
    skin_c: float | None  # the latest valid reading since the sensor (re)connected
    skin_age_s: float | None
    skin_valid: bool  # the latest reading received was valid
    skin_fresh: bool  # a valid reading newer than stale_after_s
    predicted_skin_c: float | None
    heater_block: str | None  # why the heater is off, when a session would like it on
    battery_percent: float | None
    massager_connected: bool
    sensor_connected: bool
    # The watch after the session: None (no session ended yet, or refused), "watching", "safe"
    # (heater off, bladder vented, lease released) or "fault" (not so within the bound).
    after_session: str | None = None
    # The massager is connected and reported within massager_silent_after_s: only then is
    # measured_pressure_mmhg a measurement of now (the caregiver state shows it only then).
    massager_fresh: bool = False
