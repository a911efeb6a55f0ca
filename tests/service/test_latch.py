"""The over-temperature latch outlives the session and the process (issue 10, item 6).

Real parts: the SQLite journal on disk, a second Python process reading it, the simulated skin
sensor over BleakClient on bumble's virtual radio for the alarm reset's fresh reading.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import pytest

from controller.ble.access import open_ble
from controller.errors import AlarmLatched
from controller.service.alarm_reset import judge_alarm_reset, reset_latch
from controller.service.recorder import Recorder
from controller.service.simulated import run_simulated_session
from controller.settings import SafetyLimits, effective_limits
from controller.store import Store
from controller.store.latch import latch_in_force, record_latch
from controller.treatment.checklist import NO_CONTRAINDICATIONS
from firmware_sim.world import SimWorld
from tests.safety.rig import Rig
from tests.service.support import make_settings

if TYPE_CHECKING:
    from pathlib import Path


def _latched_journal(path: Path) -> None:
    """A session latches: the recorder keeps the latch in the journal, then the process ends."""
    rig = Rig()
    rig.running()
    with Store.open(path) as store:
        recorder = Recorder(cutoff_c=rig.limits.heater_cutoff_c, store=store)
        while rig.skin < 43.2:
            rig.skin = min(43.2, rig.skin + 1.5)  # as fast as skin could (just) warm
            decision = rig.step(rig.report(), rig.reading(), dt=1.0)
            recorder.decision(rig.now, decision)
        assert "OVER_TEMPERATURE_LATCH" in rig.alarms


def _latch_seen_by_another_process(path: Path) -> bool:
    code = textwrap.dedent(
        f"""
        from controller.store import Store
        from controller.store.latch import latch_in_force
        with Store.open({str(path)!r}) as store:
            print(latch_in_force(store) is not None)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return done.stdout.strip() == "True"


def test_a_latch_is_kept_in_the_journal_across_a_process_restart(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    _latched_journal(path)
    assert _latch_seen_by_another_process(path)


async def test_no_session_starts_while_latched(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    _latched_journal(path)
    with Store.open(path) as store, pytest.raises(AlarmLatched, match="alarm reset"):
        await run_simulated_session(
            make_settings(**{"session.max_minutes": 1.0}),
            answers=NO_CONTRAINDICATIONS,
            store=store,
        )


def test_the_supervisor_judges_the_reset_reading() -> None:
    limits = SafetyLimits.defaults()
    assert judge_alarm_reset(limits, 43.4, 35.0) is None
    refused = judge_alarm_reset(limits, 43.4, 39.0)
    assert refused is not None
    assert "38.0" in refused
    assert judge_alarm_reset(limits, 43.4, float("nan")) is not None


async def test_alarm_reset_with_a_fresh_sensor_reading_clears_the_latch(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    _latched_journal(path)
    settings = make_settings(**{"session.max_minutes": 1.0})
    limits = effective_limits(settings)
    with Store.open(path) as store:
        async with SimWorld(seed=1) as world, open_ble(settings.ble, local_link=world.link) as ble:
            message = await reset_latch(store, limits, ble, world.sensor_address, device_id="home")
        assert "cleared" in message
        assert latch_in_force(store) is None
        # Caregivers are told: an alert waits in the outbox for the bridge.
        queued = [a.code for a in store.undelivered_alerts("home")]
        assert "OVER_TEMPERATURE_LATCH_RESET" in queued
        # And sessions run again.
        run = await run_simulated_session(settings, answers=NO_CONTRAINDICATIONS, store=store)
        assert run.summary()["ended_by"] == "timer"
    assert not _latch_seen_by_another_process(path)


async def test_alarm_reset_with_a_warm_foot_keeps_the_latch(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    _latched_journal(path)
    settings = make_settings()
    limits = effective_limits(settings)
    with Store.open(path) as store:
        async with SimWorld(seed=1) as world, open_ble(settings.ble, local_link=world.link) as ble:
            world.physics.sensor_c = world.physics.skin_c = 39.5  # still warm
            with pytest.raises(AlarmLatched, match="must be below"):
                await reset_latch(store, limits, ble, world.sensor_address)
        assert latch_in_force(store) is not None


def test_record_latch_keeps_one_latch_in_force(tmp_path: Path) -> None:
    with Store.open(tmp_path / "journal.sqlite") as store:
        first = record_latch(store, latched_at=1.0e9, skin_c=43.1, session_id=None, message="a")
        again = record_latch(store, latched_at=1.0e9 + 5, skin_c=43.5, session_id=None, message="b")
        assert first == again
        latch = latch_in_force(store)
        assert latch is not None
        assert latch.skin_c == pytest.approx(43.1)
