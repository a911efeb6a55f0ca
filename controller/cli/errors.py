"""How every command reports failures: one line on stderr and an exit status from `exit_codes`.

`reported` wraps a command's body; `run_app` wraps the whole ``soleguard`` command, so what a
command did not anticipate still ends as one line, never a traceback (``-v`` logs the details).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import re
import signal
from collections.abc import Iterator
from typing import Any

import typer

from controller.cli import exit_codes
from controller.errors import SHOWN_VALUE_CHARS, Interrupted, SoleGuardError, shown
from controller.shutdown import Signalled, received, signal_name
from controller.shutdown import current as current_shutdown

__all__ = ["EXIT_SIGINT", "EXIT_USAGE", "clip", "describe", "reported", "run_app"]

EXIT_USAGE = exit_codes.USAGE
EXIT_SIGINT = exit_codes.for_signal(2)
# An error line longer than this is cut: a 10 MB value in a settings file must not be echoed
# whole. Values echoed inside messages are already cut far shorter (settings show 60 characters
# of a value); this is the last guard, long enough that a message's own instruction (a
# `soleguard pair ADDRESS` to copy after a lost bond, about 260 characters) is never cut.
MAX_LINE_CHARS = 500
# A multi-line message (a settings file with several problems) keeps at most this many lines.
MAX_LINES = 20

_LOGGER = logging.getLogger(__name__)


def clip(text: str, limit: int = MAX_LINE_CHARS) -> str:
    """``text`` with every line cut to ``limit`` characters (saying how much was cut).

    At most `MAX_LINES` lines are kept, then one line saying how many more there were.
    """
    lines = text.splitlines() or [""]
    out = []
    for line in lines[:MAX_LINES]:
        cut = len(line) - limit
        out.append(f"{line[:limit]}… ({cut} more characters)" if cut > 0 else line)
    if len(lines) > MAX_LINES:
        out.append(f"… ({len(lines) - MAX_LINES} more lines)")
    return "\n".join(out)


def _leaf(exc: BaseException) -> BaseException:
    """The most telling exception inside (nested) exception groups: ours first."""
    if not isinstance(exc, BaseExceptionGroup):
        return exc
    leaves: list[BaseException] = []

    def walk(group: BaseExceptionGroup[Any]) -> None:
        for inner in group.exceptions:
            if isinstance(inner, BaseExceptionGroup):
                walk(inner)
            else:
                leaves.append(inner)

    walk(exc)
    for kind in (Interrupted, SoleGuardError, OSError, Exception):
        for leaf in leaves:
            if isinstance(leaf, kind):
                return leaf
    return leaves[0] if leaves else exc


def describe(exc: BaseException) -> tuple[str, int]:
    """(one line for stderr, exit status) for an exception a command let through.

    The status is from `exit_codes`: 128 + signal for a signal or Ctrl-C, `exit_codes.for_error`
    for a SoleGuardError, 2 for undecodable text or input nested too deeply, 1 for an OSError
    and anything unexpected. Inside exception groups, ours are preferred. Raises nothing.
    """
    exc = _leaf(exc)
    if type(exc).__name__ == "Abort" and isinstance(exc.__context__, KeyboardInterrupt):
        # A prompt turns Ctrl-C (or our `Signalled`) into click's Abort: report the signal.
        exc = exc.__context__
    if isinstance(exc, Interrupted):
        return str(exc), exit_codes.for_signal(exc.signum)
    if isinstance(exc, Signalled):
        return f"stopped by {signal_name(exc.signum)}", exit_codes.for_signal(exc.signum)
    came = received()
    if came is not None and _terminal_gone(exc):
        # Closing the terminal sends SIGHUP and makes every later write to it fail: that error
        # is part of the signal's way out, which says so (129), not a command failure (1).
        return f"stopped by {signal_name(came)}", exit_codes.for_signal(came)
    if isinstance(exc, KeyboardInterrupt):
        # Ctrl-C outside a session (while connecting, in a prompt): nothing was actuated.
        return "stopped by Ctrl-C", EXIT_SIGINT
    if isinstance(exc, SoleGuardError):
        return f"error: {exc}", exit_codes.for_error(exc)
    if isinstance(exc, UnicodeDecodeError):
        return f"error: not valid UTF-8 text ({exc.reason})", exit_codes.USAGE
    if isinstance(exc, OSError):
        where = f": {exc.filename}" if exc.filename else ""
        return f"error: {exc.strerror or exc}{where}", exit_codes.FAILED
    if isinstance(exc, RecursionError):
        return "error: input nested too deeply to read", exit_codes.USAGE
    return (
        f"error: unexpected {type(exc).__name__}: {exc} (run with -v for details)",
        exit_codes.FAILED,
    )


# What a write to a terminal that is gone fails with (a closed pty: EIO; a closed pipe: EPIPE).
_GONE_ERRNOS = frozenset({errno.EIO, errno.EPIPE, errno.ENXIO})


def _terminal_gone(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it was raised while handling) is a write to a terminal that is
    gone: rich's write or the terminal modes' restore (``termios.error``, not an OSError)."""
    seen: BaseException | None = exc
    while seen is not None:
        code = seen.errno if isinstance(seen, OSError) else None
        if type(seen).__name__ == "error" and type(seen).__module__ == "termios" and seen.args:
            code = seen.args[0]
        if code in _GONE_ERRNOS:
            return True
        seen = seen.__context__
    return False


