"""Named fault scenarios, each scheduled in (virtual) time with parameters drawn from a seed.

A scenario is a coroutine run by the world: it sleeps until its onset, injects the fault, holds it
for its duration (``None``: until the world closes) and repairs what can be repaired. Every random
parameter comes from ``random.Random(seed)``, so (scenario, seed) replays exactly on virtual time.
``SCENARIOS`` maps each name to its `Scenario`; `schedule` builds the `ScheduledFault` the world
takes, with the scenario's defaults for what is not given.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import random
from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from controller.protocol import TemperatureUnit

if TYPE_CHECKING:
    from firmware_sim.world import SimWorld

__all__ = [
    "DEFAULT",
    "SCENARIOS",
    "Scenario",
    "ScheduledFault",
    "describe",
    "schedule",
]

_LOGGER = logging.getLogger(__name__)

# A real massager takes about this long from reset to advertising again (bootloader, radio
# calibration); long enough for the controller to see the link go, short enough not to matter.
REBOOT_TIME_S = 1.5

FaultRunner = Callable[["SimWorld", "ScheduledFault", random.Random], Awaitable[None]]


@dataclasses.dataclass(frozen=True, slots=True)
class Scenario:
    """A named fault scenario: what it does to the world, from when (s) and for how long (s).

    ``run(world, fault, rng)`` injects the fault once ``fault.onset_s`` has come (the world calls
    it then), holds it for ``fault.duration_s`` and repairs it; ``rng`` is
    ``random.Random(fault.seed)``. ``default_onset_s`` / ``default_duration_s``: seconds of world
    time, used by `schedule` when not given. Some faults cannot be undone (a reboot, a drained
    battery): their runner returns at once and the duration does not apply.
    """

    name: str
    description: str
    run: FaultRunner
    default_onset_s: float = 30.0
    default_duration_s: float | None = None  # None: until the end of the world


@dataclasses.dataclass(frozen=True, slots=True)
class ScheduledFault:
    """One scenario scheduled in a run: onset and duration in seconds after the world starts.

    ``duration_s`` None: until the world closes. ``seed`` draws the scenario's random
    parameters. Raises ValueError, naming the known scenarios, for an unknown ``scenario``.
    """

    scenario: str
    onset_s: float
    duration_s: float | None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.scenario not in SCENARIOS:
            raise ValueError(
                f"unknown scenario {self.scenario!r}; known: {', '.join(sorted(SCENARIOS))}"
            )


class _Default(enum.Enum):
    DEFAULT = enum.auto()


DEFAULT = _Default.DEFAULT
"""Marks "the scenario's default" where None already means something (no end)."""


def schedule(
    scenario: str,
    *,
    onset_s: float | None = None,
    duration_s: float | _Default | None = DEFAULT,
    seed: int = 0,
) -> ScheduledFault:
    """A `ScheduledFault` with the scenario's default onset/duration where not given.

    ``onset_s`` / ``duration_s`` in seconds after the world starts (``duration_s=None``: until the
    world closes; `DEFAULT`: the scenario's). Raises ValueError for an unknown scenario name.
    """
    if scenario not in SCENARIOS:
        raise ValueError(f"unknown scenario {scenario!r}; known: {', '.join(sorted(SCENARIOS))}")
    spec = SCENARIOS[scenario]
    return ScheduledFault(
        scenario=scenario,
        onset_s=spec.default_onset_s if onset_s is None else onset_s,
        duration_s=spec.default_duration_s if duration_s is DEFAULT else duration_s,
        seed=seed,
    )


def describe() -> list[str]:
    """One line per scenario, for ``--list-scenarios``."""
    width = max(len(name) for name in SCENARIOS)
    return [f"{name:<{width}}  {spec.description}" for name, spec in SCENARIOS.items()]


async def _hold(fault: ScheduledFault) -> None:
    """Sleep for the fault's duration, or forever."""
    if fault.duration_s is None:
        await asyncio.Event().wait()
    else:
        await asyncio.sleep(fault.duration_s)


async def _normal(_world: SimWorld, _fault: ScheduledFault, _rng: random.Random) -> None:
    return


async def _sensor_dropout(world: SimWorld, fault: ScheduledFault, rng: random.Random) -> None:
    if rng.random() < 0.5:
        _LOGGER.info("scenario sensor-dropout: sensor silent")
        world.sensor_firmware.faults.silent = True
        try:
            await _hold(fault)
        finally:
            world.sensor_firmware.faults.silent = False
    else:
        _LOGGER.info("scenario sensor-dropout: sensor link lost")
        await world.sensor.drop_link(off_air_s=fault.duration_s or 3600.0 * 24)


async def _sensor_stuck(world: SimWorld, fault: ScheduledFault, _rng: random.Random) -> None:
    world.sensor_firmware.faults.stuck = True
    try:
        await _hold(fault)
    finally:
        world.sensor_firmware.faults.stuck = False


async def _sensor_spikes(world: SimWorld, fault: ScheduledFault, rng: random.Random) -> None:
    world.sensor_firmware.faults.spike_probability = rng.uniform(0.2, 0.5)
    world.sensor_firmware.faults.spike_nan_share = rng.uniform(0.2, 0.5)
    try:
        await _hold(fault)
    finally:
        world.sensor_firmware.faults.spike_probability = 0.0


async def _sensor_fahrenheit(world: SimWorld, fault: ScheduledFault, _rng: random.Random) -> None:
    world.sensor_firmware.unit = TemperatureUnit.FAHRENHEIT
    try:
        await _hold(fault)
    finally:
        world.sensor_firmware.unit = TemperatureUnit.CELSIUS


async def _heater_stuck_on(world: SimWorld, fault: ScheduledFault, _rng: random.Random) -> None:
    world.firmware.faults.heater_stuck_on = True
    try:
        await _hold(fault)
    finally:
        world.firmware.faults.heater_stuck_on = False


async def _pressure_overshoot(world: SimWorld, fault: ScheduledFault, rng: random.Random) -> None:
    # 16-28 mmHg: from the default 60 mmHg target it always passes the firmware ceiling plus
    # margin (75 mmHg), and sometimes the relief valve (80 mmHg).
    world.physics.overshoot_mmhg = rng.uniform(16.0, 28.0)
    try:
        await _hold(fault)
    finally:
        world.physics.overshoot_mmhg = 0.0


async def _link_drop(world: SimWorld, fault: ScheduledFault, rng: random.Random) -> None:
    off_air = fault.duration_s if fault.duration_s is not None else rng.uniform(4.0, 12.0)
    await world.massager.drop_link(off_air_s=off_air)


async def _massager_reboot(world: SimWorld, _fault: ScheduledFault, _rng: random.Random) -> None:
    async with asyncio.TaskGroup() as group:
        group.create_task(world.massager.drop_link(off_air_s=REBOOT_TIME_S), name="reboot link")
        world.firmware.reboot()
        world.massager.check_changed()


async def _low_battery(world: SimWorld, _fault: ScheduledFault, rng: random.Random) -> None:
    # A pack that was worn out: it sags to just under the low-battery flag and keeps draining.
    world.physics.set_battery_percent(rng.uniform(8.0, 14.0))
    world.massager.check_changed()


async def _sensor_detached(world: SimWorld, fault: ScheduledFault, rng: random.Random) -> None:
    # Slides off the sole and reads the air in the boot (about 24-26 °C), with its usual noise.
    world.sensor_firmware.faults.detached_air_c = rng.uniform(24.0, 26.0)
    try:
        await _hold(fault)
    finally:
        world.sensor_firmware.faults.detached_air_c = None


async def _sensor_stuck_warm(world: SimWorld, fault: ScheduledFault, rng: random.Random) -> None:
    # Once the skin sensor has warmed to 35.5-37 °C (below the thermostat's target, so heat stays
    # commanded), it freezes there with its usual noise (issue 10: independent breaker's input).
    # A lower target (a profile) may hold the skin below that: once the controller has switched
    # heat off (its thermostat reached the target), it freezes 1.5 °C under the reading then,
    # below the thermostat's band, so heat is commanded again.
    freeze_at = rng.uniform(35.5, 37.0)
    heated = False
    while world.physics.sensor_c < freeze_at:
        await asyncio.sleep(1.0)
        if world.firmware.heater_enabled:
            heated = True
        elif heated:
            freeze_at = world.physics.sensor_c - 1.5
            break
    world.sensor_firmware.faults.frozen_c = freeze_at
    _LOGGER.info("scenario sensor-stuck-warm: frozen at %.2f °C", freeze_at)
    try:
        await _hold(fault)
    finally:
        world.sensor_firmware.faults.frozen_c = None


async def _vent_stuck(world: SimWorld, fault: ScheduledFault, _rng: random.Random) -> None:
    world.physics.vent_stuck = True
    try:
        await _hold(fault)
    finally:
        world.physics.vent_stuck = False


async def _heater_intermittent(world: SimWorld, fault: ScheduledFault, rng: random.Random) -> None:
    # The relay sticks closed 0.6-0.9 s of every second, whatever it is told.
    world.firmware.faults.heater_flapping_share = rng.uniform(0.6, 0.9)
    try:
        await _hold(fault)
    finally:
        world.firmware.faults.heater_flapping_share = 0.0


async def _pressure_intermittent(
    world: SimWorld, fault: ScheduledFault, rng: random.Random
) -> None:
    # The pump holds the bladder 8-10 mmHg above each target (over the cap + 5 mmHg tolerance),
    # and for 0.2 s of every second the sensor dips by 6-10 mmHg, to 0-2 mmHg above the target
    # (under the tolerance): over the cap most of the time, never for one unbroken second.
    world.physics.hold_offset_mmhg = rng.uniform(8.0, 10.0)
    world.physics.pressure_dip_mmhg = rng.uniform(3.0, 5.0) + world.physics.hold_offset_mmhg - 5.0
    try:
        await _hold(fault)
    finally:
        world.physics.hold_offset_mmhg = 0.0
        world.physics.pressure_dip_mmhg = 0.0


async def _bursty_link(world: SimWorld, fault: ScheduledFault, _rng: random.Random) -> None:
    world.sensor_firmware.faults.burst_pairs = True
    try:
        await _hold(fault)
    finally:
        world.sensor_firmware.faults.burst_pairs = False


async def _corrupt_status(world: SimWorld, fault: ScheduledFault, _rng: random.Random) -> None:
    world.firmware.faults.pressure_sensor_open = True
    try:
        await _hold(fault)
    finally:
        world.firmware.faults.pressure_sensor_open = False


SCENARIOS: Mapping[str, Scenario] = MappingProxyType(
    {
        s.name: s
        for s in (
            Scenario("normal", "no fault: a healthy massager and sensor", _normal),
            Scenario(
                "sensor-dropout",
                "the skin sensor stops indicating, or loses its link, for a while",
                _sensor_dropout,
                default_duration_s=20.0,
            ),
            Scenario(
                "sensor-stuck",
                "the skin sensor repeats the same value while the skin keeps changing",
                _sensor_stuck,
                default_duration_s=120.0,
            ),
            Scenario(
                "sensor-spikes",
                "the skin sensor sends spikes of 3-15 °C and NaN readings",
                _sensor_spikes,
                default_duration_s=120.0,
            ),
            Scenario(
                "sensor-fahrenheit",
                "the skin sensor switches to Fahrenheit readings",
                _sensor_fahrenheit,
            ),
            Scenario(
                "heater-stuck-on",
                "the heater relay welds on: heater off and lease expiry are ignored; "
                "only the firmware's pad cut-out holds",
                _heater_stuck_on,
            ),
            Scenario(
                "pressure-overshoot",
                "the pump stops 16-28 mmHg past each new pressure target",
                _pressure_overshoot,
            ),
            Scenario(
                "link-drop",
                "the massager's link drops (supervision timeout) and returns",
                _link_drop,
                default_duration_s=8.0,
            ),
            Scenario(
                "massager-reboot",
                "the massager firmware restarts: everything off, fault REBOOTED, lease lost",
                _massager_reboot,
                default_duration_s=REBOOT_TIME_S,
            ),
            Scenario(
                "low-battery",
                "the massager's battery sags below 15 % and keeps draining",
                _low_battery,
            ),
            Scenario(
                "sensor-detached",
                "the skin sensor slides off the sole and reads the boot's air with its noise",
                _sensor_detached,
            ),
            Scenario(
                "sensor-stuck-warm",
                "once warmed to 35.5-37 °C the skin sensor freezes there, with its noise",
                _sensor_stuck_warm,
            ),
            Scenario(
                "vent-stuck",
                "the bladder's vent sticks closed: pressure stays up after a lower command or STOP",
                _vent_stuck,
            ),
            Scenario(
                "heater-intermittent",
                "the heater relay sticks closed for most of every second, whatever it is told",
                _heater_intermittent,
            ),
            Scenario(
                "pressure-intermittent",
                "the pump holds the bladder over the cap, with a short dip every second",
                _pressure_intermittent,
            ),
            Scenario(
                "bursty-link",
                "the skin sensor's readings arrive in pairs, back to back (BLE stack batching)",
                _bursty_link,
            ),
            Scenario(
                "corrupt-status",
                "the massager's pressure sensor fails open: status frames carry 0xFFFF pressure",
                _corrupt_status,
            ),
        )
    }
)
