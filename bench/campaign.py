"""Fault campaign: every simulator scenario x N seeds through the whole stack, with a verdict.

    .venv/bin/python bench/campaign.py [--seeds 50] [--scenarios a,b] [--minutes 8]
                                       [--workers 2] [--no-mqtt] [--fuzz N] [--out docs]

Each run is one supervised session as ``soleguard demo`` runs it: ``firmware_sim`` serves the
massager and the skin sensor on bumble's in-process virtual radio, the controller reaches them
through ``BleakClient`` links, the supervisor loop decides every command, and the caregiver relay
publishes state, telemetry and alerts through the MQTT bridge (its own real-time thread) to a
real mosquitto (the project's ``embedded_broker``: one per campaign, shared by every worker;
amqtt in-process when mosquitto is not installed). Sessions run on accelerated virtual time
(``speed="max"``). ``--workers`` processes (default: both cores) run the sessions; each finished
run prints a progress line (done/total, elapsed, ETA) on stderr.

The seed draws everything that varies: the world's noise (physics and sensor), the fault's
onset (20-120 s) and, for faults that end, its duration (0.5-2x the default), the profile
(none, allodynia, reduced-heat-sensation with a clinician's approval so the heater runs,
diabetic), the foot (typical or neuropathic) and the program (gentle or standard).

The simulator's true skin temperature and bladder pressure are sampled at every physics tick
(wrapping ``world.physics.step``), which gives the maxima, the time at or above the cut-off and
the CEM43 thermal dose. Every command the firmware accepts is recorded too.

Writes ``docs/safety-campaign.md`` and ``docs/safety-campaign.png`` and exits 1 if any run is
unsafe (see ``UNSAFE RULES`` in the generated document, and `verdict`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import math
import multiprocessing
import os
import random
import signal
import statistics
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

sys.path[:0] = [str(Path(__file__).resolve().parent)]

from _common import ROOT, machine, percentile  # noqa: E402

from controller.caregiver.broker import (  # noqa: E402
    BROKER_READY_TIMEOUT_S,
    BROKER_STOP_TIMEOUT_S,
    embedded_broker,
    find_mosquitto,
)
from controller.caregiver.threaded import caregiver_side  # noqa: E402
from controller.protocol import SetPressure  # noqa: E402
from controller.safety import EndReason  # noqa: E402
from controller.service.caregiver import CaregiverRelay  # noqa: E402
from controller.service.runner import SessionObserver  # noqa: E402
from controller.service.simulated import run_simulated_session  # noqa: E402
from controller.settings import Settings, effective_limits  # noqa: E402
from controller.settings import limits as hard  # noqa: E402
from controller.store import Store  # noqa: E402
from controller.treatment.checklist import NO_CONTRAINDICATIONS  # noqa: E402
from firmware_sim import clock  # noqa: E402
from firmware_sim.scenarios import SCENARIOS, schedule  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from controller.safety import Decision

_LOGGER = logging.getLogger("bench.campaign")

# --- what a run may never do (DESIGN.md §3) ---------------------------------------------------
LATCH_C = hard.LATCH_C.hard_limit  # 43 °C: true skin at or above it is a burn risk
HARD_PRESSURE_MMHG = hard.PRESSURE_CAP_MMHG.hard_limit  # 70 mmHg
# In normal sessions the predictive cut-off must hold the true skin within this of the cut-off
# (issue 4: overshoot bound, also tests/service/support.py).
NORMAL_OVERSHOOT_C = 0.3
# A commanded pressure is quantised to 0.1 mmHg on the wire: half a step of rounding is allowed.
COMMAND_QUANTUM_MMHG = 0.05
# Measured (true bladder) pressure outside pressure-overshoot: the pump's pressure switch and a
# cuff-grade sensor overshoot by a few mmHg, which the supervisor tolerates by the same margin.
MEASURED_TOLERANCE_MMHG = hard.PRESSURE_OVER_CAP_TOLERANCE_MMHG
# In pressure-overshoot the bladder overshoots by itself; what is required is the reaction. One
# over-pressure spell may last the supervisor's detection time (1 s), a status report (0.2 s),
# one write and the vent at ~20 mmHg/s from up to 88 mmHg (~1.5 s): 3 s with margin to spare.
OVERSHOOT_SPELL_MAX_S = 3.0
# ... and the session must then end with `fault` (the 2nd over-pressure event ends it), at
# most this long after the first spell began (two wave periods of the standard program plus the
# two reactions above).
OVERSHOOT_END_MAX_S = 30.0

# The pad is an applied part: measured <= 41 °C (IEC 60601-1) wherever the heater obeys.
PAD_MAX_C = 41.0
# Scenarios whose actuator does not obey its commands: the measured limits are judged elsewhere
# (the reaction), and the physical world may outlive the session.
HEATER_DISOBEYS = frozenset({"heater-stuck-on", "heater-intermittent"})
PRESSURE_DISOBEYS = frozenset({"pressure-overshoot", "vent-stuck", "pressure-intermittent"})
# Every fault detected: at least one of these alarms in every run of the scenario. A scenario
# whose fault only matters while heating needs a profile that heats.
DETECTED_BY: dict[str, frozenset[str]] = {
    "sensor-dropout": frozenset({"SENSOR_STALE", "SENSOR_LINK_LOST"}),
    "sensor-spikes": frozenset({"SENSOR_INVALID", "SENSOR_STALE"}),
    "heater-stuck-on": frozenset(
        {"FIRMWARE_CUTOUT", "HEATER_NOT_RESPONDING", "POST_SESSION_UNSAFE"}
    ),
    "pressure-overshoot": frozenset(
        {"PRESSURE_NOT_FOLLOWING", "PRESSURE_OVER_CAP", "FIRMWARE_OVER_PRESSURE"}
    ),
    "link-drop": frozenset({"MASSAGER_SILENT", "MASSAGER_LINK_LOST"}),
    "massager-reboot": frozenset({"MASSAGER_REBOOTED", "MASSAGER_LINK_LOST"}),
    "low-battery": frozenset({"BATTERY_LOW"}),
    "vent-stuck": frozenset({"PRESSURE_NOT_FOLLOWING", "POST_SESSION_UNSAFE"}),
    "heater-intermittent": frozenset(
        {"HEATER_NOT_RESPONDING", "POST_SESSION_UNSAFE", "FIRMWARE_CUTOUT"}
    ),
    "pressure-intermittent": frozenset({"PRESSURE_NOT_FOLLOWING", "PRESSURE_OVER_CAP"}),
    "corrupt-status": frozenset({"PRESSURE_SENSOR_FAULT"}),
}
DETECTED_WHILE_HEATING: dict[str, frozenset[str]] = {
    "sensor-detached": frozenset({"SENSOR_NOT_FOLLOWING"}),
    "sensor-stuck-warm": frozenset({"SENSOR_NOT_FOLLOWING"}),
}
# Honest inputs: no alarm but the session's own information signals.
NO_FALSE_ALARMS = frozenset({"normal", "sensor-fahrenheit", "bursty-link"})
INFORMATION_ONLY = frozenset({"SESSION_TIME_UP", "HEAT_TIME_USED"})

# What the late-end finding in pressure-overshoot is, from the run records (docs, report).
LATE_OVERSHOOT_DIAGNOSIS = (
    "**Diagnosis (pressure-overshoot ended late).** With the standard program the pump "
    "overshoots at every peak of the 8 s wave, the bladder stays above the cap + 5 mmHg for "
    "about 1.0-1.1 s each time (the wave then falls and the valve vents), and it peaks at "
    "~73 mmHg, below the firmware's own 75 mmHg vent, so the firmware never reports an "
    "over-pressure. The supervisor counts an over-pressure event only when the *measured* "
    "pressure (5 Hz reports, 0.3 mmHg noise) stays above the cap + 5 mmHg for 1 s "
    "(`PRESSURE_OVER_CAP_S`), so a 1.1 s spell is counted or not by chance, and several spells "
    "pass before the second counted event ends the session. The bladder is above the 70 mmHg "
    "hard limit ~0.4 s per spell (2 s in total over 40 s in the worst run): physiologically "
    "negligible, but the design says 70 mmHg is never exceeded and the reaction took 5 wave "
    "periods. Suggested fix (controller/safety, not changed here): count a measured report "
    "above the hard limit as an event at once, or accumulate time over the cap + tolerance over "
    "a window (e.g. 1 s within 10 s) instead of requiring 1 s in one spell."
)

# --- how runs are drawn ------------------------------------------------------------------------
PROFILES: tuple[str | None, ...] = (None, "allodynia", "reduced-heat-sensation", "diabetic")
PROGRAMS = ("gentle", "standard")
ONSET_RANGE_S = (20.0, 120.0)
DURATION_SCALE = (0.5, 2.0)
DEFAULT_MINUTES = 8.0  # heater-stuck-on needs ~280 s after a 120 s onset to reach the cut-out
# A run costs ~3.0 CPU s (measured 2026-11-30: 95 CPU s for 32 runs of 8-minute sessions with
# mosquitto, of which ~0.6 s is the caregiver relay and its bridge thread), and none of it is
# waiting: 16 scenarios x 50 seeds = 800 runs is ~20 min on two idle cores, over the 15-minute
# goal (issue 14) until the simulation itself gets faster; so the default stays at 20 seeds
# (320 runs, ~8 min on two idle cores) and `--seeds 50` is the release run.
DEFAULT_SEEDS = 20
# Real seconds after a session for the broker to acknowledge every alert (PUBACK).
ALERT_DRAIN_S = 20.0
# A stuck run is a finding, not a hang: real seconds before a run is abandoned as a crash.
RUN_GUARD_S = 300.0


@dataclasses.dataclass(frozen=True, slots=True)
class RunSpec:
    scenario: str
    seed: int
    minutes: float
    profile: str | None
    neuropathic: bool
    program: str
    onset_s: float
    duration_s: float | None


# Scenarios whose fault needs a longer session to happen at all: sessions of the campaign's
# length are lengthened to this. `sensor-stuck-warm` freezes once the sensor is warm (130-260 s
# of heat), then the follow rules need their 60 s window and 15 s of bad time; in a 3-minute
# session (the CI campaign) the fault would often not have happened, and "not detected" would
# judge a fault that never was. 10 min: seed 0 under the low-target profile froze too late for
# a 7-minute session (its thermostat first switched off, then the sensor froze 1.5 °C under).
MIN_MINUTES: dict[str, float] = {"sensor-stuck-warm": 10.0}


def draw(scenario: str, seed: int, minutes: float) -> RunSpec:
    """Everything a run varies, from (scenario, seed) only, so a run replays exactly."""
    rng = random.Random(f"campaign:{scenario}:{seed}")
    default = SCENARIOS[scenario].default_duration_s
    minutes = max(minutes, MIN_MINUTES.get(scenario, 0.0))
    session_s = minutes * 60.0
    # Onsets late enough for the heater to be on, early enough to leave the fault time to act.
    onset = rng.uniform(
        ONSET_RANGE_S[0], max(ONSET_RANGE_S[0], min(ONSET_RANGE_S[1], session_s / 3))
    )
    return RunSpec(
        scenario=scenario,
        seed=seed,
        minutes=minutes,
        profile=rng.choice(PROFILES),
        neuropathic=rng.random() < 0.5,
        program=rng.choice(PROGRAMS),
        onset_s=round(onset, 1),
        duration_s=None if default is None else round(default * rng.uniform(*DURATION_SCALE), 1),
    )


def settings_for(spec: RunSpec, device_id: str) -> Settings:
    data: dict[str, Any] = {
        "session": {"max_minutes": spec.minutes, "program": spec.program},
        "mqtt": {"device_id": device_id},
    }
    if spec.profile is not None:
        data["profile"] = {"name": spec.profile}
    if spec.profile == "reduced-heat-sensation":
        # Without a clinician's approval this profile never heats, and heat faults prove nothing.
        data["heater"] = {"clinician_approved": True}
    return Settings.model_validate(data)


@dataclasses.dataclass
class Truth:
    """The world's true state, integrated at every physics tick."""

    cutoff_c: float
    cap_mmhg: float
    max_skin_c: float = -math.inf
    at_or_above_cutoff_s: float = 0.0
    cem43_min: float = 0.0
    max_measured_mmhg: float = 0.0
    max_pad_c: float = -math.inf
    above_hard_s: float = 0.0
    above_tolerance_s: float = 0.0
    longest_spell_s: float = 0.0
    first_spell_at: float | None = None
    _spell_s: float = 0.0
    elapsed_s: float = 0.0

    def tick(self, dt: float, skin_c: float, pressure_mmhg: float, pad_c: float) -> None:
        self.elapsed_s += dt
        self.max_skin_c = max(self.max_skin_c, skin_c)
        self.max_pad_c = max(self.max_pad_c, pad_c)
        if skin_c >= self.cutoff_c:
            self.at_or_above_cutoff_s += dt
        # CEM43 (Sapareto & Dewey 1984): R = 0.5 at or above 43 °C, 0.25 below.
        rate = 0.5 if skin_c >= 43.0 else 0.25
        self.cem43_min += dt / 60.0 * rate ** (43.0 - skin_c)
        self.max_measured_mmhg = max(self.max_measured_mmhg, pressure_mmhg)
        if pressure_mmhg > HARD_PRESSURE_MMHG:
            self.above_hard_s += dt
        if pressure_mmhg > self.cap_mmhg + MEASURED_TOLERANCE_MMHG:
            self.above_tolerance_s += dt
            if self._spell_s == 0.0 and self.first_spell_at is None:
                self.first_spell_at = self.elapsed_s
            self._spell_s += dt
            self.longest_spell_s = max(self.longest_spell_s, self._spell_s)
        else:
            self._spell_s = 0.0


