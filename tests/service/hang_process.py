"""A process whose orderly way out hangs, as a lost cancellation makes it hang.

    python tests/service/hang_process.py TMPDIR [after-session]

Installs ``controller.shutdown`` as ``soleguard`` does, starts a child in its own process group
(as the embedded broker is) and a temporary folder, registers an emergency STOP that prints
``STOP``, then runs a task that swallows every cancel (what 3.11's ``wait_for`` inside bumble can
do to one cancel; this one does it to all). Prints ``ready`` with the child's pid when set up.

With ``after-session`` the session has already ended (its emergency STOP is no longer
registered, as in the demo's final alert drain) and the child is frozen (``SIGSTOP``), as the
breaker froze the embedded broker: the way out hangs after the session, not during it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from controller import shutdown


async def stubborn() -> None:
    while True:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(3600)


async def main(tmp: Path, *, after_session: bool) -> None:
    guard = shutdown.current()
    assert guard is not None
    folder = Path(tempfile.mkdtemp(prefix="soleguard-broker-", dir=tmp))
    shutdown.track_path(folder)
    child = subprocess.Popen(  # noqa: ASYNC220 (set up once, before anything runs)
        [sys.executable, "-c", "import time; time.sleep(3600)"], start_new_session=True
    )
    shutdown.track_child(child.pid, own_group=True)

    async def stop() -> bool:
        print("STOP", flush=True)
        return True

    async def body() -> None:
        # Ready once a signal finds its handler (inside `interruptible`, as every command is)
        # and the stubborn task is inside its loop, swallowing cancels.
        task = asyncio.ensure_future(stubborn())
        await asyncio.sleep(0)
        print(f"ready {child.pid}", flush=True)
        await task

    loop = asyncio.get_running_loop()
    if after_session:
        with guard.on_emergency(loop, stop):
            print("session ended: STOP was sent", flush=True)
        os.kill(child.pid, signal.SIGSTOP)
        await shutdown.interruptible(body())
        return
    with guard.on_emergency(loop, stop):
        await shutdown.interruptible(body())


if __name__ == "__main__":
    shutdown.install()
    asyncio.run(main(Path(sys.argv[1]), after_session=sys.argv[2:] == ["after-session"]))
