"""The outcome-supervision scenarios (issue 10) on several seeds, end to end over BleakClient.

Each run draws its own noise and fault parameters from the seed; the expected ending and alarms
are the table's (tests/service/test_scenarios.py, docs/safety.md).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from typing import TYPE_CHECKING

import pytest

from controller.safety import EndReason
from controller.service.simulated import run_simulated_session
from controller.settings import effective_limits
from controller.store import Store
from controller.treatment.checklist import NO_CONTRAINDICATIONS
from tests.service.support import LATCH_C, make_settings, simulated
from tests.service.test_scenarios import EXPECTED

if TYPE_CHECKING:
    from pathlib import Path

    from controller.service.runner import SessionRunner
    from firmware_sim.world import SimWorld

SEEDS = (1, 2, 3)
ONSET_S = 30.0  # the scenarios' default onset, on the world's clock
NEW = (
    "sensor-detached",
    "sensor-stuck-warm",
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
    if expected.ended_by is EndReason.TIMER:
        assert summary["after_session"] == "safe"
    for step in session.log.steps:
        if step.decision.command.heater_on:
            assert step.decision.skin_fresh
        assert step.decision.command.pressure_mmhg <= limits.pressure_cap_mmhg
    if scenario == "sensor-stuck-warm":
        # Heat off for the rest of the session once the alarm is raised.
        first = next(
            s
            for s in session.log.steps
            if any(a.code == "SENSOR_NOT_FOLLOWING" for a in s.decision.new_alarms)
        )
        later = session.log.steps[session.log.steps.index(first) :]
        assert not any(s.decision.command.heater_on for s in later)
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


async def test_heater_stuck_on_demo_reports_the_post_session_fault_in_summary_and_journal(
    tmp_path: Path,
) -> None:
    # `soleguard demo --scenario heater-stuck-on --minutes 2 --speed max --json`, with a journal.
    settings = make_settings(**{"session.max_minutes": 2.0})
    with Store.open(tmp_path / "journal.sqlite") as store:
        run = await run_simulated_session(
            settings, answers=NO_CONTRAINDICATIONS, scenario="heater-stuck-on", store=store
        )
        summary = run.summary()
        assert summary["ended_by"] == "fault"  # never a plain "timer"
        assert summary["after_session"] == "fault"
        codes = {(a["code"], a["priority"]) for a in summary["alarms"]}
        assert ("POST_SESSION_UNSAFE", "high") in codes
        unsafe = next(a for a in summary["alarms"] if a["code"] == "POST_SESSION_UNSAFE")
        assert "heater is still energised" in unsafe["message"]
        record = store.sessions(simulated=True)[-1]
        assert record.ended_by is EndReason.FAULT
        journal_codes = {alarm.code for alarm in store.alarms(record.id)}
        assert "POST_SESSION_UNSAFE" in journal_codes


@pytest.mark.parametrize("scenario", ["heater-stuck-on", "normal"])
async def test_a_signal_ends_the_watch_with_a_verdict_never_a_plain_ending(
    tmp_path: Path, scenario: str
) -> None:
    """A signal cuts the post-session watch to SIGNALLED_WATCH_S (the process must end within
    2 s): a heater that still reports energised after STOP is a HIGH post-session fault in the
    summary and the journal; a healthy massager is "safe" or "unverified", never an alarm."""
    settings = make_settings(**{"session.max_minutes": 5.0})
    runners: list[SessionRunner] = []
    worlds: list[SimWorld] = []
    started = asyncio.Event()

    def keep_runner(runner: SessionRunner) -> None:
        runners.append(runner)
        started.set()

    async def signal_mid_session() -> None:
        await started.wait()
        # Well after the weld (the scenario's onset is within its first minutes); virtual time.
        await asyncio.sleep(max(0.0, 200.0 - worlds[0].elapsed()))
        runners[0].request_stop(EndReason.SIGINT)

    with Store.open(tmp_path / "journal.sqlite") as store:
        stopper = asyncio.create_task(signal_mid_session())
        run = await run_simulated_session(
            settings,
            answers=NO_CONTRAINDICATIONS,
            scenario=scenario,
            store=store,
            on_runner=keep_runner,
            on_world=worlds.append,
        )
        await stopper
        summary = run.summary()
        codes = {(a["code"], a["priority"]) for a in summary["alarms"]}
        record = store.sessions(simulated=True)[-1]
        journal_codes = {alarm.code for alarm in store.alarms(record.id)}
    assert summary["duration_s"] < 5 * 60  # the signal ended it, not the timer
    if scenario == "heater-stuck-on":
        assert summary["ended_by"] == "fault"
        assert summary["after_session"] == "fault"
        assert ("POST_SESSION_UNSAFE", "high") in codes
        assert "POST_SESSION_UNSAFE" in journal_codes
        assert record.ended_by is EndReason.FAULT
    else:
        assert summary["ended_by"] == "sigint"
        assert summary["after_session"] in ("safe", "unverified")
        assert not any(priority == "high" for _, priority in codes)


async def test_commands_refused_under_a_latched_cut_out_log_no_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """README's fault example: with the cut-out latched the firmware refuses every command but
    STOP. A refused Write Without Response gets no answer by ATT's rules, and must not surface as
    bumble's "ignoring exception" traceback on the user's terminal (6-9 per run before)."""
    settings = make_settings(**{"session.max_minutes": 20.0})
    with caplog.at_level(logging.INFO):
        run = await run_simulated_session(
            settings, answers=NO_CONTRAINDICATIONS, scenario="heater-stuck-on"
        )
    assert "FIRMWARE_CUTOUT" in {a["code"] for a in run.summary()["alarms"]}
    refused = [
        r for r in caplog.records if "refused" in r.getMessage() and "cut-out" in r.getMessage()
    ]
    assert refused  # the firmware did refuse commands while latched
    assert not [r for r in caplog.records if r.exc_info is not None], [
        r.getMessage() for r in caplog.records if r.exc_info is not None
    ]
