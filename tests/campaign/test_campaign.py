"""The fault campaign in CI: every scenario, two seeds, short sessions, the same safety verdict.

``python bench/campaign.py`` runs the full campaign (docs/safety-campaign.md); this runs its
``run_campaign`` in-process with 2 seeds of 3-minute sessions, through the whole stack and a
real mosquitto (amqtt when mosquitto is not installed), and fails on any unsafe run.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from firmware_sim.scenarios import SCENARIOS

if TYPE_CHECKING:
    from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
SEEDS = 2
MINUTES = 3.0


def _campaign() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_campaign", ROOT / "bench" / "campaign.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


def test_reduced_campaign_is_safe() -> None:
    campaign = _campaign().run_campaign(seeds=SEEDS, minutes=MINUTES, workers=1, mqtt=True)
    ran = {r["spec"]["scenario"] for r in campaign.results}
    assert ran == set(SCENARIOS)
    assert len(campaign.results) == SEEDS * len(SCENARIOS)
    problems = [(r["spec"], r["problems"], r.get("traceback")) for r in campaign.unsafe]
    assert problems == []
    # Something was watched: every run raised at least its end-of-session alarm, and with the
    # broker every alert was acknowledged (a lost one would be in `problems`).
    assert all(r["alerts_raised"] >= 1 for r in campaign.results)


def test_verdict_flags_what_is_unsafe() -> None:
    """The verdict itself can fail: a burn, a pressure over the cap, a lost alert, a crash."""
    module = _campaign()
    safe: dict[str, Any] = {
        "spec": {"scenario": "normal", "seed": 0, "profile": None},
        "crash": None,
        "max_skin_c": 38.0,
        "cutoff_c": 40.0,
        "cap_mmhg": 60.0,
        "max_commanded_mmhg": 60.0,
        "commands_over_ceiling": 0,
        "max_firmware_target_mmhg": 60.0,
        "max_measured_mmhg": 61.0,
        "longest_spell_s": 0.0,
        "first_spell_at": None,
        "ended_by": "timer",
        "duration_s": 180.0,
        "mqtt": True,
        "alerts_raised": 1,
        "alerts_delivered": 1,
    }
    assert module.verdict(safe) == []
    for change in (
        {"max_skin_c": 43.0},
        {"max_skin_c": 40.31},
        {"max_commanded_mmhg": 60.2},
        {"max_firmware_target_mmhg": 60.1},
        {"max_measured_mmhg": 70.5},
        {"alerts_delivered": 0},
        {"crash": "RuntimeError: boom"},
        {"max_pad_c": 41.2},  # the pad is an applied part: <= 41 °C measured
        {"alarms": ["SENSOR_STALE"]},  # a false alarm on honest input
    ):
        assert module.verdict(safe | change) != [], change
    # Every fault detected: a stuck vent that raised nothing is unsafe, one that did is not.
    vent = safe | {"spec": safe["spec"] | {"scenario": "vent-stuck"}, "ended_by": "fault"}
    assert module.verdict(vent | {"alarms": ["SESSION_TIME_UP"]}) != []
    assert module.verdict(vent | {"alarms": ["PRESSURE_NOT_FOLLOWING"]}) == []
    overshoot = safe | {
        "spec": safe["spec"] | {"scenario": "pressure-overshoot"},
        "alarms": ["PRESSURE_NOT_FOLLOWING"],
    }
    assert (
        module.verdict(
            overshoot
            | {
                "max_measured_mmhg": 85.0,
                "longest_spell_s": 1.2,
                "first_spell_at": 60.0,
                "ended_by": "fault",
                "duration_s": 75.0,
            }
        )
        == []
    )
    assert module.verdict(overshoot | {"longest_spell_s": 1.2, "first_spell_at": 60.0}) != []
    assert (
        module.verdict(
            overshoot
            | {
                "longest_spell_s": 4.0,
                "first_spell_at": 60.0,
                "ended_by": "fault",
                "duration_s": 75.0,
            }
        )
        != []
    )
