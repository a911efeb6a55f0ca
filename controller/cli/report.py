"""``soleguard report``: a plotted session, or the journal's trends over weeks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from controller.journal.commandline import ConfigOption, DbOption, fail, handled, open_journal
from controller.safety import EndReason


def report(
    session_id: Annotated[
        int | None, typer.Argument(help="Session to plot (see `soleguard history`).")
    ] = None,
    weeks: Annotated[
        int | None,
        typer.Option("--weeks", "-w", help="Instead of one session: trends over N weeks."),
    ] = None,
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Output file: .png, .svg or .html (image and table)."),
    ] = Path("report.png"),
    db: DbOption = None,
    config: ConfigOption = None,
    simulated: Annotated[
        bool,
        typer.Option(
            "--simulated", help="With --weeks: also count simulated sessions (the demo's)."
        ),
    ] = False,
) -> None:
    """Plot one session (temperature, heater, pressure, alarms) or N weeks of the journal."""
    if (session_id is None) == (weeks is None):
        fail("give a SESSION_ID or --weeks N (one of them)")
    from controller.journal.render import FORMATS  # noqa: PLC0415

    if out.suffix.lower() not in (*FORMATS, ".htm"):
        fail(f"--out {out}: unknown format {out.suffix or '(none)'!r} (use {', '.join(FORMATS)})")
    if not out.parent.is_dir():
        fail(f"--out {out}: folder {out.parent} does not exist")

    from controller.journal.render import write_report  # noqa: PLC0415
    from controller.journal.report_data import (  # noqa: PLC0415
        ReportData,
        SessionReportData,
        TrendReportData,
        session_report_data,
        trend_report_data,
    )

    data: ReportData
    with open_journal(db, config) as (store, settings):
        if session_id is not None:
            data = session_report_data(store, session_id, latch_c=settings.heater.latch_c)
        else:
            assert weeks is not None  # one of the two, checked above
            data = trend_report_data(store, weeks=weeks, simulated=simulated)
    if isinstance(data, SessionReportData) and not data.t_s:
        why = (
            "it was refused by the checklist before it started"
            if data.session.ended_by is EndReason.CHECKLIST
            else "no readings were recorded"
        )
        fail(f"session {data.session.id}: nothing to plot, {why}")
    if isinstance(data, TrendReportData) and not (
        data.pain
        or data.sleep
        or data.findings_per_day
        or any(count for _, count in data.sessions_per_day)
    ):
        fail(
            f"--weeks {weeks}: nothing recorded from {data.first_day} to {data.last_day}, "
            "nothing to plot"
        )
    with handled():
        write_report(data, out)
    typer.echo(f"Report written to {out}")
