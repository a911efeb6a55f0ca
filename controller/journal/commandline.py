"""Pieces shared by the journal commands (history, diary, report, journal export/import).

Every failure a user can cause (bad value, unknown session, unwritable path, broken settings)
ends as one line ``error: ...`` on stderr and exit status 2, never a traceback; a journal that
cannot be used (locked, damaged, a full disk) as one line with the fix and status 1.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final, NoReturn

import typer

from controller import localdate
from controller.errors import SoleGuardError

if TYPE_CHECKING:
    from controller.settings import Settings
    from controller.store import Store

__all__ = [
    "EXIT_USAGE",
    "ConfigOption",
    "DbOption",
    "fail",
    "handled",
    "open_journal",
    "parse_date",
]

# Exit status for bad input, as argparse and `soleguard config check` use it.
EXIT_USAGE: Final = 2

DbOption = Annotated[
    Path | None,
    typer.Option(
        "--db",
        help="Journal database file (else settings storage.path, else the user data folder).",
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="Settings file (else $SOLEGUARD_CONFIG, else user dir)."),
]


def fail(message: str) -> NoReturn:
    """Print ``error: MESSAGE`` on stderr and exit with the usage exit code."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(EXIT_USAGE)


@contextmanager
def handled() -> Iterator[None]:
    """Turn SoleGuard errors raised inside into one line on stderr and the status of README's
    table (`controller.cli.exit_codes.for_error`): 2 for what the user gave, 1 for a journal
    that is locked, damaged or on a full disk, as every other command says for the same cause.
    """
    from controller.cli.exit_codes import for_error  # noqa: PLC0415

    try:
        yield
    except SoleGuardError as exc:
        # Multi-line messages (a settings file with several problems) stay readable as they are.
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(for_error(exc)) from None


def parse_date(option: str, text: str | None, *, today: dt.date | None = None) -> dt.date:
    """A ``YYYY-MM-DD`` option value; ``None`` means today. A date after today is refused.

    ``option`` names the option in the message. Not a date, or after ``today`` (default: the
    local date): one line on stderr and exit status 2 (`fail`, raises typer.Exit).

    A record dated in the future (a typo, a wrong year) would otherwise satisfy every later
    daily check, or lift a block set today (FAULTS.md class 12).
    """
    today = localdate.today() if today is None else today
    if text is None:
        return today
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        fail(f"{option}: {text[:40]!r} is not a date (use YYYY-MM-DD, e.g. 2024-06-03)")
    if day > today:
        when = f"is after today ({today.isoformat()})"
        fail(f"{option}: {day.isoformat()} {when}; use today or a past date")
    return day


@contextmanager
def open_journal(
    db: Path | None, config: Path | None, *, create: bool = False
) -> Iterator[tuple[Store, Settings]]:
    """Settings and the open journal (``--db``, else ``storage.path``, else the default).

    A ``--db`` the user names must already exist: a typo must not quietly start an empty journal
    (and create folders) somewhere else. With ``create`` (``journal import``) it may be a new file
    in an existing folder. Exits with one line and status 2 otherwise.
    """
    from controller.settings import load_settings  # noqa: PLC0415
    from controller.store import Store  # noqa: PLC0415

    if db is not None and not db.is_file():
        if db.exists():
            fail(f"--db: {db} is not a file")
        if not create:
            fail(f"--db: {db} does not exist (is the path right?)")
        if not db.parent.is_dir():
            fail(f"--db: folder {db.parent} does not exist; create it first or fix the path")
    with handled():
        settings = load_settings(config)
        store = Store.open(db if db is not None else settings.storage.path)
    with handled(), store:
        yield store, settings
