"""Every way out of a ``soleguard`` process: signals, a bounded shutdown, children and temp files.

One `Shutdown` per process (`install`, from the command line's entry point). It owns SIGINT,
SIGTERM and SIGHUP:

- The first signal asks for an orderly stop: whatever the running code registered with
  `Shutdown.on_signal` is called on its event loop (a session ends through the supervisor, which
  sends STOP; a command's main task is cancelled). With nothing registered (a prompt, plain
  synchronous code) the signal raises `Signalled`, a ``KeyboardInterrupt``.
- A watchdog thread, on real time and independent of the event loop, bounds that orderly stop to
  `GRACE_S`. Cancellation is not trusted to reach everywhere: bumble awaits ``asyncio.wait_for``,
  which on Python 3.11 can swallow a cancel that coincides with a reply (cpython issue 86296),
  and a task that lost its cancel waits for ever. When the grace is over, or at a second signal,
  the watchdog sends a best-effort STOP (`Shutdown.on_emergency`), kills the children it was told
  about (each in its own process group), removes the temporary folders it was told about, says
  what it did on stderr and ends the process with ``128 + signal``.

The registry of children and folders (`track_child`, `track_path`) works without an installed
`Shutdown` too: library code registers what it starts, and only a process that installed one
acts on it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from controller.safety import EndReason

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable, Coroutine, Iterator
    from pathlib import Path

__all__ = [
    "EMERGENCY_STOP_S",
    "GRACE_S",
    "HANDLED_SIGNALS",
    "Shutdown",
    "Signalled",
    "current",
    "demo_summary_owned",
    "ended_by_signal",
    "exit_code_for",
    "install",
    "interruptible",
    "raise_if_cancelling",
    "received",
    "signal_name",
    "signal_reason",
    "track_child",
    "track_path",
    "untrack_child",
    "untrack_path",
]

_LOGGER = logging.getLogger(__name__)
_T = TypeVar("_T")

# The promise is "ended within 2 s of a signal". The orderly way out (STOP through the
# supervisor, the links' farewell, `offline`, the broker stopped, the journal closed) normally
# takes tens of milliseconds; after this long it is treated as stuck and the watchdog takes over,
# leaving it ~0.5 s for its own best-effort STOP and clean-up.
GRACE_S = 1.2
# Set by ``soleguard demo`` once it prints its own summary however it ends (`controller.cli.demo`);
# until then the entry point prints it for a signal (`controller.entry._demo_summary_if_unsaid`).
demo_summary_owned: list[bool] = []
# How long the watchdog waits for its best-effort STOP on the event loop: one GATT write and its
# response take milliseconds; a loop that cannot run it in this long is stuck, and the firmware's
# lease (<= 3 s) stops the massager on its own.
EMERGENCY_STOP_S = 0.3
# A child sent SIGTERM gets this long before SIGKILL: mosquitto exits at once on SIGTERM.
CHILD_TERM_S = 0.2
# After SIGKILL, how long the watchdog waits to reap a child (the kernel ends it at once; a
# zombie left behind would outlive us wherever the reaper of orphans does not reap).
CHILD_REAP_S = 0.2

# Libraries whose complaints on the way out are noise to a user: bumble logs "Exception in
# on_packet" with a traceback for a packet (a connection completing, a late reply) that arrives
# while its host is being torn down. From the first signal on they say only what is critical.
QUIET_AFTER_SIGNAL = ("bumble",)


class _DropLibraryCallbackErrors(logging.Filter):
    """asyncio's "Exception in callback" for a callback of a quieted library (bumble's
    ``Host.on_packet`` with a connection completing under a cancelled connect, seen once in 60
    signals at start-up), which its own loggers no longer say after a signal."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        tb = error.__traceback__ if error is not None else None
        while tb is not None:
            filename = tb.tb_frame.f_code.co_filename
            if any(f"{os.sep}{name}{os.sep}" in filename for name in QUIET_AFTER_SIGNAL):
                return False
            tb = tb.tb_next
        return True


_DROP_LIBRARY_CALLBACK_ERRORS = _DropLibraryCallbackErrors()


def quiet_libraries() -> None:
    """From the first signal on: the libraries of `QUIET_AFTER_SIGNAL` say only what is
    critical, through their own loggers or through asyncio's report of their callbacks."""
    for name in QUIET_AFTER_SIGNAL:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    logging.getLogger("asyncio").addFilter(_DROP_LIBRARY_CALLBACK_ERRORS)


