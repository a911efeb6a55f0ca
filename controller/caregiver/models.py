"""What the bridge publishes: the device's state, telemetry samples and alerts, and their JSON.

Frozen dataclasses the service fills from supervisor decisions, and pure functions that turn them
into the payloads of DESIGN.md section 4. No I/O here, so the payloads are testable without a
broker and the monitor and Home Assistant templates can rely on one spelling of every key.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from controller.safety import Priority

__all__ = [
    "SENSOR_HEALTH_STATES",
    "ActiveAlarm",
    "AlertLike",
    "DeviceState",
    "TelemetrySample",
    "alert_payload",
    "iso_utc",
    "safety_fields",
    "state_payload",
    "telemetry_payload",
]


@dataclass(frozen=True, slots=True)
class ActiveAlarm:
    """One active alarm as the caregiver sees it: its code and IEC 60601-1-8 priority."""

    code: str
    priority: Priority


# What the skin sensor's reading is worth right now; only "ok" lets a temperature be published.
SENSOR_HEALTH_STATES = ("ok", "stale", "invalid", "disconnected", "unknown")


@dataclass(frozen=True, slots=True)
class DeviceState:
    """The latest picture of one massager-and-sensor pair, as a caregiver sees it.

    Equality decides whether a new state is worth publishing, so keep wall-clock times out of it.
    Every key means one thing on every topic: ``pressure_mmhg`` is the bladder pressure the
    massager measured (``None`` when unknown), ``pressure_target_mmhg`` the pressure the
    supervisor commanded, ``pressure_cap_mmhg`` the ceiling in force. ``skin_temp_c`` is
    published only while ``sensor_health`` is ``"ok"`` (see :func:`state_payload`).
    """

    session_state: str = "idle"
    pressure_mmhg: float | None = None
    pressure_target_mmhg: float = 0.0
    pressure_cap_mmhg: float = 0.0
    heater_on: bool = False
    skin_temp_c: float | None = None
    sensor_health: str = "unknown"
    battery_pct: int | None = None
    remaining_s: float | None = None
    over_temperature: bool = False
    massager_connected: bool = False
    sensor_connected: bool = False
    active_alarms: tuple[ActiveAlarm, ...] = field(default_factory=tuple)


def safety_fields(state: DeviceState) -> tuple[object, ...]:
    """The fields whose change a caregiver must see at once (the bridge publishes it within
    milliseconds); a change of any other field (a measured value drifting, the countdown) waits
    for the next state message, at most one a second."""
    return (
        state.session_state,
        state.heater_on,
        state.over_temperature,
        state.sensor_health,
        state.skin_temp_c is None,
        state.pressure_mmhg is None,
        # Not the target: it ramps by 0.1 mmHg a tick. A caregiver's lower_pressure moves the
        # cap, a stop the session state; both are here.
        state.pressure_cap_mmhg,
        state.massager_connected,
        state.sensor_connected,
        state.active_alarms,
    )


@dataclass(frozen=True, slots=True)
class TelemetrySample:
    """One reading during a session (the service sends one a second), for the telemetry topic.

    ``time`` epoch s; pressures in mmHg (the measured one None until the massager reported
    one; the target the supervisor's command); ``skin_temp_c`` in °C, None unless the reading
    is fresh and valid (the same rule as `DeviceState`).
    """

    time: float
    pressure_mmhg: float | None  # measured; None when the massager has not reported one
    skin_temp_c: float | None
    heater_on: bool
    pressure_target_mmhg: float | None = None
    session_id: int | None = None


class AlertLike(Protocol):
    """The fields of an outbox alert the payload needs (``controller.store.OutboxAlert``)."""

    @property
    def id(self) -> str:
        """Unique alert id (hex text)."""

    @property
    def device_id(self) -> str:
        """The device that raised it."""

    @property
    def time(self) -> float:
        """When it was raised (epoch s)."""

    @property
    def priority(self) -> str:
        """IEC 60601-1-8 priority: a `Priority` value ("high", "medium" or "low")."""

    @property
    def code(self) -> str:
        """Alarm code (UPPER_SNAKE, docs/safety.md)."""

    @property
    def message(self) -> str:
        """One line for the caregiver."""

    @property
    def session_id(self) -> int | None:
        """The journal session it belongs to, if any."""

    @property
    def condition(self) -> str:
        """Id of the alert condition it belongs to."""

    @property
    def event(self) -> str:
        """What happened to the condition: "raised", "updated" or "cleared"."""

    @property
    def occurrences(self) -> int:
        """How many times the condition has occurred."""


def iso_utc(epoch_s: float) -> str:
    """ISO 8601 in UTC with milliseconds and a ``Z``, what JavaScript and HA parse alike."""
    stamp = datetime.fromtimestamp(epoch_s, tz=UTC)
    return stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _finite(value: float | None, digits: int) -> float | None:
    # JSON has no NaN: a NaN reading would make the whole payload unparsable for strict consumers.
    if value is None or not math.isfinite(value):
        return None
    return round(value, digits)


def _dumps(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def state_payload(state: DeviceState, *, device_id: str, now: float) -> bytes:
    """The retained ``state`` JSON. A skin temperature that is not fresh is ``null``: Home
    Assistant then shows *unknown*, never the last good value beside a stale sensor."""
    skin = state.skin_temp_c if state.sensor_health == "ok" else None
    return _dumps(
        {
            "device": device_id,
            "time": iso_utc(now),
            "session_state": state.session_state,
            "pressure_mmhg": _finite(state.pressure_mmhg, 1),
            "pressure_target_mmhg": _finite(state.pressure_target_mmhg, 1),
            "pressure_cap_mmhg": _finite(state.pressure_cap_mmhg, 1),
            "heater_on": state.heater_on,
            "skin_temp_c": _finite(skin, 2),
            "sensor_health": state.sensor_health,
            "battery_pct": state.battery_pct,
            "remaining_s": None if state.remaining_s is None else _finite(state.remaining_s, 0),
            "over_temperature": state.over_temperature,
            "massager_connected": state.massager_connected,
            "sensor_connected": state.sensor_connected,
            "alarms": [{"code": a.code, "priority": a.priority} for a in state.active_alarms],
        }
    )


def telemetry_payload(sample: TelemetrySample, *, device_id: str) -> bytes:
    """The JSON telemetry message of ``sample`` (UTF-8 bytes): time as ISO 8601 UTC, °C, mmHg."""
    return _dumps(
        {
            "device": device_id,
            "time": iso_utc(sample.time),
            "pressure_mmhg": _finite(sample.pressure_mmhg, 1),
            "pressure_target_mmhg": _finite(sample.pressure_target_mmhg, 1),
            "skin_temp_c": _finite(sample.skin_temp_c, 2),
            "heater_on": sample.heater_on,
            "session_id": sample.session_id,
        }
    )


def alert_payload(alert: AlertLike, *, event: str | None = None) -> bytes:
    """The ``alert`` JSON: ``id`` is the alarm condition's (the same for its raised, updated and
    cleared messages, and what a caregiver acknowledges), ``message_id`` this message's own.
    ``event`` overrides the alert's (``"reannounced"`` for a repeat of an unacknowledged one)."""
    return _dumps(
        {
            "id": alert.condition,
            "message_id": alert.id,
            "event": event or alert.event,
            "occurrences": alert.occurrences,
            "device": alert.device_id,
            "priority": alert.priority,
            "code": alert.code,
            "message": alert.message,
            "time": iso_utc(alert.time),
            "session_id": alert.session_id,
        }
    )