# Whether this process has said a line on stderr: an interrupted command that has not said why
# gets the signal's line from `run_app`.
_said: list[str] = []


def _say(line: str) -> None:
    if line.startswith("stopped by ") and line in _said:
        return  # a second writer failing on the same way out: its one line was said
    _said.append(line)
    # The terminal may be gone (SIGHUP): then the line has nowhere to go, and that is no error.
    with contextlib.suppress(OSError):
        typer.echo(clip(line), err=True)


@contextlib.contextmanager
def reported() -> Iterator[None]:
    """Turn every failure inside into one line on stderr and its exit status (`exit_codes`).

    Raises typer.Exit with the status of `describe` (a typer.Exit from inside passes as it is);
    the traceback is logged at DEBUG (``-v``).
    """
    try:
        yield
    except typer.Exit:
        raise
    except (Exception, KeyboardInterrupt) as exc:
        line, code = describe(exc)
        _LOGGER.debug("%s", line, exc_info=exc)
        _say(line)
        raise typer.Exit(code) from None


def run_app(app: typer.Typer) -> int:
    """Run the ``soleguard`` command; returns its exit status. Nothing escapes as a traceback."""
    try:
        result = app(standalone_mode=False)
    except (Exception, KeyboardInterrupt) as exc:
        result = _exit_status(exc)
    code = result if isinstance(result, int) else exit_codes.DONE
    shutdown = current_shutdown()
    if shutdown is not None and shutdown.signum is not None and code == EXIT_SIGINT:
        # typer turns any KeyboardInterrupt (our `Signalled` too) into a silent 130; a command
        # that handled a Ctrl-C itself (`reported`) has already said so. One that had not yet
        # got that far (a Ctrl-C while `monitor` or `pair` starts) is said here.
        if shutdown.signum != signal.SIGINT or not _said:
            _say(f"stopped by {signal_name(shutdown.signum)}")
        return exit_codes.for_signal(shutdown.signum)
    return code


# Any run of this many non-blank characters in click's own usage messages is a value the user
# gave (click quotes it, or names an unknown option or extra argument bare): cut it as `shown`.
_LONG_WORD = re.compile(rf"\S{{{SHOWN_VALUE_CHARS + 1},}}")


def _cut_long_words(message: str) -> str:
    """``message`` with every user value click echoes cut as `controller.errors.shown` does."""
    return _LONG_WORD.sub(lambda match: shown(match.group(), quoted=False), message)


def _exit_status(exc: BaseException) -> int:
    """Say what ended the command in one line; return the exit status."""
    # typer vendors its own copy of click: its exceptions are recognised by what they offer.
    if isinstance(exc, typer.Exit) or type(exc).__name__ == "Exit":
        return int(getattr(exc, "exit_code", exit_codes.FAILED))
    if type(exc).__name__ == "Abort":
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, KeyboardInterrupt):
            line, code = describe(cause)
            _say(line)
            return code
        _say("aborted")
        return exit_codes.FAILED
    format_message = getattr(exc, "format_message", None)
    if callable(format_message) and hasattr(exc, "exit_code"):
        # A usage error: one line with the fix, not click's three (usage, hint, error).
        context = getattr(exc, "ctx", None)
        command = getattr(context, "command_path", None) or "soleguard"
        _say(f"error: {_cut_long_words(format_message())} (see `{command} --help`)")
        return int(exc.exit_code)
    line, code = describe(exc)
    _LOGGER.debug("%s", line, exc_info=exc)
    _say(line)
    return code
