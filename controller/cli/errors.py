"""How every session command reports failures: one line on stderr and a meaningful exit code."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import typer

from controller.errors import Interrupted, SoleGuardError

EXIT_USAGE = 2
# The shell's convention for "ended by signal N": 128 + N.
EXIT_SIGINT = 130


@contextlib.contextmanager
def reported() -> Iterator[None]:
    try:
        yield
    except Interrupted as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(128 + exc.signum) from None
    except KeyboardInterrupt:
        # Ctrl-C outside a session (while connecting, in a prompt): nothing was actuated.
        typer.echo("stopped by Ctrl-C", err=True)
        raise typer.Exit(EXIT_SIGINT) from None
    except SoleGuardError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_USAGE) from exc
