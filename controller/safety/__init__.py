"""The safety supervisor: pure, deterministic, the only code that decides an actuator command.

See docs/safety.md for the rules, their numbers and their sources.
"""

from controller.safety.alarms import AlarmCode
from controller.safety.decision import (
    ActuatorCommand,
    Alarm,
    CommandResult,
    Decision,
    EndReason,
    Priority,
    SessionState,
)
from controller.safety.events import (
    BLOCKING_FINDINGS,
    CONTRAINDICATIONS,
    Acknowledge,
    AlarmReset,
    CaregiverAction,
    CaregiverRequest,
    ChecklistResult,
    DeviceKind,
    Event,
    Finding,
    LatchInForce,
    LinkChanged,
    MassagerReport,
    SensorPace,
    SkinReading,
    StartSession,
    UserRequest,
    UserStop,
    WatchCutShort,
)
from controller.safety.skin import pace_fast_enough
from controller.safety.supervisor import Supervisor

__all__ = [
    "BLOCKING_FINDINGS",
    "CONTRAINDICATIONS",
    "Acknowledge",
    "ActuatorCommand",
    "Alarm",
    "AlarmCode",
    "AlarmReset",
    "CaregiverAction",
    "CaregiverRequest",
    "ChecklistResult",
    "CommandResult",
    "Decision",
    "DeviceKind",
    "EndReason",
    "Event",
    "Finding",
    "LatchInForce",
    "LinkChanged",
    "MassagerReport",
    "Priority",
    "SensorPace",
    "SessionState",
    "SkinReading",
    "StartSession",
    "Supervisor",
    "UserRequest",
    "UserStop",
    "WatchCutShort",
    "pace_fast_enough",
]
