"""Mutation testing of the safety supervisor: does tests/safety notice a wrong operator?

    .venv/bin/python tools/mutate.py [--files controller/safety/windows.py,...] [--sample N]
                                     [--seed S] [--only FILE:INDEX,...] [--timeout S]
                                     [--report docs/mutation.json]

An equivalent of mutmut small enough to read (mutmut 3 wants its own project layout). For every
mutation site in the target files it forks a child of this process, which imports the mutated
module from memory (an import hook in front of the others; the worktree is never modified and
nothing is copied) and runs ``pytest -x`` over tests/safety. pytest, hypothesis and their plugins
are imported once, before the first fork, so a mutant costs only the tests it needs. A mutant is
*killed* when the tests fail (or time out), and *survives* when they pass. Mutations, one site at
a time:

- arithmetic: ``+`` <-> ``-``, ``*`` <-> ``/``;
- comparisons: ``<`` <-> ``<=``, ``>`` <-> ``>=``, ``==`` <-> ``!=``, ``<`` <-> ``>``;
- boolean: ``and`` <-> ``or``, ``not x`` -> ``x``;
- ``min`` <-> ``max``.

Nothing is weakened to go faster: every test file of tests/safety runs for a surviving mutant.
The files run fast-first (`FAST_FIRST`: the example-based rule tests, which kill most mutants in
well under a second; the property and closed-loop thermal tests last), and ``-x`` stops at the
first failure. Each child gets a fresh Hypothesis database, so no mutant is killed by examples
saved while testing another. The per-mutant timeout is a multiple of the unmutated run's time
(a mutant that hangs, an endless loop, is killed).

Every test clock starts minutes to days after boot (tests/safety/rig.py), so ``now - t`` and
``now + t`` differ. Prints each survivor (file, line, mutation) and the score; ``--report`` writes
them as JSON. Survivors must be listed in docs/safety.md with why each is equivalent, or killed.
"""

from __future__ import annotations

import argparse
import ast
import copy
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import random
import re
import signal
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import types
    from collections.abc import Sequence

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FILES = sorted(
    str(path.relative_to(ROOT)) for path in (ROOT / "controller" / "safety").glob("*.py")
)

_BINOPS: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
}
_CMPOPS: dict[type[ast.cmpop], tuple[type[ast.cmpop], ...]] = {
    ast.Lt: (ast.LtE, ast.Gt),
    ast.LtE: (ast.Lt,),
    ast.Gt: (ast.GtE, ast.Lt),
    ast.GtE: (ast.Gt,),
    ast.Eq: (ast.NotEq,),
    ast.NotEq: (ast.Eq,),
}
_SWAP_CALLS = {"min": "max", "max": "min"}


@dataclass(frozen=True)
class Mutant:
    file: str
    index: int  # n-th mutation site of the file, in ast.walk order
    line: int
    description: str


def _sites(tree: ast.AST) -> list[tuple[ast.AST, str, object]]:
    """Every (node, description, replacement) one mutation can make."""
    sites: list[tuple[ast.AST, str, object]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            new = _BINOPS[type(node.op)]
            sites.append((node, f"{type(node.op).__name__} -> {new.__name__}", new))
        elif isinstance(node, ast.Compare):
            for position, op in enumerate(node.ops):
                for new_cmp in _CMPOPS.get(type(op), ()):
                    sites.append(
                        (
                            node,
                            f"{type(op).__name__} -> {new_cmp.__name__}",
                            (position, new_cmp),
                        )
                    )
        elif isinstance(node, ast.BoolOp):
            new_bool = ast.Or if isinstance(node.op, ast.And) else ast.And
            sites.append((node, f"{type(node.op).__name__} -> {new_bool.__name__}", new_bool))
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            sites.append((node, "not x -> x", None))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in _SWAP_CALLS
        ):
            sites.append((node, f"{node.func.id} -> {_SWAP_CALLS[node.func.id]}", None))
    return sites


class _Apply(ast.NodeTransformer):
    def __init__(self, target: ast.AST, replacement: object) -> None:
        self.target = target
        self.replacement = replacement

    def visit(self, node: ast.AST) -> ast.AST:
        node = super().visit(node)
        if node is not self.target:
            return node
        r = self.replacement
        if isinstance(node, ast.BinOp) and isinstance(r, type):
            node.op = r()
        elif isinstance(node, ast.Compare) and isinstance(r, tuple):
            position, new_cmp = r
            node.ops[position] = new_cmp()
        elif isinstance(node, ast.BoolOp) and isinstance(r, type):
            node.op = r()
        elif isinstance(node, ast.UnaryOp):
            return node.operand
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            node.func.id = _SWAP_CALLS[node.func.id]
        return node


def mutants(files: list[str]) -> list[Mutant]:
    found = []
    for file in files:
        tree = ast.parse((ROOT / file).read_text(encoding="utf-8"))
        for index, (node, description, _r) in enumerate(_sites(tree)):
            found.append(Mutant(file, index, getattr(node, "lineno", 0), description))
    return found


