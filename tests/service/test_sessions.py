"""Whole sessions that end by the timer: skin under the cut-off, pressure under the cap, always.

Each decision of the supervisor is checked (through an observer), not only the session's maxima,
and the skin temperature checked is the simulator's true one, not what the sensor reported.
"""

from __future__ import annotations

import math

import pytest

from controller.settings import effective_limits
from tests.service.support import (
    HARD_PRESSURE_CAP_MMHG,
    OVERSHOOT_BOUND_C,
    make_settings,
    simulated,
)

# Long enough for the pad (~30 s time constant) and then the foot to reach the thermostat's band
# below the 38 °C target (the foot approaches ~38.2 °C slowly); short enough to keep the suite
# quick.
SESSION_MINUTES = 8.0


@pytest.mark.parametrize(
    ("profile", "world_options"),
    [
        pytest.param(None, None, id="typical-foot"),
        pytest.param(None, {"neuropathic": True}, id="neuropathic-foot"),
        pytest.param("diabetic", {"neuropathic": True}, id="diabetic-profile"),
    ],
)
async def test_session_ends_by_timer_under_the_cutoff_and_the_cap(
    profile: str | None, world_options: dict[str, bool] | None
) -> None:
    overrides: dict[str, object] = {"session.max_minutes": SESSION_MINUTES}
    if profile is not None:
        overrides["profile.name"] = profile
    settings = make_settings(**overrides)
    limits = effective_limits(settings)
    session = await simulated(settings, world_options=world_options)
    assert session.run is not None
    assert session.tap is not None
    summary = session.run.summary()

    assert summary["ended_by"] == "timer"
    assert summary["duration_s"] == pytest.approx(SESSION_MINUTES * 60, abs=1.0)
    assert [a["code"] for a in summary["alarms"]] == ["SESSION_TIME_UP"]
    # The heater did its job: the foot got to the thermostat's target band...
    target_band_low = limits.heater_target_c - limits.heater_target_band_c
    assert summary["max_skin_c"] >= target_band_low
    # ...and the true skin temperature never went past the cut-off by more than the bound.
    assert summary["max_skin_c"] <= limits.heater_cutoff_c + OVERSHOOT_BOUND_C

    steps = session.log.steps
    assert len(steps) > SESSION_MINUTES * 60 * 10 * 0.9  # the loop ran at its 10 Hz tick
    for step in steps:
        command = step.decision.command
        assert command.pressure_mmhg <= limits.pressure_cap_mmhg
        assert command.pressure_mmhg <= step.decision.pressure_cap_mmhg
        assert command.pressure_mmhg <= HARD_PRESSURE_CAP_MMHG
        assert command.pad_target_c <= limits.heater_cutoff_c
        assert not math.isnan(step.true_skin_c)
        assert step.true_skin_c <= limits.heater_cutoff_c + OVERSHOOT_BOUND_C
    # The massager itself never received a set-point above the cap or a pad target above the
    # cut-off: what the firmware was told, not what the supervisor meant.
    for received in session.tap.received:
        assert getattr(received.command, "target_mmhg", 0.0) <= limits.pressure_cap_mmhg
        assert getattr(received.command, "pad_target_c", 0.0) <= limits.heater_cutoff_c
    # The pressure program ran (the cap was approached) and the session ended with everything off.
    assert summary["max_pressure_mmhg"] >= limits.pressure_cap_mmhg * 0.8
    assert session.tap.firmware_is_off()
