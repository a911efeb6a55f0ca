"""The skin thermometers people already own, each in a whole session over the real BLE path.

Every kind of consumer Health Thermometer is played by ``firmware_sim.sensor`` and reached through
``bleak.BleakClient`` over bumble's virtual radio, as in production: one that refuses pairing,
one that notifies instead of indicating, one that measures every 5 s with a writable or a fixed
Measurement Interval (0x2A21), one in Fahrenheit with a timestamp and the type in each
measurement, and one that says it is an ear thermometer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from controller.errors import ConfigError, LinkError
from controller.protocol import TemperatureType, TemperatureUnit
from controller.safety import EndReason, SessionState
from controller.service.runner import SessionObserver
from controller.service.simulated import run_simulated_session
from controller.store import Store
from controller.treatment.checklist import NO_CONTRAINDICATIONS
from firmware_sim import sensor as sensor_module
from tests.service.support import DecisionLog, Session, make_settings, simulated

if TYPE_CHECKING:
    from pathlib import Path

    from firmware_sim.world import SimWorld

SESSION_MINUTES = 3.0
# A consumer thermometer's pace: far slower than the 2 s stale limit.
SLOW_PERIOD_S = 5.0


class Notices(SessionObserver):
    """The lines the session tells the user."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def on_notice(self, text: str) -> None:
        self.lines.append(text)


def heater_ever_commanded(session: Session) -> bool:
    return any(step.decision.command.heater_on for step in session.log.steps)


async def run(world_options: dict[str, object], **settings: object) -> tuple[Session, Notices]:
    notices = Notices()
    session = await simulated(
        make_settings(**{"session.max_minutes": SESSION_MINUTES, **settings}),
        world_options=world_options,
        observers=(notices,),
    )
    return session, notices


async def test_a_thermometer_that_refuses_pairing_is_read_unencrypted_and_heats() -> None:
    session, notices = await run({"sensor_refuses_pairing": True})
    assert session.run is not None
    assert session.runner is not None
    assert session.world is not None
    assert session.run.outcome.ended_by is EndReason.TIMER
    info = session.runner.sensor.info
    assert info is not None
    assert not info.encrypted
    # The massager, an actuator, is still bonded and encrypted.
    massager_links = session.world.massager.connections
    assert all(c.is_encrypted for c in massager_links)
    assert heater_ever_commanded(session)
    assert "SENSOR_STALE" not in session.log.new_alarm_codes()
    assert notices.lines == []


async def test_a_thermometer_that_drops_the_link_when_asked_to_pair_is_not_asked_again() -> None:
    session, _ = await run({"sensor_drops_on_pairing": True})
    assert session.run is not None
    assert session.runner is not None
    assert session.run.outcome.ended_by is EndReason.TIMER
    info = session.runner.sensor.info
    assert info is not None
    assert not info.encrypted
    # Asked once; the link that ended with the refusal came back without being asked again,
    # and stayed for the whole session.
    assert session.world is not None
    assert session.world.sensor.pairing_requests == 1
    assert session.runner.sensor.connections == 2
    assert heater_ever_commanded(session)
    assert "SENSOR_STALE" not in session.log.new_alarm_codes()


async def test_the_massager_is_never_driven_unbonded() -> None:
    # The fallback is the sensor's alone: a massager that refuses pairing is never driven, and
    # the session fails to start with the massager named.
    log = DecisionLog()

    def refuse(world: SimWorld) -> None:
        world.massager.device.pairing_config_factory = sensor_module._refuse_pairing

    with pytest.raises(LinkError, match=r"massager .* not reached"):
        await run_simulated_session(
            make_settings(**{"session.max_minutes": SESSION_MINUTES}),
            answers=NO_CONTRAINDICATIONS,
            observers=(log,),
            on_world=refuse,
        )
    assert not any(step.decision.command.heater_on for step in log.steps)


async def test_a_thermometer_that_notifies_instead_of_indicating_heats() -> None:
    session, notices = await run({"sensor_notify": True})
    assert session.run is not None
    assert session.world is not None
    assert session.run.outcome.ended_by is EndReason.TIMER
    assert session.world.sensor.indications > SESSION_MINUTES * 60 * 0.9
    assert heater_ever_commanded(session)
    assert "SENSOR_STALE" not in session.log.new_alarm_codes()
    assert notices.lines == []


async def test_a_slow_thermometer_with_a_writable_interval_is_set_to_one_second() -> None:
    session, notices = await run({"sensor_period_s": SLOW_PERIOD_S, "sensor_interval": "writable"})
    assert session.run is not None
    assert session.runner is not None
    assert session.world is not None
    info = session.runner.sensor.info
    assert info is not None
    assert (info.interval_was_s, info.interval_s) == (5, 1)
    assert session.world.sensor.period_s == 1.0
    assert session.run.outcome.ended_by is EndReason.TIMER
    assert heater_ever_commanded(session)
    # Readings kept fresh all session: no stale alarm, no heater flicker.
    assert "SENSOR_STALE" not in session.log.new_alarm_codes()
    assert notices.lines == []


async def test_a_slow_thermometer_with_a_fixed_interval_keeps_heat_off_and_says_why() -> None:
    session, notices = await run({"sensor_period_s": SLOW_PERIOD_S, "sensor_interval": "fixed"})
    assert session.run is not None
    assert session.runner is not None
    assert session.world is not None
    assert session.world.sensor.period_s == SLOW_PERIOD_S  # not written: it cannot be
    assert session.run.outcome.ended_by is EndReason.TIMER
    # Heat never asked for, never commanded, never on at the firmware: no 2 s flicker after each
    # reading. Pressure still works.
    assert not heater_ever_commanded(session)
    assert session.run.truth.max_pad_c < 35.0
    assert session.run.outcome.max_pressure_mmhg > 0.0
    assert len(notices.lines) == 1
    (line,) = notices.lines
    assert "measures every 5 s" in line
    assert "too slow for heat" in line
    assert "Heating stays off" in line
    assert "2 s (sensor.stale_after_s)" in line


