"""A caregiver bridge that dies is never silent: logged, ``offline`` while down, restarted.

Real parts: mosquitto, the bridge on its own thread (``caregiver_side``), a caregiver client. The
planted bug is a state the bridge cannot turn into a payload (an alarm that is not an alarm), the
shape of the failure issue 11 met: the bridge task died, the retained availability said
``online``, and only "Task exception was never retrieved" was printed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from controller.caregiver.models import ActiveAlarm, DeviceState
from controller.caregiver.threaded import caregiver_side
from controller.safety import Priority
from tests.caregiver.helpers import Recorder, recorder, settings_for

if TYPE_CHECKING:
    import pytest

    from controller.caregiver.broker import LocalBroker
    from controller.store import Store

DEVICE = "supervised"


class NotAnAlarm:
    """Planted bug: in the state's alarms, but without an alarm's fields."""


def availability(rec: Recorder) -> list[bytes]:
    return [m.payload for m in rec.on("/availability") if isinstance(m.payload, bytes)]


async def test_a_bridge_that_dies_shows_offline_logs_and_comes_back(
    mqtt_broker: LocalBroker, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="controller.caregiver")
    settings = settings_for(mqtt_broker, DEVICE)
    base = f"soleguard/{DEVICE}"
    async with (
        recorder(mqtt_broker, f"{base}/availability", f"{base}/state") as rec,
        caregiver_side(settings, store) as link,
    ):
        await rec.wait_for(lambda r: availability(r)[-1:] == [b"online"])
        link.update_state(DeviceState(active_alarms=(NotAnAlarm(),)))  # type: ignore[arg-type]
        # Caregivers are told at once that nobody is watching...
        await rec.wait_for(lambda r: availability(r)[-1:] == [b"offline"])
        good = DeviceState(
            session_state="running", active_alarms=(ActiveAlarm("SENSOR_STALE", Priority.MEDIUM),)
        )
        link.update_state(good)
        # ...and the restarted bridge says online again and publishes the newest state.
        await rec.wait_for(lambda r: availability(r)[-1:] == [b"online"])
        await rec.wait_for(
            lambda r: any(s.get("session_state") == "running" for s in r.json_on("/state"))
        )
    failures = [r for r in caplog.records if "caregiver bridge failed" in r.getMessage()]
    assert len(failures) == 1
    assert failures[0].exc_info is not None  # the traceback is in the log, once
    assert any("recovered" in r.getMessage() for r in caplog.records)
    states = rec.json_on("/state")
    assert states[-1]["session_state"] == "running"
