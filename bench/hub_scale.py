"""Hub scale: one controller process supervising N massager-and-sensor pairs, on real time.

    .venv/bin/python bench/hub_scale.py [--pairs 10,25,50] [--duration 40] [--pairs-per-radio 5]

A care-home hub (DESIGN.md §6): N simulated pairs (``firmware_sim.SimWorld`` with ``index=i``,
all on one bumble ``LocalLink``), each sensor indicating at 1 Hz, each pair supervised by its own
``SessionRunner`` (its links, supervisor loop and actuator) in this one process and event loop.
The controller's side uses one ``BumbleRadio`` per ``--pairs-per-radio`` pairs, as a hub uses
one dongle per so many devices (a BLE controller holds a limited number of connections).

Figures, per N, over ``--duration`` seconds of real time after every pair is running:

- *loop lag*: for every skin reading, the time from its arrival in the controller (the link's
  callback stamps it) to the supervisor decision that used it (the decision's ``skin_age_s``
  when a new reading first appears). This is what a hub adds to every reaction.
- *reaction*: once per pair, at a random time in the window, a reading over the cut-off is
  indicated (as in bench/reaction.py: cut-off 34.5 °C, the real sensor silent for 1.6 s first
  so it is not a spike; the sensors report a steady 31.9 °C so every heater is on) and the clock
  stops when that pair's simulated firmware executes the command that switches its heater off.
- *CPU*: this process's CPU time (user + system) over the window / wall time; the simulated
  devices run in the same process, so this is an upper bound for the controller alone.

Goal: 50 pairs with p99 reaction <= 10 ms. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import random
import time
from contextlib import AsyncExitStack
from typing import Any

from _common import machine_line, spread
from bumble.link import LocalLink

from controller.ble.access import open_ble
from controller.protocol import TemperatureMeasurement, TemperatureUnit
from controller.service.runner import SessionObserver, SessionPlan, SessionRunner
from controller.settings import Settings, effective_limits
from controller.treatment.checklist import NO_CONTRAINDICATIONS
from controller.treatment.programs import PROGRAMS
from firmware_sim.world import SimWorld

# As bench/reaction.py: cut-off 34.5 °C, thermostat on below 32.0 °C. The sensors here report
# 31.9 °C (+ 0.02 °C noise, so it is not a stuck sensor) whatever the foot does, so every heater
# stays on for the whole window and a trial can come at any time; a reading of 34.8 °C after
# 1.6 s of silence is then a genuine over-cut-off reading (1.8 °C/s, inside the 2 °C/s bound).
CUTOFF_C = 34.5
TARGET_C = 32.5
HELD_READING_C = 31.9
HELD_NOISE_C = 0.02
OVER_CUTOFF_C = 34.8
QUIET_S = 1.6
# Generous: pairing 2N devices through a few radios on a loaded machine takes seconds.
START_TIMEOUT_S = 120.0
# A reaction that has not happened by then is recorded as missed, not waited for forever.
REACTION_TIMEOUT_S = 5.0
GOAL_P99_MS = 10.0


class LagWatch(SessionObserver):
    """Arrival -> decision lag of every new skin reading of one pair."""

    def __init__(self, samples: list[float], recording: list[bool]) -> None:
        self._samples = samples
        self._recording = recording
        self._last_reading_time: float | None = None

    def on_decision(self, now: float, decision: Any) -> None:
        age = decision.skin_age_s
        if age is None:
            return
        reading_time = now - age
        if self._last_reading_time is None or reading_time > self._last_reading_time + 1e-6:
            self._last_reading_time = reading_time
            if self._recording[0]:
                self._samples.append(age)


class Pair:
    def __init__(self, index: int, link: LocalLink) -> None:
        self.index = index
        self.world = SimWorld(seed=index, link=link, index=index + 1)
        rng = random.Random(index)
        # The sensor firmware's reading source (a private hook: this bench measures latency, not
        # thermal behaviour, and needs the heater on whenever a trial starts).
        self.just_read = asyncio.Event()

        def read() -> float:
            self.just_read.set()
            return HELD_READING_C + rng.gauss(0.0, HELD_NOISE_C)

        self.world.sensor_firmware._read = read
        self.heating = asyncio.Event()
        self.switched_off: asyncio.Future[float] | None = None
        self.runner: SessionRunner | None = None
        self.missed_why: str | None = None

    def tap(self) -> None:
        firmware = self.world.firmware
        original = firmware.handle_write

        def handle_write(data: bytes, now: float) -> Any:
            was_on = firmware.heater_enabled
            command = original(data, now)
            stamp = time.perf_counter()
            if firmware.heater_enabled:
                self.heating.set()
            elif was_on and self.switched_off is not None and not self.switched_off.done():
                self.switched_off.set_result(stamp)
            return command

        # Why setattr: the bench wraps this one instance's method, which mypy forbids as an
        # assignment; the firmware has no observer hook and the bench must not add one.
        setattr(firmware, "handle_write", handle_write)  # noqa: B010

    async def provoke(self) -> float | None:
        """One over-cut-off reading; seconds until the firmware's heater is off (None: missed)."""
        await self.heating.wait()
        world = self.world
        # Fall silent right after a reading: the gap before the over-cut-off reading is then
        # QUIET_S, under the 2 s stale limit (which would switch the heater off first).
        self.just_read.clear()
        await self.just_read.wait()
        world.sensor_firmware.faults.silent = True
        await asyncio.sleep(QUIET_S)
        if not world.firmware.heater_enabled:  # the heater went off meanwhile: no trial
            world.sensor_firmware.faults.silent = False
            self.missed_why = "heater already off"
            return None
        self.switched_off = asyncio.get_running_loop().create_future()
        frame = TemperatureMeasurement(
            value=OVER_CUTOFF_C,
            unit=TemperatureUnit.CELSIUS,
            timestamp=datetime.datetime(2025, 1, 6, 9, 0, 1),
            temperature_type=None,
        ).encode()
        sent = time.perf_counter()
        for connection in world.sensor.connections:
            await world.sensor.device.indicate_subscriber(
                connection, world.sensor.measurement, frame
            )
        try:
            async with asyncio.timeout(REACTION_TIMEOUT_S):
                off = await self.switched_off
        except TimeoutError:
            self.missed_why = "no heater-off within the timeout"
            return None
        finally:
            world.sensor_firmware.faults.silent = False
        return off - sent


