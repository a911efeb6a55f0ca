"""The live session view: what a person watching a session needs at a glance.

It says how fast the clock runs when it is not real time, which keys stop the session (``q``, or
Ctrl-C), how old each reading is (and marks a stale one), and, once the session is over, draws a
last frame that shows the true end state rather than the last running one. While it is on screen,
log records and warnings are printed through it (above the panel), so nothing breaks its border.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from controller.safety import EndReason, Priority

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from controller.safety import Decision
    from controller.service.app import LatestDecision
    from controller.settings import SafetyLimits, Settings

_BAR_WIDTH = 30
# Redraw rate in real seconds: smooth enough to follow, cheap on a Pi.
REFRESH_PER_S = 4
# How often the view checks whether the session has ended (real seconds).
POLL_S = 0.05
# The keys that stop a session from the view (Ctrl-C works everywhere, as a signal).
QUIT_KEYS = frozenset("qQ")
KEYS_HINT = "q or Ctrl-C: stop"

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class LiveFigures:
    """One frame of the view; the service fills it from each supervisor decision.

    Ages and times are in session seconds (virtual seconds in the demo); None means no reading
    yet. Units are in the field names (degC ``_c``, mmHg ``_mmhg``); ``alarms`` holds
    (IEC 60601-1-8 priority, code, message) of each active alarm.
    """

    title: str
    state: str
    elapsed_s: float
    total_s: float
    skin_c: float | None
    skin_note: str
    target_c: float
    cutoff_c: float
    latch_c: float
    pressure_mmhg: float
    measured_pressure_mmhg: float | None
    cap_mmhg: float
    heater_on: bool
    heater_allowed: bool
    alarms: tuple[tuple[str, str, str], ...] = field(default_factory=tuple)  # priority, code, text
    footer: str = ""
    skin_age_s: float | None = None
    skin_stale: bool = False
    pressure_age_s: float | None = None
    heater_note: str = ""
    subtitle: str = ""


def _bar(value: float, maximum: float, *, warn_at: float | None = None) -> str:
    filled = 0 if maximum <= 0 else round(_BAR_WIDTH * min(max(value / maximum, 0.0), 1.0))
    colour = "red" if warn_at is not None and value >= warn_at else "green"
    return f"[{colour}]{'█' * filled}[/]{'░' * (_BAR_WIDTH - filled)}"


def _age(age_s: float | None) -> str:
    return "" if age_s is None else f"  {age_s:4.1f} s ago"


def render(figures: LiveFigures) -> RenderableType:
    """The panel for one frame."""
    from rich.console import Group  # noqa: PLC0415
    from rich.panel import Panel  # noqa: PLC0415
    from rich.table import Table  # noqa: PLC0415

    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    table.add_column()
    table.add_column(justify="right")
    minutes, seconds = divmod(int(figures.elapsed_s), 60)
    total_m, total_s = divmod(int(figures.total_s), 60)
    table.add_row(
        "session",
        _bar(figures.elapsed_s, figures.total_s),
        f"{minutes:02d}:{seconds:02d} / {total_m:02d}:{total_s:02d}  {figures.state}",
    )
    stale = "  [bold yellow]STALE[/]" if figures.skin_stale else ""
    if figures.skin_c is None:
        table.add_row("skin", "[yellow]no valid reading[/]", f"{figures.skin_note}{stale}")
    else:
        scale_low = 30.0
        table.add_row(
            "skin",
            _bar(
                figures.skin_c - scale_low,
                figures.latch_c - scale_low,
                warn_at=figures.cutoff_c - scale_low,
            ),
            f"{figures.skin_c:5.2f} °C{_age(figures.skin_age_s)}{stale}  "
            f"(target {figures.target_c:.1f}, cut-off {figures.cutoff_c:.1f}, "
            f"latch {figures.latch_c:.1f})",
        )
    measured = (
        ""
        if figures.measured_pressure_mmhg is None
        else f", measured {figures.measured_pressure_mmhg:.1f}{_age(figures.pressure_age_s)}"
    )
    table.add_row(
        "pressure",
        _bar(figures.pressure_mmhg, figures.cap_mmhg),
        f"{figures.pressure_mmhg:5.1f} mmHg (cap {figures.cap_mmhg:.0f}{measured})",
    )
    heater = "[red]ON[/]" if figures.heater_on else "off"
    if not figures.heater_allowed:
        heater += " (not allowed by profile)"
    if figures.heater_note:
        heater += f" ({figures.heater_note})"
    table.add_row("heater", heater, "")
    alarms = Table.grid(padding=(0, 1))
    colours: dict[str, str] = {
        Priority.HIGH: "bold red",
        Priority.MEDIUM: "yellow",
        Priority.LOW: "cyan",
    }
    for priority, code, text in figures.alarms[-6:]:
        alarms.add_row(f"[{colours.get(priority, 'white')}]{priority.upper():6}[/]", code, text)
    parts: list[RenderableType] = [table]
    if figures.alarms:
        parts.append(Panel(alarms, title="alarms", border_style="red"))
    if figures.footer:
        parts.append(figures.footer)
    return Panel(Group(*parts), title=figures.title, subtitle=figures.subtitle or None)


def figures(
    title: str,
    decision: Decision,
    limits: SafetyLimits,
    footer: str = "",
    *,
    subtitle: str = "",
    pressure_age_s: float | None = None,
) -> LiveFigures:
    """One frame from a supervisor decision.

    Temperatures (degC) and the session limit come from ``limits``, everything measured or
    commanded from ``decision``; ``pressure_age_s``: seconds since the massager's latest status
    (None: not known). ``footer``/``subtitle``: extra lines the caller shows. Raises nothing.
    """
    # Why the heater is off matters while the session runs; once it has ended, it is plain.
    block = decision.heater_block if decision.ended_by is None else None
    lines = (f"heater off: {block}" if block else "", footer)
    # The supervisor counts down only while the session runs (remaining 0 once it has ended):
    # the planned time is then the session limit it counted down from, so an early stop reads
    # "00:42 / 05:00", not a full bar of "00:42 / 00:42".
    running = decision.remaining_s > 0
    planned_s = decision.elapsed_s + decision.remaining_s if running else limits.max_session_s
    return LiveFigures(
        title=title,
        state=str(decision.state),
        elapsed_s=decision.elapsed_s,
        total_s=planned_s,
        skin_c=decision.skin_c,
        skin_note="" if decision.skin_fresh else "stale",
        target_c=limits.heater_target_c,
        cutoff_c=limits.heater_cutoff_c,
        latch_c=limits.latch_c,
        pressure_mmhg=decision.command.pressure_mmhg,
        measured_pressure_mmhg=decision.measured_pressure_mmhg,
        cap_mmhg=decision.pressure_cap_mmhg,
        heater_on=decision.command.heater_on,
        heater_allowed=limits.heater_allowed,
        alarms=tuple(
            (str(alarm.priority), alarm.code, alarm.message) for alarm in decision.active_alarms
        ),
        footer="\n".join(line for line in lines if line),
        skin_age_s=decision.skin_age_s,
        skin_stale=decision.skin_c is not None and not decision.skin_fresh,
        pressure_age_s=pressure_age_s,
        subtitle=subtitle,
    )


def speed_label(speed: float | str | None) -> str:
    """How the clock runs, for the title.

    ``''`` for real time (None) or a factor of 1, ``'virtual time, flat out'`` for "max",
    ``'virtual time 20x real time'`` for 20. Raises ValueError for other non-numeric text.
    """
    if speed is None or speed == 1:
        return ""
    if speed == "max":
        return "virtual time, flat out"
    return f"virtual time {float(speed):g}x real time"


def final_figures(
    frame: LiveFigures, *, ended_by: EndReason | None, error: BaseException | None
) -> LiveFigures:
    """The last frame: what is true once the session is over, not its last running moment.

    A session that ended by a decision shows that decision (everything commanded off). One that
    ended by a signal or an error shows the links' farewell: every link sends STOP before it
    closes, and the firmware's lease switches the massager off if even that could not reach it.
    """
    from dataclasses import replace  # noqa: PLC0415

    from controller.errors import Interrupted  # noqa: PLC0415

    if ended_by is not None and error is None:
        return replace(frame, state=f"ended by {ended_by}", subtitle="")
    how = str(error) if isinstance(error, Interrupted) else "stopped by an error"
    return replace(
        frame,
        state="stopped",
        heater_on=False,
        pressure_mmhg=0.0,
        heater_note="STOP sent as the session closed; the massager's lease ends it otherwise",
        footer="\n".join(line for line in (how, frame.footer) if line),
        subtitle="",
    )


# Our own loggers: their warnings are for the person watching, printed above the panel.
_OWN_LOGGERS = ("controller", "firmware_sim")


def live_log_path() -> Path:
    """Where other libraries' messages (bumble, asyncio, the broker) go while the view is up."""
    import platformdirs  # noqa: PLC0415

    return Path(platformdirs.user_log_dir("soleguard")) / "live.log"


