"""Alarm conditions (IEC 60601-1-8): every code with its priority and its lifetime.

A code is a ``str`` (a :class:`enum.StrEnum` member), so everything downstream (MQTT alerts, the
journal, the live view) keeps handling plain strings. ``priority`` is the priority a code is
raised with (PRESSURE_OVER_CAP alone is raised HIGH above the 70 mmHg hard limit, see
docs/safety.md); ``per_session`` codes describe one session's events and clear when the next
session starts, the others describe a condition and clear when it does (the latch: on an alarm
reset). :class:`AlarmBook` holds the active alarms of one supervisor.
"""

from __future__ import annotations

import enum

from controller.safety.decision import PRIORITY_RANK, Alarm, Priority

__all__ = ["AlarmBook", "AlarmCode"]


class AlarmCode(enum.StrEnum):
    """Every alarm the supervisor raises: ``(code, priority, per_session)``."""

    priority: Priority
    per_session: bool

    def __new__(cls, value: str, priority: Priority, per_session: bool) -> AlarmCode:
        """A member with its code, IEC 60601-1-8 priority and whether a new session clears it."""
        member = str.__new__(cls, value)
        member._value_ = value
        member.priority = priority
        member.per_session = per_session
        return member

    # High: burn or pressure risk, latch, an actuator not obeying.
    OVER_TEMPERATURE_LATCH = ("OVER_TEMPERATURE_LATCH", Priority.HIGH, False)
    FIRMWARE_CUTOUT = ("FIRMWARE_CUTOUT", Priority.HIGH, False)
    HEATER_NOT_RESPONDING = ("HEATER_NOT_RESPONDING", Priority.HIGH, False)
    PRESSURE_NOT_FOLLOWING = ("PRESSURE_NOT_FOLLOWING", Priority.HIGH, False)
    PRESSURE_SENSOR_FAULT = ("PRESSURE_SENSOR_FAULT", Priority.HIGH, True)
    POST_SESSION_UNSAFE = ("POST_SESSION_UNSAFE", Priority.HIGH, True)
    FIRMWARE_OVER_PRESSURE = ("FIRMWARE_OVER_PRESSURE", Priority.HIGH, False)
    MASSAGER_FAULT = ("MASSAGER_FAULT", Priority.HIGH, True)
    # Raised MEDIUM, or HIGH above the hard limit.
    PRESSURE_OVER_CAP = ("PRESSURE_OVER_CAP", Priority.MEDIUM, False)
    # Medium: a sensor or a link that cannot be trusted; a refused session.
    SENSOR_NOT_FOLLOWING = ("SENSOR_NOT_FOLLOWING", Priority.MEDIUM, True)
    SENSOR_STALE = ("SENSOR_STALE", Priority.MEDIUM, False)
    SENSOR_INVALID = ("SENSOR_INVALID", Priority.MEDIUM, False)
    SENSOR_LINK_LOST = ("SENSOR_LINK_LOST", Priority.MEDIUM, False)
    MASSAGER_LINK_LOST = ("MASSAGER_LINK_LOST", Priority.MEDIUM, False)
    MASSAGER_SILENT = ("MASSAGER_SILENT", Priority.MEDIUM, False)
    MASSAGER_REBOOTED = ("MASSAGER_REBOOTED", Priority.MEDIUM, False)
    PAD_SENSOR_FAULT = ("PAD_SENSOR_FAULT", Priority.MEDIUM, True)
    CONTRAINDICATION = ("CONTRAINDICATION", Priority.MEDIUM, True)
    # Low: information signals.
    BATTERY_LOW = ("BATTERY_LOW", Priority.LOW, False)
    SENSOR_TOO_SLOW = ("SENSOR_TOO_SLOW", Priority.LOW, True)
    HEAT_TIME_USED = ("HEAT_TIME_USED", Priority.LOW, True)
    SESSION_TIME_UP = ("SESSION_TIME_UP", Priority.LOW, True)
    CAREGIVER_STOP = ("CAREGIVER_STOP", Priority.LOW, True)


class AlarmBook:
    """The active alarms of one supervisor, and those raised in the current step."""

    __slots__ = ("_active", "_alarms", "_dirty", "new")

    def __init__(self) -> None:
        self._alarms: dict[str, Alarm] = {}
        self._active: tuple[Alarm, ...] = ()
        self._dirty = False
        self.new: list[Alarm] = []

    def __contains__(self, code: object) -> bool:
        return code in self._alarms

    def raise_(
        self, code: AlarmCode, message: str, now: float, priority: Priority | None = None
    ) -> None:
        """Raise ``code`` once per occurrence, at ``priority`` (default: the code's own).

        ``now``: seconds on the supervisor's clock (the caller's monotonic time plus any
        clock-step offset, see ``Supervisor.step``), stored as ``Alarm.time``. A code already
        active at the same or a higher priority is left as it is (not raised again, its time
        kept); at a higher priority it is raised again and appended to ``new``. Raises nothing.
        """
        level = code.priority if priority is None else priority
        current = self._alarms.get(code)
        if current is not None and PRIORITY_RANK[current.priority] >= PRIORITY_RANK[level]:
            return
        alarm = Alarm(level, code, message, now)
        self._alarms[code] = alarm
        self._dirty = True
        self.new.append(alarm)

    def clear(self, code: AlarmCode) -> None:
        """End the alarm ``code`` if it is active."""
        if code in self._alarms:
            del self._alarms[code]
            self._dirty = True

    def clear_session(self) -> None:
        """A new session: the previous one's per-session alarms are over."""
        for code in AlarmCode:
            if code.per_session:
                self.clear(code)

    def active(self) -> tuple[Alarm, ...]:
        """The active alarms, in the order they were raised."""
        if self._dirty:
            self._active = tuple(self._alarms.values())
            self._dirty = False
        return self._active