async def run_hub(pairs: int, duration_s: float, per_radio: int) -> dict[str, Any]:
    settings = Settings.model_validate(
        {
            "heater": {"cutoff_c": CUTOFF_C, "target_c": TARGET_C},
            "session": {"max_minutes": 30.0},
        }
    )
    limits = effective_limits(settings)
    link = LocalLink()
    lags: list[float] = []
    recording = [False]
    reactions: list[float] = []
    missed = 0
    async with AsyncExitStack() as stack:
        hub = [Pair(i, link) for i in range(pairs)]
        for pair in hub:
            await stack.enter_async_context(pair.world)
            pair.tap()
        radios = [
            await stack.enter_async_context(open_ble(settings.ble, local_link=link))
            for _ in range(0, pairs, per_radio)
        ]
        async with asyncio.TaskGroup() as group:
            sessions = []
            for pair in hub:
                plan = SessionPlan(
                    limits=limits,
                    program=PROGRAMS["standard"],
                    checklist=NO_CONTRAINDICATIONS.result(inspection_required=False),
                    massager_address=pair.world.massager_address,
                    sensor_address=pair.world.sensor_address,
                )
                pair.runner = SessionRunner(
                    plan, radios[pair.index // per_radio], observers=(LagWatch(lags, recording),)
                )
                sessions.append(group.create_task(pair.runner.run(), name=f"pair {pair.index}"))
            setup_started = time.perf_counter()
            async with asyncio.timeout(START_TIMEOUT_S):
                for pair in hub:
                    await pair.heating.wait()
            setup_s = time.perf_counter() - setup_started
            recording[0] = True
            cpu0, wall0 = time.process_time(), time.perf_counter()
            rng = random.Random(pairs)

            async def trial(pair: Pair) -> None:
                nonlocal missed
                # Spread the provocations over the window so they do not all land together.
                await asyncio.sleep(rng.uniform(0.0, max(0.0, duration_s - QUIET_S - 2.0)))
                result = await pair.provoke()
                if result is None:
                    missed += 1
                else:
                    reactions.append(result)

            async with asyncio.TaskGroup() as trials:
                for pair in hub:
                    trials.create_task(trial(pair))
                trials.create_task(asyncio.sleep(duration_s))
            wall = time.perf_counter() - wall0
            cpu = time.process_time() - cpu0
            recording[0] = False
            for pair in hub:
                assert pair.runner is not None
                pair.runner.request_stop()
    return {
        "pairs": pairs,
        "radios": len(range(0, pairs, per_radio)),
        "setup_s": setup_s,
        "window_s": wall,
        "cpu_percent": 100.0 * cpu / wall,
        "lag_ms": spread([x * 1000 for x in lags]),
        "reaction_ms": spread([x * 1000 for x in reactions]),
        "missed": missed,
        "missed_why": sorted({p.missed_why for p in hub if p.missed_why}),
        "readings_per_s": len(lags) / wall,
    }


def _line(result: dict[str, Any]) -> str:
    lag, reaction = result["lag_ms"], result["reaction_ms"]
    met = "met" if reaction["p99"] <= GOAL_P99_MS else "NOT met"
    return (
        f"N={result['pairs']:<3} radios {result['radios']:<2} setup {result['setup_s']:5.1f} s  "
        f"CPU {result['cpu_percent']:5.1f} %  readings {result['readings_per_s']:5.1f}/s  "
        f"loop lag median {lag['median']:.3f} p99 {lag['p99']:.3f} max {lag['max']:.3f} ms "
        f"(n={lag['n']})  reaction median {reaction['median']:.2f} p99 {reaction['p99']:.2f} "
        f"max {reaction['max']:.2f} ms (n={reaction['n']}, missed {result['missed']}"
        f"{' ' + str(result['missed_why']) if result['missed'] else ''})  "
        f"goal p99 <= {GOAL_P99_MS:g} ms: {met}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", default="10,25,50")
    parser.add_argument("--duration", type=float, default=40.0, help="real seconds per N")
    parser.add_argument("--pairs-per-radio", type=int, default=5)
    args = parser.parse_args()
    print(f"hub scale, {machine_line()}, pid {os.getpid()}")
    for n in (int(x) for x in args.pairs.split(",")):
        result = asyncio.run(run_hub(n, args.duration, args.pairs_per_radio))
        print(_line(result), flush=True)


if __name__ == "__main__":
    main()
