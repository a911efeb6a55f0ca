"""The ``soleguard`` console script: signal handling first, then everything else.

Importing the command line (typer, rich, pydantic) takes a few hundred milliseconds; a Ctrl-C or
SIGTERM in that window must already find SoleGuard's handler (one line, the right exit status),
not Python's default (a KeyboardInterrupt traceback, or death without a word).
"""

from __future__ import annotations

import os
import signal
import sys


def _early(signum: int, _frame: object) -> None:
    # Nothing has started yet: nothing to stop, nothing to clean. End at once, as promised.
    name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
    sys.stderr.write(f"stopped by {name}\n")
    os._exit(128 + signum)


def main() -> None:
    """Install `controller.shutdown`, then run the ``soleguard`` command."""
    # First of all, before even controller.shutdown is imported (pathlib and threading take
    # tens of milliseconds on a slow machine): a signal now ends the process in one line.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _early)
    from controller import shutdown  # noqa: PLC0415 (light on purpose: no asyncio yet)

    try:
        # Inside the try: a signal the moment the handlers are in is a stop like any later one.
        shutdown.install()
        from controller.cli import main as cli_main  # noqa: PLC0415 (after the handlers)
    except KeyboardInterrupt as exc:
        came = int(getattr(exc, "signum", signal.SIGINT))
        sys.stderr.write(f"stopped by {shutdown.signal_name(came)}\n")
        sys.exit(shutdown.exit_code_for(came))
    cli_main()
