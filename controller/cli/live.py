"""The live session view: what a person watching a session needs at a glance."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import RenderableType

_BAR_WIDTH = 30


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
