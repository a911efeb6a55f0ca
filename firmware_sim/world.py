"""`SimWorld`: one foot, one massager and one skin sensor on a radio, with faults on a schedule.

Build it inside the loop that runs it (bumble's controllers need a running loop)::

    async with SimWorld(scenario="heater-stuck-on", seed=3) as world:
        async with BumbleRadio(link=world.link) as radio:
            client = BleakClient(world.massager_address, backend=radio.client_backend())
            ...
        print(world.snapshot().max_skin_c)

On `firmware_sim.clock`'s virtual-time loop a (scenario, seed) pair replays exactly.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
from typing import TYPE_CHECKING, Any, Self

from bumble.link import LocalLink

from controller.protocol import FaultCode, StatusFlags, TemperatureType, TemperatureUnit
from firmware_sim.massager import MassagerFirmware
from firmware_sim.massager_gatt import MassagerPeripheral
from firmware_sim.peripheral import DEFAULT_ADVERTISING_INTERVAL_MS
from firmware_sim.physics import Physics, PhysicsParams
from firmware_sim.scenarios import SCENARIOS, ScheduledFault, schedule
from firmware_sim.sensor import (
    DEFAULT_PERIOD_S,
    DEFAULT_START,
    IntervalCharacteristic,
    SensorPeripheral,
    SkinSensorFirmware,
)

if TYPE_CHECKING:
    import datetime
    from collections.abc import Sequence
    from types import TracebackType

__all__ = ["DEFAULT_TICK_S", "SimWorld", "WorldSnapshot"]

_LOGGER = logging.getLogger(__name__)

# Closing waits this long for the devices to stop advertising: a few HCI round trips, far more
# than a virtual controller needs, enough for a USB dongle.
CLOSE_TIMEOUT_S = 5.0
DEFAULT_TICK_S = 0.1  # 10 Hz: the firmware's control loop; the pad's time constant is ~30 s
# Thresholds whose time-above the world accumulates: the heater cut-off default and hard limit,
# and the over-temperature latch (DESIGN.md §3).
DEFAULT_WATCH_C = (40.0, 41.0, 43.0)


@dataclasses.dataclass(frozen=True, slots=True)
class WorldSnapshot:
    """The true physical state and the firmware's flags, plus running maxima since the start.

    Units: ``time_s`` seconds since the world started, on the running loop's clock (virtual
    under ``--speed``); temperatures (``skin_c``, ``pad_c``, ``max_*_c``) °C of the model in
    firmware_sim/physics.py, the skin's true value, not what the sensor reports; pressures
    mmHg, the bladder's true pressure (``pressure_target_mmhg``: what the firmware regulates to);
    ``battery_percent`` 0-100; ``lease_remaining_ms`` milliseconds left of the command lease
    (docs/protocol.md); ``seconds_above_c`` seconds of true skin above each watched
    threshold (°C -> s; the `SimWorld` argument ``watch_c``); ``cutouts`` firmware cut-outs so
    far; ``active_faults`` the names of the scenarios in effect now.
    """

    time_s: float
    skin_c: float
    pad_c: float
    pressure_mmhg: float
    pressure_target_mmhg: float
    heater_on: bool
    relief_open: bool
    battery_percent: float
    flags: StatusFlags
    fault: FaultCode
    cutout_latched: bool
    lease_remaining_ms: int
    massager_connected: bool
    sensor_connected: bool
    max_skin_c: float
    max_pad_c: float
    max_pressure_mmhg: float
    seconds_above_c: dict[float, float]
    cutouts: int
    active_faults: tuple[str, ...]


class SimWorld:
    """Physics, massager and sensor firmware, their GATT servers, and the fault schedule.

    An async context manager, entered once (RuntimeError the second time) inside the loop that
    runs it. ``scenario`` is a `firmware_sim.scenarios` name (ValueError for an unknown one) or
    scheduled faults; ``seed`` makes noise and fault variants repeatable; ``tick_s`` (s) is the
    physics and firmware step; ``watch_c`` (°C) the skin thresholds `seconds_above` counts.
    """

    def __init__(
        self,
        *,
        scenario: str | ScheduledFault | Sequence[ScheduledFault] = "normal",
        seed: int = 0,
        link: LocalLink | None = None,
        massager_transport: Any = None,
        sensor_transport: Any = None,
        physics: PhysicsParams | None = None,
        neuropathic: bool = False,
        tick_s: float = DEFAULT_TICK_S,
        advertising_interval_ms: float = DEFAULT_ADVERTISING_INTERVAL_MS,
        sensor_period_s: float = DEFAULT_PERIOD_S,
        sensor_unit: TemperatureUnit = TemperatureUnit.CELSIUS,
        sensor_timestamps: bool = True,
        sensor_type_in_measurement: bool = False,
        sensor_type: TemperatureType = TemperatureType.TOE,
        sensor_refuses_pairing: bool = False,
        sensor_drops_on_pairing: bool = False,
        sensor_notify: bool = False,
        sensor_interval: IntervalCharacteristic = "none",
        index: int = 0,
        watch_c: Sequence[float] = DEFAULT_WATCH_C,
        start: datetime.datetime = DEFAULT_START,
    ) -> None:
        """``index`` tells several worlds on one link apart (names and addresses).

        ``massager_transport`` / ``sensor_transport``: an opened bumble transport (with
        ``.source`` and ``.sink``) to serve that device on a real or remote controller instead of
        the link; a device with neither is served on the link.
        """
        if isinstance(scenario, str):
            self.schedule: tuple[ScheduledFault, ...] = (schedule(scenario, seed=seed),)
        elif isinstance(scenario, ScheduledFault):
            self.schedule = (scenario,)
        else:
            self.schedule = tuple(scenario)
        self.seed = seed
        self._given_link = link
        self._massager_transport = massager_transport
        self._sensor_transport = sensor_transport
        params = physics if physics is not None else PhysicsParams()
        if neuropathic:
            params = dataclasses.replace(params, foot=PhysicsParams.neuropathic().foot)
        self.physics = Physics(params, seed=seed)
        self.firmware = MassagerFirmware(self.physics)
        self.sensor_firmware = SkinSensorFirmware(
            self.physics.read_skin_c,
            seed=random.Random(seed).randrange(2**32),
            unit=sensor_unit,
            timestamps=sensor_timestamps,
            type_in_measurement=sensor_type_in_measurement,
            temperature_type=sensor_type,
            start=start,
        )
        # Which kind of consumer thermometer the sensor plays (firmware_sim.sensor).
        self._sensor_kind: dict[str, Any] = {
            "refuses_pairing": sensor_refuses_pairing,
            "drops_on_pairing": sensor_drops_on_pairing,
            "notify": sensor_notify,
            "interval": sensor_interval,
        }
        self.tick_s = tick_s
        self.advertising_interval_ms = advertising_interval_ms
        self.sensor_period_s = sensor_period_s
        suffix = "" if index == 0 else f"-{index}"
        self.massager_name = f"SoleGuard-M{suffix}"
        self.sensor_name = f"SoleGuard-S{suffix}"
        # Random static addresses: the two top bits set (Core spec Vol 6 Part B 1.3.2.1).
        self._massager_address = f"F5:0E:6A:AD:{index:02X}:01"
        self._sensor_address = f"F5:0E:6A:AD:{index:02X}:02"
        self._watch = tuple(sorted(watch_c))
        self._tasks: list[asyncio.Task[None]] = []
        self._advertisers: list[asyncio.Task[None]] = []
        self._fault_tasks: dict[ScheduledFault, asyncio.Task[None]] = {}
        self._started_at = 0.0
        self._max_skin = self.physics.skin_c
        self._max_pad = self.physics.pad_c
        self._max_pressure = 0.0
        self._above = dict.fromkeys(self._watch, 0.0)
        self._cutouts = 0
        self._entered = False
        self.link: LocalLink
        self.massager: MassagerPeripheral
        self.sensor: SensorPeripheral

    # -- identity -------------------------------------------------------------------------------

    @property
    def massager_address(self) -> str:
        """The simulated massager's Bluetooth address."""
        return self._massager_address

    @property
    def sensor_address(self) -> str:
        """The simulated skin sensor's Bluetooth address."""
        return self._sensor_address

    # -- lifecycle ------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._entered:
            raise RuntimeError("a SimWorld can be entered once")
        self._entered = True
        loop = asyncio.get_running_loop()
        self.link = self._given_link if self._given_link is not None else _new_link()
        self._started_at = loop.time()
        self.massager = MassagerPeripheral(
            self.firmware,
            loop.time,
            name=self.massager_name,
            address=self._massager_address,
            serial_number=f"SGM-{self.seed:06d}",
            advertising_interval_ms=self.advertising_interval_ms,
            **self._radio(self._massager_transport),
        )
        self.sensor = SensorPeripheral(
            self.sensor_firmware,
            loop.time,
            name=self.sensor_name,
            address=self._sensor_address,
            serial_number=f"SGS-{self.seed:06d}",
            period_s=self.sensor_period_s,
            advertising_interval_ms=self.advertising_interval_ms,
            **self._sensor_kind,
            **self._radio(self._sensor_transport),
        )
        await self.massager.start()
        await self.sensor.start()
        self._advertisers = [
            self._spawn(self.massager.keep_advertising(), "massager advertising"),
            self._spawn(self.sensor.keep_advertising(), "sensor advertising"),
        ]
        self._spawn(self.massager.notify_status(), "massager status")
        self._spawn(self.sensor.indicate_measurements(), "sensor measurements")
        self._spawn(self._tick(), "physics")
        for fault in self.schedule:
            task = self._spawn(self._run_fault(fault), f"scenario {fault.scenario}")
            self._fault_tasks[fault] = task
        _LOGGER.info(
            "world up: massager %s (%s), sensor %s (%s), scenario %s, seed %d",
            self.massager_name,
            self.massager_address,
            self.sensor_name,
            self.sensor_address,
            ", ".join(f.scenario for f in self.schedule),
            self.seed,
        )
        return self

    def _radio(self, transport: Any) -> dict[str, Any]:
        if transport is not None:
            return {"hci_transport": transport}
        return {"link": self.link}

    def _spawn(self, coro: Any, name: str) -> asyncio.Task[None]:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(
            coro, name=f"SimWorld {name}"
        )
        self._tasks.append(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            _LOGGER.error("%s crashed", task.get_name(), exc_info=task.exception())

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.massager.begin_close()
        self.sensor.begin_close()
        # Let the advertisers finish their HCI commands; only then cancel what is left.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_TIMEOUT_S):
                await asyncio.wait(self._advertisers)
        for task in self._tasks:
            task.cancel()
        results = await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.massager.close()
        await self.sensor.close()
        crashed = [
            r
            for r in results
            if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError)
        ]
        if crashed and exc is None:
            raise crashed[0]

    # -- the simulation -------------------------------------------------------------------------

    def elapsed(self) -> float:
        """Seconds since the world started (on the running loop's clock)."""
        return asyncio.get_running_loop().time() - self._started_at

    async def _tick(self) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        due = last
        while True:
            due += self.tick_s
            await asyncio.sleep(max(0.0, due - loop.time()))
            now = loop.time()
            dt, last = now - last, now
            was_latched = self.firmware.cutout_latched
            self.physics.step(dt)
            self.firmware.tick(now)
            if self.firmware.cutout_latched and not was_latched:
                self._cutouts += 1
            self._record(dt)
            self.massager.check_changed()

    def _record(self, dt: float) -> None:
        physics = self.physics
        self._max_skin = max(self._max_skin, physics.skin_c)
        self._max_pad = max(self._max_pad, physics.pad_c)
        self._max_pressure = max(self._max_pressure, physics.pressure_mmhg)
        for threshold in self._watch:
            if physics.skin_c > threshold:
                self._above[threshold] += dt

    async def _run_fault(self, fault: ScheduledFault) -> None:
        await asyncio.sleep(max(0.0, fault.onset_s - self.elapsed()))
        _LOGGER.info("scenario %s: onset at %.1f s", fault.scenario, self.elapsed())
        spec = SCENARIOS[fault.scenario]
        await spec.run(self, fault, random.Random(f"{self.seed}:{fault.seed}:{fault.scenario}"))
        _LOGGER.info("scenario %s: over at %.1f s", fault.scenario, self.elapsed())

    def active_faults(self) -> tuple[str, ...]:
        """Scenarios past their onset and not over yet."""
        elapsed = self.elapsed()
        return tuple(
            fault.scenario
            for fault, task in self._fault_tasks.items()
            if fault.scenario != "normal" and elapsed >= fault.onset_s and not task.done()
        )

    def snapshot(self) -> WorldSnapshot:
        """The world's truth now: physics, firmware flags and fault, running maxima."""
        now = asyncio.get_running_loop().time()
        physics, firmware = self.physics, self.firmware
        return WorldSnapshot(
            time_s=now - self._started_at,
            skin_c=physics.skin_c,
            pad_c=physics.pad_c,
            pressure_mmhg=physics.pressure_mmhg,
            pressure_target_mmhg=physics.pressure_target_mmhg,
            heater_on=physics.heater_on,
            relief_open=physics.relief_open,
            battery_percent=physics.battery_percent,
            flags=firmware.flags,
            fault=firmware.fault,
            cutout_latched=firmware.cutout_latched,
            lease_remaining_ms=firmware.lease_remaining_ms(now),
            massager_connected=bool(self.massager.connections),
            sensor_connected=bool(self.sensor.connections),
            max_skin_c=self._max_skin,
            max_pad_c=self._max_pad,
            max_pressure_mmhg=self._max_pressure,
            seconds_above_c=dict(self._above),
            cutouts=self._cutouts,
            active_faults=self.active_faults(),
        )

    def seconds_above(self, threshold_c: float) -> float:
        """Seconds of true skin temperature above a watched threshold (see ``watch_c``).

        Raises KeyError for a threshold (°C) that is not watched.
        """
        with contextlib.suppress(KeyError):
            return self._above[threshold_c]
        raise KeyError(f"{threshold_c} °C is not watched; watched: {self._watch}")


def _new_link() -> LocalLink:
    return LocalLink()