HANDLED_SIGNALS: tuple[signal.Signals, ...] = (
    signal.SIGINT,
    signal.SIGTERM,
    *((signal.SIGHUP,) if hasattr(signal, "SIGHUP") else ()),
)

_registry_lock = threading.Lock()
_children: dict[int, bool] = {}  # pid -> in its own process group
_paths: set[Path] = set()
_current: Shutdown | None = None


def signal_name(signum: int) -> str:
    """``2`` -> ``"Ctrl-C"``, ``15`` -> ``"SIGTERM"``, ``1`` -> ``"SIGHUP"``."""
    if signum == signal.SIGINT:
        return "Ctrl-C"
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


def signal_reason(signum: int) -> EndReason:
    """How a session ended by a signal is recorded: SIGINT, SIGTERM, SIGHUP (`HANDLED_SIGNALS`);
    USER for any other signal (none is handled; the journal has no reason for it)."""
    try:
        return EndReason(signal.Signals(signum).name.lower())
    except ValueError:
        return EndReason.USER


def ended_by_signal(ended_by: str) -> int | None:
    """The signal number behind an ``ended_by`` from `signal_reason`, else None."""
    for candidate in signal.Signals:
        if candidate.name.lower() == ended_by:
            return int(candidate)
    return None


def exit_code_for(signum: int) -> int:
    """The shell's convention for "ended by signal N": ``128 + N`` (130 Ctrl-C, 143 SIGTERM)."""
    return 128 + signum


class Signalled(KeyboardInterrupt):
    """A signal arrived while no orderly stop was registered (a prompt, synchronous code)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal_name(signum))
        self.signum = signum


def track_child(pid: int, *, own_group: bool) -> None:
    """Remember a child process to kill if the process has to end in a hurry."""
    with _registry_lock:
        _children[pid] = own_group


def untrack_child(pid: int) -> None:
    """Forget a child process that has ended (an unknown ``pid`` is ignored)."""
    with _registry_lock:
        _children.pop(pid, None)


def track_path(path: Path) -> None:
    """Remember a temporary folder to remove if the process has to end in a hurry."""
    with _registry_lock:
        _paths.add(path)


def untrack_path(path: Path) -> None:
    """Forget a temporary folder that has been removed (an unknown ``path`` is ignored)."""
    with _registry_lock:
        _paths.discard(path)


def current() -> Shutdown | None:
    """The installed `Shutdown` of this process, if any."""
    return _current


def received() -> int | None:
    """The first signal the installed `Shutdown` took, or None (none yet, or none installed)."""
    return _current.signum if _current is not None else None


def install(*, grace_s: float = GRACE_S, err: TextIO | None = None) -> Shutdown:
    """Install the process's signal handling (main thread only); returns the `Shutdown`."""
    global _current  # noqa: PLW0603 (one per process, by nature of signals)
    if _current is None:
        _current = Shutdown(grace_s=grace_s, err=err)
        _current.install()
    return _current


if TYPE_CHECKING:
    _Callback = tuple[asyncio.AbstractEventLoop, Callable[[int], None]]
    _Emergency = tuple[asyncio.AbstractEventLoop, Callable[[], Coroutine[Any, Any, object]]]


