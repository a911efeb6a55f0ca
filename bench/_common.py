"""What the bench scripts share: percentiles and a description of the machine a figure came from.

Figures from a shared, noisy two-core machine mean little without the machine and its load
next to them, so every report that writes a document prints this header.
"""

from __future__ import annotations

import datetime
import math
import os
import platform
import statistics
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

ROOT = Path(__file__).resolve().parents[1]


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (``fraction`` in 0..1); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(len(ordered), rank) - 1]


def spread(values: Sequence[float]) -> dict[str, float]:
    """Median, p99, min and max of a sample."""
    if not values:
        return {"n": 0, "median": math.nan, "p99": math.nan, "min": math.nan, "max": math.nan}
    return {
        "n": len(values),
        "median": statistics.median(values),
        "p99": percentile(values, 0.99),
        "min": min(values),
        "max": max(values),
    }


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def load_average() -> str:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def machine() -> dict[str, str]:
    """nproc, CPU model, Python, OS and the load average right now."""
    return {
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": str(os.cpu_count()),
        "cpu": cpu_model(),
        "python": sys.version.split()[0],
        "os": f"{platform.system()} {platform.release()}",
        "load (1/5/15 min)": load_average(),
    }


def machine_line() -> str:
    info = machine()
    return (
        f"{info['date']}, {info['nproc']} CPUs ({info['cpu']}), Python {info['python']}, "
        f"{info['os']}, load {info['load (1/5/15 min)']}"
    )
