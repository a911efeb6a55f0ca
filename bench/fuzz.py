"""The fuzz targets of tests/fuzz at campaign scale: counts, time and findings per target.

    .venv/bin/python bench/fuzz.py [--examples 100000] [--targets decode_command,parse_command]

Same targets and checks as ``tests/fuzz`` (which CI runs with ``SOLEGUARD_FUZZ_EXAMPLES``,
default 1000): zero exceptions other than the typed errors, and nothing accepted that loosens a
limit. Exits 1 on any finding. ``bench/campaign.py --fuzz N`` runs these too and puts the table
in docs/safety-campaign.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.fuzz.fuzz_targets import run, targets

if TYPE_CHECKING:
    from collections.abc import Sequence

ROOT = Path(__file__).resolve().parents[1]

DEFAULT_EXAMPLES = 100_000


def run_one(name: str, examples: int) -> dict[str, Any]:
    """One target by name (targets are rebuilt in each process: strategies do not pickle)."""
    (target,) = [t for t in targets() if t.name == name]
    started = time.perf_counter()
    failures: list[str] = []
    try:
        run(target, examples)
    # Why broad: any exception out of a target is the finding this script reports.
    except Exception as exc:
        failures.append(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
    wall = time.perf_counter() - started
    row = {"target": name, "calls": target.calls, "wall_s": wall, "failures": failures}
    print(
        f"{name:<32} {target.calls:>8} inputs  {wall:7.1f} s  "
        f"{'FAILED ' + failures[0] if failures else 'ok'}",
        flush=True,
    )
    return row


def run_all(
    examples: int, names: Sequence[str] | None = None, workers: int = 1
) -> list[dict[str, Any]]:
    chosen = [t.name for t in targets() if not names or t.name in names]
    if workers <= 1:
        return [run_one(name, examples) for name in chosen]
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(run_one, chosen, [examples] * len(chosen)))


def markdown(report: list[dict[str, Any]], examples: int) -> list[str]:
    lines = [
        f"`python bench/fuzz.py --examples {examples}` (hypothesis; targets in "
        "`tests/fuzz/fuzz_targets.py`): inputs run per target, and findings (an exception other "
        "than the typed errors, or an accepted input that loosens a limit).",
        "",
        "| target | inputs | wall s | findings |",
        "| --- | --- | --- | --- |",
    ]
    for row in report:
        findings = "; ".join(row["failures"]).replace("|", "/") or "none"
        lines.append(f"| {row['target']} | {row['calls']:,} | {row['wall_s']:.0f} | {findings} |")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=DEFAULT_EXAMPLES)
    parser.add_argument("--targets", default=None, help="comma-separated target names")
    parser.add_argument("--workers", type=int, default=1, help="processes (targets in parallel)")
    args = parser.parse_args()
    names = args.targets.split(",") if args.targets else None
    started = time.perf_counter()
    report = run_all(args.examples, names, args.workers)
    print(f"total {time.perf_counter() - started:.0f} s wall")
    print("\n".join(markdown(report, args.examples)))
    return 1 if any(row["failures"] for row in report) else 0


if __name__ == "__main__":
    sys.exit(main())
