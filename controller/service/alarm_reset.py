"""The alarm reset (IEC 60601-1-8) of an over-temperature latch kept in the journal.

The latch is cleared only when the supervisor accepts the reset: a fresh valid skin reading,
taken now from the paired sensor, below the re-enable threshold (cut-off - margin). The pure
judgement is :func:`judge_alarm_reset`; :func:`reset_latch` reads the sensor and writes the
journal.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from typing import TYPE_CHECKING

from controller.errors import AlarmLatched, ConfigError, LinkError
from controller.safety import (
    AlarmReset,
    DeviceKind,
    LatchInForce,
    LinkChanged,
    Priority,
    SessionState,
    SkinReading,
    Supervisor,
)

if TYPE_CHECKING:
    from controller.ble.access import BleAccess
    from controller.protocol import TemperatureMeasurement
    from controller.settings import SafetyLimits
    from controller.store import Store

__all__ = ["LATCH_RESET_CODE", "READING_TIMEOUT_S", "judge_alarm_reset", "reset_latch"]

# The information signal caregivers receive when the latch is cleared (the latch itself reached
# them as an OVER_TEMPERATURE_LATCH alert when it was raised).
LATCH_RESET_CODE = "OVER_TEMPERATURE_LATCH_RESET"

# The sensor indicates once a second; a connection plus a few readings fit well inside this.
READING_TIMEOUT_S = 30.0


def judge_alarm_reset(limits: SafetyLimits, latch_c: float, celsius: float) -> str | None:
    """Whether a reading (degC) just received allows the reset: None if so, else why not.

    The supervisor judges it, as it does in a session: latched at ``latch_c``, the sensor
    connected, the reading received, then the alarm reset.
    """
    supervisor = Supervisor(limits)
    now = 0.0  # a fresh supervisor on its own clock: only the order of events matters
    supervisor.step(now, [LatchInForce(latch_c), LinkChanged(DeviceKind.SENSOR, True, now)])
    now += limits.lease_renew_s
    supervisor.step(now, [SkinReading(now, celsius)])
    decision = supervisor.step(now, [AlarmReset()])
    if decision.state is SessionState.LATCHED:
        return "; ".join(decision.refusals) or "latch kept"
    return None


async def read_fresh_skin(ble: BleAccess, address: str) -> float:
    """One skin reading (degC, NaN if unusable) from the sensor at ``address``.

    Raises LinkError if no reading arrives within READING_TIMEOUT_S.
    """
    from controller.ble.links import SensorLink  # noqa: PLC0415 (bleak is slow to import)

    readings: asyncio.Queue[float] = asyncio.Queue()

    def received(measurement: TemperatureMeasurement | None) -> None:
        readings.put_nowait(math.nan if measurement is None else measurement.to_celsius())

    link = SensorLink(address, ble.links, lambda _up: None, received)
    async with asyncio.TaskGroup() as group:
        task = group.create_task(link.run(), name="sensor-link")
        try:
            async with asyncio.timeout(READING_TIMEOUT_S):
                await link.wait_connected()
                # The first indication may have been measured before we connected: take the next.
                await readings.get()
                celsius = await readings.get()
        except TimeoutError as exc:
            raise LinkError(
                f"sensor {address}: no skin reading within {READING_TIMEOUT_S:.0f} s"
            ) from exc
        finally:
            task.cancel()
    return celsius


async def reset_latch(
    store: Store,
    limits: SafetyLimits,
    ble: BleAccess,
    address: str,
    *,
    device_id: str | None = None,
) -> str:
    """Clear the journal's latch with a fresh reading; returns what was done, in one sentence.

    ``device_id``: queue a caregiver alert (MQTT ``alert``, via the outbox) saying the latch was
    reset. Raises AlarmLatched when the reading does not allow it (the latch stays), LinkError
    when the sensor gives no reading, StoreError when the journal fails.
    """
    from controller.store.latch import latch_in_force, record_reset  # noqa: PLC0415

    latch = latch_in_force(store)
    if latch is None:
        return "no over-temperature latch in force: nothing to reset"
    if not address:
        raise ConfigError("devices.sensor: no skin sensor paired; run `soleguard pair ADDRESS`")
    celsius = await read_fresh_skin(ble, address)
    refused = judge_alarm_reset(limits, latch.skin_c, celsius)
    if refused is not None:
        raise AlarmLatched(f"alarm reset refused: {refused}")
    now = time.time()
    alert = None
    if device_id is not None:
        from controller.store import OutboxAlert  # noqa: PLC0415

        alert = OutboxAlert(
            id=uuid.uuid4().hex,
            device_id=device_id,
            time=now,
            priority=Priority.LOW,
            code=LATCH_RESET_CODE,
            message=(
                f"the over-temperature latch was reset by the user (skin {celsius:.1f} °C); "
                "sessions may start again"
            ),
            session_id=latch.session_id,
        )
    record_reset(store, reset_at=now, skin_c=celsius, alert=alert)
    return (
        f"alarm reset: the over-temperature latch is cleared (skin now {celsius:.1f} °C, below "
        f"{limits.heater_reenable_below_c:.1f} °C)"
    )
