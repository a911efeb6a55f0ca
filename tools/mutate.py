"""Mutation testing of the safety supervisor: does tests/safety notice a wrong operator?

    .venv/bin/python tools/mutate.py [--files controller/safety/windows.py,...] [--sample N]
                                     [--seed S] [--timeout 120] [--report docs/mutation.json]

An equivalent of mutmut small enough to read (mutmut 3 wants its own project layout): for every
mutation site in the target files it copies the project to a scratch folder, rewrites one operator
there, and runs ``pytest tests/safety -x`` in the copy (the copy comes first on ``sys.path``, so
the worktree is never modified). A mutant is *killed* when the tests fail (or time out), and
*survives* when they pass. Mutations, one site at a time:

- arithmetic: ``+`` <-> ``-``, ``*`` <-> ``/``;
- comparisons: ``<`` <-> ``<=``, ``>`` <-> ``>=``, ``==`` <-> ``!=``, ``<`` <-> ``>``;
- boolean: ``and`` <-> ``or``, ``not x`` -> ``x``;
- ``min`` <-> ``max``.

Every test clock starts minutes to days after boot (tests/safety/rig.py), so ``now - t`` and
``now + t`` differ. Prints each survivor (file, line, mutation) and the score; ``--report`` writes
them as JSON. Survivors must be listed in docs/safety.md with why each is equivalent, or killed.
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FILES = sorted(
    str(path.relative_to(ROOT)) for path in (ROOT / "controller" / "safety").glob("*.py")
)
# A mutant that hangs the tests (an endless loop) is killed; more than this is a hang.
DEFAULT_TIMEOUT_S = 180.0

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


def run_tests(workdir: Path, timeout_s: float) -> bool:
    """True if tests/safety pass in ``workdir``."""
    env = dict(os.environ, PYTHONPATH=str(workdir), PYTHONDONTWRITEBYTECODE="1")
    try:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "tests/safety",
                "-x",
                "-q",
                "-p",
                "no:randomly",
                "-p",
                "no:cacheprovider",
            ],
            cwd=workdir,
            env=env,
            capture_output=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", default=",".join(DEFAULT_FILES))
    parser.add_argument("--sample", type=int, default=0, help="test N random mutants only")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S)
    parser.add_argument("--report", type=Path, default=None)
    args = parser.parse_args()
    files = [f for f in args.files.split(",") if f]
    every = mutants(files)
    chosen = every
    if args.sample and args.sample < len(every):
        chosen = sorted(
            random.Random(args.seed).sample(every, args.sample), key=lambda m: (m.file, m.index)
        )
    print(f"{len(every)} mutation sites in {len(files)} file(s); testing {len(chosen)}")
    survivors: list[Mutant] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="soleguard-mutate-") as scratch:
        work = Path(scratch)
        for name in ("controller", "firmware_sim", "tests", "config", "pyproject.toml"):
            source = ROOT / name
            if source.is_dir():
                shutil.copytree(source, work / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(source, work / name)
        if not run_tests(work, args.timeout):
            print("tests/safety fail without any mutation: fix them first")
            return 2
        for number, mutant in enumerate(chosen, 1):
            target = work / mutant.file
            original = target.read_text(encoding="utf-8")
            target.write_text(mutated_source(mutant), encoding="utf-8")
            try:
                killed = not run_tests(work, args.timeout)
            finally:
                target.write_text(original, encoding="utf-8")
            mark = "killed" if killed else "SURVIVED"
            print(
                f"[{number}/{len(chosen)}] {mutant.file}:{mutant.line} {mutant.description}: "
                f"{mark}",
                flush=True,
            )
            if not killed:
                survivors.append(mutant)
    killed_count = len(chosen) - len(survivors)
    score = 100.0 * killed_count / len(chosen) if chosen else 100.0
    print(
        f"score: {killed_count}/{len(chosen)} killed ({score:.1f} %) in "
        f"{time.perf_counter() - started:.0f} s"
    )
    for mutant in survivors:
        print(f"survivor: {mutant.file}:{mutant.line} {mutant.description}")
    if args.report is not None:
        args.report.write_text(
            json.dumps(
                {
                    "sites": len(every),
                    "tested": len(chosen),
                    "killed": killed_count,
                    "score_percent": round(score, 1),
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
