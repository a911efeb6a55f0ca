"""``soleguard session`` and ``soleguard run``: a supervised session with the paired devices."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from controller.cli.errors import reported

if TYPE_CHECKING:
    from controller.service.session import SessionOutcome
    from controller.session.checklist import ChecklistAnswers
    from controller.settings import Settings
    from controller.store import Store

EXIT_REFUSED = 1

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
            outcome = asyncio.run(_run(settings, store, answers, live=live))
            _after(settings, store, outcome, answers, pain_after=pain_after, ask=interactive)
    if outcome.ended_by == "checklist":
        raise typer.Exit(EXIT_REFUSED)


def run(
    checklist: Annotated[Path, typer.Option(help="Checklist answers (TOML/JSON) for the session.")],
    config: ConfigOption = None,
) -> None:
    """Hub mode: no prompts, no live view; logs and MQTT only. Ends with the session."""
    with reported():
        settings = _settings(config)
        with _store(settings) as store:
            answers = _checklist(store, checklist)
            outcome = asyncio.run(_run(settings, store, answers, live=False))
            _after(settings, store, outcome, answers, pain_after=None, ask=False)
    typer.echo(f"session ended by {outcome.ended_by} after {outcome.duration_s / 60:.1f} min")
    if outcome.ended_by == "checklist":
        raise typer.Exit(EXIT_REFUSED)


def _settings(config: Path | None, **choices: str | None) -> Settings:
    from controller.settings import load_settings  # noqa: PLC0415

    names = {"program": "session.program", "profile": "profile.name"}
    overrides = {names[key]: value for key, value in choices.items() if value is not None}
    return load_settings(config, overrides=overrides)


@contextlib.contextmanager
def _store(settings: Settings) -> Any:
    from controller.store import Store  # noqa: PLC0415

    store = Store.open(settings.storage.path)
    try:
        yield store
    finally:
        store.close()


def _checklist(store: Store, path: Path | None) -> ChecklistAnswers:
    from controller.journal.diary import inspection_due, session_block_reason  # noqa: PLC0415
    from controller.session.checklist import ChecklistNeeds, ask, load_answers  # noqa: PLC0415

    blocked = session_block_reason(store)
    if blocked is not None:
        typer.echo(f"no session today: {blocked}", err=True)
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
    from controller.journal.diary import inspection_due  # noqa: PLC0415
    from controller.service.app import LatestDecision, run_configured_session  # noqa: PLC0415

    latest = LatestDecision()
    checklist = answers.result(inspection_required=inspection_due(store))
    async with contextlib.AsyncExitStack() as stack:
        relay = None
        if settings.mqtt.enabled:
            from controller.caregiver.threaded import caregiver_side  # noqa: PLC0415
            from controller.service.caregiver import CaregiverRelay  # noqa: PLC0415

            link = await stack.enter_async_context(caregiver_side(settings.mqtt, store))
            relay = CaregiverRelay(link, store)
        session = run_configured_session(
            settings, checklist, store=store, observers=(latest,), caregiver=relay
        )
        if not live:
            return await session
        from controller.cli.live import watch  # noqa: PLC0415

        title = f"SoleGuard session — program {settings.session.program}"
        return await watch(session, latest, title=title, settings=settings)
    raise AssertionError("unreachable")  # pragma: no cover (mypy: the stack may swallow)


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

    blocked = outcome.ended_by == "checklist"
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
            date=dt.date.today(),
            findings=answers.findings,
            device_id=device_id_of(settings.mqtt, store),
        )
    if blocked:
        typer.echo("session refused by the checklist: " + _alarm_text(outcome), err=True)
        return
    if answers.provider_consulted is False:
        typer.echo("Please talk to your healthcare provider about using a heated massager.")
    if outcome.session_id is None:
        return
    if answers.pain_before is not None:
        store.record_pain(outcome.session_id, when="before", score=answers.pain_before)
    if pain_after is None and ask:
        text = typer.prompt("Pain now, 0-10 (Enter to skip)", default="", show_default=False)
        pain_after = int(text) if text.strip().isdigit() else None
    if pain_after is not None:
        store.record_pain(outcome.session_id, when="after", score=pain_after)


def _alarm_text(outcome: SessionOutcome) -> str:
    return "; ".join(alarm.get("message", alarm["code"]) for alarm in outcome.alarms) or "refused"