def mutated_source(mutant: Mutant) -> str:
    tree = ast.parse((ROOT / mutant.file).read_text(encoding="utf-8"))
    node, _description, replacement = _sites(tree)[mutant.index]
    mutated = _Apply(node, copy.copy(replacement)).visit(tree)
    return ast.unparse(ast.fix_missing_locations(mutated))


# Test files in the order they run: cheap example-based tests that kill most mutants first, the
# Hypothesis state machine and the closed-loop thermal model (about 20 s together) last. Files
# not named here run between the two groups, so a new test file is never left out.
FAST_FIRST = (
    "test_follow.py",
    "test_outcome.py",
    "test_rules.py",
    "test_boundaries.py",
)
SLOW_LAST = ("test_properties.py", "test_thermal.py")
# The per-mutant timeout: this many times the unmutated run, and never under the floor (the
# machine is shared, so one slow run must not be mistaken for a hang).
TIMEOUT_FACTOR = 4.0
TIMEOUT_FLOOR_S = 60.0
# Imported by the parent before forking (the tests' libraries and the project's modules that do
# not import controller.safety): each child saves their import time.
PRELOAD = (
    "pytest",
    "hypothesis",
    "hypothesis.stateful",
    "controller.settings",
    "firmware_sim.physics",
    "_pytest.assertion.rewrite",
    "_pytest.doctest",
    "_pytest.python",
    "pytest_asyncio.plugin",
    "platformdirs",
    "asyncio",
)
# The child's exit code when the tests never imported the mutated module (a broken hook).
HOOK_UNUSED = 97


def test_files() -> list[str]:
    """tests/safety's test files, fast-first (relative to the project root)."""
    found = sorted(path.name for path in (ROOT / "tests" / "safety").glob("test_*.py"))
    middle = [name for name in found if name not in FAST_FIRST and name not in SLOW_LAST]
    ordered = [n for n in FAST_FIRST if n in found] + middle + [n for n in SLOW_LAST if n in found]
    return [f"tests/safety/{name}" for name in ordered]


def _module_name(file: str) -> str:
    return file.removesuffix(".py").replace("/", ".")


class _MutantFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports one module from the mutated source instead of its file."""

    def __init__(self, module: str, path: Path, source: str) -> None:
        self.module = module
        self.path = path
        self.source = source

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != self.module:
            return None
        return importlib.util.spec_from_loader(fullname, self, origin=str(self.path))

    def exec_module(self, module: types.ModuleType) -> None:
        module.__file__ = str(self.path)
        # The source is this tool's own rewrite of a project file, never outside input.
        exec(compile(self.source, str(self.path), "exec"), module.__dict__)  # noqa: S102


def _child(mutant: Mutant | None, files: list[str], scratch: Path) -> int:
    """In the forked child: install the mutant, run the tests, return pytest's exit code."""
    import hypothesis.configuration  # noqa: PLC0415 (imported by the parent already)
    import pytest  # noqa: PLC0415

    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    finder = None
    if mutant is not None:
        finder = _MutantFinder(
            _module_name(mutant.file), ROOT / mutant.file, mutated_source(mutant)
        )
        sys.meta_path.insert(0, finder)
    hypothesis.configuration.set_hypothesis_home_dir(scratch)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    args = [*files, "-x", "-q", "-p", "no:randomly", "-p", "no:cacheprovider"]
    code = int(pytest.main(args))
    if finder is not None:
        module = sys.modules.get(finder.module)
        if module is None or module.__spec__ is None or module.__spec__.loader is not finder:
            return HOOK_UNUSED  # the tests ran the unmutated module: the result means nothing
    return code


def run_tests(mutant: Mutant | None, timeout_s: float) -> bool:
    """True if tests/safety pass with ``mutant`` in place (None: unmutated)."""
    files = test_files()
    with tempfile.TemporaryDirectory(prefix="soleguard-mutate-") as scratch:
        pid = os.fork()
        if pid == 0:  # the child never returns into the parent's code
            code = 3
            try:
                code = _child(mutant, files, Path(scratch))
            finally:
                os._exit(code)
        deadline = time.monotonic() + timeout_s
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                code = os.waitstatus_to_exitcode(status)
                if code == HOOK_UNUSED:
                    raise RuntimeError(f"{mutant}: the tests did not import the mutated module")
                return code == 0
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                # A hang counts as killed, but says so: on a loaded machine a slow survivor can
                # time out too, so these are re-checked before they are believed.
                print(f"timed out after {timeout_s:.0f} s: counted as killed", flush=True)
                return False
            time.sleep(0.05)


# A result line of a run's output: "[3/315] controller/safety/x.py:12 (#4) Lt -> LtE: killed".
_RESULT = re.compile(
    r"^\[\d+/\d+\] (?P<file>\S+):\d+ \(#(?P<index>\d+)\) (?P<desc>.+): (?P<mark>killed|SURVIVED)"
)


