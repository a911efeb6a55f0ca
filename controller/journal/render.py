"""Draw reports with matplotlib (Agg, no GUI): PNG, SVG, or HTML with the image and a table.

matplotlib is imported inside the functions: it costs a few hundred milliseconds and only the
``report`` command needs it. Figures are built with :class:`matplotlib.figure.Figure` directly,
never through pyplot, so no global figure state or interactive backend is involved.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import html
import io
import math
import uuid
from typing import TYPE_CHECKING, Final

from controller.journal.errors import JournalError, OutputError
from controller.journal.report_data import SessionReportData, TrendReportData
from controller.safety import Finding, Priority

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["FORMATS", "write_report"]

FORMATS: Final = (".png", ".svg", ".html")
# 110 dpi at the figure sizes below: about 1300 px wide, sharp on a laptop, small as a file.
_DPI: Final = 110
_PRIORITY_COLOURS: Final[dict[str, str]] = {
    Priority.HIGH: "#c0392b",
    Priority.MEDIUM: "#e67e22",
    Priority.LOW: "#2980b9",
}
_FINDING_ORDER: Final = (
    Finding.NONE,
    Finding.REDNESS,
    Finding.SWELLING,
    Finding.BLISTER,
    Finding.CUT,
    Finding.OPEN_WOUND,
    Finding.ULCER,
)


def write_report(data: SessionReportData | TrendReportData, out: Path) -> None:
    """Draw ``data`` into ``out``; the suffix (.png, .svg, .html or .htm) picks the format.

    Raises JournalError naming ``out`` for another suffix, OutputError when it cannot be written.
    """
    suffix = out.suffix.lower()
    if suffix == ".htm":
        suffix = ".html"
    if suffix not in FORMATS:
        raise JournalError(
            f"--out {out}: unknown format {out.suffix or '(none)'!r} (use {', '.join(FORMATS)})"
        )
    figure = _session_figure(data) if isinstance(data, SessionReportData) else _trend_figure(data)
    if suffix == ".html":
        png = _save(figure, "png")
        table = _session_table(data) if isinstance(data, SessionReportData) else _trend_table(data)
        payload = _html(data.title, png, table).encode()
    else:
        payload = _save(figure, suffix.lstrip("."))
    write_atomically(out, payload)


def write_atomically(out: Path, payload: bytes) -> None:
    """Write a file whole or not at all; an unwritable place is an :class:`OutputError`.

    The temporary file is created with ``open(..., "xb")`` rather than ``mkstemp`` so the result
    gets the user's usual permissions (umask), not mkstemp's owner-only 0600.
    """
    temp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with temp.open("xb") as file:
            file.write(payload)
        temp.replace(out)
    except OSError as exc:
        with contextlib.suppress(OSError):  # nothing to clean up if the folder is unusable
            temp.unlink(missing_ok=True)
        raise OutputError(f"{out}: cannot write: {exc.strerror or exc}") from exc


def _save(figure: Figure, fmt: str) -> bytes:
    buffer = io.BytesIO()
    # A fixed date in the SVG metadata keeps reports of the same data byte-identical.
    metadata = {"Date": None} if fmt == "svg" else {}
    figure.savefig(buffer, format=fmt, dpi=_DPI, metadata=metadata)
    return buffer.getvalue()


def _nan(values: Sequence[float | None]) -> list[float]:
    return [math.nan if v is None else v for v in values]


def _new_figure(rows: int, height_ratios: Sequence[float]) -> tuple[Figure, list[Axes]]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: PLC0415
    from matplotlib.figure import Figure  # noqa: PLC0415

    figure = Figure(figsize=(12, 2.6 * rows), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, 1, sharex=True, height_ratios=list(height_ratios), squeeze=False)
    return figure, [row[0] for row in axes]


def _session_figure(data: SessionReportData) -> Figure:
    figure, (temp_ax, heater_ax, pressure_ax) = _new_figure(3, (3.0, 0.8, 2.2))
    figure.suptitle(data.title, fontsize=13)
    minutes = [t / 60.0 for t in data.t_s]

    temp_ax.plot(minutes, _nan(data.skin_c), color="#8e44ad", label="skin temperature")
    if any(v is not None for v in data.pad_c):
        temp_ax.plot(
            minutes, _nan(data.pad_c), color="#7f8c8d", linestyle=":", label="pad temperature"
        )
    temp_ax.axhline(
        data.cutoff_c,
        color="#e67e22",
        linestyle="--",
        label=f"heater cut-off {data.cutoff_c:.1f} °C",
    )
    temp_ax.axhline(
        data.latch_c,
        color="#c0392b",
        linestyle="-",
        label=f"over-temperature latch {data.latch_c:.1f} °C",
    )
    temp_ax.set_ylim(top=data.latch_c + 1.5)
    temp_ax.set_ylabel("temperature (°C)")
    temp_ax.set_title("Skin temperature against the cut-off and latch", loc="left", fontsize=10)

    heater = [1.0 if on else 0.0 for on in data.heater_on]
    heater_ax.fill_between(
        minutes, heater, step="post", color="#e74c3c", alpha=0.5, label="heater on"
    )
    heater_ax.set_ylim(-0.1, 1.1)
    heater_ax.set_yticks([0, 1], ["off", "on"])
    heater_ax.set_ylabel("heater")

    pressure_ax.plot(minutes, data.pressure_mmhg, color="#16a085", label="pressure")
    pressure_ax.step(
        minutes,
        data.pressure_cap_mmhg,
        where="post",
        color="#c0392b",
        linestyle="--",
        label="pressure cap",
    )
    pressure_ax.set_ylabel("pressure (mmHg)")
    pressure_ax.set_xlabel("time since start (min)")
    pressure_ax.set_title("Pressure against the cap", loc="left", fontsize=10)

    labelled: set[str] = set()
    for index, alarm in enumerate(data.alarms):
        colour = _PRIORITY_COLOURS.get(alarm.priority, "#34495e")
        label = f"{alarm.priority} alarm" if alarm.priority not in labelled else None
        labelled.add(alarm.priority)
        for ax in (temp_ax, heater_ax, pressure_ax):
            ax.axvline(alarm.t_s / 60.0, color=colour, linewidth=1.0, alpha=0.7)
        temp_ax.plot(
            [alarm.t_s / 60.0], [data.latch_c], marker="v", color=colour, linestyle="", label=label
        )
        temp_ax.annotate(
            alarm.code,
            (alarm.t_s / 60.0, data.latch_c),
            textcoords="offset points",
            # Staggered, so alarms a second apart do not print over each other.
            xytext=(3, 4 + 9 * (index % 3)),
            fontsize=7,
            color=colour,
        )
    for ax in (temp_ax, heater_ax, pressure_ax):
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left", fontsize=8, framealpha=0.8)
    if not data.t_s:
        temp_ax.text(0.5, 0.5, "no readings recorded", transform=temp_ax.transAxes, ha="center")
    return figure


def _trend_figure(data: TrendReportData) -> Figure:
    import matplotlib.dates as mdates  # noqa: PLC0415
    from matplotlib.ticker import MaxNLocator  # noqa: PLC0415

    figure, (pain_ax, sleep_ax, count_ax, finding_ax) = _new_figure(4, (2.2, 1.6, 1.4, 1.8))
    figure.suptitle(data.title, fontsize=13)

    for attr, style, colour, label in (
        ("before", "o-", "#c0392b", "pain before"),
        ("after", "s-", "#27ae60", "pain after"),
    ):
        # Only sessions with this score: a missing score is not a zero, and not a gap either.
        points = [(_x(p.started), getattr(p, attr)) for p in data.pain]
        known = [(x, y) for x, y in points if y is not None]
        pain_ax.plot([x for x, _ in known], [y for _, y in known], style, color=colour, label=label)
    pain_ax.set_ylim(-0.5, 10.5)
    pain_ax.set_ylabel("pain (0-10)")
    pain_ax.set_title("Pain before and after each session", loc="left", fontsize=10)

    sleep_ax.plot(
        [_x(_noon(d)) for d, _ in data.sleep],
        [q for _, q in data.sleep],
        "D-",
        color="#2c3e50",
        label="sleep quality",
    )
    sleep_ax.set_ylim(0.5, 5.5)
    sleep_ax.set_yticks([1, 2, 3, 4, 5])
    sleep_ax.set_ylabel("sleep (1-5)")

    count_ax.bar(
        [_x(_noon(d)) for d, _ in data.sessions_per_day],
        [n for _, n in data.sessions_per_day],
        width=0.7,
        color="#16a085",
        label="sessions per day",
    )
    count_ax.set_ylabel("sessions")
    # Counts start at 0; without sessions matplotlib would centre an empty axis on 0 (±0.045).
    count_ax.set_ylim(0, max((n for _, n in data.sessions_per_day), default=0) + 1)
    count_ax.yaxis.set_major_locator(MaxNLocator(integer=True))

    kinds = [k for k in _FINDING_ORDER if any(k in f for _, f in data.findings_per_day)]
    for row, kind in enumerate(kinds):
        days = [_x(_noon(d)) for d, found in data.findings_per_day if kind in found]
        colour = "#95a5a6" if kind is Finding.NONE else "#c0392b"
        finding_ax.plot(days, [row] * len(days), "o", color=colour, linestyle="")
    finding_ax.set_yticks(range(len(kinds)), [k.replace("_", " ") for k in kinds])
    finding_ax.set_ylim(-0.7, max(len(kinds), 1) - 0.3)
    finding_ax.set_ylabel("inspection")
    finding_ax.set_title("Daily foot inspection findings", loc="left", fontsize=10)

    start = dt.datetime.combine(data.first_day, dt.time.min)
    end = dt.datetime.combine(data.last_day + dt.timedelta(days=1), dt.time.min)
    finding_ax.set_xlim(_x(start), _x(end))
    locator = mdates.AutoDateLocator()  # type: ignore[no-untyped-call]
    finding_ax.xaxis.set_major_locator(locator)
    formatter = mdates.ConciseDateFormatter(locator)  # type: ignore[no-untyped-call]
    finding_ax.xaxis.set_major_formatter(formatter)
    finding_ax.set_xlabel("date")
    for ax in (pain_ax, sleep_ax, count_ax, finding_ax):
        ax.grid(True, alpha=0.3)
    for ax in (pain_ax, sleep_ax, count_ax):
        ax.legend(loc="upper left", fontsize=8, framealpha=0.8)
    return figure


def _x(moment: dt.datetime) -> float:
    """A datetime as matplotlib's date number (days since its epoch), for typed plotting calls."""
    import matplotlib.dates as mdates  # noqa: PLC0415

    return float(mdates.date2num(moment))  # type: ignore[no-untyped-call]


