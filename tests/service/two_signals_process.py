"""A process whose orderly stop finishes quickly, with a second signal in the middle of it.

    python tests/service/two_signals_process.py

As ``soleguard demo`` after a second signal 0.03-0.2 s after the first (issue 11): the command
returns and the entry point ends the process (`controller.entry._finish`) while the watchdog,
woken by the second signal, is only starting its forced exit. Prints ``ready`` once a signal
finds its handler; the handler sends the second signal itself, so it always comes during the
orderly stop. A child that ignores SIGTERM stands for the embedded broker: the watchdog gives it
`CHILD_TERM_S` before SIGKILL, while the orderly stop ends it at once, as the demo's does.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from controller import entry, shutdown


async def main() -> None:
    guard = shutdown.current()
    assert guard is not None
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()

    def on_signal(_signum: int) -> None:
        os.kill(os.getpid(), signal.SIGTERM)  # the second signal, during the orderly stop
        stopped.set()

    with guard.on_signal(loop, on_signal):
        print("ready", flush=True)
        await stopped.wait()


if __name__ == "__main__":
    guard = shutdown.install()
    child = subprocess.Popen(["sh", "-c", "trap '' TERM; exec sleep 60"], start_new_session=True)
    shutdown.track_child(child.pid, own_group=True)
    asyncio.run(main())
    child.kill()  # the orderly stop of the "broker"
    child.wait()
    shutdown.untrack_child(child.pid)
    assert guard.signum is not None
    entry._finish(shutdown.exit_code_for(guard.signum))