class _Own(logging.Filter):
    """Passes SoleGuard's own records (``own``) or everyone else's, and counts what it passes."""

    def __init__(self, own: bool) -> None:
        super().__init__()
        self._own = own
        self.passed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith(_OWN_LOGGERS) is self._own:
            self.passed += 1
            return True
        return False


@contextlib.contextmanager
def _logs_through(console: Console) -> Iterator[None]:
    """While inside, nothing is printed across the live panel.

    SoleGuard's own log records print above the panel, through it; other libraries' records and
    Python warnings (a bumble traceback after a cancelled request, say) go to ``live_log_path()``,
    and one line afterwards says so.
    """
    from rich.logging import RichHandler  # noqa: PLC0415

    root = logging.getLogger()
    saved = root.handlers[:]
    level = min((h.level for h in saved), default=logging.WARNING) or logging.WARNING
    own = RichHandler(console=console, show_path=False, rich_tracebacks=False)
    own.setLevel(level)
    own.addFilter(_Own(own=True))
    path = live_log_path()
    others: logging.Handler | None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        others = logging.FileHandler(path, encoding="utf-8", delay=True)
        others.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    except OSError:
        others = None  # no log folder: drop them rather than break the panel
    foreign = _Own(own=False)
    if others is not None:
        others.setLevel(level)
        others.addFilter(foreign)
    root.handlers = [own] if others is None else [own, others]
    logging.captureWarnings(True)
    try:
        yield
    finally:
        logging.captureWarnings(False)
        root.handlers = saved
        if others is not None:
            others.close()
            if foreign.passed:
                console.print(
                    f"{foreign.passed} message(s) from libraries written to {path}",
                    highlight=False,
                    soft_wrap=True,
                )


