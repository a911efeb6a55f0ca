"""The live session view: what a person watching a session needs at a glance."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from rich.console import RenderableType

    from controller.safety import Decision
    from controller.service.app import LatestDecision
    from controller.settings import SafetyLimits, Settings

_BAR_WIDTH = 30
# Redraw rate in real seconds: smooth enough to follow, cheap on a Pi.
REFRESH_PER_S = 4
# How often the view checks whether the session has ended (real seconds).
POLL_S = 0.05

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class LiveFigures:
    """One frame of the view; the service fills it from each supervisor decision."""

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


def _bar(value: float, maximum: float, *, warn_at: float | None = None) -> str:
    filled = 0 if maximum <= 0 else round(_BAR_WIDTH * min(max(value / maximum, 0.0), 1.0))
    colour = "red" if warn_at is not None and value >= warn_at else "green"
    return f"[{colour}]{'█' * filled}[/]{'░' * (_BAR_WIDTH - filled)}"


def render(figures: LiveFigures) -> RenderableType:
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
    if figures.skin_c is None:
        table.add_row("skin", "[yellow]no valid reading[/]", figures.skin_note)
    else:
        scale_low = 30.0
        table.add_row(
            "skin",
            _bar(
                figures.skin_c - scale_low,
                figures.latch_c - scale_low,
                warn_at=figures.cutoff_c - scale_low,
            ),
            f"{figures.skin_c:5.2f} °C  (target {figures.target_c:.1f}, "
            f"cut-off {figures.cutoff_c:.1f}, latch {figures.latch_c:.1f})",
        )
    measured = (
        ""
        if figures.measured_pressure_mmhg is None
        else f", measured {figures.measured_pressure_mmhg:.1f}"
    )
    table.add_row(
        "pressure",
        _bar(figures.pressure_mmhg, figures.cap_mmhg),
        f"{figures.pressure_mmhg:5.1f} mmHg (cap {figures.cap_mmhg:.0f}{measured})",
    )
    heater = "[red]ON[/]" if figures.heater_on else "off"
    if not figures.heater_allowed:
        heater += " (not allowed by profile)"
    table.add_row("heater", heater, "")
    alarms = Table.grid(padding=(0, 1))
    colours = {"high": "bold red", "medium": "yellow", "low": "cyan"}
    for priority, code, text in figures.alarms[-6:]:
        alarms.add_row(f"[{colours.get(priority, 'white')}]{priority.upper():6}[/]", code, text)
    parts: list[RenderableType] = [table]
    if figures.alarms:
        parts.append(Panel(alarms, title="alarms", border_style="red"))
    if figures.footer:
        parts.append(figures.footer)
    return Panel(Group(*parts), title=figures.title)


def figures(title: str, decision: Decision, limits: SafetyLimits, footer: str = "") -> LiveFigures:
    """One frame from a supervisor decision."""
    lines = (f"heater off: {decision.heater_block}" if decision.heater_block else "", footer)
    return LiveFigures(
        title=title,
        state=str(decision.state),
        elapsed_s=decision.elapsed_s,
        total_s=decision.elapsed_s + decision.remaining_s,
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
    )


async def watch(
    session: Awaitable[_T],
    latest: LatestDecision,
    *,
    title: str,
    settings: Settings,
    footer: str = "",
) -> _T:
    """Await ``session`` while redrawing the live view from the newest decision."""
    from rich.console import Console  # noqa: PLC0415
    from rich.live import Live  # noqa: PLC0415

    from controller.settings import effective_limits  # noqa: PLC0415

    limits = effective_limits(settings)
    console = Console()
    with Live(console=console, auto_refresh=False, transient=False) as view:
        task = asyncio.ensure_future(session)
        next_frame = 0.0
        while not task.done():
            await asyncio.wait({task}, timeout=POLL_S)
            # Real time on purpose: under virtual time the session's clock races ahead.
            now = time.monotonic()
            if (now >= next_frame or task.done()) and latest.latest is not None:
                next_frame = now + 1.0 / REFRESH_PER_S
                view.update(render(figures(title, latest.latest, limits, footer)), refresh=True)
        result = task.result()
    decision = latest.latest
    if decision is not None:
        skin = "—" if decision.skin_c is None else f"{decision.skin_c:.2f} °C"
        how = f"ended by [bold]{decision.ended_by}[/]" if decision.ended_by else decision.state
        console.print(
            f"session {how} after {decision.elapsed_s / 60:.1f} min; "
            f"last skin reading {skin}; {len(decision.active_alarms)} active alarm(s)."
        )
    return result
