"""A small driver for example-based supervisor tests: virtual time, links, readings, reports."""

from __future__ import annotations

import dataclasses
import os
import random
from typing import Any

from controller.safety import (
    ChecklistResult,
    Decision,
    DeviceKind,
    Event,
    LinkChanged,
    MassagerReport,
    SkinReading,
    StartSession,
    Supervisor,
    UserRequest,
)
from controller.settings import SafetyLimits

GOOD_CHECKLIST = ChecklistResult(inspection_done=True)
TICK = 0.1


def clock_offset() -> float:
    """A realistic monotonic start time: seconds since boot, from minutes to days.

    Drawn at random for each rig (``SOLEGUARD_TEST_CLOCK`` pins it to replay a failure): a test
    clock starting at 0 hides every ``now - t`` / ``now + t`` mistake.
    """
    pinned = os.environ.get("SOLEGUARD_TEST_CLOCK")
    if pinned is not None:
        return float(pinned)
    return round(random.uniform(60.0, 5 * 86400.0), 1)


class Rig:
    def __init__(
        self, limits: SafetyLimits | None = None, *, start: float | None = None, **changes: Any
    ) -> None:
        base = limits if limits is not None else SafetyLimits.defaults()
        self.limits = dataclasses.replace(base, **changes) if changes else base
        self.sup = Supervisor(self.limits)
        self.start_time = clock_offset() if start is None else start
        self.now = self.start_time
        self.decision: Decision = self.sup.step(self.now)
        self.skin = 34.0
        self.measured = 0.0
        self.energised = False
        self.pad: float | None = None  # not reported unless a test sets it
        self.lease: bool | None = None
        self.alarms: list[str] = []  # codes of every new alarm, in order

    def step(self, *events: Event, dt: float = TICK) -> Decision:
        self.now = round(self.now + dt, 9)
        self.decision = self.sup.step(self.now, events)
        self.alarms.extend(a.code for a in self.decision.new_alarms)
        return self.decision

    def report(self, **changes: Any) -> MassagerReport:
        fields: dict[str, Any] = {
            "time": self.now,
            "pressure_mmhg": self.measured,
            "heater_energised": self.energised,
            "cutout_latched": False,
            "fault": 0,
            "battery_percent": 80,
            "pad_c": self.pad,
            "lease_active": self.lease,
        }
        fields.update(changes)
        return MassagerReport(**fields)

    def reading(self, celsius: float | None = None) -> SkinReading:
        return SkinReading(self.now, self.skin if celsius is None else celsius)

    def connect(self) -> Decision:
        self.step(LinkChanged(DeviceKind.MASSAGER, True), LinkChanged(DeviceKind.SENSOR, True))
        return self.step(self.report(), self.reading())

    def start(
        self, checklist: ChecklistResult = GOOD_CHECKLIST, pressure: float = 40.0, heat: bool = True
    ) -> Decision:
        return self.step(StartSession(checklist), UserRequest(pressure, heat))

    def running(self) -> Decision:
        """Connected, session started, pressure and heat requested, one fresh reading."""
        self.connect()
        return self.start()

    def run(self, seconds: float, *extra: Event, readings: bool = True) -> Decision:
        """Advance in 0.1 s ticks with a report every tick and a reading every second."""
        ticks = round(seconds / TICK)
        for i in range(ticks):
            events: list[Event] = [self.report()]
            if readings and i % 10 == 9:
                events.append(self.reading())
            if i == 0:
                events.extend(extra)
            self.step(*events)
        return self.decision