@contextlib.contextmanager
def _keys(on_key: Callable[[str], None]) -> Iterator[bool]:
    """Deliver single key presses from a terminal's stdin without echo; yields False without one.

    The terminal is put in cbreak mode (no line buffering, no echo, signals kept: Ctrl-C still
    interrupts) and restored on the way out, whatever ends the view.
    """
    stdin = sys.stdin
    try:
        fd = stdin.fileno()
    except (AttributeError, ValueError, OSError):
        yield False
        return
    if not os.isatty(fd):
        yield False
        return
    import termios  # noqa: PLC0415 (POSIX only)
    import tty  # noqa: PLC0415

    loop = asyncio.get_running_loop()
    saved = termios.tcgetattr(fd)

    def readable() -> None:
        try:
            data = os.read(fd, 32)
        except OSError:
            return
        for char in data.decode(errors="replace"):
            on_key(char)

    tty.setcbreak(fd)
    loop.add_reader(fd, readable)
    try:
        yield True
    finally:
        loop.remove_reader(fd)
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _how_it_ended(task: asyncio.Future[_T], latest: LatestDecision) -> EndReason | None:
    """How the session ended, as its summary and the journal say it.

    The supervisor's last decision says USER for any stop it was asked for; the session's
    outcome (``SessionOutcome.ended_by``) names the signal that asked (sigint, sigterm, sighup).
    Falls back to the decision while there is no outcome (the session raised or is running).
    """
    if task.done() and not task.cancelled() and task.exception() is None:
        outcome = getattr(task.result(), "outcome", None)
        reason = getattr(outcome, "ended_by", None)
        if isinstance(reason, EndReason):
            return reason
    return latest.latest.ended_by if latest.latest is not None else None


