"""``soleguard journal export|import|alerts|backup|restore``: the journal as JSON or CSV and back,
caregiver alerts, and whole-file backups that work while SoleGuard runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from controller.journal.commandline import ConfigOption, DbOption, fail, handled, open_journal

app = typer.Typer(
    help="Export, import, back up or restore the journal; list caregiver alerts.",
    no_args_is_help=True,
)


@app.command("export")
def export(
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the whole journal as JSON here.")
    ] = None,
    csv_dir: Annotated[
        Path | None, typer.Option("--csv", help="Write one CSV file per table into this folder.")
    ] = None,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Export the whole journal: sessions, readings, alarms, checklist, pain and diary."""
    from controller.journal.export import write_csv, write_json  # noqa: PLC0415

    if (out is None) == (csv_dir is None):
        fail("give --out FILE.json or --csv FOLDER (one of them)")
    with open_journal(db, config) as (store, _settings), handled():
        if out is not None:
            counts = write_json(store, out)
            typer.echo(
                f"Journal written to {out}: {counts['sessions']} sessions, "
                f"{counts['readings']} readings, {sum(counts.values())} rows in all."
            )
        else:
            assert csv_dir is not None  # one of the two, checked above
            files = write_csv(store, csv_dir)
            typer.echo(f"{len(files)} CSV files written to {csv_dir}.")


@app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="A file written by `soleguard journal export`.")],
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Add an exported journal to this one; what is already here is not duplicated."""
    from controller.journal.export import import_json  # noqa: PLC0415

    with open_journal(db, config, create=True) as (store, _settings):
        added = import_json(store, file)
    new = {name: count for name, count in added.items() if count}
    summary = ", ".join(f"{count} {name}" for name, count in new.items()) or "nothing new"
    typer.echo(f"Imported from {file}: {summary}.")


def _journal_path(db: Path | None, config: Path | None) -> Path:
    """``--db``, else the settings' ``storage.path``, else the default; nothing is created."""
    from controller.settings import load_settings  # noqa: PLC0415
    from controller.store import default_store_path  # noqa: PLC0415

    if db is not None:
        return db
    with handled():
        settings = load_settings(config)
    return settings.storage.path or default_store_path()


@app.command("backup")
def backup(
    out: Annotated[Path, typer.Option("--out", "-o", help="The backup file to write.")],
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Copy the journal into one self-contained file, consistently, even while SoleGuard runs."""
    from controller.store.backup import backup as backup_journal  # noqa: PLC0415

    source = _journal_path(db, config)
    with handled():
        summary = backup_journal(source, out)
    typer.echo(
        f"Journal {source} backed up to {summary.path}: "
        f"{summary.sessions} sessions, {summary.readings} readings."
    )


@app.command("restore")
def restore(
    file: Annotated[Path, typer.Argument(help="A file written by `soleguard journal backup`.")],
    replace: Annotated[
        bool, typer.Option("--replace", help="Overwrite the journal that is there now.")
    ] = False,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Put a backup in place of the journal; stop SoleGuard (session, run, demo) first."""
    from controller.store.backup import restore as restore_journal  # noqa: PLC0415

    target = _journal_path(db, config)
    with handled():
        summary = restore_journal(file, target, replace=replace)
    typer.echo(
        f"Journal {target} restored from {file}: "
        f"{summary.sessions} sessions, {summary.readings} readings."
    )


@app.command("alerts")
def alerts(
    limit: Annotated[int, typer.Option(min=1, max=100_000, help="Newest alert messages.")] = 50,
    db: DbOption = None,
    config: ConfigOption = None,
) -> None:
    """Caregiver alerts: when each was raised, published (broker PUBACK) and acknowledged."""
    import datetime as dt  # noqa: PLC0415

    def local(epoch: float | None) -> str:
        if epoch is None:
            return "-"
        return dt.datetime.fromtimestamp(epoch).astimezone().strftime("%Y-%m-%d %H:%M:%S")

    with open_journal(db, config) as (store, _settings), handled():
        history = store.alert_history(limit=limit)
    if not history:
        typer.echo("No caregiver alerts in the journal.")
        return
    for h in history:
        acked = f"{local(h.acknowledged_at)} by {', '.join(h.acknowledged_by)}"
        typer.echo(
            f"{h.condition_id[:12]}  {h.priority:<6} {h.code:<28} {h.event:<8} "
            f"raised {local(h.raised_at)}  published {local(h.published_at)}  "
            f"acknowledged {acked if h.acknowledged_by else '-'}"
        )
