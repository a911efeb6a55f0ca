"""How every session command reports failures: one line on stderr and a meaningful exit code."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import typer

from controller.errors import Interrupted, SoleGuardError

EXIT_USAGE = 2
# The shell's convention for "ended by signal N": 128 + N.
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


@contextlib.contextmanager
def reported() -> Iterator[None]:
    try:
        yield
    except Interrupted as exc:
        typer.echo(f"stopped: {exc}", err=True)
        raise typer.Exit(EXIT_SIGTERM) from None
    except KeyboardInterrupt:
        typer.echo("stopped by Ctrl-C; the massager was told to stop", err=True)
        raise typer.Exit(EXIT_SIGINT) from None
    except SoleGuardError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from exc
