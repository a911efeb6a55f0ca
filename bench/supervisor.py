"""Supervisor decisions per second over a realistic event mix (median of several runs).

The mix per simulated second, at the supervisor's 10 Hz: ten steps, five massager reports,
one skin reading, one program request; every 30 s a sensor glitch (NaN), every 60 s a caregiver
"lower pressure" and a brief link drop. Sessions restart when they end. Prints, asserts nothing.

    .venv/bin/python bench/supervisor.py [--steps N] [--runs R]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

from controller.safety import (
    CaregiverAction,
    CaregiverRequest,
    ChecklistResult,
    DeviceKind,
    Event,
    LinkChanged,
    MassagerReport,
    SessionState,
    SkinReading,
    StartSession,
    Supervisor,
    UserRequest,
)
from controller.settings import SafetyLimits

TICK_S = 0.1


def build_events(steps: int) -> list[list[Event]]:
    """The events of each step, built ahead so the timing is the supervisor's alone."""
    plan: list[list[Event]] = []
    for i in range(steps):
        now = i * TICK_S
        events: list[Event] = []
        if i % 2 == 0:
            events.append(
                MassagerReport(now, 30.0 + 10 * math.sin(now / 5), i % 40 < 20, False, 0, 80)
            )
        if i % 10 == 0:
            skin = 34.0 + 3.5 * (1 - math.exp(-now / 300)) + 0.05 * math.sin(i)
            events.append(SkinReading(now, math.nan if i % 300 == 0 else skin))
            events.append(UserRequest(40.0 + 15 * math.sin(now / 8), True))
        if i % 600 == 0:
            events.append(CaregiverRequest(CaregiverAction.LOWER_PRESSURE, 5.0, f"r{i}"))
        if i % 600 == 300:
            events.append(LinkChanged(DeviceKind.SENSOR, False))
        if i % 600 == 305:
            events.append(LinkChanged(DeviceKind.SENSOR, True))
        plan.append(events)
    return plan


def run_once(plan: list[list[Event]]) -> float:
    sup = Supervisor(SafetyLimits.defaults())
    start_events: list[Event] = [
        LinkChanged(DeviceKind.MASSAGER, True),
        LinkChanged(DeviceKind.SENSOR, True),
        StartSession(ChecklistResult(inspection_done=True)),
    ]
    restart: list[Event] = [StartSession(ChecklistResult(inspection_done=True))]
    sup.step(0.0, start_events)
    step = sup.step
    begin = time.perf_counter()
    for i, events in enumerate(plan, start=1):
        decision = step(i * TICK_S, events)
        if decision.state is not SessionState.RUNNING:
            step(i * TICK_S, restart)
    elapsed = time.perf_counter() - begin
    return len(plan) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    plan = build_events(args.steps)
    rates = [run_once(plan) for _ in range(args.runs)]
    print(f"supervisor: {args.steps} steps x {args.runs} runs")
    median = statistics.median(rates)
    print(f"  decisions/s  median {median:,.0f}  min {min(rates):,.0f}  max {max(rates):,.0f}")
    print(f"  per decision median {1e6 / median:.2f} µs")


if __name__ == "__main__":
    main()
