"""The ``soleguard`` command.

Each command lives in its own module and imports its heavy dependencies (bumble, bleak, aiomqtt,
matplotlib) inside the command function, so ``soleguard --help`` stays fast.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from controller import __version__
from controller.cli import alarm as alarm_commands
from controller.cli import config as config_commands
from controller.cli import diary as diary_commands
from controller.cli import history as history_commands
from controller.cli import journal_io as journal_commands
from controller.cli import report as report_commands
from controller.cli.demo import demo
from controller.cli.devices import pair, scan
from controller.cli.monitor import monitor
from controller.cli.session import run, session
from controller.cli.sim import sim

app = typer.Typer(
    name="soleguard",
    help="Safety-first controller for heated smart foot massagers (peripheral neuropathy).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(config_commands.app, name="config")
app.command()(demo)
app.command()(scan)
app.command()(pair)
app.command()(session)
app.command()(run)
app.command()(monitor)
app.command()(sim)
app.command("history")(history_commands.history)
app.command("report")(report_commands.report)
app.add_typer(diary_commands.app, name="diary")
app.add_typer(journal_commands.app, name="journal")
app.add_typer(alarm_commands.app, name="alarm")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"soleguard {__version__}")
        raise typer.Exit


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug detail.")] = False,
) -> None:
    logging.basicConfig(
        level=logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # bumble reports a peer's late packets after a disconnect as warnings: noise for a user.
    logging.getLogger("bumble").setLevel(logging.ERROR)
    if verbose:
        # Our own detail only: bumble's packet dumps at DEBUG would drown it (and cost seconds).
        for name in ("controller", "firmware_sim"):
            logging.getLogger(name).setLevel(logging.DEBUG)


def main() -> None:
    app()
