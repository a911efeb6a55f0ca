"""The ``soleguard`` console script: signal handling first, then everything else.

Importing the command line (typer, rich, pydantic) takes a few hundred milliseconds; a Ctrl-C or
SIGTERM in that window must already find SoleGuard's handler (one line, the right exit status),
not Python's default (a KeyboardInterrupt traceback, or death without a word).
"""

from __future__ import annotations


def main() -> None:
    """Install `controller.shutdown`, then run the ``soleguard`` command."""
    from controller import shutdown  # noqa: PLC0415 (light on purpose: no asyncio yet)

    shutdown.install()
    try:
        from controller.cli import main as cli_main  # noqa: PLC0415 (after the handlers)
    except KeyboardInterrupt as exc:
        import sys  # noqa: PLC0415

        signum = getattr(exc, "signum", 2)
        sys.stderr.write(f"stopped by {shutdown.signal_name(signum)}\n")
        sys.exit(shutdown.exit_code_for(signum))
    cli_main()
