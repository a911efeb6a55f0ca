"""A ``soleguard`` process whose command has returned and whose exit functions still run.

    python tests/cli/ending_process.py

Runs `controller.entry.main` as the console script does, with a command that ends at once and
leaves an exit function (as a temporary folder's clean-up is) that prints ``ending`` and waits
for a line on stdin: the test signals the process in that window, then lets it go on.
"""

from __future__ import annotations

import atexit
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import controller.cli
from controller.entry import main


def hold() -> None:
    print("ending", flush=True)
    sys.stdin.readline()


def command() -> None:
    atexit.register(hold)
    sys.exit(0)


if __name__ == "__main__":
    controller.cli.main = command
    main()
