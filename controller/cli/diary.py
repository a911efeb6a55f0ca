"""``soleguard diary``: sleep, notes, the daily foot inspection, healed wounds, pain scores."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from controller.journal.commandline import (
    ConfigOption,
    DbOption,
    fail,
    handled,
    open_journal,
    parse_date,
)
from controller.safety import Finding

app = typer.Typer(
    help="Foot-care diary: sleep quality, notes, daily foot inspection, pain scores.",
    no_args_is_help=True,
)

DateOption = Annotated[
    str | None, typer.Option("--date", help="The date (YYYY-MM-DD); default today.")
]


@app.command("sleep")
def sleep(
    quality: Annotated[
        int, typer.Argument(help="Last night's sleep, 1 (very poor) to 5 (very good).")
    ],
    date: DateOption = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Record how well you slept last night (1-5), for the morning of --date."""
    day = parse_date("--date", date)
    with open_journal(db, config, create=True) as (store, _settings):
        store.record_sleep(day, quality)
    typer.echo(f"Sleep quality {quality}/5 recorded for {day}.")


@app.command("note")
def note(
    text: Annotated[str, typer.Argument(help="The note, in quotes.")],
    session: Annotated[
        int | None, typer.Option("--session", help="Attach the note to this session id.")
    ] = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Write a free-text note in the journal."""
    with open_journal(db, config, create=True) as (store, _settings):
        store.add_note(time.time(), text, session_id=session)
    typer.echo("Note recorded.")


@app.command("inspect")
def inspect(
    finding: Annotated[
        list[str] | None,
        typer.Option(
            "--finding",
            "-f",
            help="What you found (repeat): cut, blister, redness, swelling, open_wound, ulcer.",
        ),
    ] = None,
    none: Annotated[bool, typer.Option("--none", help="Both feet checked; nothing found.")] = False,
    date: DateOption = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Log the day's foot inspection (today, or --date); a finding tells your caregiver, an open
    wound or ulcer blocks sessions until recorded healed."""
    from controller.caregiver.identity import device_id_of  # noqa: PLC0415
    from controller.journal import diary  # noqa: PLC0415

    if none and finding:
        fail("--none and --finding: choose one")
    if not none and not finding:
        fail("give --finding NAME (repeatable) or --none")
    found = [Finding.NONE] if none else [f.strip().lower().replace("-", "_") for f in finding or ()]
    day = parse_date("--date", date)
    with open_journal(db, config, create=True) as (store, settings):
        outcome = diary.record_inspection(
            store, date=day, findings=found, device_id=device_id_of(settings.mqtt, store)
        )
    typer.echo(f"Inspection for {day} recorded: {', '.join(sorted(outcome.findings))}.")
    if outcome.alert is not None:
        if settings.mqtt.enabled:
            typer.echo("Your caregiver will be told (low-priority alert).")
        else:
            # Saying a caregiver will be told when nothing can reach one would be a false comfort.
            typer.echo(
                "No caregiver is told: MQTT is not set up ([mqtt] enabled = false in the "
                "settings). Tell them yourself if you need help."
            )
    if outcome.blocking is not None:
        typer.echo(f"Note: {outcome.blocking}")


@app.command("healed")
def healed(
    finding: Annotated[str, typer.Argument(help="open_wound or ulcer.")],
    date: DateOption = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Record that an open wound or ulcer has healed, so sessions may start again."""
    from controller.journal import diary  # noqa: PLC0415

    day = parse_date("--date", date)
    name = finding.strip().lower().replace("-", "_")
    with open_journal(db, config, create=True) as (store, _settings):
        still = diary.record_healed(store, date=day, finding=name)
    typer.echo(f"{name.replace('_', ' ').capitalize()} recorded healed on {day}.")
    typer.echo(f"Note: {still}" if still else "Nothing in the diary blocks sessions now.")


@app.command("pain")
def pain(
    session_id: Annotated[int, typer.Argument(help="The session (see `soleguard history`).")],
    before: Annotated[
        int | None, typer.Option("--before", help="Pain before the session, 0-10.")
    ] = None,
    after: Annotated[
        int | None, typer.Option("--after", help="Pain after the session, 0-10.")
    ] = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Record pain (0 none .. 10 worst) before and/or after a session."""
    from controller.store.records import PAIN_MAX, PAIN_MIN  # noqa: PLC0415
    from controller.store.validation import check_int_range  # noqa: PLC0415

    if before is None and after is None:
        fail("give --before N and/or --after N (0-10)")
    # Check both before writing either, so a bad --after does not leave --before half-recorded.
    with handled():
        for option, value in (("--before", before), ("--after", after)):
            if value is not None:
                check_int_range(option, value, PAIN_MIN, PAIN_MAX)
    with open_journal(db, config) as (store, _settings):
        store.get_session(session_id)
        if before is not None:
            store.record_pain(session_id, when="before", score=before)
        if after is not None:
            store.record_pain(session_id, when="after", score=after)
    typer.echo(f"Pain recorded for session {session_id}.")
