"""What the safety supervisor is told: readings, device status, link changes and requests.

Plain frozen slotted dataclasses with no validation of their own: values come from the wire, from
MQTT or from a user, and the supervisor judges every one of them (a NaN reading, a negative amount,
an unknown caregiver action are all legal events that the supervisor refuses or ignores).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "BLOCKING_FINDINGS",
    "CONTRAINDICATIONS",
    "Acknowledge",
    "AlarmReset",
    "CaregiverAction",
    "CaregiverRequest",
    "ChecklistResult",
    "DeviceKind",
    "Event",
    "Finding",
    "LatchInForce",
    "LinkChanged",
    "MassagerReport",
    "SensorPace",
    "SkinReading",
    "StartSession",
    "UserRequest",
    "UserStop",
    "WatchCutShort",
]

# The seed article's contraindications: massage must never run over any of these.
CONTRAINDICATIONS = frozenset({"open_wound", "ulcer", "infection", "severe_inflammation"})


class Finding(enum.StrEnum):
    """What a daily foot inspection may find, as the checklist, the diary and the journal spell it.

    NONE stands alone: the inspection found nothing.
    """

    CUT = "cut"
    BLISTER = "blister"
    REDNESS = "redness"
    SWELLING = "swelling"
    OPEN_WOUND = "open_wound"
    ULCER = "ulcer"
    NONE = "none"


# Daily-inspection findings that block the session (the article: "identify minor cuts or blisters
# before they develop into serious infections"). Other findings (dry skin, callus) are recorded
# by the caller but do not block. A contraindication reported as a finding blocks too.
BLOCKING_FINDINGS = frozenset({Finding.CUT.value, Finding.BLISTER.value}) | CONTRAINDICATIONS


class DeviceKind(enum.StrEnum):
    """The two devices a session needs: the massager and the skin sensor."""

    MASSAGER = "massager"
    SENSOR = "sensor"


class CaregiverAction(enum.StrEnum):
    """What a caregiver may ask: stop, heater off, or lower the pressure (never raise it)."""

    STOP = "stop"
    HEATER_OFF = "heater_off"
    LOWER_PRESSURE = "lower_pressure"


@dataclass(frozen=True, slots=True)
class ChecklistResult:
    """The foot-care checklist answered before a session.

    ``contraindications``: any entry refuses the session (unknown names too: a condition the code
    does not know is not assumed harmless). ``inspection_findings``: an entry of
    :data:`BLOCKING_FINDINGS` refuses it. ``inspection_required`` is true for the first session of
    the day; then ``inspection_done`` must be true. ``provider_consulted`` is recorded, not
    enforced (the design table makes it advice, not a gate).
    """

    contraindications: frozenset[str] = frozenset()
    inspection_findings: frozenset[str] = frozenset()
    inspection_required: bool = True
    inspection_done: bool = False
    provider_consulted: bool = False


@dataclass(frozen=True, slots=True)
class SkinReading:
    """A skin temperature as received; ``time`` is the caller's monotonic receive time."""

    time: float
    celsius: float


@dataclass(frozen=True, slots=True)
class MassagerReport:
    """The massager's status notification (5 Hz). ``fault`` is the protocol's fault byte.

    ``pressure_mmhg`` / ``pad_c``: ``None`` when the frame carried an out-of-range value there (a
    sensor fault; the flags and fault byte of that frame still count). ``pad_c`` and
    ``lease_active`` default to ``None`` (not reported) for callers that do not have them.
    ``pressure_target_mmhg``: the firmware's own pressure target, when reported.
    ``invalid_fields``: the protocol names of the fields that were out of range in the frame
    (``pressure``, ``pad_temperature``, ...): a sensor fault in the massager.
    """

    time: float
    pressure_mmhg: float | None
    heater_energised: bool
    cutout_latched: bool
    fault: int
    battery_percent: float | None
    pad_c: float | None = None
    lease_active: bool | None = None
    pressure_target_mmhg: float | None = None
    invalid_fields: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LinkChanged:
    """A link came up or went down. ``time``: when it happened, on the caller's monotonic clock
    (None: at the step that receives it). Readings stamped before a reconnection never count."""

    device: DeviceKind
    connected: bool
    time: float | None = None


@dataclass(frozen=True, slots=True)
class SensorPace:
    """How often the connected skin sensor measures, as the caller learnt it at connection.

    ``period_s``: seconds between measurements: the Health Thermometer's Measurement Interval
    (0x2A21) after any write, or, when it states none, the gap between its first two readings;
    ``0`` means it does not measure periodically (Bluetooth SIG HTS 1.0, 3.4). Sent again whenever
    it changes (a new connection); the latest one holds until then. A period not strictly between
    0 and the stale limit (``pace_fast_enough``) disables heat for the session with one
    information signal (docs/safety.md); a non-finite or negative one counts as unknown (too
    slow).
    """

    period_s: float


@dataclass(frozen=True, slots=True)
class StartSession:
    """The user starts a session with these checklist answers."""

    checklist: ChecklistResult


@dataclass(frozen=True, slots=True)
class UserRequest:
    """What the session's program (or the user) asks for now; the supervisor caps and ramps it."""

    pressure_mmhg: float
    heat_on: bool


@dataclass(frozen=True, slots=True)
class UserStop:
    """The user stops the session."""


@dataclass(frozen=True, slots=True)
class CaregiverRequest:
    """A remote command. ``action`` is a :class:`CaregiverAction` or whatever string arrived."""

    action: CaregiverAction | str
    amount_mmhg: float | None = None
    request_id: str = ""


@dataclass(frozen=True, slots=True)
class AlarmReset:
    """The user's alarm reset (IEC 60601-1-8) of the over-temperature latch.

    Accepted only with a fresh valid skin reading below the re-enable threshold.
    """


Acknowledge = AlarmReset  # the name before IEC 60601-1-8 vocabulary; the same event


@dataclass(frozen=True, slots=True)
class LatchInForce:
    """The journal holds an over-temperature latch from an earlier session or process.

    ``celsius``: the skin reading that latched it. The supervisor enters LATCHED (no session
    starts) until an :class:`AlarmReset` is accepted.
    """

    celsius: float


@dataclass(frozen=True, slots=True)
class WatchCutShort:
    """The controller's process is ending before the post-session watch could finish.

    A signal must end the process within 2 s (issue 11), shorter than the watch's bound. The
    supervisor then judges what the massager has shown since the end: a heater still reported
    energised is a post-session fault (HIGH), anything else not yet confirmed is "unverified".
    """


Event = (
    SkinReading
    | MassagerReport
    | LinkChanged
    | StartSession
    | UserRequest
    | UserStop
    | CaregiverRequest
    | AlarmReset
    | LatchInForce
    | SensorPace
    | WatchCutShort
)
