"""The ``soleguard`` console script: signal handling first, then everything else.

Importing the command line (typer, rich, pydantic) takes a few hundred milliseconds; a Ctrl-C or
SIGTERM in that window must already find SoleGuard's handler (one line, the right exit status),
not Python's default (a KeyboardInterrupt traceback, or death without a word).
"""

from __future__ import annotations

# The C module, not `signal`: `signal` first imports enum and functools (about 4 ms on a quiet
# machine, more under load), a window in which a Ctrl-C raised a KeyboardInterrupt traceback from
# this very line and a SIGTERM ended the process without a word (the independent breaker).
import _signal  # type: ignore[import-not-found]  # typeshed has no stub for the C module

# Before anything else is imported, this module's own imports included (contextlib took a
# Ctrl-C 0.09 s after start under load: a KeyboardInterrupt traceback, issue 11): a signal now
# is only noted, and `main` ends the process for it as for one a moment later.
_while_importing: list[int] = []


def _noted_while_importing(signum: int, _frame: object) -> None:
    _while_importing.append(signum)


for _signum in (_signal.SIGINT, _signal.SIGTERM, _signal.SIGHUP):
    _signal.signal(_signum, _noted_while_importing)

import atexit  # noqa: E402 (after the handler above, on purpose)
import contextlib  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
from typing import NoReturn  # noqa: E402

# A signal while the process ends (after the command returned): at most this many real seconds
# for the exit functions still to run (temporary folders, the broker's) before it ends anyway.
FINISH_S = 1.0


def _early(signum: int, _frame: object) -> None:
    # Nothing has started yet: nothing to stop, nothing to clean. End at once, as promised.
    name = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
    sys.stderr.write(f"stopped by {name}\n")
    _demo_summary_if_unsaid(128 + signum)
    os._exit(128 + signum)


def main() -> None:
    """Install `controller.shutdown`, then run the ``soleguard`` command."""
    # First of all, before even controller.shutdown is imported (pathlib and threading take
    # tens of milliseconds on a slow machine): a signal now ends the process in one line.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _early)
    if _while_importing:
        _early(_while_importing[0], None)
    from controller import shutdown  # noqa: PLC0415 (light on purpose: no asyncio yet)

    try:
        # Inside the try: a signal the moment the handlers are in is a stop like any later one.
        shutdown.install()
        from controller.cli import main as cli_main  # noqa: PLC0415 (after the handlers)
    except KeyboardInterrupt as exc:
        came = int(getattr(exc, "signum", signal.SIGINT))
        sys.stderr.write(f"stopped by {shutdown.signal_name(came)}\n")
        _finish(shutdown.exit_code_for(came))
    code = 0
    try:
        try:
            cli_main()
        except SystemExit as exc:
            code = _status(exc.code)
    except KeyboardInterrupt as exc:  # a first signal as the command returned, handlers gone
        came = int(getattr(exc, "signum", signal.SIGINT))
        _say(f"stopped by {shutdown.signal_name(came)} as the command ended")
        code = shutdown.exit_code_for(came)
    _finish(code)


def _demo_summary_if_unsaid(code: int) -> None:
    """The summary of a demo stopped by a signal before the command itself ran (imports, option
    parsing): the promise is a summary with how it ended, whatever the moment."""
    if code <= 128:
        return
    # Looked up, never imported: this runs in a signal handler, possibly while
    # controller.shutdown is itself being imported (partly initialised: an ImportError). The demo
    # takes its summary over only after that import finished.
    if getattr(sys.modules.get("controller.shutdown"), "demo_summary_owned", None):
        return
    args = [arg for arg in sys.argv[1:] if arg not in ("-v", "--verbose")]
    if not args or args[0] != "demo":
        return
    scenario = "normal"
    for index, arg in enumerate(args):
        if arg == "--scenario" and index + 1 < len(args):
            scenario = args[index + 1]
        elif arg.startswith("--scenario="):
            scenario = arg.partition("=")[2]
    try:
        ended_by = signal.Signals(code - 128).name.lower()
    except ValueError:
        return
    if "--json" in args:
        import json  # noqa: PLC0415 (only on this way out)

        summary = {"scenario": scenario, "ended_by": ended_by, "session_id": None, "ran": False}
        line = json.dumps(summary, indent=2)
    else:
        line = f"demo ended by {ended_by} during start-up, before the session ran"
    with contextlib.suppress(Exception):
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def _status(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    sys.stderr.write(f"{code}\n")
    return 1


def _finish(code: int) -> NoReturn:
    """End the process with ``code``, our signal handling in force to the last instruction.

    Python's own finalization resets every handler it installed to the default action before it
    frees its modules (``_PySignal_Fini``): a Ctrl-C or SIGTERM in that window killed the process
    silently (status -2 or -15, a second signal's "forced exit" never said). So the exit
    functions run here, under a handler that only takes note, and the process ends with
    ``os._exit``: a first signal now ends it as ``128 + N`` with one line, a second at once.
    The threads still running are daemons (the watchdog, the bridge, the journal writer), whose
    work the command has already joined; nothing else is left for finalization to do.
    """
    from controller import shutdown  # noqa: PLC0415 (imported already: the same module)

    guard = shutdown.current()
    late: list[int] = []

    def noted(signum: int, _frame: object) -> None:
        first = guard.signum if guard is not None and guard.signum is not None else None
        if first is None and not late:
            late.append(signum)
            return
        came = first if first is not None else late[0]
        name = shutdown.signal_name(came)
        _say(f"second signal: forced exit after {name}; the command had ended")
        os._exit(shutdown.exit_code_for(came))

    for signum in shutdown.HANDLED_SIGNALS:
        signal.signal(signum, noted)
    if guard is not None and guard.signum is not None:
        # After a signal the orderly stop and the watchdog race to end the process; one owns
        # the exit. The watchdog forces it on a second signal or once the grace period ran out
        # (its line, the summary, `os._exit`): if it already began, the orderly end must not
        # overtake it half-way (the watchdog's SIGKILL of a stuck child lets the orderly path
        # finish at once, and under load it then exited before the "forced exit" line).
        if guard.claim_exit():
            if guard.count > 1:
                name = shutdown.signal_name(guard.signum)
                _say(f"second signal after {name}: the orderly stop had already finished")
        else:
            guard.wait_forced_exit(FINISH_S)
    _demo_summary_if_unsaid(code)
    # The public way, `sys.exit`, ends in finalization: the exit functions are run here.
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    if late:
        _say(f"stopped by {shutdown.signal_name(late[0])} as the command ended")
        code = shutdown.exit_code_for(late[0])
    os._exit(code)


def _say(line: str) -> None:
    with contextlib.suppress(Exception):
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