def _noon(day: dt.date) -> dt.datetime:
    # Day values sit in the middle of their day slot on the shared time axis.
    return dt.datetime.combine(day, dt.time(12))


def _fmt(value: float | None, unit: str = "", digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}{unit}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _session_table(data: SessionReportData) -> str:
    s = data.session
    duration = "—" if s.duration_s is None else f"{s.duration_s / 60:.1f} min"
    summary = [
        ("program", s.program),
        ("profile", s.profile or "—"),
        ("duration", duration),
        ("ended by", s.ended_by or "unfinished"),
        ("max skin temperature", _fmt(s.max_skin_c, " °C")),
        ("heater cut-off", _fmt(s.cutoff_c, " °C")),
        ("time above cut-off", _fmt(s.time_above_cutoff_s, " s")),
        ("max pressure", _fmt(s.max_pressure_mmhg, " mmHg")),
        ("pressure cap", _fmt(s.pressure_cap_mmhg, " mmHg")),
        ("heat time", _fmt(s.heat_s, " s", 0)),
        ("pain before / after", f"{_fmt(s.pain_before, '', 0)} / {_fmt(s.pain_after, '', 0)}"),
    ]
    alarms = [(f"{a.t_s / 60:.2f} min", a.priority, a.code, a.message) for a in data.alarms]
    return (
        "<h2>Summary</h2>"
        + _table(("item", "value"), summary)
        + "<h2>Alarms</h2>"
        + (_table(("time", "priority", "code", "message"), alarms) if alarms else "<p>none</p>")
    )