class Shutdown:
    """Signals to an orderly stop, bounded by a watchdog; see the module's docstring."""

    def __init__(self, *, grace_s: float = GRACE_S, err: TextIO | None = None) -> None:
        self.grace_s = grace_s
        self._err = err
        self.signum: int | None = None
        self.count = 0
        self._handlers: list[_Callback] = []
        self._emergencies: list[_Emergency] = []
        self._last_words: list[Callable[[], None]] = []
        # Whether a session ever reached its massager in this process: what a signal's line
        # may say was done about it.
        self.massager_reached = False
        # How the last session with its massager ended: None while none ended (or one is still
        # running), True if it returned (its own way out sent STOP), False if it raised. What a
        # forced exit with no session running may say about the massager.
        self._session_ended_with_stop: bool | None = None
        self._requested = threading.Event()
        self._forced = threading.Event()
        # Who ends the process after a second signal: the watchdog (forced exit) or the entry
        # point whose orderly stop had already finished (`claim_exit`). One line, not two.
        self._exit_lock = threading.Lock()
        self._exit_owner: str | None = None
        self._watchdog: threading.Thread | None = None

    # -- installation ----------------------------------------------------------------------

    def install(self) -> None:
        """Install the ``HANDLED_SIGNALS`` handlers and start the watchdog (main thread only)."""
        # The watchdog first: starting a thread waits on a lock, and a signal raised there by our
        # own handler would escape as a traceback (seen at a SIGHUP 0.36 s after start). Until
        # the handlers below are in, a signal finds the caller's (`controller.entry._early`).
        self._watchdog = threading.Thread(target=self._watch, name="shutdown-watchdog", daemon=True)
        self._watchdog.start()
        for signum in HANDLED_SIGNALS:
            signal.signal(signum, self._on_signal)

    @contextlib.contextmanager
    def on_signal(
        self, loop: asyncio.AbstractEventLoop, callback: Callable[[int], None]
    ) -> Iterator[None]:
        """While inside, a signal calls ``callback(signum)`` on ``loop`` (innermost wins).

        If a signal already came before this was entered, ``callback`` is called at once: a stop
        asked for during start-up also ends what starts after it.
        """
        entry = (loop, callback)
        self._handlers.append(entry)
        if self.signum is not None:
            loop.call_soon(callback, self.signum)
        try:
            yield
        finally:
            self._handlers.remove(entry)

    @contextlib.contextmanager
    def on_emergency(
        self,
        loop: asyncio.AbstractEventLoop,
        stop: Callable[[], Coroutine[Any, Any, object]],
    ) -> Iterator[None]:
        """While inside, a forced exit first runs ``stop()`` on ``loop`` (best effort, bounded)."""
        entry = (loop, stop)
        self._emergencies.append(entry)
        self.massager_reached = True
        self._session_ended_with_stop = None
        try:
            yield
        except BaseException:
            self._session_ended_with_stop = False
            raise
        else:
            # The session's run returned: its orderly end sent STOP (runner.SessionRunner.run).
            self._session_ended_with_stop = True
        finally:
            self._emergencies.remove(entry)

    @contextlib.contextmanager
    def on_forced(self, last_word: Callable[[], None]) -> Iterator[None]:
        """While inside, a forced exit calls ``last_word()`` (on the watchdog's thread) before
        its own line: what a command promised to print however it ends (the demo's summary).
        Its errors are ignored; it must not wait on the event loop, which may be stuck."""
        self._last_words.append(last_word)
        try:
            yield
        finally:
            self._last_words.remove(last_word)

    # -- the signal handler (main thread) ----------------------------------------------------

    def _on_signal(self, signum: int, _frame: object) -> None:
        self.count += 1
        if self.count > 1:
            self._forced.set()
            return
        self.signum = signum
        self._requested.set()
        quiet_libraries()
        if not self._handlers:
            raise Signalled(signum)
        loop, callback = self._handlers[-1]
        try:
            loop.call_soon_threadsafe(callback, signum)
        except RuntimeError:  # the loop is closed: nothing orderly is left to do
            raise Signalled(signum) from None

    # -- the watchdog (its own thread, real time) ------------------------------------------------

    def claim_exit(self) -> bool:
        """Called as the command has returned after a signal: True if the orderly stop won the
        race (the caller exits, saying so after a second signal), False if the watchdog is
        already forcing the exit (the caller waits for it, bounded: `wait_forced_exit`)."""
        return self._claim("orderly")

    def wait_forced_exit(self, timeout_s: float) -> None:
        """Let the watchdog's forced exit (its STOP, its line, `os._exit`) finish, bounded."""
        if self._watchdog is not None:
            self._watchdog.join(timeout_s)

    def _claim(self, owner: str) -> bool:
        with self._exit_lock:
            if self._exit_owner is None:
                self._exit_owner = owner
            return self._exit_owner == owner

    def _watch(self) -> None:
        self._requested.wait()
        forced = self._forced.wait(self.grace_s)
        if not self._claim("watchdog"):
            return  # the orderly stop finished first and its exit says so
        signum = self.signum or signal.SIGTERM
        stopped = self._emergency_stop()
        killed = _kill_children()
        _remove_paths()
        for last_word in list(self._last_words):
            with contextlib.suppress(Exception):
                last_word()
        if forced:
            why = f"second signal: forced exit after {signal_name(signum)}"
        else:
            why = f"{signal_name(signum)}: stopping took over {self.grace_s:g} s; forced exit"
        if stopped is None:
            told = self._told_without_session()
        elif stopped:
            told = "the massager was told to stop"
        else:
            told = "STOP could not be sent; the firmware's lease stops the massager within 3 s"
        extra = f"; {killed} child process(es) ended" if killed else ""
        self._say(f"{why}; {told}{extra}")
        # After the line: the orderly stop may still finish and end the process meanwhile.
        _reap_children()
        os._exit(exit_code_for(signum))

    def _told_without_session(self) -> str:
        """What the forced exit's line says when no session is running to send STOP to."""
        if not self.massager_reached:
            return "no massager was connected"
        if self._session_ended_with_stop:
            # A way out stuck after the session (the alert drain, the broker's stop): the
            # session's own end had sent STOP, as its earlier line said.
            return "the session had already ended and told the massager to stop"
        return "the session had ended; the firmware's lease stops the massager within 3 s"

    def _emergency_stop(self) -> bool | None:
        if not self._emergencies:
            return None
        from asyncio import run_coroutine_threadsafe  # noqa: PLC0415 (see `raise_if_cancelling`)

        deadline = time.monotonic() + EMERGENCY_STOP_S
        results: list[bool] = []
        for loop, stop in list(self._emergencies):
            remaining = deadline - time.monotonic()
            try:
                future = run_coroutine_threadsafe(stop(), loop)
                outcome = future.result(max(0.0, remaining))
            except Exception:  # best effort on the way out; the lease is the safety net
                results.append(False)
                continue
            results.append(outcome is not False)
        return all(results)

    def _say(self, line: str) -> None:
        stream = self._err or sys.stderr
        with contextlib.suppress(Exception):
            stream.write(line + "\n")
            stream.flush()


