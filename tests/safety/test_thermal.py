"""The supervisor against the simulator's pad-and-skin thermal model (firmware_sim.physics)."""

from __future__ import annotations

import dataclasses

import pytest

from controller.safety import SessionState
from controller.settings import SafetyLimits
from firmware_sim.physics import PhysicsParams
from tests.safety.closed_loop import run_session

FEET = {"typical": PhysicsParams(), "neuropathic": PhysicsParams.neuropathic()}


@pytest.mark.parametrize("foot", FEET)
def test_default_session_keeps_skin_below_the_cutoff(foot: str) -> None:
    limits = SafetyLimits.defaults()
    trace = run_session(limits, FEET[foot], seconds=limits.max_session_s - 1)
    assert trace.max_skin_c < limits.heater_cutoff_c
    assert trace.decisions[-1].state is SessionState.RUNNING
    assert not [a for d in trace.decisions for a in d.new_alarms]


@pytest.mark.parametrize("foot", FEET)
def test_predictive_cutoff_overshoot_stays_within_a_third_of_a_degree(foot: str) -> None:
    # The thermostat is taken out of the way (target = cut-off) and the pad is driven hotter than
    # the supervisor ever asks (42.5 °C against a 38 °C cut-off), so only the cut-off stops it.
    limits = dataclasses.replace(
        SafetyLimits.defaults(), heater_target_c=38.0, heater_cutoff_c=38.0
    )
    trace = run_session(limits, FEET[foot], seconds=900, pad_target_override_c=42.5)
    assert trace.max_skin_c <= limits.heater_cutoff_c + 0.3
    assert trace.heater_on_s > 60  # it did heat: the bound is not met by never switching on


@pytest.mark.parametrize("foot", FEET)
def test_pad_stays_at_or_below_41_whatever_the_cutoff(foot: str) -> None:
    # The loosest settings: cut-off at its 41 °C hard limit, target at 40 °C. The pad is an
    # applied part (IEC 60601-1: <= 41 °C), measured, not only commanded.
    limits = dataclasses.replace(
        SafetyLimits.defaults(), heater_target_c=40.0, heater_cutoff_c=41.0
    )
    trace = run_session(limits, FEET[foot], seconds=900)
    assert trace.heater_on_s > 300
    assert trace.max_pad_c <= 41.0
    assert trace.decisions[-1].command.pad_target_c <= limits.pad_target_max_c