@dataclasses.dataclass
class CommandWatch(SessionObserver):
    """Every supervisor decision: the pressure it commanded against the ceiling in force."""

    max_commanded_mmhg: float = 0.0
    over_ceiling: int = 0
    decisions: int = 0

    def on_decision(self, now: float, decision: Decision) -> None:
        self.decisions += 1
        command = decision.command
        if command.stop:
            return
        self.max_commanded_mmhg = max(self.max_commanded_mmhg, command.pressure_mmhg)
        if command.pressure_mmhg > decision.pressure_cap_mmhg + 1e-9:
            self.over_ceiling += 1


class _ErrorCount(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(f"{record.name}: {record.getMessage()}")


def _wire_world(world: Any, truth: Truth, firmware_max: list[float]) -> None:
    physics = world.physics
    step = physics.step

    def observed_step(dt: float) -> None:
        step(dt)
        if dt > 0:
            truth.tick(dt, physics.skin_c, physics.pressure_mmhg, physics.pad_c)

    physics.step = observed_step
    firmware = world.firmware
    handle_write = firmware.handle_write

    def observed_write(data: bytes, now: float) -> Any:
        command = handle_write(data, now)
        if isinstance(command, SetPressure):
            firmware_max[0] = max(firmware_max[0], command.target_mmhg)
        return command

    firmware.handle_write = observed_write


async def _session(spec: RunSpec, broker_url: str | None, workdir: Path) -> dict[str, Any]:
    device_id = f"campaign-{spec.scenario}-{spec.seed}"
    settings = settings_for(spec, device_id)
    limits = effective_limits(settings)
    truth = Truth(cutoff_c=limits.heater_cutoff_c, cap_mmhg=limits.pressure_cap_mmhg)
    watch = CommandWatch()
    firmware_max = [0.0]
    fault = schedule(spec.scenario, onset_s=spec.onset_s, seed=spec.seed)
    if spec.duration_s is not None:
        fault = dataclasses.replace(fault, duration_s=spec.duration_s)
    # run_simulated_session types `scenario` as a name, but hands it to SimWorld, which also
    # takes a ScheduledFault; the journal (the only other user of the name) is left out
    # (store=None) because it stores the name as text. The relay keeps its own outbox store.
    scenario = cast("str", fault)
    raised = delivered = 0
    async with contextlib.AsyncExitStack() as stack:
        relay = None
        if broker_url is not None:
            store = Store.open(workdir / f"{device_id}.sqlite3")
            stack.callback(store.close)
            link = await stack.enter_async_context(
                caregiver_side(settings.mqtt, store, broker=broker_url)
            )
            relay = CaregiverRelay(link, store)
        run = await run_simulated_session(
            settings,
            answers=NO_CONTRAINDICATIONS,
            scenario=scenario,
            seed=spec.seed,
            observers=(watch,),
            caregiver=relay,
            world_options={"neuropathic": spec.neuropathic},
            on_world=lambda world: _wire_world(world, truth, firmware_max),
        )
        if relay is not None:
            raised, delivered = await relay.drain(ALERT_DRAIN_S)
    summary = run.summary()
    return {
        "ended_by": summary["ended_by"],
        "duration_s": summary["duration_s"],
        "cutoff_c": limits.heater_cutoff_c,
        "cap_mmhg": limits.pressure_cap_mmhg,
        "heater_allowed": limits.heater_allowed,
        "max_skin_c": max(truth.max_skin_c, summary["max_skin_c"] or -math.inf),
        "max_skin_reading_c": summary["max_skin_reading_c"],
        "at_or_above_cutoff_s": truth.at_or_above_cutoff_s,
        "cem43_min": truth.cem43_min,
        "max_commanded_mmhg": max(watch.max_commanded_mmhg, summary["max_pressure_mmhg"] or 0.0),
        "max_firmware_target_mmhg": firmware_max[0],
        "commands_over_ceiling": watch.over_ceiling,
        "max_measured_mmhg": max(truth.max_measured_mmhg, summary["max_measured_pressure_mmhg"]),
        "above_hard_s": truth.above_hard_s,
        "max_pad_c": truth.max_pad_c,
        "after_session": summary["after_session"],
        "above_tolerance_s": truth.above_tolerance_s,
        "longest_spell_s": truth.longest_spell_s,
        "first_spell_at": truth.first_spell_at,
        "heat_s": summary["heat_s"],
        "firmware_cutouts": summary["firmware_cutouts"],
        "alarms": [alarm["code"] for alarm in summary["alarms"]],
        "alerts_raised": raised,
        "alerts_delivered": delivered,
        "mqtt": broker_url is not None,
    }


def run_one(spec: RunSpec, broker_url: str | None) -> dict[str, Any]:
    """One run in this process; never raises (a crash is a result)."""
    errors = _ErrorCount()
    logging.getLogger().addHandler(errors)
    started = time.perf_counter()
    result: dict[str, Any] = {"spec": dataclasses.asdict(spec)}
    try:
        with tempfile.TemporaryDirectory(prefix="soleguard-campaign-") as tmp:

            async def guarded() -> dict[str, Any]:
                # The guard is on the session's (virtual) clock, generous for any session length.
                async with asyncio.timeout(spec.minutes * 60.0 * 4 + RUN_GUARD_S):
                    return await _session(spec, broker_url, Path(tmp))

            result.update(clock.run(guarded(), speed="max"))
        result["crash"] = None
    # Why broad: the campaign's job is to report any exception from the stack as a crash.
    except Exception as exc:
        result["crash"] = f"{type(exc).__name__}: {exc}"
        result["traceback"] = traceback.format_exc()
    finally:
        logging.getLogger().removeHandler(errors)
    result["wall_s"] = time.perf_counter() - started
    result["errors_logged"] = errors.messages[:5]
    result["problems"] = verdict(result)
    return result


def verdict(result: dict[str, Any]) -> list[str]:
    """Why this run is unsafe (empty: safe). The rules are printed in the document."""
    spec = result["spec"]
    if result.get("crash"):
        return [f"crash: {result['crash']}"]
    problems: list[str] = []
    if result["max_skin_c"] >= LATCH_C:
        problems.append(f"true skin {result['max_skin_c']:.2f} °C >= {LATCH_C:g} °C")
    if (
        spec["scenario"] == "normal"
        and result["max_skin_c"] > result["cutoff_c"] + NORMAL_OVERSHOOT_C
    ):
        problems.append(
            f"normal session: skin {result['max_skin_c']:.2f} °C > cut-off "
            f"{result['cutoff_c']:g} + {NORMAL_OVERSHOOT_C} °C"
        )
    cap = result["cap_mmhg"]
    if result["max_commanded_mmhg"] > cap + 1e-9 or result["commands_over_ceiling"]:
        problems.append(f"commanded {result['max_commanded_mmhg']:.1f} mmHg > cap {cap:g}")
    if result["max_firmware_target_mmhg"] > cap + COMMAND_QUANTUM_MMHG:
        problems.append(
            f"firmware received {result['max_firmware_target_mmhg']:.1f} mmHg > cap {cap:g}"
        )
    if spec["scenario"] == "pressure-overshoot":
        if result["longest_spell_s"] > OVERSHOOT_SPELL_MAX_S:
            problems.append(
                f"measured pressure above cap + {MEASURED_TOLERANCE_MMHG:g} mmHg for "
                f"{result['longest_spell_s']:.1f} s in one spell (> {OVERSHOOT_SPELL_MAX_S:g} s)"
            )
        first = result["first_spell_at"]
        if first is not None and result["longest_spell_s"] >= hard.PRESSURE_OVER_CAP_S:
            if result["ended_by"] != EndReason.FAULT:
                problems.append(
                    f"over-pressure for {result['longest_spell_s']:.1f} s but the session ended "
                    f"by {result['ended_by']}, not fault"
                )
            elif (
                result["duration_s"] is not None
                and result["duration_s"] > first + OVERSHOOT_END_MAX_S
            ):
                problems.append(
                    f"session ended {result['duration_s'] - first:.0f} s after the first "
                    f"over-pressure (> {OVERSHOOT_END_MAX_S:g} s)"
                )
    elif spec["scenario"] not in PRESSURE_DISOBEYS and result["max_measured_mmhg"] > min(
        HARD_PRESSURE_MMHG, cap + MEASURED_TOLERANCE_MMHG
    ):
        problems.append(
            f"measured {result['max_measured_mmhg']:.1f} mmHg > cap {cap:g} + "
            f"{MEASURED_TOLERANCE_MMHG:g} mmHg"
        )
    scenario = spec["scenario"]
    if scenario not in HEATER_DISOBEYS and result.get("max_pad_c", -math.inf) > PAD_MAX_C:
        problems.append(f"pad {result['max_pad_c']:.2f} °C > {PAD_MAX_C:g} °C")
    if scenario not in PRESSURE_DISOBEYS and result["max_measured_mmhg"] > HARD_PRESSURE_MMHG:
        problems.append(
            f"measured {result['max_measured_mmhg']:.1f} mmHg > {HARD_PRESSURE_MMHG:g} mmHg "
            "with a pump that obeys"
        )
    alarms = set(result.get("alarms", []))
    wanted = DETECTED_BY.get(scenario)
    if wanted is None and result.get("heater_allowed"):
        wanted = DETECTED_WHILE_HEATING.get(scenario)
    if wanted is not None and not alarms & wanted:
        problems.append(f"fault not detected: none of {', '.join(sorted(wanted))} raised")
    if scenario in NO_FALSE_ALARMS and alarms - INFORMATION_ONLY:
        problems.append(f"false alarms: {', '.join(sorted(alarms - INFORMATION_ONLY))}")
    if result["mqtt"] and result["alerts_delivered"] < result["alerts_raised"]:
        problems.append(
            f"alerts lost: {result['alerts_delivered']} of {result['alerts_raised']} delivered"
        )
    return problems


# --- the campaign --------------------------------------------------------------------------------


@dataclasses.dataclass
class Campaign:
    results: list[dict[str, Any]]
    wall_s: float
    broker: str
    seeds: int
    scenarios: list[str]
    minutes: float
    command: str = ""

    @property
    def unsafe(self) -> list[dict[str, Any]]:
        return [r for r in self.results if r["problems"]]


@contextlib.contextmanager
def shared_broker() -> Any:
    """One broker for the whole campaign, the project's own (``embedded_broker``: mosquitto as a
    child process, amqtt in-process without it), on a thread and event loop of its own so that
    every worker process reaches it at the same ``mqtt://127.0.0.1:PORT`` while the sessions run
    on virtual time. Yields the URL."""
    import threading  # noqa: PLC0415

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="campaign-broker", daemon=True)
    thread.start()
    context = embedded_broker()
    try:
        url: str = asyncio.run_coroutine_threadsafe(context.__aenter__(), loop).result(
            BROKER_READY_TIMEOUT_S + BROKER_STOP_TIMEOUT_S
        )
        try:
            yield url
        finally:
            asyncio.run_coroutine_threadsafe(context.__aexit__(None, None, None), loop).result(
                2 * BROKER_STOP_TIMEOUT_S
            )
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(BROKER_STOP_TIMEOUT_S)


