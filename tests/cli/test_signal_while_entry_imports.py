"""A signal while the console script's own module is still importing (issue 11).

`controller.entry` installs its handlers in ``main``; its module-level imports ran before that
under Python's default handler, so a Ctrl-C 0.09 s after start (seen once in a loaded run of the
signal loop, in ``import contextlib``) ended ``soleguard session`` with a KeyboardInterrupt
traceback. Here the signal is sent from an import hook at exactly that moment, in a real process
run as the console script runs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

# Only a guard against a hung test.
GUARD_S = 120.0

# Signals itself at the first import `controller.entry` makes after its handler is in (the
# `__future__` and `signal` modules come before it can be: Python's own window, not ours).
SCRIPT = """
import os, signal, sys

SIGNUM = int(sys.argv.pop(1))
TRIGGER = sys.argv.pop(1)
FIRST = ("__future__", "signal")

class SignalOnImport:
    def find_spec(self, name, path=None, target=None):
        entry = sys.modules.get("controller.entry")
        if TRIGGER == "entry":
            now = entry is not None and not hasattr(entry, "main") and name not in FIRST
        else:
            now = name == TRIGGER
        if now:
            sys.meta_path.remove(self)
            os.kill(os.getpid(), SIGNUM)
        return None

sys.meta_path.insert(0, SignalOnImport())
sys.argv = ["soleguard", *sys.argv[1:]]
from controller.entry import main
main()
"""


# "entry": the console script's module imports; "controller.safety": imported by
# controller.shutdown while `main` imports it (the handler then ran inside that partly
# initialised import and itself imported from it: an ImportError traceback in a loaded run).
@pytest.mark.parametrize("trigger", ["entry", "controller.safety"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_a_signal_while_the_entry_point_imports_ends_in_one_line(
    tmp_path: Path, signum: signal.Signals, trigger: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOLEGUARD_")}
    env.update(
        HOME=str(tmp_path),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        XDG_DATA_HOME=str(tmp_path / "data"),
        PYTHONPATH=str(Path(__file__).resolve().parents[2]),
    )
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(int(signum)), trigger, "demo", "--json"],
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=GUARD_S,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 128 + signum, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"stopped by {'Ctrl-C' if signum == signal.SIGINT else signum.name}"
    ], done.stderr