def _kill_children() -> int:
    with _registry_lock:
        children = dict(_children)
    for pid, own_group in children.items():
        with contextlib.suppress(OSError):
            send = os.killpg if own_group else os.kill
            send(pid, signal.SIGTERM)
            # A stopped child (kill -STOP, a debugger) would hold SIGTERM pending for ever.
            send(pid, signal.SIGCONT)
    deadline = time.monotonic() + CHILD_TERM_S
    alive = set(children)
    while alive and time.monotonic() < deadline:
        for pid in list(alive):
            if not _alive(pid):
                alive.discard(pid)
        time.sleep(0.01)
    for pid in alive:
        with contextlib.suppress(OSError):
            if children[pid]:
                os.killpg(pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
    return len(children)


def _reap_children() -> None:
    """Reap the children just killed, bounded by `CHILD_REAP_S` (a zombie left otherwise)."""
    with _registry_lock:
        alive = set(_children)
    deadline = time.monotonic() + CHILD_REAP_S
    while alive and time.monotonic() < deadline:
        for pid in list(alive):
            if not _alive(pid):
                alive.discard(pid)
        if alive:
            time.sleep(0.01)


def _alive(pid: int) -> bool:
    # Reaps our own child if it has exited; a pid that is not ours any more counts as gone.
    try:
        done, _status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return done == 0


def _remove_paths() -> None:
    with _registry_lock:
        paths = list(_paths)
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)


def raise_if_cancelling() -> None:
    """Honour a cancel that a library swallowed (cpython issue 86296: 3.11's ``wait_for``).

    Called at the top of a task's loop: a task whose cancel was lost inside bumble then ends at
    its next turn instead of waiting for ever. Raises ``asyncio.CancelledError``.
    """
    # asyncio is imported where used: `install` runs before anything heavy is imported, so that a
    # signal during start-up already finds our handler.
    import asyncio  # noqa: PLC0415

    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def interruptible(awaitable: Coroutine[Any, Any, _T]) -> _T:
    """Await ``awaitable``; a signal cancels it and raises `Interrupted` instead.

    Without an installed `Shutdown` (a library user, a test) it is a plain ``await``.
    """
    import asyncio  # noqa: PLC0415 (see `raise_if_cancelling`)

    from controller.errors import Interrupted  # noqa: PLC0415 (errors imports nothing of ours)

    shutdown = _current
    if shutdown is None:
        return await awaitable
    task = asyncio.current_task()
    assert task is not None

    def cancel(_signum: int) -> None:
        task.cancel()

    with shutdown.on_signal(asyncio.get_running_loop(), cancel):
        try:
            return await awaitable
        except asyncio.CancelledError:
            if shutdown.signum is None:
                raise
            task.uncancel()
            if shutdown.massager_reached:
                raise Interrupted(shutdown.signum) from None
            raise Interrupted(shutdown.signum, "no session was started") from None
