"""Signals at random moments, across the commands that run sessions: every way out is prompt.

Each run starts one ``soleguard`` process (``demo --speed max``, ``demo --speed 1``, ``session``
or ``run``; the last two against simulated devices that live in this test's process, on a
virtual radio exposed over TCP), sends it Ctrl-C, SIGTERM or SIGHUP after a random delay (during
start-up, pairing, the session, or the final flush), and checks what a user and an operator
would: the process ends within 2 s, says how in one line without a traceback, leaves no broker
process and no temporary folder behind, and every session in its journal is closed with how it
ended.

``SOLEGUARD_SIGNAL_RUNS`` sets the number of runs (default 12; ``SOLEGUARD_SIGNAL_RUNS=50`` is
the acceptance loop of issue 11). ``SOLEGUARD_SIGNAL_SEED`` replays one sequence.

The tools that run until stopped, ``soleguard sim`` and ``soleguard monitor`` (against a real
mosquitto), get the same treatment in their own process group, as a terminal's foreground job:
``SOLEGUARD_SIGNAL_TOOL_RUNS`` runs (default 6), each ending within 2 s with status 0 (their
documented normal end; 128 + N in one line if it was still starting), nothing left in the group
or among its children and no temporary folder.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import sqlite3
import threading
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from controller.ble.bumble_backend import expose_hci_controller
from controller.shutdown import signal_reason
from firmware_sim.world import SimWorld
from tests.e2e.helpers import soleguard
from tests.starvation import RunqueueWait

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator

    from controller.caregiver.broker import LocalBroker

pytestmark = pytest.mark.real_time

RUNS = int(os.environ.get("SOLEGUARD_SIGNAL_RUNS", "12"))
TOOL_RUNS = int(os.environ.get("SOLEGUARD_SIGNAL_TOOL_RUNS", "6"))
SEED = int(os.environ.get("SOLEGUARD_SIGNAL_SEED", str(random.SystemRandom().randrange(10**6))))
# The promise of issue 11: the process ends within 2 s of a signal.
EXIT_PROMISE_S = 2.0
# This test sees the exit through its own event loop on a shared, loaded machine.
OBSERVATION_SLACK_S = 0.5
# Only guards against a hung test: a run that never got its signal ends by itself well within.
RUN_GUARD_S = 120.0
SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
# Where in its life each command is signalled: uniform over this many real seconds after its
# start, which spans start-up (imports, broker, radio), pairing, the session and, for the
# short demo at max speed, the final flush and the exit.
WINDOWS_S = {"demo-max": 5.0, "demo-1": 6.0, "session": 6.0, "run": 6.0}
# `sim` is up (radio listening, devices advertising) after ~2 s here, `monitor` subscribed after
# ~1.5 s: these windows cover start-up and a good stretch of running.
TOOL_WINDOWS_S = {"sim": 5.0, "monitor": 4.0}
# No code of ours runs in the interpreter's first ~30 ms (its own start and site imports): a
# Ctrl-C there gets Python's default KeyboardInterrupt. From our first line on, ours applies.
# On a loaded machine that window can last longer than this: each run checks where the process
# was when it was signalled (`ours_installed`) and judges the interpreter's window by its rules.
EARLIEST_S = 0.05
CHECKLIST = (
    "open_wound = false\nulcer = false\ninfection = false\nsevere_inflammation = false\n"
    "inspected_today = true\nprovider_consulted = true\n"
)


@dataclass
class Outcome:
    mode: str
    signum: int
    delay_s: float
    code: int
    exit_s: float | None  # signal -> exit; None when it had exited before the signal
    stderr: str
    stdout: str = ""
    # Of exit_s, the time the process was runnable but given no CPU (tests/starvation.py).
    runqueue_s: float = 0.0
    # Whether our handlers were in when the signal was sent (`ours_installed`).
    ours: bool = True


@asynccontextmanager
async def devices() -> AsyncIterator[tuple[SimWorld, str]]:
    async with (
        SimWorld() as world,
        expose_hci_controller(world.link, "tcp-server:127.0.0.1:0") as endpoint,
    ):
        yield world, endpoint.transport_spec


def write_settings(home: Path, transport: str, world: SimWorld | None) -> Path:
    lines = [
        "[session]",
        "max_minutes = 1.0",
        "[storage]",
        f'path = "{home / "journal.sqlite3"}"',
        "[ble]",
        f'transport = "{transport}"',
        f'keystore = "{home / "bonds.json"}"',
        "[mqtt]",
        "enabled = false",
    ]
    if world is not None:
        lines += [
            "[devices.massager]",
            f'address = "{world.massager_address}"',
            "[devices.sensor]",
            f'address = "{world.sensor_address}"',
        ]
    path = home / "soleguard.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def command(mode: str, config: Path, checklist: Path) -> list[str]:
    common = ["--config", str(config)]
    if mode.startswith("demo"):
        speed = "max" if mode == "demo-max" else "1"
        return ["demo", "--speed", speed, "--minutes", "1", "--json", *common]
    if mode == "session":
        return ["session", "--checklist", str(checklist), "--no-live", "--pain-after", "0", *common]
    return ["run", "--checklist", str(checklist), *common]


def prepare(home: Path) -> tuple[Path, Path]:
    """A home of its own for one run: its temp folder (TMPDIR) and a checklist file."""
    tmp = home / "tmp"
    tmp.mkdir(parents=True)
    checklist = home / "checklist.toml"
    checklist.write_text(CHECKLIST)
    return tmp, checklist


def isolated_env(home: Path, tmp: Path) -> dict[str, str]:
    """This process's environment for one run: its own home, config and temp folder, and no
    SOLEGUARD_ variable but the mosquitto requirement."""
    env = dict(os.environ, TMPDIR=str(tmp), HOME=str(home), XDG_CONFIG_HOME=str(home / "cfg"))
    return {k: v for k, v in env.items() if not k.startswith("SOLEGUARD_") or "MOSQUITTO" in k}


def draws(windows: dict[str, float], runs: int) -> Iterator[tuple[int, str, int, float]]:
    """(index, mode, signal, delay) for each run: modes in turn, the rest drawn from SEED."""
    rng = random.Random(SEED)
    modes = list(windows)
    for index in range(runs):
        mode = modes[index % len(modes)]
        signum = rng.choice(SIGNALS)
        yield index, mode, signum, rng.uniform(EARLIEST_S, windows[mode])


async def one_run(mode: str, signum: int, delay_s: float, home: Path) -> Outcome:
    tmp, checklist = prepare(home)
    env = isolated_env(home, tmp)
    loop = asyncio.get_running_loop()

    async def go(transport: str, world: SimWorld | None) -> Outcome:
        config = write_settings(home, transport, world)
        process = await asyncio.create_subprocess_exec(
            soleguard(),
            *command(mode, config, checklist),
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert process.stderr is not None
        assert process.stdout is not None
        err = asyncio.create_task(process.stderr.read())
        out = asyncio.create_task(process.stdout.read())
        try:
            exit_s: float | None = None
            runqueue_s = 0.0
            ours = True
            try:
                async with asyncio.timeout(delay_s):
                    await process.wait()
            except TimeoutError:
                # For `session` and `run` the devices live in this process: its way out waits on
                # their answers, so this loop's own wait for a CPU counts as the machine's too.
                async with (
                    RunqueueWait(process.pid).watching() as starved,
                    RunqueueWait(os.getpid(), threading.get_native_id()).watching() as peer,
                ):
                    ours = ours_installed(process.pid)
                    process.send_signal(signum)
                    signalled = loop.time()
                    async with asyncio.timeout(RUN_GUARD_S):
                        await process.wait()
                    exit_s = loop.time() - signalled
                runqueue_s = max(starved.seconds, peer.seconds if world is not None else 0.0)
            assert process.returncode is not None
            return Outcome(
                mode,
                signum,
                delay_s,
                process.returncode,
                exit_s,
                (await err).decode(),
                (await out).decode(),
                runqueue_s,
                ours,
            )
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()

    if mode in ("session", "run"):
        async with devices() as (world, transport):
            return await go(transport, world)
    return await go("platform", None)


def ours_installed(pid: int) -> bool:
    """Whether ``pid`` had run SoleGuard's first line (``controller.entry``'s handlers).

    The interpreter catches SIGINT itself but leaves SIGTERM at its default; the entry point's
    first line catches both. ``/proc/PID/status`` lists the caught signals (``SigCgt``, a hex
    mask, bit N - 1 for signal N). Read just before the signal is sent: False means it may land
    in the interpreter's window (it can also land just after our handlers go in), True that ours
    handle it. A process already gone counts as True: judged by our rules.
    """
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return True
    for line in status.splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) >> (signal.SIGTERM - 1) & 1)
    return True


def interpreter_window_problems(outcome: Outcome, label: str) -> list[str]:
    """A signal that may have come before our first line: Python's defaults are the rule there.

    SIGTERM and SIGHUP end the process at once (-N); SIGINT raises ``KeyboardInterrupt``, which
    ends it with -2 after a traceback, or 1 while the ``site`` module imports ("Fatal Python
    error: init_import_site"). Our handlers may also have gone in before it came: 128 + N, or 0
    for a tool that was up. Anything else (another exception, a hang) is still a problem.
    """
    problems = []
    if "Traceback" in outcome.stderr:
        last = outcome.stderr.strip().splitlines()[-1]
        if outcome.signum != signal.SIGINT or last != "KeyboardInterrupt":
            problems.append(f"{label}: a traceback:\n{outcome.stderr[:2500]}")
    allowed = {0, 128 + outcome.signum, -outcome.signum}
    if outcome.signum == signal.SIGINT:
        allowed.add(1)
    if outcome.code not in allowed:
        problems.append(f"{label}: exit status {outcome.code}:\n{outcome.stderr[-2000:]}")
    return problems


def processes_mentioning(text: str) -> list[str]:
    """Command lines of running processes that name ``text`` (a broker's temp folder)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{entry.name}: {cmdline}")
    return found


def open_sessions(journal: Path) -> list[tuple[int, str | None]]:
    if not journal.exists():
        return []
    with sqlite3.connect(journal) as db:
        # A signal between the file's creation and the schema's commit leaves an empty database
        # (SQLite creates the file at connect; each schema step is its own transaction): no session,
        # and the next start migrates it.
        if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'sessions'").fetchone() is None:
            return []
        rows = db.execute("SELECT id, ended_by FROM sessions").fetchall()
    return [(row[0], row[1]) for row in rows if row[1] is None]


def check(outcome: Outcome, home: Path) -> list[str]:
    """What is wrong with one run (empty when all is well)."""
    problems = []
    label = f"{outcome.mode} {signal.Signals(outcome.signum).name} after {outcome.delay_s:.2f} s"
    if not outcome.ours:
        problems += interpreter_window_problems(outcome, label)
    elif "Traceback" in outcome.stderr:
        problems.append(f"{label}: a traceback:\n{outcome.stderr[:2500]}")
    if outcome.exit_s is not None:
        # The promise is the program's: time the machine gave it no CPU is not counted.
        if outcome.exit_s - outcome.runqueue_s > EXIT_PROMISE_S + OBSERVATION_SLACK_S:
            problems.append(
                f"{label}: exited {outcome.exit_s:.2f} s after the signal "
                f"({outcome.runqueue_s:.2f} s of it waiting for a CPU), status {outcome.code}:\n"
                f"{outcome.stderr[-2000:]}"
            )
        # Handled: 128 + N. Before Python ran our first line the default action ends it
        # (-N); a signal that raced a normal exit leaves 0.
        if outcome.ours and outcome.code not in (128 + outcome.signum, -outcome.signum, 0):
            problems.append(f"{label}: exit status {outcome.code}:\n{outcome.stderr[-2000:]}")
    elif outcome.code != 0:
        problems.append(f"{label}: ended {outcome.code} before the signal:\n{outcome.stderr}")
    if outcome.mode.startswith("demo") and outcome.stdout.strip():
        # The demo's summary, printed whenever the session got going: with how it ended.
        ended_by = json.loads(outcome.stdout)["ended_by"]
        if ended_by not in (signal_reason(outcome.signum), "timer"):
            problems.append(f"{label}: summary says ended_by {ended_by!r}")
    elif outcome.mode.startswith("demo") and outcome.code == 128 + outcome.signum:
        # Once our handler has it, the demo prints its summary at every moment: during start-up,
        # the broker's start, pairing, the session and the final flush (issue 11).
        problems.append(f"{label}: no summary:\n{outcome.stderr[-2000:]}")
    tmp = home / "tmp"
    left = [path.name for path in tmp.iterdir()] if tmp.exists() else []
    if left:
        problems.append(f"{label}: left temporary folders {left}")
    orphans = processes_mentioning(str(tmp))
    if orphans:
        problems.append(f"{label}: left processes {orphans}")
        for line in orphans:
            os.kill(int(line.split(":")[0]), signal.SIGKILL)
    for journal in home.glob("*.sqlite3"):
        unclosed = open_sessions(journal)
        if unclosed:
            problems.append(f"{label}: {journal.name}: sessions left open: {unclosed}")
    return problems


async def test_signals_at_random_moments_end_every_command_promptly(tmp_path: Path) -> None:
    outcomes: list[Outcome] = []
    problems: list[str] = []
    for index, mode, signum, delay_s in draws(WINDOWS_S, RUNS):
        home = tmp_path / f"run-{index}"
        outcome = await one_run(mode, signum, delay_s, home)
        outcomes.append(outcome)
        problems += check(outcome, home)
    exits = sorted(o.exit_s for o in outcomes if o.exit_s is not None)
    summaries = sum(1 for o in outcomes if o.stdout.strip() and signal_reason(o.signum) in o.stdout)
    print(
        f"\n{RUNS} runs (seed {SEED}): {len(exits)} signalled while running, "
        f"{sum(1 for o in outcomes if not o.ours)} of them maybe before our first line; "
        f"{summaries} demo summaries ended by the signal; "
        f"signal -> exit median {exits[len(exits) // 2] if exits else 0:.2f} s, "
        f"max {exits[-1] if exits else 0:.2f} s; longest wait for a CPU "
        f"{max((o.runqueue_s for o in outcomes), default=0.0):.2f} s; {len(problems)} problem(s)"
    )
    assert not problems, f"seed {SEED}:\n" + "\n".join(problems)


def tool_command(mode: str, broker_url: str) -> list[str]:
    if mode == "sim":
        return ["sim", "--port", "0", "--no-readout"]
    return ["monitor", "--broker", broker_url]


def process_table() -> dict[int, tuple[str, int, int, str]]:
    """pid -> (state, ppid, process group, "pid (name)") of every process now."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the command name (which may hold spaces and parentheses): state, ppid, pgrp.
        name_end = stat.rindex(")")
        fields = stat[name_end + 2 :].split()
        table[int(entry.name)] = (fields[0], int(fields[1]), int(fields[2]), stat[: name_end + 1])
    return table


def descendants(pid: int) -> set[int]:
    """Every process started (directly or not) by ``pid`` and running now, in any group."""
    table = process_table()
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, row in table.items() if row[1] in frontier} - found
        found |= frontier
    return found


def left_behind(pgid: int, children: set[int]) -> list[str]:
    """Processes still running of process group ``pgid`` or among ``children`` (the command's
    descendants seen before the signal, such as a broker in a session of its own)."""
    return [
        f"{pid}: {row[3]}"
        for pid, row in process_table().items()
        if row[0] != "Z" and (row[2] == pgid or pid in children)
    ]


# What `sim` prints last once its devices are on the air: from then on a signal is its normal
# end (status 0). `monitor` draws its view only as it ends when not on a terminal: no such line.
SIM_UP = b"scenario:"


@dataclass
class ToolRun:
    outcome: Outcome
    left: list[str]  # processes left behind
    up: bool  # the tool had said it was up when the signal came


async def _lines(stream: asyncio.StreamReader, sink: list[bytes]) -> None:
    while line := await stream.readline():
        sink.append(line)


async def one_tool_run(
    mode: str, signum: int, delay_s: float, home: Path, broker_url: str
) -> ToolRun:
    """Start ``mode`` in a process group of its own, signal the group after ``delay_s``."""
    tmp, _ = prepare(home)
    env = isolated_env(home, tmp)
    loop = asyncio.get_running_loop()
    process = await asyncio.create_subprocess_exec(
        soleguard(),
        *tool_command(mode, broker_url),
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        # Its own group, as a terminal's foreground job: the signal goes to the whole group.
        start_new_session=True,
    )
    assert process.stderr is not None
    assert process.stdout is not None
    err = asyncio.create_task(process.stderr.read())
    out_lines: list[bytes] = []
    out = asyncio.create_task(_lines(process.stdout, out_lines))
    up = False
    runqueue_s = 0.0
    ours = True
    try:
        exit_s: float | None = None
        try:
            async with asyncio.timeout(delay_s):
                await process.wait()
        except TimeoutError:
            children = descendants(process.pid)
            up = any(SIM_UP in line for line in out_lines)
            async with RunqueueWait(process.pid).watching() as starved:
                ours = ours_installed(process.pid)
                os.killpg(process.pid, signum)
                signalled = loop.time()
                async with asyncio.timeout(RUN_GUARD_S):
                    await process.wait()
                exit_s = loop.time() - signalled
            runqueue_s = starved.seconds
        else:
            children = set()
        assert process.returncode is not None
        stderr = (await err).decode()
        await out
        outcome = Outcome(
            mode,
            signum,
            delay_s,
            process.returncode,
            exit_s,
            stderr,
            b"".join(out_lines).decode(),
            runqueue_s,
            ours,
        )
        return ToolRun(outcome, left_behind(process.pid, children), up)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def check_tool(run: ToolRun, home: Path) -> list[str]:
    outcome = run.outcome
    problems = []
    label = f"{outcome.mode} {signal.Signals(outcome.signum).name} after {outcome.delay_s:.2f} s"
    if not outcome.ours:
        problems += interpreter_window_problems(outcome, label)
    elif "Traceback" in outcome.stderr:
        problems.append(f"{label}: a traceback:\n{outcome.stderr[:2500]}")
    if outcome.exit_s is None:
        problems.append(f"{label}: ended by itself ({outcome.code}):\n{outcome.stderr[-2000:]}")
    elif outcome.exit_s - outcome.runqueue_s > EXIT_PROMISE_S + OBSERVATION_SLACK_S:
        # The promise is the program's: time the machine gave it no CPU is not counted.
        problems.append(
            f"{label}: exited {outcome.exit_s:.2f} s after the signal "
            f"({outcome.runqueue_s:.2f} s of it waiting for a CPU)"
        )
    # README, "Ways out and exit status": once up, a signal is their normal end, 0. While still
    # starting, it interrupts the start like any command's: 128 + N, said in one line. Before
    # Python ran our first line the default action ends it (-N).
    allowed = {0} if run.up else {0, 128 + outcome.signum, -outcome.signum}
    if outcome.ours and outcome.code not in allowed:
        problems.append(f"{label}: exit status {outcome.code}:\n{outcome.stderr[-2000:]}")
    if outcome.code == 128 + outcome.signum and len(outcome.stderr.strip().splitlines()) != 1:
        problems.append(f"{label}: not one line:\n{outcome.stderr[-2000:]}")
    if run.left:
        problems.append(f"{label}: left processes behind {run.left}")
        for line in run.left:
            os.kill(int(line.split(":")[0]), signal.SIGKILL)
    tmp = home / "tmp"
    leftovers = [path.name for path in tmp.iterdir()] if tmp.exists() else []
    if leftovers:
        problems.append(f"{label}: left temporary folders {leftovers}")
    return problems


async def test_signals_at_random_moments_end_sim_and_monitor_promptly(
    tmp_path: Path, mqtt_broker: LocalBroker
) -> None:
    problems: list[str] = []
    exits: list[float] = []
    for index, mode, signum, delay_s in draws(TOOL_WINDOWS_S, TOOL_RUNS):
        home = tmp_path / f"tool-{index}"
        run = await one_tool_run(mode, signum, delay_s, home, mqtt_broker.url)
        if run.outcome.exit_s is not None:
            exits.append(run.outcome.exit_s)
        problems += check_tool(run, home)
    exits.sort()
    print(
        f"\n{TOOL_RUNS} sim/monitor runs (seed {SEED}): signal -> exit median "
        f"{exits[len(exits) // 2] if exits else 0:.2f} s, max {exits[-1] if exits else 0:.2f} s; "
        f"{len(problems)} problem(s)"
    )
    assert not problems, f"seed {SEED}:\n" + "\n".join(problems)


def test_commands_under_test_start_with_sigint_at_its_default() -> None:
    """The loops above signal commands as a terminal's user would: SIGINT not ignored.

    A test run started in the background by a shell without job control inherits SIGINT ignored
    and passes it on; the interpreter keeps an inherited ignore until our first line, so an early
    Ctrl-C was lost and the command ran its whole session (tests/conftest.py, `pytest_configure`).
    """
    import subprocess  # noqa: PLC0415 (this check only)
    import sys  # noqa: PLC0415

    probe = "import signal; print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)"
    shown = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    assert shown == "True"
