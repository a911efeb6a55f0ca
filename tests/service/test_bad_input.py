"""Malformed notifications from the devices: logged, treated as no reading, never a crash.

The simulated peripherals send raw bytes through bumble's GATT server, exactly as a broken or
hostile device would; the controller's links decode them through ``controller.protocol``.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from controller.errors import ProtocolError
from controller.protocol import MassagerStatus, TemperatureMeasurement
from controller.safety import EndReason
from tests.service.support import DecisionLog, Session, firmware_running, make_settings, simulated

MINUTES = 2.0
GARBAGE_AT_S = 60.0  # into the world: the heater is on by then
GARBAGE_PERIOD_S = 1.0  # the sensor's own rate

# Temperature Measurement frames that cannot be decoded (docs/protocol.md, HTS 1.0 §3.1).
BAD_MEASUREMENTS = [
    b"",  # empty
    b"\x00",  # flags only
    b"\x00\x6e\x0e\x00",  # float cut short
    b"\x02\x6e\x0e\x00\xfe\xe9\x07\x01",  # says "timestamp follows", timestamp truncated
    b"\x00\x6e\x0e\x00\xfe\x55\x55\x55",  # overlong
    b"\x06\x6e\x0e\x00\xfe\xe9\x07\x0d\x01\x09\x00\x00\x01",  # month 13
]
# Status frames that cannot be decoded: truncated, overlong, wrong protocol version.
BAD_STATUSES = [b"", b"\x01", b"\x01" + b"\x00" * 5, b"\x01" + b"\x00" * 40, b"\x63" + b"\x00" * 14]


def test_the_garbage_is_really_malformed() -> None:
    """A precondition: each frame above fails to decode (else the tests below prove less)."""
    for frame in BAD_MEASUREMENTS:
        with pytest.raises(ProtocolError):
            TemperatureMeasurement.decode(frame)
    for frame in BAD_STATUSES:
        with pytest.raises(ProtocolError):
            MassagerStatus.decode(frame)


async def _when_heating(session: Session) -> None:
    await session.log.when(firmware_running(session)).wait()
    assert session.world is not None
    await asyncio.sleep(max(0.0, GARBAGE_AT_S - session.world.elapsed()))


async def test_malformed_measurements_are_no_reading_and_heat_stays_off(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="controller.ble.links")
    session = Session(DecisionLog())
    window: list[float] = []

    async def inject() -> None:
        await _when_heating(session)
        world = session.world
        assert world is not None
        assert world.firmware.heater_enabled
        world.sensor_firmware.faults.silent = True  # only garbage from the sensor now
        loop = asyncio.get_running_loop()
        window.append(loop.time())
        for frame in BAD_MEASUREMENTS:
            for connection in world.sensor.connections:
                await world.sensor.device.indicate_subscriber(
                    connection, world.sensor.measurement, frame
                )
            await asyncio.sleep(GARBAGE_PERIOD_S)
        window.append(loop.time())
        world.sensor_firmware.faults.silent = False

    settings = make_settings(**{"session.max_minutes": MINUTES})
    injector = asyncio.create_task(inject())
    await simulated(settings, session=session)
    await injector
    assert session.run is not None

    # No crash: the session went on to its timer.
    assert session.run.outcome.ended_by is EndReason.TIMER
    # Each frame was logged with its bytes, as a bad measurement.
    bad = [r for r in caplog.records if "bad measurement" in r.getMessage()]
    assert len(bad) == len(BAD_MEASUREMENTS)
    # Treated as invalid readings: three in a row raise SENSOR_INVALID.
    assert "SENSOR_INVALID" in session.log.new_alarm_codes()
    # From the first garbage frame on, until a good reading came back, no heat: in the decisions
    # and in the firmware.
    start, end = window
    during = [
        (index, step)
        for index, step in enumerate(session.log.steps)
        if start + 0.05 <= step.now < end - 0.05
    ]
    assert during
    for index, step in during:
        assert not step.decision.skin_valid or not step.decision.skin_fresh
        assert not step.decision.command.heater_on
        if session.log.settled(index):
            assert not step.firmware_heater_enabled
    # Heat came back with valid readings.
    assert any(s.decision.command.heater_on for s in session.log.steps if s.now > end + 2.0)


async def test_malformed_status_is_dropped_and_the_session_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="controller.ble.links")

    session = Session(DecisionLog())

    async def inject() -> None:
        await _when_heating(session)
        world = session.world
        assert world is not None
        for frame in BAD_STATUSES:
            for connection in world.massager.connections:
                await world.massager.device.notify_subscriber(
                    connection, world.massager.status, frame
                )
            await asyncio.sleep(0.1)

    settings = make_settings(**{"session.max_minutes": MINUTES})
    injector = asyncio.create_task(inject())
    await simulated(settings, session=session)
    await injector
    assert session.run is not None
    assert session.tap is not None
    assert session.run.outcome.ended_by is EndReason.TIMER
    bad = [r for r in caplog.records if "bad status" in r.getMessage()]
    assert len(bad) == len(BAD_STATUSES)
    # Garbage is not mistaken for news: no alarm but the end of the session's.
    assert session.log.new_alarm_codes() == ["SESSION_TIME_UP"]
    assert session.tap.firmware_is_off()