async def test_a_slow_thermometer_that_states_no_interval_is_paced_by_its_first_readings() -> None:
    # It states no Measurement Interval: its first two readings, 5 s apart, tell its pace. Heat
    # stays off from then on (no flicker after each reading); the stale limit is not loosened.
    session, notices = await run({"sensor_period_s": SLOW_PERIOD_S})
    assert session.run is not None
    assert session.runner is not None
    info = session.runner.sensor.info
    assert info is not None
    assert info.interval_s is None
    assert info.first_gap_s == pytest.approx(SLOW_PERIOD_S, abs=0.1)
    assert session.runner.supervisor.limits.stale_after_s == 2.0
    assert len(notices.lines) == 1
    assert "states no Measurement Interval" in notices.lines[0]
    assert "5.0 s apart" in notices.lines[0]
    assert "too slow for heat" in notices.lines[0]
    start = session.log.steps[0].now
    heating = [s.now - start for s in session.log.steps if s.decision.command.heater_on]
    # At most the first stale window, before the second reading could prove the pace.
    assert all(t <= SLOW_PERIOD_S for t in heating)
    assert session.run.outcome.heat_s <= 2.5


async def test_a_fahrenheit_thermometer_with_timestamp_and_type_heats_in_celsius() -> None:
    session, notices = await run(
        {
            "sensor_unit": TemperatureUnit.FAHRENHEIT,
            "sensor_timestamps": True,
            "sensor_type_in_measurement": True,
            "sensor_type": TemperatureType.TOE,
        }
    )
    assert session.run is not None
    assert session.runner is not None
    assert session.run.outcome.ended_by is EndReason.TIMER
    info = session.runner.sensor.info
    assert info is not None
    assert info.temperature_type is TemperatureType.TOE
    readings = [s.decision.skin_c for s in session.log.steps if s.decision.skin_c is not None]
    # Converted to Celsius: a foot reads 30-40 °C, never 86-104.
    assert min(readings) > 28.0
    assert max(readings) < 41.0
    assert heater_ever_commanded(session)
    assert notices.lines == []


async def test_an_ear_thermometer_is_reported() -> None:
    session, notices = await run({"sensor_type": TemperatureType.EAR})
    assert session.run is not None
    assert session.run.outcome.ended_by is EndReason.TIMER
    assert len(notices.lines) == 1
    assert 'temperature type "ear", not a skin site' in notices.lines[0]
    assert 'sensor.non_skin_site = "refuse"' in notices.lines[0]


async def test_an_ear_thermometer_is_refused_when_the_settings_say_so() -> None:
    with pytest.raises(ConfigError, match=r'"ear", not a skin site, and sensor.non_skin_site'):
        await run(
            {"sensor_type": TemperatureType.EAR, "sensor_type_in_measurement": True},
            **{"sensor.non_skin_site": "refuse"},
        )


async def test_a_five_second_thermometer_raises_one_condition_in_ten_minutes_not_one_per_reading(
    tmp_path: Path,
) -> None:
    # A consumer thermometer measuring every 5 s with a Measurement Interval it will not let us
    # shorten, over a real bumble link, for a 10-minute session recorded in a real journal. Before
    # SensorPace the supervisor raised SENSOR_STALE after each reading went stale: about 120
    # alarms in the journal and the live view. Now: one SENSOR_TOO_SLOW, held all session.
    minutes = 10.0
    with Store.open(tmp_path / "journal.sqlite3") as store:
        log = DecisionLog()
        run = await run_simulated_session(
            make_settings(**{"session.max_minutes": minutes}),
            answers=NO_CONTRAINDICATIONS,
            store=store,
            observers=(log,),
            world_options={"sensor_period_s": SLOW_PERIOD_S, "sensor_interval": "fixed"},
        )
        assert run.outcome.session_id is not None
        journal = [alarm.code for alarm in store.alarms(run.outcome.session_id)]
    assert run.outcome.ended_by is EndReason.TIMER
    assert run.outcome.duration_s == pytest.approx(minutes * 60.0, abs=1.0)
    raised = log.new_alarm_codes()
    assert raised.count("SENSOR_TOO_SLOW") == 1
    assert "SENSOR_STALE" not in raised
    assert sorted(raised) == ["SENSOR_TOO_SLOW", "SESSION_TIME_UP"]
    assert sorted(journal) == ["SENSOR_TOO_SLOW", "SESSION_TIME_UP"]
    # Held from the first step of the session to its end, and never the heater on.
    running = [step.decision for step in log.steps if step.decision.state is SessionState.RUNNING]
    assert running
    assert all("SENSOR_TOO_SLOW" in {a.code for a in d.active_alarms} for d in running)
    assert not any(step.decision.command.heater_on for step in log.steps)
    (alarm,) = [a for a in run.outcome.alarms if a["code"] == "SENSOR_TOO_SLOW"]
    assert alarm["priority"] == "low"
    assert "measures every 5 s" in alarm["message"]
    assert "heat off for this session" in alarm["message"]
    assert run.outcome.max_pressure_mmhg > 0.0  # pressure massage went on
