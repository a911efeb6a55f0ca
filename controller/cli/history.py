"""``soleguard history``: the sessions in the journal, as a table, JSON or CSV."""

from __future__ import annotations

from typing import Annotated

import typer

from controller.journal.commandline import ConfigOption, DbOption, fail, open_journal, parse_date


def _num(value: object, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}:{secs:02d}"


def history(
    since: Annotated[
        str | None, typer.Option("--since", help="Only sessions from this date on (YYYY-MM-DD).")
    ] = None,
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", help="At most this many (newest first).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV instead of a table.")] = False,
    db: DbOption = None,
    config: ConfigOption = None,
    simulated: Annotated[
        bool,
        typer.Option(
            "--simulated", help="Also list sessions against simulated devices (the demo's)."
        ),
    ] = False,
) -> None:
    """List recorded sessions, newest first: date, program, duration, outcome, alarms, pain.

    Sessions against simulated devices (the demo's) are left out unless --simulated is given.
    """
    from controller.journal.history import (  # noqa: PLC0415
        history_rows,
        rows_to_csv,
        rows_to_json,
    )

    if as_json and as_csv:
        fail("--json and --csv: choose one")
    if limit is not None and limit < 1:
        fail(f"--limit: {limit} is outside the allowed range 1..")
    since_date = None if since is None else parse_date("--since", since)
    with open_journal(db, config) as (store, _settings):
        rows = history_rows(store, since=since_date, limit=limit, simulated=simulated)
    if as_json:
        typer.echo(rows_to_json(rows))
        return
    if as_csv:
        typer.echo(rows_to_csv(rows), nl=False)
        return

    from rich import box  # noqa: PLC0415
    from rich.console import Console  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    console = Console()
    if not rows:
        console.print("No sessions recorded" + (f" since {since_date}." if since_date else "."))
        if not simulated:
            console.print("Simulated (demo) sessions are left out: --simulated lists them.")
        return
    # A light box and no-wrap key columns keep one session per line in an 80-column terminal.
    table = Table(
        title=f"SoleGuard sessions ({store.path})",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        # One space between columns (the box's divider), no padding: every column fits whole in
        # 80 columns.
        padding=(0, 0),
    )
    for name in ("id", "date", "program", "length", "ended\nby"):
        table.add_column(
            name, justify="right" if name in {"id", "length"} else "left", no_wrap=True
        )
    for name in ("max\n°C", "alarms", "pain\nbefore", "pain\nafter"):
        table.add_column(name, justify="right", no_wrap=True)
    for row in rows:
        over = row["max_skin_c"] is not None and row["max_skin_c"] > row["cutoff_c"]
        skin = _num(row["max_skin_c"])
        table.add_row(
            str(row["id"]),
            row["started"][:16].replace("T", " "),
            row["program"],
            _duration(row["duration_s"]),
            row["ended_by"] or "unfinished",
            f"[bold red]{skin}[/]" if over else skin,
            str(row["alarms"]),
            _num(row["pain_before"], 0),
            _num(row["pain_after"], 0),
        )
    console.print(table)
