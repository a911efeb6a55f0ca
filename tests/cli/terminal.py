"""Running ``soleguard`` in a pseudo-terminal, as a person at a keyboard does (pexpect).

The screen is what the person reads: ``screen_text`` strips the terminal's colour and cursor
codes, and ``last_frame`` keeps the last drawing of the live panel (it redraws in place).
"""

from __future__ import annotations

import os
import re
import sys
from typing import TYPE_CHECKING

import pexpect

if TYPE_CHECKING:
    from pathlib import Path

# Real time on a shared 2-core machine: generous bounds, never waited out on success.
EXPECT_TIMEOUT_S = 60.0

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")
# Between two words on screen: spaces and any colour or cursor codes.
_GAP = r"(?:\s|\x1b\[[0-9;?]*[A-Za-z])+"


def drawn(*words: str) -> str:
    """A pexpect pattern for ``words`` (regular expressions) drawn in a row, whatever colours
    and spacing the terminal puts between them."""
    return _GAP.join(words)


def isolated_env(home: Path, config: Path | None = None) -> dict[str, str]:
    """An environment whose settings, journal and bonds all live under ``home``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("SOLEGUARD_") or key == "SOLEGUARD_REQUIRE_MOSQUITTO"
    }
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_DATA_HOME=str(home / "data"),
        XDG_STATE_HOME=str(home / "state"),
        TERM="xterm-256color",
        COLUMNS="120",
        LINES="40",
        PYTHONUNBUFFERED="1",
    )
    if config is not None:
        env["SOLEGUARD_CONFIG"] = str(config)
    return env


# Every command spawned by the running test, so the test's teardown can end any left behind.
SPAWNED: list[pexpect.spawn[str]] = []


def end_all() -> None:
    """Kill what a failed test left running (by the child's own pid, nothing else)."""
    while SPAWNED:
        child = SPAWNED.pop()
        if child.isalive():
            child.terminate(force=True)


def spawn(*args: str, env: dict[str, str], log: Path) -> pexpect.spawn[str]:
    """``soleguard ARGS`` in a 120x40 pseudo-terminal; everything it draws goes to ``log``."""
    child = pexpect.spawn(
        sys.executable,
        ["-m", "controller", *args],
        env=env,
        dimensions=(40, 120),
        encoding="utf-8",
        timeout=EXPECT_TIMEOUT_S,
    )
    child.logfile_read = log.open("a", encoding="utf-8")
    SPAWNED.append(child)
    return child


def screen_text(log: Path) -> str:
    """Everything drawn so far, without colour and cursor codes."""
    return _ANSI.sub("", log.read_text(encoding="utf-8"))


def last_frame(log: Path) -> str:
    """The last complete drawing of the live panel (from its top border to its bottom one).

    The panel's own top corner starts a line (or follows the previous drawing's bottom corner,
    the cursor having moved back up); nested panels' corners follow "│ ".
    """
    text = screen_text(log)
    tops = [m.start() for m in re.finditer(r"(?:^|(?<=\n)|(?<=╯))╭", text)]
    assert tops, "no live panel was drawn"
    lines: list[str] = []
    for line in text[tops[-1] :].splitlines():
        lines.append(line)
        if line.startswith("╰"):
            # Only the frame itself: the next drawing may start on the same line.
            lines[-1] = line[: line.index("╯") + 1]
            return "\n".join(lines)
    raise AssertionError("the last live panel was not finished")


def finish(child: pexpect.spawn[str]) -> int:
    """Wait for the command to end; its exit status (128 + N for signal N).

    A command that does not end within the bound is killed (never left behind) and fails.
    """
    try:
        child.expect(pexpect.EOF)
    except pexpect.TIMEOUT:
        child.terminate(force=True)
        raise
    child.close()
    if child.signalstatus is not None:
        return 128 + int(child.signalstatus)
    assert child.exitstatus is not None
    return int(child.exitstatus)