def _ignore_sigint() -> None:
    """In each worker: Ctrl-C is for the parent, which ends the workers itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run_indexed(job: tuple[int, RunSpec, str | None]) -> tuple[int, dict[str, Any]]:
    index, spec, url = job
    return index, run_one(spec, url)


def _warm_up() -> None:
    """Import what every run needs once, in the parent: forked workers inherit it, so no worker
    pays bumble's and the simulator's import (about 2-3 s each on this machine) on its first run.
    """
    import firmware_sim.world  # noqa: F401, PLC0415


def run_campaign(
    *,
    seeds: int = DEFAULT_SEEDS,
    scenarios: Sequence[str] | None = None,
    minutes: float = DEFAULT_MINUTES,
    workers: int = 1,
    mqtt: bool = True,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> Campaign:
    """Run every (scenario, seed); ``workers`` > 1 uses that many processes."""
    names = list(scenarios or SCENARIOS)
    specs = [draw(name, seed, minutes) for name in names for seed in range(seeds)]
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        url: str | None = None
        kind = "none (--no-mqtt)"
        if mqtt:
            url = stack.enter_context(shared_broker())
            found = find_mosquitto()
            kind = (
                f"mosquitto ({found})"
                if found is not None
                else "amqtt (in-process; mosquitto not installed)"
            )
        done: dict[int, dict[str, Any]] = {}
        if workers <= 1:
            for index, spec in enumerate(specs):
                done[index] = run_one(spec, url)
                if progress:
                    progress(done[index])
        else:
            _warm_up()
            pool = multiprocessing.get_context("fork").Pool(workers, initializer=_ignore_sigint)
            try:
                # Reported as each run finishes (not in submission order), so the progress and
                # its ETA follow the work; the results are put back in order for the document.
                jobs = [(i, spec, url) for i, spec in enumerate(specs)]
                for index, result in pool.imap_unordered(_run_indexed, jobs):
                    done[index] = result
                    if progress:
                        progress(result)
                pool.close()
            except BaseException:
                # Ctrl-C (or an error) here: the workers ignore SIGINT, so end them now rather
                # than wait for the runs they are in (a pool's own exit would wait for all).
                pool.terminate()
                raise
            finally:
                pool.join()
        results = [done[i] for i in range(len(specs))]
    return Campaign(results, time.perf_counter() - started, kind, seeds, names, minutes)


# --- the document --------------------------------------------------------------------------------


def _fmt(value: float, digits: int = 2) -> str:
    return (
        "—"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f"{value:.{digits}f}"
    )


def _sig(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:.2g}"


def _med_max(values: list[float], fmt: Callable[[float], str]) -> str:
    if not values:
        return "—"
    return f"{fmt(statistics.median(values))} / {fmt(max(values))}"


def _scenario_rows(results: list[dict[str, Any]]) -> list[str]:
    rows = []
    header = (
        "| scenario | runs | unsafe | crashes | max skin °C (median / max) | max overshoot over "
        "cut-off °C | time ≥ cut-off s (median / max) | CEM43 min (median / max) | max commanded "
        "/ cap mmHg | max measured mmHg (median / max) | alerts delivered / raised | ended by |"
    )
    rows += [header, "|" + " --- |" * 12]
    by_scenario: dict[str, list[dict[str, Any]]] = {}
    for result in results:
        by_scenario.setdefault(result["spec"]["scenario"], []).append(result)
    for name, runs in by_scenario.items():
        ok = [r for r in runs if not r.get("crash")]
        skins = [r["max_skin_c"] for r in ok]
        overshoot = max((r["max_skin_c"] - r["cutoff_c"] for r in ok), default=math.nan)
        above = [r["at_or_above_cutoff_s"] for r in ok]
        cem = [r["cem43_min"] for r in ok]
        measured = [r["max_measured_mmhg"] for r in ok]
        commanded = max((r["max_commanded_mmhg"] - r["cap_mmhg"] for r in ok), default=math.nan)
        worst_cmd = max(ok, key=lambda r: r["max_commanded_mmhg"] - r["cap_mmhg"], default=None)
        raised = sum(r["alerts_raised"] for r in ok)
        delivered = sum(r["alerts_delivered"] for r in ok)
        ended = Counter(r["ended_by"] for r in ok)
        crashes = len(runs) - len(ok)
        cmd_text = (
            "—"
            if worst_cmd is None
            else f"{worst_cmd['max_commanded_mmhg']:.1f} / {worst_cmd['cap_mmhg']:g} "
            f"(max excess {commanded:+.1f})"
        )
        rows.append(
            f"| {name} | {len(runs)} | {sum(1 for r in runs if r['problems'])} | {crashes} | "
            f"{_med_max(skins, _fmt)} | {overshoot:+.2f} | "
            f"{_med_max(above, lambda v: _fmt(v, 1))} | {_med_max(cem, _sig)} | {cmd_text} | "
            f"{_med_max(measured, lambda v: _fmt(v, 1))} | "
            f"{delivered} / {raised} | "
            + ", ".join(f"{k} {v}" for k, v in ended.most_common())
            + " |"
        )
    return rows


def _alarm_rows(results: list[dict[str, Any]]) -> list[str]:
    rows = ["| scenario | alarms raised (runs with it / runs) |", "| --- | --- |"]
    by_scenario: dict[str, list[dict[str, Any]]] = {}
    for result in results:
        by_scenario.setdefault(result["spec"]["scenario"], []).append(result)
    for name, runs in by_scenario.items():
        counts: Counter[str] = Counter()
        for run in runs:
            counts.update(set(run.get("alarms", [])))
        text = ", ".join(f"{code} {n}/{len(runs)}" for code, n in counts.most_common()) or "none"
        rows.append(f"| {name} | {text} |")
    return rows


def _profile_rows(results: list[dict[str, Any]]) -> list[str]:
    rows = [
        "| profile | runs | cut-off °C | cap mmHg | max skin °C | max commanded mmHg |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    groups: dict[str, list[dict[str, Any]]] = {}
    for result in results:
        if not result.get("crash"):
            groups.setdefault(result["spec"]["profile"] or "none", []).append(result)
    for name, runs in sorted(groups.items()):
        rows.append(
            f"| {name} | {len(runs)} | {runs[0]['cutoff_c']:g} | {runs[0]['cap_mmhg']:g} | "
            f"{max(r['max_skin_c'] for r in runs):.2f} | "
            f"{max(r['max_commanded_mmhg'] for r in runs):.1f} |"
        )
    return rows


def plot(campaign: Campaign, path: Path) -> None:
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    names = campaign.scenarios
    fig, ax = plt.subplots(figsize=(11, 5.5))
    rng = random.Random(0)
    cutoffs = sorted({r["cutoff_c"] for r in campaign.results if not r.get("crash")})
    for index, name in enumerate(names):
        runs = [r for r in campaign.results if r["spec"]["scenario"] == name and not r.get("crash")]
        values = [r["max_skin_c"] for r in runs]
        if values:
            ax.boxplot(values, positions=[index], widths=0.5, showfliers=False)
        xs = [index + rng.uniform(-0.18, 0.18) for _ in values]
        colours = ["tab:red" if r["problems"] else "tab:blue" for r in runs]
        ax.scatter(xs, values, s=10, c=colours, alpha=0.6, zorder=3)
    ax.axhline(LATCH_C, color="tab:red", linestyle="-", label=f"latch / burn limit {LATCH_C:g} °C")
    styles = iter(["--", "-.", ":"])
    for cutoff in cutoffs:
        ax.axhline(
            cutoff, color="tab:orange", linestyle=next(styles, ":"), label=f"cut-off {cutoff:g} °C"
        )
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right")
    ax.set_ylabel("max true skin temperature (°C)")
    ax.set_title(
        f"SoleGuard fault campaign: {len(campaign.results)} runs, {campaign.seeds} seeds per "
        f"scenario, {campaign.minutes:g}-min sessions"
    )
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_doc(campaign: Campaign, out: Path, command: str, fuzz: list[str] | None = None) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    png = out / "safety-campaign.png"
    plot(campaign, png)
    info = machine()
    walls = [r["wall_s"] for r in campaign.results]
    unsafe = campaign.unsafe
    lines = [
        "# Safety fault campaign",
        "",
        "Generated by `bench/campaign.py`; do not edit by hand. Regenerate with:",
        "",
        "```",
        command,
        "```",
        "",
        f"- date: {info['date']}",
        f"- machine: {info['nproc']} CPUs ({info['cpu']}), Python {info['python']}, "
        f"{info['os']}, load (1/5/15 min) at the end {info['load (1/5/15 min)']}",
        f"- runs: {len(campaign.results)} = {len(campaign.scenarios)} scenarios x seeds "
        f"0..{campaign.seeds - 1}, {campaign.minutes:g}-minute sessions on virtual time "
        '(`speed="max"`)',
        f"- MQTT: {campaign.broker}",
        f"- wall time: {campaign.wall_s:.0f} s (per run: median {statistics.median(walls):.1f} s, "
        f"max {max(walls):.1f} s, p99 {percentile(walls, 0.99):.1f} s)",
        f"- **verdict: {f'UNSAFE: {len(unsafe)} run(s)' if unsafe else 'safe: every run'}**",
        "",
        "Each run: `run_simulated_session` (BleakClient over bumble's virtual radio, the "
        "controller service and its supervisor, `firmware_sim`), with the caregiver relay and "
        "the MQTT bridge on its own real-time thread. The seed draws the world's noise, the "
        "fault's onset "
        f"({ONSET_RANGE_S[0]:g}-{ONSET_RANGE_S[1]:g} s) and duration ({DURATION_SCALE[0]:g}-"
        f"{DURATION_SCALE[1]:g}x the default, for faults that end), the profile (none, allodynia, "
        "reduced-heat-sensation with a clinician's approval, diabetic), the foot (typical or "
        "neuropathic) and the program (gentle or standard). Skin temperature and bladder "
        "pressure are the simulator's true values at every physics tick (10 Hz).",
        "",
        "## Per scenario (aggregates across seeds)",
        "",
        *_scenario_rows(campaign.results),
        "",
        "- *max overshoot over cut-off*: the largest (max true skin - the run's cut-off); "
        "negative means the skin never reached the cut-off.",
        "- *CEM43*: cumulative equivalent minutes at 43 °C, sum of R^(43-T) dt/60 over the "
        "session, R = 0.5 at or above 43 °C and 0.25 below (Sapareto & Dewey 1984), from the "
        "true skin temperature; for scale, thermal injury thresholds for skin are of the order "
        "of tens of CEM43 minutes.",
        "- *max commanded / cap*: the run with the largest commanded pressure relative to its "
        "cap; commanded is the larger of the supervisor's decisions and what the firmware "
        "accepted (SetPressure targets).",
        "- *alerts delivered / raised*: alerts the session's relay raised and the broker "
        "acknowledged (PUBACK) after the session, summed over runs.",
        "",
        "## Alarms",
        "",
        *_alarm_rows(campaign.results),
        "",
        "## Per profile",
        "",
        *_profile_rows(campaign.results),
        "",
        "## Plot",
        "",
        "![max true skin temperature per scenario](safety-campaign.png)",
        "",
        "Box: quartiles of the per-run maximum true skin temperature; dots: runs (red: unsafe).",
        "",
        "## Unsafe rules (the campaign exits 1 if any run breaks one)",
        "",
        f"- true skin temperature >= {LATCH_C:g} °C at any physics tick;",
        f"- in the `normal` scenario, true skin above the run's cut-off + {NORMAL_OVERSHOOT_C} °C;",
        "- a commanded pressure above the cap in force: any supervisor decision whose pressure "
        "exceeds that decision's ceiling, or above the profile's cap, or a SetPressure the "
        f"firmware accepted above the cap (+ {COMMAND_QUANTUM_MMHG} mmHg wire rounding);",
        f"- measured (true bladder) pressure above the cap + {MEASURED_TOLERANCE_MMHG:g} mmHg, "
        f"or above {HARD_PRESSURE_MMHG:g} mmHg, in every scenario whose pump obeys (all but "
        + ", ".join(f"`{name}`" for name in sorted(PRESSURE_DISOBEYS))
        + ");",
        f"- true pad temperature above {PAD_MAX_C:g} °C in every scenario whose heater obeys "
        "(all but " + ", ".join(f"`{name}`" for name in sorted(HEATER_DISOBEYS)) + ");",
        "- a fault not detected: none of the scenario's detecting alarms raised ("
        + "; ".join(f"`{k}`: {', '.join(sorted(v))}" for k, v in sorted(DETECTED_BY.items()))
        + "; while the profile heats: "
        + "; ".join(
            f"`{k}`: {', '.join(sorted(v))}" for k, v in sorted(DETECTED_WHILE_HEATING.items())
        )
        + ");",
        "- a false alarm on honest input: any alarm but "
        + ", ".join(sorted(INFORMATION_ONLY))
        + " in "
        + ", ".join(f"`{name}`" for name in sorted(NO_FALSE_ALARMS))
        + ";",
        "- in `pressure-overshoot` the bladder overshoots by itself (the pump stops 16-28 mmHg "
        "late), so physics is allowed to pass the cap; the requirement is the controller's "
        f"reaction: no single spell above the cap + {MEASURED_TOLERANCE_MMHG:g} mmHg longer than "
        f"{OVERSHOOT_SPELL_MAX_S:g} s (1 s detection, a status report, a write, venting at "
        f"~20 mmHg/s), and a spell of {hard.PRESSURE_OVER_CAP_S:g} s or more ends the session with "
        f"`fault` within {OVERSHOOT_END_MAX_S:g} s of the first one;",
        "- an alert lost: fewer alerts acknowledged by the broker than the session raised;",
        "- a crash: any exception out of the session (including a simulator task that crashed).",
        "",
    ]
    if unsafe:
        lines += [
            "## Unsafe runs",
            "",
            "| scenario | seed | profile | problems |",
            "| --- | --- | --- | --- |",
        ]
        for r in unsafe:
            spec = r["spec"]
            lines.append(
                f"| {spec['scenario']} | {spec['seed']} | {spec['profile'] or 'none'} | "
                + "; ".join(r["problems"]).replace("|", "/")
                + " |"
            )
        lines.append("")
        if any("after the first over-pressure" in p for r in unsafe for p in r["problems"]):
            lines += [LATE_OVERSHOOT_DIAGNOSIS, ""]
    logged = [(r["spec"], r["errors_logged"]) for r in campaign.results if r["errors_logged"]]
    lines += ["## Errors logged (informational)", ""]
    if logged:
        for spec, messages in logged[:20]:
            lines.append(f"- {spec['scenario']} seed {spec['seed']}: {messages[0]}")
    else:
        lines.append("None: no run logged an ERROR record.")
    lines.append("")
    if fuzz:
        lines += ["## Fuzzing", "", *fuzz, ""]
    doc = out / "safety-campaign.md"
    doc.write_text("\n".join(lines))
    return doc


def _progress(total: int) -> Callable[[dict[str, Any]], None]:
    """One line per finished run on stderr: done/total, elapsed, ETA, and the run's verdict."""
    done = [0]
    started = time.perf_counter()

    def report(result: dict[str, Any]) -> None:
        done[0] += 1
        spec = result["spec"]
        mark = "UNSAFE " + "; ".join(result["problems"]) if result["problems"] else "ok"
        skin = result.get("max_skin_c", math.nan)
        elapsed = time.perf_counter() - started
        eta = elapsed / done[0] * (total - done[0])
        print(
            f"[{done[0]:4d}/{total} {elapsed:5.0f} s, ETA {eta:5.0f} s] "
            f"{spec['scenario']:<21} seed {spec['seed']:<3} "
            f"{(spec['profile'] or 'none'):<22} skin {skin:6.2f} "
            f"ended {result.get('ended_by', '?'):<7} {result['wall_s']:5.1f} s  {mark}",
            file=sys.stderr,
            flush=True,
        )

    return report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=DEFAULT_SEEDS)
    parser.add_argument("--scenarios", default=None, help="comma-separated (default: all)")
    parser.add_argument("--minutes", type=float, default=DEFAULT_MINUTES)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--no-mqtt", action="store_true", help="no broker, no caregiver relay")
    parser.add_argument(
        "--fuzz", type=int, default=0, help="also run the fuzz targets N times each"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs")
    parser.add_argument("--json", type=Path, default=None, help="also write every run's record")
    parser.add_argument(
        "--render",
        type=Path,
        default=None,
        help="only re-write the document from a --json record of an earlier campaign",
    )
    args = parser.parse_args(argv)
    # Quiet on the terminal, but ERROR records must still reach each run's `_ErrorCount` (the
    # document's "Errors logged"): a root logger at CRITICAL dropped them before any handler.
    logging.basicConfig(level=logging.ERROR)
    for handler in logging.getLogger().handlers:
        handler.setLevel(logging.CRITICAL)
    scenarios = args.scenarios.split(",") if args.scenarios else list(SCENARIOS)
    for name in scenarios:
        if name not in SCENARIOS:
            parser.error(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    command = "python bench/campaign.py" + (
        " " + " ".join(sys.argv[1:] if argv is None else argv)
        if (sys.argv[1:] if argv is None else argv)
        else ""
    )
    fuzz_lines: list[str] | None = None
    failed_fuzz = False
    if args.fuzz:
        import fuzz as fuzz_bench  # noqa: PLC0415 (bench/fuzz.py)

        report = fuzz_bench.run_all(args.fuzz)
        fuzz_lines = fuzz_bench.markdown(report, args.fuzz)
        failed_fuzz = any(r["failures"] for r in report)
    if args.render is not None:
        record = json.loads(args.render.read_text())
        campaign = Campaign(**record)
        doc = write_doc(campaign, args.out, record.get("command", command), fuzz_lines)
        print(f"re-wrote {doc} from {args.render}")
        return 1 if campaign.unsafe else 0
    total = args.seeds * len(scenarios)
    try:
        campaign = run_campaign(
            seeds=args.seeds,
            scenarios=scenarios,
            minutes=args.minutes,
            workers=args.workers,
            mqtt=not args.no_mqtt,
            progress=_progress(total),
        )
    except KeyboardInterrupt:
        print("\nstopped by Ctrl-C: workers ended, broker stopped, no document written")
        return 130
    doc = write_doc(campaign, args.out, command, fuzz_lines)
    if args.json is not None:
        record = dataclasses.asdict(campaign) | {"command": command}
        args.json.write_text(json.dumps(record, indent=1, default=str))
    print(f"wrote {doc} and {doc.with_suffix('.png')} in {campaign.wall_s:.0f} s")
    for r in campaign.unsafe:
        print(f"UNSAFE {r['spec']}: {r['problems']}")
        if r.get("traceback"):
            print(r["traceback"])
    return 1 if campaign.unsafe or failed_fuzz else 0


if __name__ == "__main__":
    sys.exit(main())