async def watch(
    session: Awaitable[_T],
    latest: LatestDecision,
    *,
    title: str,
    settings: Settings,
    footer: str = "",
    speed: float | str | None = None,
    on_quit: Callable[[], None] | None = None,
    pressure_at: Callable[[], float | None] | None = None,
    console: Console | None = None,
) -> _T:
    """Await ``session`` while redrawing the live view from the newest decision.

    ``on_quit`` is called when the person presses ``q`` (it should ask the session to stop);
    ``pressure_at`` gives the session-clock time of the massager's latest status report, for its
    age. Whatever ends the session, the last frame drawn is its true end state. Returns the
    session's result or raises its exception.
    """
    from rich.console import Console  # noqa: PLC0415
    from rich.live import Live  # noqa: PLC0415

    from controller.settings import effective_limits  # noqa: PLC0415

    limits = effective_limits(settings)
    console = console or Console()
    quitting = False

    def key(char: str) -> None:
        nonlocal quitting
        if char in QUIT_KEYS and not quitting and on_quit is not None:
            quitting = True
            on_quit()

    pace = speed_label(speed)
    full_title = f"{title} — {pace}" if pace else title

    def frame(*, final: bool = False) -> LiveFigures | None:
        decision = latest.latest
        if decision is None:
            return None
        status_at = pressure_at() if pressure_at is not None else None
        lines = [*latest.notices, footer]
        if quitting and not final:
            lines.append("stopping…")
        return figures(
            full_title,
            decision,
            limits,
            "\n".join(line for line in lines if line),
            subtitle=KEYS_HINT if on_quit is not None and keys_work else "Ctrl-C: stop",
            pressure_age_s=None if status_at is None else max(0.0, latest.now - status_at),
        )

    drawing = True

    def draw(renderable: RenderableType) -> None:
        nonlocal drawing
        if not drawing:
            return
        try:
            view.update(renderable, refresh=True)
        except OSError:
            from controller.shutdown import received  # noqa: PLC0415

            if received() is None:
                raise
            # The terminal closed (SIGHUP: every write now fails with EIO). The session is
            # already stopping for the signal; cancelling it here for a view nobody sees left it
            # open in the journal. It ends its own way, undrawn.
            drawing = False

    with (
        Live(console=console, auto_refresh=False, transient=False) as view,
        _logs_through(console),
        _keys(key) as keys_work,
    ):
        task = asyncio.ensure_future(session)
        next_frame = 0.0
        try:
            while not task.done():
                await asyncio.wait({task}, timeout=POLL_S)
                # Real time on purpose: under virtual time the session's clock races ahead.
                now = time.monotonic()
                if now >= next_frame and not task.done():
                    current = frame()
                    if current is not None:
                        next_frame = now + 1.0 / REFRESH_PER_S
                        draw(render(current))
        finally:
            # Also when this view itself is cancelled: the session must not outlive it.
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
            last = frame(final=True)
            if last is not None:
                error = None if task.cancelled() else task.exception()
                final = final_figures(last, ended_by=_how_it_ended(task, latest), error=error)
                draw(render(final))
    result = task.result()
    decision = latest.latest
    ended_by = _how_it_ended(task, latest)
    if decision is not None and ended_by is not None:
        # One line that stays readable in the scrollback (and in a log, without a terminal).
        skin = "—" if decision.skin_c is None else f"{decision.skin_c:.2f} °C"
        console.print(
            f"session ended by [bold]{ended_by}[/] after "
            f"{decision.elapsed_s / 60:.1f} min; last skin reading {skin}; "
            f"{len(decision.active_alarms)} active alarm(s)."
        )
    return result
