"""The outcome-supervision scenarios (issue 10) on several seeds, end to end over BleakClient.

Each run draws its own noise and fault parameters from the seed; the expected ending and alarms
are the table's (tests/service/test_scenarios.py, docs/safety.md).
"""

from __future__ import annotations

import itertools

import pytest

from controller.settings import effective_limits
from tests.service.support import LATCH_C, make_settings, simulated
from tests.service.test_scenarios import EXPECTED

SEEDS = (1, 2, 3)
ONSET_S = 30.0  # the scenarios' default onset, on the world's clock
NEW = (
    "sensor-detached",
    "vent-stuck",
    "heater-intermittent",
    "pressure-intermittent",
    "bursty-link",
    "corrupt-status",
)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("scenario", NEW)
async def test_outcome_scenario_ends_as_expected_on_every_seed(scenario: str, seed: int) -> None:
    expected = EXPECTED[scenario]
    settings = make_settings(**{"session.max_minutes": expected.minutes})
    limits = effective_limits(settings)
    session = await simulated(settings, scenario=scenario, seed=seed)
    assert session.run is not None
    summary = session.run.summary()
    assert summary["max_skin_c"] < LATCH_C
    assert summary["ended_by"] == expected.ended_by
    raised = {(alarm.code, alarm.priority) for alarm in session.log.new_alarms()}
    for code, priority in expected.required.items():
        assert (code, priority) in raised, f"{code} ({priority}) not raised; got {raised}"
    assert {code for code, _ in raised} <= set(expected.required) | expected.allowed
    # The watch after the session gives a verdict, and a fault ending says so.
    assert summary["after_session"] in ("safe", "fault")
    if expected.ended_by == "timer":
        assert summary["after_session"] == "safe"
    for step in session.log.steps:
        if step.decision.command.heater_on:
            assert step.decision.skin_fresh
        assert step.decision.command.pressure_mmhg <= limits.pressure_cap_mmhg
    if scenario == "sensor-detached":
        first = next(
            s
            for s in session.log.steps
            if any(a.code == "SENSOR_NOT_FOLLOWING" for a in s.decision.new_alarms)
        )
        assert first.elapsed - ONSET_S <= 120.0
        later = session.log.steps[session.log.steps.index(first) :]
        assert not any(s.decision.command.heater_on for s in later)
    if scenario == "vent-stuck":
        # Within 5 s of the command it ignores: the first lower command after the onset.
        raised_at = next(
            s.elapsed
            for s in session.log.steps
            if any(a.code == "PRESSURE_NOT_FOLLOWING" for a in s.decision.new_alarms)
        )
        steps = session.log.steps
        lowered_at = next(
            b.elapsed
            for a, b in itertools.pairwise(steps)
            if b.elapsed >= ONSET_S
            and (
                b.decision.command.pressure_mmhg < a.decision.command.pressure_mmhg
                or (b.decision.command.stop and not a.decision.command.stop)
            )
        )
        assert raised_at - lowered_at <= 5.0