def resumed(logs: list[Path]) -> dict[tuple[str, int, str], bool]:
    """Results printed by earlier runs of the same code: (file, index, mutation) -> killed.

    For a run cut short (the machine is shared) or split over several processes: its mutants are
    not tested again, and the report counts them with the others.
    """
    done: dict[tuple[str, int, str], bool] = {}
    for log in logs:
        for line in log.read_text(encoding="utf-8").splitlines():
            match = _RESULT.match(line)
            if match is not None:
                key = (match["file"], int(match["index"]), match["desc"])
                done[key] = match["mark"] == "killed"
    return done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", default=",".join(DEFAULT_FILES))
    parser.add_argument("--sample", type=int, default=0, help="test N random mutants only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--only", default="", help="test these mutants only: FILE:INDEX,... (as in the report)"
    )
    parser.add_argument(
        "--timeout", type=float, default=0.0, help="per-mutant seconds (default: from a clean run)"
    )
    parser.add_argument("--report", type=Path, default=None)
    parser.add_argument(
        "--resume",
        type=Path,
        action="append",
        default=[],
        help="the output of an earlier run of the same code: its results count, untested again",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="test nothing: report the --resume results alone (the sites without one: untested)",
    )
    args = parser.parse_args()
    files = [f for f in args.files.split(",") if f]
    every = mutants(files)
    chosen = every
    if args.only:
        wanted = {tuple(item.rsplit(":", 1)) for item in args.only.split(",") if item}
        chosen = [m for m in every if (m.file, str(m.index)) in wanted]
    elif args.sample and args.sample < len(every):
        chosen = sorted(
            random.Random(args.seed).sample(every, args.sample), key=lambda m: (m.file, m.index)
        )
    done = resumed(args.resume)
    earlier = {
        m: done[(m.file, m.index, m.description)]
        for m in chosen
        if (m.file, m.index, m.description) in done
    }
    if args.report_only:
        chosen = [m for m in chosen if m in earlier]
    to_test = [m for m in chosen if m not in earlier]
    print(
        f"{len(every)} mutation sites in {len(files)} file(s); {len(chosen)} chosen, "
        f"{len(earlier)} from earlier runs, testing {len(to_test)}"
    )
    # Imported once here, so that every forked child starts with them loaded; none of them may
    # import a target module (the child must import the mutant instead).
    sys.path.insert(0, str(ROOT))
    for name in PRELOAD:
        importlib.import_module(name)
    loaded = sorted({_module_name(f) for f in files} & set(sys.modules))
    if loaded:
        print(f"preloading imported {', '.join(loaded)}: remove it from PRELOAD")
        return 2

    started = time.perf_counter()
    survivors: list[Mutant] = [m for m in chosen if m in earlier and not earlier[m]]
    if not to_test:
        return _finish(args.report, every, chosen, survivors, started, len(earlier))
    if not run_tests(None, args.timeout or 600.0):
        print("tests/safety fail without any mutation: fix them first")
        return 2
    clean_s = time.perf_counter() - started
    timeout_s = args.timeout or max(TIMEOUT_FLOOR_S, TIMEOUT_FACTOR * clean_s)
    print(f"unmutated run: {clean_s:.1f} s; per-mutant timeout {timeout_s:.0f} s", flush=True)
    for number, mutant in enumerate(to_test, 1):
        began = time.perf_counter()
        killed = not run_tests(mutant, timeout_s)
        mark = "killed" if killed else "SURVIVED"
        print(
            f"[{number}/{len(to_test)}] {mutant.file}:{mutant.line} (#{mutant.index}) "
            f"{mutant.description}: {mark} ({time.perf_counter() - began:.1f} s)",
            flush=True,
        )
        if not killed:
            survivors.append(mutant)
    return _finish(args.report, every, chosen, survivors, started, len(earlier))


def _finish(
    report: Path | None,
    every: list[Mutant],
    chosen: list[Mutant],
    survivors: list[Mutant],
    started: float,
    from_earlier: int,
) -> int:
    """Print the score and the survivors, write the report; 0 if none survived."""
    survivors = sorted(survivors, key=lambda m: (m.file, m.index))
    killed_count = len(chosen) - len(survivors)
    score = 100.0 * killed_count / len(chosen) if chosen else 100.0
    elapsed = time.perf_counter() - started
    print(f"score: {killed_count}/{len(chosen)} killed ({score:.1f} %) in {elapsed:.0f} s")
    for mutant in survivors:
        print(f"survivor: {mutant.file}:{mutant.line} (#{mutant.index}) {mutant.description}")
    if report is not None:
        report.write_text(
            json.dumps(
                {
                    "sites": len(every),
                    "tested": len(chosen),
                    "untested": len(every) - len(chosen),
                    "killed": killed_count,
                    "score_percent": round(score, 1),
                    "from_earlier_runs": from_earlier,  # results read with --resume
                    "seconds": round(elapsed),  # of this run only
                    "survivors": [asdict(m) for m in survivors],
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
        )
    return 0 if not survivors else 1


if __name__ == "__main__":
    sys.exit(main())
