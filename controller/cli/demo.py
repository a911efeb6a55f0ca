"""``soleguard demo``: the controller against the simulated massager and sensor, no hardware.

The simulator runs in this process over bumble's virtual radio; the controller reaches it through
the same ``BleakClient`` code it uses for real devices. Virtual time lets a 30-minute session run
in seconds (``--speed max``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from controller.errors import SoleGuardError

if TYPE_CHECKING:
    from controller.cli.live import LiveFigures
    from controller.safety import Decision
    from controller.service.app import LatestDecision
    from controller.service.session import SessionOutcome, SessionPlan
    from controller.settings import SafetyLimits

EXIT_USAGE = 2
# Redraw rate of the live view in real seconds: smooth enough to follow, cheap on a Pi.
VIEW_REFRESH_PER_S = 4


def demo(
    minutes: Annotated[
        float, typer.Option(help="Session length in minutes (at most the 30-minute hard limit).")
    ] = 20.0,
    speed: Annotated[
        str,
        typer.Option(help="Virtual time: 'real', a factor such as 20, or 'max' (flat out)."),
    ] = "20",
    scenario: Annotated[
        str, typer.Option(help="Simulator fault scenario (`soleguard sim --list-scenarios`).")
    ] = "normal",
    profile: Annotated[
        str | None,
        typer.Option(help="User profile: allodynia, reduced-heat-sensation or diabetic."),
    ] = None,
    program: Annotated[str | None, typer.Option(help="gentle or standard.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for noise and fault timing.")] = 0,
    checklist: Annotated[
        Path | None,
        typer.Option(help="Checklist answers (TOML/JSON); default: no contraindications."),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print one JSON summary instead of the live view.")
    ] = False,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="Settings file.")] = None,
    no_journal: Annotated[
        bool, typer.Option("--no-journal", help="Do not record the session in the journal.")
    ] = False,
) -> None:
    """Run a supervised session against the simulated massager and skin sensor."""
    from firmware_sim import clock  # noqa: PLC0415
    from firmware_sim.scenarios import SCENARIOS  # noqa: PLC0415

    if scenario not in SCENARIOS:
        _fail(f"--scenario: {scenario!r} is not one of {', '.join(SCENARIOS)}")
    try:
        parsed_speed = clock.parse_speed(speed)
    except ValueError as exc:
        _fail(f"--speed: {exc}")
    try:
        summary = clock.run(
            _demo(
                minutes=minutes,
                scenario=scenario,
                profile=profile,
                program=program,
                seed=seed,
                checklist=checklist,
                live=not json_output,
                config=config,
                journal=not no_journal,
            ),
            speed=parsed_speed,
        )
    except SoleGuardError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        typer.echo("stopped: the massager was told to stop.", err=True)
        raise typer.Exit(130) from None
    if json_output:
        typer.echo(json.dumps(summary, indent=2))


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_USAGE)


async def _demo(
    *,
    minutes: float,
    scenario: str,
    profile: str | None,
    program: str | None,
    seed: int,
    checklist: Path | None,
    live: bool,
    config: Path | None,
    journal: bool,
) -> dict[str, Any]:
    from controller.ble.access import open_ble  # noqa: PLC0415
    from controller.service.app import Journal, LatestDecision, run_session  # noqa: PLC0415
    from controller.service.session import SessionPlan  # noqa: PLC0415
    from controller.session.checklist import NO_CONTRAINDICATIONS, load_answers  # noqa: PLC0415
    from controller.session.programs import PROGRAMS  # noqa: PLC0415
    from controller.settings import effective_limits, load_settings  # noqa: PLC0415
    from firmware_sim.world import SimWorld  # noqa: PLC0415

    overrides: dict[str, Any] = {"session.max_minutes": minutes}
    if profile is not None:
        overrides["profile.name"] = profile
    if program is not None:
        overrides["session.program"] = program
    settings = load_settings(config, overrides=overrides)
    limits = effective_limits(settings)
    answers = load_answers(checklist) if checklist is not None else NO_CONTRAINDICATIONS
    store = _open_journal(settings) if journal else None
    latest = LatestDecision()
    try:
        async with (
            SimWorld(scenario=scenario, seed=seed, watch_c=(limits.heater_cutoff_c, 43.0)) as world,
            open_ble(settings.ble, local_link=world.link) as ble,
        ):
            plan = SessionPlan(
                limits=limits,
                program=PROGRAMS[settings.session.program],
                checklist=answers.result(inspection_required=True),
                massager_address=world.massager_address,
                sensor_address=world.sensor_address,
                profile=settings.profile.name,
                scenario=scenario,
            )
            session = run_session(plan, ble, journal=Journal(store), observers=(latest,))
            if live:
                outcome = await _with_live_view(session, latest, plan, scenario)
            else:
                outcome = await session
            truth = world.snapshot()
    finally:
        if store is not None:
            store.close()
    return _summary(scenario, plan, outcome, truth.max_skin_c, truth, limits)


def _open_journal(settings: Any) -> Any:
    from controller.store import Store  # noqa: PLC0415

    return Store.open(settings.storage.path)


async def _with_live_view(
    session: Any, latest: LatestDecision, plan: SessionPlan, scenario: str
) -> SessionOutcome:
    import asyncio  # noqa: PLC0415

    from rich.console import Console  # noqa: PLC0415
    from rich.live import Live  # noqa: PLC0415

    from controller.cli.live import render  # noqa: PLC0415

    console = Console()
    title = f"SoleGuard demo — scenario {scenario}, program {plan.program.name}"
    with Live(console=console, auto_refresh=False, transient=False) as view:
        task = asyncio.ensure_future(session)
        next_frame = 0.0
        while not task.done():
            await asyncio.wait({task}, timeout=0.05)
            real_now = _real_time()
            if real_now >= next_frame and latest.latest is not None:
                next_frame = real_now + 1.0 / VIEW_REFRESH_PER_S
                view.update(render(_figures(title, latest.latest, plan.limits)), refresh=True)
        if latest.latest is not None:
            view.update(render(_figures(title, latest.latest, plan.limits)), refresh=True)
        outcome: SessionOutcome = task.result()
    console.print(
        f"session ended by [bold]{outcome.ended_by}[/] after {outcome.duration_s / 60:.1f} min; "
        f"max skin reading {_fmt(outcome.max_skin_reading_c)} °C; "
        f"{len(outcome.alarms)} alarm(s)."
    )
    return outcome


def _real_time() -> float:
    import time  # noqa: PLC0415

    return time.monotonic()


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _figures(title: str, decision: Decision, limits: SafetyLimits) -> LiveFigures:
    from controller.cli.live import LiveFigures  # noqa: PLC0415

    note = "" if decision.skin_fresh else "stale"
    return LiveFigures(
        title=title,
        state=str(decision.state),
        elapsed_s=decision.elapsed_s,
        total_s=decision.elapsed_s + decision.remaining_s,
        skin_c=decision.skin_c,
        skin_note=note,
        target_c=limits.heater_target_c,
        cutoff_c=limits.heater_cutoff_c,
        latch_c=limits.latch_c,
        pressure_mmhg=decision.command.pressure_mmhg,
        measured_pressure_mmhg=decision.measured_pressure_mmhg,
        cap_mmhg=decision.pressure_cap_mmhg,
        heater_on=decision.command.heater_on,
        heater_allowed=limits.heater_allowed,
        alarms=tuple(
            (str(alarm.priority), alarm.code, alarm.message) for alarm in decision.active_alarms
        ),
        footer=f"heater off: {decision.heater_block}" if decision.heater_block else "",
    )


def _summary(
    scenario: str,
    plan: SessionPlan,
    outcome: SessionOutcome,
    max_skin_c: float,
    truth: Any,
    limits: SafetyLimits,
) -> dict[str, Any]:
    def rounded(value: float | None, digits: int = 2) -> float | None:
        return None if value is None or math.isnan(value) else round(value, digits)

    return {
        "scenario": scenario,
        "program": plan.program.name,
        "profile": plan.profile,
        "ended_by": outcome.ended_by,
        "duration_s": rounded(outcome.duration_s, 1),
        # The simulator's true skin temperature, not only what the sensor reported.
        "max_skin_c": rounded(max_skin_c),
        "max_skin_reading_c": rounded(outcome.max_skin_reading_c),
        "cutoff_c": limits.heater_cutoff_c,
        "latch_c": limits.latch_c,
        "time_above_cutoff_s": rounded(truth.seconds_above_c.get(limits.heater_cutoff_c, 0.0), 1),
        "max_pressure_mmhg": rounded(outcome.max_pressure_mmhg, 1),
        "max_measured_pressure_mmhg": rounded(truth.max_pressure_mmhg, 1),
        "pressure_cap_mmhg": limits.pressure_cap_mmhg,
        "heat_s": rounded(outcome.heat_s, 1),
        "firmware_cutouts": truth.cutouts,
        "alarms": outcome.alarms,
        "session_id": outcome.session_id,
    }
