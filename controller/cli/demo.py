"""``soleguard demo``: the controller against the simulated massager and sensor, no hardware.

The simulator runs in this process over bumble's virtual radio; the controller reaches it through
the same ``BleakClient`` code it uses for real devices. Virtual time lets a 30-minute session run
in seconds (``--speed max``).
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from controller.cli.errors import EXIT_USAGE, reported
from controller.errors import shown

if TYPE_CHECKING:
    from controller.service.runner import SessionRunner

# The demo's journal file, in the folder of the user's journal but never the same file.
DEMO_JOURNAL = "demo.sqlite3"
# After the session, how long (real seconds) to wait for the broker to acknowledge every alert.
ALERT_DRAIN_S = 5.0
# The same after a signal: the whole way out has 2 s, and the alerts are in the outbox anyway.
SIGNALLED_DRAIN_S = 0.3


def demo(
    minutes: Annotated[
        float, typer.Option(help="Session length in minutes (at most the 30-minute hard limit).")
    ] = 20.0,
    speed: Annotated[
        str,
        typer.Option(
            help="Virtual time: 'real', a factor up to 100000 such as 20, or 'max' (flat out)."
        ),
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
    broker: Annotated[
        str | None,
        typer.Option(help="Use this MQTT broker (mqtt://HOST:PORT) instead of an embedded one."),
    ] = None,
    mqtt: Annotated[
        bool, typer.Option("--mqtt/--no-mqtt", help="Publish to caregivers over MQTT.")
    ] = True,
) -> None:
    """Run a supervised session against the simulated massager and skin sensor."""
    # Not from controller.entry: importing it installs the console script's signal handlers.
    from controller.shutdown import demo_summary_owned  # noqa: PLC0415

    # The summary as far as it got: a signal after the session (while alerts drain, or the
    # broker stops) still prints it, with how the session ended.
    partial: dict[str, Any] = {}
    printed = False

    def last_word() -> None:
        # A forced exit (a second signal, a stuck way out) prints the summary as far as it got.
        nonlocal printed
        if not printed:
            printed = True
            _summary_on_the_way_out(partial, scenario=scenario, json_output=json_output)

    try:
        # From here on this command prints its summary however it ends (not the entry point).
        # Inside the `try`: a signal while the simulator is imported just below (hundreds of
        # milliseconds on a busy machine) raises here, before `reported` is entered, and
        # used to end the demo with no summary at all.
        demo_summary_owned.append(True)
        from firmware_sim import clock  # noqa: PLC0415
        from firmware_sim.scenarios import SCENARIOS  # noqa: PLC0415

        if scenario not in SCENARIOS:
            _fail(f"--scenario: {shown(scenario)} is not one of {', '.join(SCENARIOS)}")
        try:
            parsed_speed = clock.parse_speed(speed)
        except ValueError as exc:
            _fail(f"--speed: {shown(speed)} {exc}")
        from controller.shutdown import current, interruptible  # noqa: PLC0415

        shutdown = current()
        with reported(), shutdown.on_forced(last_word) if shutdown else contextlib.nullcontext():
            summary = clock.run(
                interruptible(
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
                        broker=broker,
                        mqtt=mqtt,
                        speed=parsed_speed,
                        partial=partial,
                    )
                ),
                speed=parsed_speed,
            )
            # Set first: a signal in the middle of the line must not print a second summary.
            if json_output and not printed:
                printed = True
                typer.echo(json.dumps(summary, indent=2))
            _raise_if_signalled(summary)
    except (typer.Exit, KeyboardInterrupt):
        # `reported` turns a signal inside it into `typer.Exit`; a `KeyboardInterrupt` here is our
        # `Signalled` from before it was entered (the imports above): reported by `run_app`.
        if not printed:
            printed = True
            _summary_on_the_way_out(partial, scenario=scenario, json_output=json_output)
        raise


def _summary_on_the_way_out(partial: dict[str, Any], *, scenario: str, json_output: bool) -> None:
    """The summary of a demo that ended before its own was printed: how it ended, every time.

    ``partial`` is the session's summary once the session has returned (a signal during the
    final flush); the live view has then printed its own line, so only ``--json`` prints it.
    Empty, the session never ran to its end (a signal during start-up, the broker's start or
    pairing): a summary saying so is printed, as JSON with ``--json``, else as one line.
    """
    from controller.shutdown import current, signal_reason  # noqa: PLC0415

    if partial:
        if json_output:
            typer.echo(json.dumps(partial, indent=2))
        return
    shutdown = current()
    if shutdown is None or shutdown.signum is None:
        return  # a failure, not a signal: its one line on stderr says what happened
    ended_by = signal_reason(shutdown.signum)
    # A massager reached means a session got going: a forced exit ended it before its summary.
    ran = shutdown.massager_reached
    if json_output:
        early = {"scenario": scenario, "ended_by": ended_by, "session_id": None, "ran": ran}
        typer.echo(json.dumps(early, indent=2))
    elif ran:
        typer.echo(f"demo ended by {ended_by} before the session's summary was ready")
    else:
        typer.echo(f"demo ended by {ended_by} during start-up, before the session ran")


def _raise_if_signalled(summary: dict[str, Any]) -> None:
    """A session ended by a signal still prints its summary; then the command says so."""
    from controller.errors import Interrupted  # noqa: PLC0415
    from controller.shutdown import current, ended_by_signal  # noqa: PLC0415

    signum = ended_by_signal(str(summary.get("ended_by")))
    if signum is not None:
        raise Interrupted(signum)
    shutdown = current()
    if shutdown is not None and shutdown.signum is not None:
        # A signal after the session ended (during the final flush): it ended by itself.
        raise Interrupted(shutdown.signum, "after the session had ended")


def _stop_all(runners: list[SessionRunner]) -> None:
    for runner in runners:
        runner.request_stop()


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
    broker: str | None,
    mqtt: bool,
    speed: float | str | None = None,
    partial: dict[str, Any] | None = None,
) -> dict[str, Any]:
    from controller.service.app import LatestDecision  # noqa: PLC0415
    from controller.service.simulated import run_simulated_session  # noqa: PLC0415
    from controller.settings import load_settings  # noqa: PLC0415
    from controller.treatment.checklist import NO_CONTRAINDICATIONS, load_answers  # noqa: PLC0415

    overrides: dict[str, Any] = {"session.max_minutes": minutes}
    if profile is not None:
        overrides["profile.name"] = profile
    if program is not None:
        overrides["session.program"] = program
    options = {
        "session.max_minutes": "--minutes",
        "profile.name": "--profile",
        "session.program": "--program",
    }
    settings = load_settings(config, overrides=overrides, option_names=options)
    answers = load_answers(checklist) if checklist is not None else NO_CONTRAINDICATIONS
    latest = LatestDecision()
    async with contextlib.AsyncExitStack() as stack:
        store = _open_store(stack, settings, journal=journal)
        relay = None
        footer = ""
        url = None
        if mqtt:
            url, relay = await _caregiver_side(stack, settings, store, broker)
            footer = (
                f"caregiver: soleguard monitor --broker {url}   "
                f"(or mosquitto_sub -h {url.host} -p {url.port} -t 'soleguard/#' -v)"
            )
            if not live:
                typer.echo(footer, err=True)
        runners: list[SessionRunner] = []
        session = run_simulated_session(
            settings,
            answers=answers,
            scenario=scenario,
            seed=seed,
            store=store,
            observers=(latest,),
            caregiver=relay,
            on_runner=runners.append,
        )
        if live:
            from controller.cli.live import watch  # noqa: PLC0415

            title = f"SoleGuard demo — scenario {scenario}, program {settings.session.program}"
            run = await watch(
                session,
                latest,
                title=title,
                settings=settings,
                footer=footer,
                speed=speed,
                on_quit=lambda: _stop_all(runners),
                pressure_at=lambda: runners[0].last_status_at if runners else None,
            )
        else:
            run = await session
        summary = run.summary() if partial is None else partial
        if partial is not None:
            partial.update(run.summary())
        if relay is not None:
            from controller.shutdown import ended_by_signal  # noqa: PLC0415

            # After a signal the process has to end promptly (within 2 s): a short drain only;
            # what is not acknowledged stays in the outbox for the next run.
            signalled = ended_by_signal(run.outcome.ended_by) is not None
            drain_s = SIGNALLED_DRAIN_S if signalled else ALERT_DRAIN_S
            summary["broker"] = str(url)
            # Each field means one thing: published = the broker acknowledged it (PUBACK);
            # acknowledged = a caregiver's client showed it to a person (alert/ack).
            summary["alerts_raised"], summary["alerts_published"] = await relay.drain(drain_s)
            summary["alerts_acknowledged"] = relay.acknowledged_count()  # the session is over
    return summary


def _open_store(stack: contextlib.AsyncExitStack, settings: Any, *, journal: bool) -> Any:
    """The demo's own journal, or a throwaway one (the alert outbox still needs a durable home).

    Never the user's clinical journal: simulated sessions would read as real ones in history
    and reports. The demo journal sits next to it (`DEMO_JOURNAL`);
    ``soleguard history --db PATH --simulated``
    shows it.
    """
    import tempfile  # noqa: PLC0415

    from controller.store import Store, default_store_path  # noqa: PLC0415

    if journal:
        user_journal = settings.storage.path or default_store_path()
        path = Path(user_journal).with_name(DEMO_JOURNAL)
    else:
        path = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "journal.sqlite3"
    store = Store.open(path)
    stack.callback(store.close)
    return store


async def _caregiver_side(
    stack: contextlib.AsyncExitStack, settings: Any, store: Any, broker: str | None
) -> tuple[Any, Any]:
    """The MQTT broker (embedded unless one is named), the bridge and the session relay."""
    from controller.caregiver.broker import parse_broker_url  # noqa: PLC0415
    from controller.caregiver.threaded import caregiver_side  # noqa: PLC0415
    from controller.service.caregiver import CaregiverRelay  # noqa: PLC0415

    link = await stack.enter_async_context(
        caregiver_side(settings.mqtt, store, broker=broker, embedded=broker is None)
    )
    return parse_broker_url(link.broker_url), CaregiverRelay(link, store)