def _trend_table(data: TrendReportData) -> str:
    sleep = dict(data.sleep)
    findings = dict(data.findings_per_day)
    days = [
        (
            day.isoformat(),
            str(count),
            str(sleep.get(day, "—")),
            ", ".join(sorted(findings[day])).replace("_", " ") if day in findings else "—",
        )
        for day, count in data.sessions_per_day
    ]
    pain = [
        (
            p.started.strftime("%Y-%m-%d %H:%M"),
            str(p.session_id),
            _fmt(p.before, "", 0),
            _fmt(p.after, "", 0),
        )
        for p in data.pain
    ]
    return (
        "<h2>Days</h2>"
        + _table(("date", "sessions", "sleep (1-5)", "inspection findings"), days)
        + "<h2>Pain per session</h2>"
        + (_table(("started", "session", "before", "after"), pain) if pain else "<p>none</p>")
    )


def _html(title: str, png: bytes, tables: str) -> str:
    image = base64.b64encode(png).decode("ascii")
    return (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>"
        "body{font-family:sans-serif;max-width:1400px;margin:1em auto;padding:0 1em}"
        "img{max-width:100%}table{border-collapse:collapse;margin-bottom:1em}"
        "td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}"
        "</style></head><body>"
        f"<h1>{html.escape(title)}</h1>"
        f"<img alt='{html.escape(title)}' src='data:image/png;base64,{image}'>"
        f"{tables}</body></html>\n"
    )
