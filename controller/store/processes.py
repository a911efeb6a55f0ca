"""Whether the process that wrote a journal row is still alive (sessions record their pid)."""

from __future__ import annotations

import os

__all__ = ["pid_alive"]


def pid_alive(pid: int) -> bool:
    """True if a process ``pid`` exists (ours or another user's); signal 0 only asks."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, but not ours to signal
        return True
    return True
