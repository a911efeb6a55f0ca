"""``soleguard session`` and ``soleguard run``: a supervised session with the paired devices."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from controller import localdate
from controller.cli import exit_codes
from controller.cli.errors import clip, reported
from controller.errors import Interrupted
from controller.safety import EndReason, Priority
from controller.shutdown import ended_by_signal, interruptible

if TYPE_CHECKING:
    from controller.safety.events import ChecklistResult
    from controller.service.runner import SessionObserver, SessionOutcome, SessionRunner
    from controller.settings import Settings
    from controller.store import Store
    from controller.treatment.checklist import ChecklistAnswers

EXIT_REFUSED = exit_codes.REFUSED
_LOGGER = logging.getLogger(__name__)

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="Settings file (else the default).")
]
ChecklistOption = Annotated[
    Path | None,
    typer.Option(help="Checklist answers from a TOML/JSON file instead of asking (scripts)."),
]


def session(
    checklist: ChecklistOption = None,
    program: Annotated[str | None, typer.Option(help="gentle or standard.")] = None,
    profile: Annotated[str | None, typer.Option(help="Override the settings' profile.")] = None,
    pain_after: Annotated[
        int | None, typer.Option(help="Pain 0-10 after the session (else asked).", min=0, max=10)
    ] = None,
    live: Annotated[bool, typer.Option("--live/--no-live", help="Show the live view.")] = True,
    config: ConfigOption = None,
) -> None:
    """Run one session: the foot-care checklist, then the supervised massage."""
    interactive = checklist is None
    with reported():
        settings = _settings(config, program=program, profile=profile)
        with _store(settings) as store:
            answers = _checklist(store, checklist)
            with _journalled_if_not_reached(store):
                outcome = asyncio.run(interruptible(_run(settings, store, answers, live=live)))
            # After a signal the process ends at once: no prompt waits for an answer.
            ask = interactive and ended_by_signal(outcome.ended_by) is None
            _after_or_signal(settings, store, outcome, answers, pain_after=pain_after, ask=ask)
    if outcome.ended_by is EndReason.CHECKLIST:
        raise typer.Exit(EXIT_REFUSED)
    if not live:
        typer.echo(_ended_line(outcome))


def _ended_line(outcome: SessionOutcome) -> str:
    return f"session ended by {outcome.ended_by} after {outcome.duration_s / 60:.1f} min"


def run(
    checklist: Annotated[Path, typer.Option(help="Checklist answers (TOML/JSON) for the session.")],
    config: ConfigOption = None,
) -> None:
    """One unattended session from a checklist file: no prompts, no live view; logs and MQTT only.

    Ends with the session (the care-home hub that keeps running is not built yet: docs/hub.md).
    """
    with reported():
        settings = _settings(config)
        with _store(settings) as store:
            answers = _checklist(store, checklist)
            with _journalled_if_not_reached(store):
                outcome = asyncio.run(interruptible(_run(settings, store, answers, live=False)))
            _after_or_signal(settings, store, outcome, answers, pain_after=None, ask=False)
    typer.echo(_ended_line(outcome))
    if outcome.ended_by is EndReason.CHECKLIST:
        raise typer.Exit(EXIT_REFUSED)


def _settings(config: Path | None, **choices: str | None) -> Settings:
    from controller.settings import load_settings  # noqa: PLC0415

    names = {"program": "session.program", "profile": "profile.name"}
    overrides = {names[key]: value for key, value in choices.items() if value is not None}
    options = {dotted: f"--{key}" for key, dotted in names.items()}
    return load_settings(config, overrides=overrides, option_names=options)


@contextlib.contextmanager
def _store(settings: Settings) -> Any:
    from controller.store import Store  # noqa: PLC0415

    store = Store.open(settings.storage.path)
    try:
        yield store
    finally:
        store.close()


# The journal's alarm code for a session that never started because its devices were not
# reached; not a supervisor alarm: the supervisor never ran.
NOT_STARTED_CODE = "SESSION_NOT_STARTED"


@contextlib.contextmanager
def _journalled_if_not_reached(store: Store) -> Iterator[None]:
    """A session whose devices are not reached leaves its trace in the journal.

    As for a bond lost before the start (which the session's recorder journals itself): an alarm
    outside any session, its message the line the person read (it names the device), and no
    session row for a session that never ran. The LinkError goes on to the person; a journal
    that cannot take the record only logs that (the error line matters more).
    """
    from controller.ble.bonds import BondLostError  # noqa: PLC0415
    from controller.errors import LinkError  # noqa: PLC0415
    from controller.store import StoreError  # noqa: PLC0415

    try:
        yield
    except LinkError as exc:
        if not isinstance(exc, BondLostError):
            try:
                store.add_alarm(
                    None,
                    time=time.time(),
                    code=NOT_STARTED_CODE,
                    priority=Priority.MEDIUM,
                    message=str(exc),
                )
            except StoreError as store_error:
                _LOGGER.warning("journal: the failed start was not recorded: %s", store_error)
        raise


def _checklist(store: Store, path: Path | None) -> ChecklistAnswers:
    from controller.journal.blocks import (  # noqa: PLC0415
        inspection_due,
        refusal,
        session_block_reason,
    )
    from controller.treatment.checklist import ChecklistNeeds, ask, load_answers  # noqa: PLC0415

    # Before any question: a latch or an open wound refuses whatever the answers would be.
    blocked = session_block_reason(store)
    if blocked is not None:
        typer.echo(refusal(blocked), err=True)
        raise typer.Exit(EXIT_REFUSED)
    if path is not None:
        return load_answers(path)
    needs = ChecklistNeeds(
        daily_inspection=inspection_due(store),
        provider_acknowledgement=not store.provider_consulted(),
    )
    typer.echo("Before the session, a short foot-care checklist.")
    return ask(needs, lambda question: typer.confirm(question, default=False))


async def _run(
    settings: Settings, store: Store, answers: ChecklistAnswers, *, live: bool
) -> SessionOutcome:
    from controller.journal.blocks import inspection_due  # noqa: PLC0415
    from controller.service.app import LatestDecision, run_configured_session  # noqa: PLC0415

    latest = LatestDecision()
    checklist = answers.result(inspection_required=inspection_due(store))
    if _refused(settings, checklist):
        # Refused before anything connects: no radio, no devices needed, and no live panel for
        # a session that never ran. The refusal is still journalled.
        return await _refused_session(settings, store, checklist)
    async with contextlib.AsyncExitStack() as stack:
        relay = None
        if settings.mqtt.enabled:
            from controller.caregiver.threaded import caregiver_side  # noqa: PLC0415
            from controller.service.caregiver import CaregiverRelay  # noqa: PLC0415

            link = await stack.enter_async_context(caregiver_side(settings.mqtt, store))
            relay = CaregiverRelay(link, store)
        runners: list[SessionRunner] = []
        observers: tuple[SessionObserver, ...] = (latest,) if live else (_notices(),)
        session = run_configured_session(
            settings,
            checklist,
            store=store,
            observers=observers,
            caregiver=relay,
            on_runner=runners.append,
        )
        if not live:
            return await session
        from controller.cli.live import watch  # noqa: PLC0415

        title = f"SoleGuard session — program {settings.session.program}"
        return await watch(
            session,
            latest,
            title=title,
            settings=settings,
            on_quit=lambda: _stop_all(runners),
            pressure_at=lambda: runners[0].last_status_at if runners else None,
        )
    raise AssertionError("unreachable")  # pragma: no cover (mypy: the stack may swallow)


def _stop_all(runners: list[SessionRunner]) -> None:
    for runner in runners:
        runner.request_stop()


def _refused(settings: Settings, checklist: ChecklistResult) -> bool:
    """Whether the supervisor refuses this checklist (the same step the session starts with)."""
    from controller.safety import Supervisor  # noqa: PLC0415
    from controller.safety.events import StartSession  # noqa: PLC0415
    from controller.settings import effective_limits  # noqa: PLC0415

    decision = Supervisor(effective_limits(settings)).step(
        time.monotonic(), [StartSession(checklist)]
    )
    return decision.ended_by is not None


async def _refused_session(
    settings: Settings, store: Store, checklist: ChecklistResult
) -> SessionOutcome:
    """Journal a session the checklist refuses, without opening the radio or needing devices."""
    from controller.ble.access import BleAccess  # noqa: PLC0415
    from controller.ble.links import LinkOptions  # noqa: PLC0415
    from controller.service.app import Journal, run_session  # noqa: PLC0415
    from controller.service.runner import SessionPlan  # noqa: PLC0415
    from controller.settings import effective_limits  # noqa: PLC0415
    from controller.treatment.programs import PROGRAMS  # noqa: PLC0415

    plan = SessionPlan(
        limits=effective_limits(settings),
        program=PROGRAMS[settings.session.program],
        checklist=checklist,
        massager_address=settings.devices.massager.address or "",
        sensor_address=settings.devices.sensor.address or "",
        profile=settings.profile.name,
    )
    no_radio = BleAccess(LinkOptions(), None, "none: refused before connecting")
    return await run_session(plan, no_radio, journal=Journal(store))


def _notices() -> SessionObserver:
    """An observer that prints what the session tells the user, as it happens (no live view)."""
    from controller.service.runner import SessionObserver  # noqa: PLC0415

    class Notices(SessionObserver):
        def on_notice(self, text: str) -> None:
            typer.echo(f"note: {text}", err=True)

    return Notices()


def _after_or_signal(
    settings: Settings,
    store: Store,
    outcome: SessionOutcome,
    answers: ChecklistAnswers,
    *,
    pain_after: int | None,
    ask: bool,
) -> None:
    """The records after the session (`_after`), then `Interrupted` if a signal ended it.

    A session ended by a signal exits with that signal's status whatever the journal does: a
    journal that cannot take the records (a full disk) is said in one line, not turned into a
    failure's exit status 1. Without a signal a `StoreError` goes on to `reported` as before.
    """
    from controller.store import StoreError  # noqa: PLC0415

    signum = ended_by_signal(outcome.ended_by)
    try:
        _after(settings, store, outcome, answers, pain_after=pain_after, ask=ask)
    except StoreError as exc:
        if signum is None:
            raise
        # The session's own end is the recorder's: if that failed too, the next start closes
        # the session as interrupted (`Sessions.close_interrupted`).
        typer.echo(clip(f"journal: the records after the session were not saved: {exc}"), err=True)
    if signum is not None:
        raise Interrupted(signum)


def _after(
    settings: Settings,
    store: Store,
    outcome: SessionOutcome,
    answers: ChecklistAnswers,
    *,
    pain_after: int | None,
    ask: bool,
) -> None:
    from controller.caregiver.identity import device_id_of  # noqa: PLC0415
    from controller.journal.diary import record_inspection  # noqa: PLC0415

    blocked = outcome.ended_by is EndReason.CHECKLIST
    store.record_checklist(
        outcome.session_id,
        time=time.time(),
        answers={
            key: value if isinstance(value, bool) else str(value)
            for key, value in answers.model_dump().items()
        },
        blocked=blocked,
        reason=", ".join(a["code"] for a in outcome.alarms) if blocked else None,
    )
    if answers.findings:
        record_inspection(
            store,
            date=localdate.today(),
            findings=answers.findings,
            device_id=device_id_of(settings.mqtt, store),
        )
    if blocked:
        typer.echo(_alarm_text(outcome), err=True)
        if answers.inspected_today is False:
            typer.echo(
                "Inspect both feet (soles and between the toes), then start the session again.",
                err=True,
            )
        return
    if answers.provider_consulted is False:
        typer.echo("Please talk to your healthcare provider about using a heated massager.")
    if outcome.session_id is None:
        return
    if answers.pain_before is not None:
        store.record_pain(outcome.session_id, when="before", score=answers.pain_before)
    if pain_after is None and ask:
        pain_after = ask_pain()
    if pain_after is not None:
        store.record_pain(outcome.session_id, when="after", score=pain_after)


def ask_pain(prompt: Callable[[str], str] | None = None) -> int | None:
    """Ask for a pain score 0-10 until the answer is one (Enter skips: None).

    ``prompt``: asks one question and returns the answer (default: typer.prompt); what it
    raises passes through (typer's Abort on Ctrl-C).
    """
    from controller.store.records import PAIN_MAX, PAIN_MIN  # noqa: PLC0415

    def typer_prompt(question: str) -> str:
        return str(typer.prompt(question, default="", show_default=False))

    ask = prompt or typer_prompt
    while True:
        text = ask(f"Pain now, {PAIN_MIN}-{PAIN_MAX} (Enter to skip)").strip()
        if not text:
            return None
        if text.isdigit() and PAIN_MIN <= int(text) <= PAIN_MAX:
            return int(text)
        typer.echo(f"Please answer a whole number from {PAIN_MIN} to {PAIN_MAX}, or press Enter.")


def _alarm_text(outcome: SessionOutcome) -> str:
    return "; ".join(alarm.get("message", alarm["code"]) for alarm in outcome.alarms) or "refused"
