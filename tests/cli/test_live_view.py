"""``soleguard demo``'s live view in a pseudo-terminal: what a person sees, and their keys.

The demo runs as a user starts it (its embedded broker, a journal under a temporary home), at its
default 20x virtual time; the test reads the screen and presses keys.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.cli.terminal import drawn, finish, isolated_env, last_frame, screen_text, spawn

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow


def _assert_intact(frame: str) -> None:
    """Every line of the panel is inside its border: nothing printed across it."""
    lines = frame.splitlines()
    assert lines[0].startswith("╭")
    assert lines[-1].startswith("╰")
    for line in lines[1:-1]:
        assert line.startswith("│"), line
        assert line.rstrip().endswith("│"), line


def test_q_stops_the_demo_cleanly_and_the_last_frame_tells_the_truth(tmp_path: Path) -> None:
    log = tmp_path / "screen.log"
    child = spawn("demo", "--minutes", "5", env=isolated_env(tmp_path), log=log)
    child.expect("q or Ctrl-C: stop")
    # The clock's pace is on screen, since the session clock races at 20x.
    child.expect("running")
    assert "virtual time 20x real time" in screen_text(log)
    # Heating has started: the frame that would lie, if any, says ON.
    child.expect(drawn("heater", "ON"))
    child.send("q")
    assert finish(child) == 0
    frame = last_frame(log)
    _assert_intact(frame)
    assert "ended by user" in frame
    heater_row = next(line for line in frame.splitlines() if "heater" in line)
    assert "ON" not in heater_row
    assert "off" in heater_row
    assert "stopping" not in frame
    text = screen_text(log)
    assert "Traceback" not in text
    # The key was taken by the view, not echoed into the panel.
    assert "\nq" not in text


def test_ctrl_c_stops_the_demo_and_the_last_frame_says_stop_was_sent(tmp_path: Path) -> None:
    log = tmp_path / "screen.log"
    child = spawn("demo", "--minutes", "5", "--no-mqtt", env=isolated_env(tmp_path), log=log)
    child.expect(drawn("heater", "ON"))
    child.sendintr()
    assert finish(child) == 130
    frame = last_frame(log)
    _assert_intact(frame)
    # How it ended, as the journal and the JSON summary say it: the signal, not a plain "user".
    assert "ended by sigint" in frame
    assert "ON" not in next(line for line in frame.splitlines() if "heater" in line)
    screen = screen_text(log)
    assert "stopped by Ctrl-C; the massager was told to stop" in screen
    assert "Traceback" not in screen


def test_the_last_frame_after_ctrl_c_shows_the_time_run_and_the_time_planned(
    tmp_path: Path,
) -> None:
    log = tmp_path / "screen.log"
    child = spawn("demo", "--minutes", "5", "--no-mqtt", env=isolated_env(tmp_path), log=log)
    # Some session time has run (at least 10 s of the 5 planned minutes).
    child.expect(drawn(r"0[0-4]:[1-5]\d", "/", "05:00", "running"))
    child.sendintr()
    assert finish(child) == 130
    session_row = next(line for line in last_frame(log).splitlines() if "session" in line)
    match = re.search(r"(\d\d):(\d\d) / (\d\d):(\d\d)\s+ended by sigint", session_row)
    assert match is not None, session_row
    minutes, seconds, planned_m, planned_s = (int(group) for group in match.groups())
    assert (planned_m, planned_s) == (5, 0)
    elapsed_s = 60 * minutes + seconds
    assert 10 <= elapsed_s < 300, session_row
    # The same time as the summary line under the panel (which gives it in tenths of minutes).
    summary = re.search(r"session ended by sigint after (\d+\.\d) min", screen_text(log))
    assert summary is not None
    assert abs(float(summary.group(1)) * 60 - elapsed_s) <= 6


def test_each_reading_shows_its_age_and_a_stale_one_is_marked(tmp_path: Path) -> None:
    log = tmp_path / "screen.log"
    child = spawn(
        "demo",
        "--minutes",
        "3",
        "--no-mqtt",
        "--scenario",
        "sensor-dropout",
        env=isolated_env(tmp_path),
        log=log,
    )
    child.expect(drawn(r"\d+\.\d+ °C", r"\d+\.\d s ago"))
    child.expect(drawn(r"measured \d+\.\d", r"\d+\.\d s ago"))
    # The dropout starts at 30 virtual seconds: the last reading ages and is marked stale.
    child.expect(drawn("°C", r"\d+\.\d s ago", "STALE"))
    child.send("q")
    assert finish(child) == 0
    _assert_intact(last_frame(log))


def test_warnings_print_above_the_panel_not_across_it(tmp_path: Path) -> None:
    log = tmp_path / "screen.log"
    child = spawn(
        "demo",
        "--minutes",
        "3",
        "--no-mqtt",
        "--scenario",
        "link-drop",
        env=isolated_env(tmp_path),
        log=log,
    )
    # The massager's link drops at 30 virtual seconds: the links log a warning.
    child.expect("link lost")
    child.expect("q or Ctrl-C: stop")  # the panel is drawn again below it
    child.send("q")
    assert finish(child) == 0
    text = screen_text(log)
    warned = [line for line in text.splitlines() if "link lost" in line]
    assert warned
    for line in warned:
        assert "│" not in line, line  # its own line, not inside or across the panel
    _assert_intact(last_frame(log))


def test_library_messages_go_to_a_file_and_ours_above_the_panel(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io  # noqa: PLC0415
    import logging  # noqa: PLC0415

    from rich.console import Console  # noqa: PLC0415

    from controller.cli import live  # noqa: PLC0415

    path = tmp_path / "logs" / "live.log"
    monkeypatch.setattr(live, "live_log_path", lambda: path)
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=100)
    with live._logs_through(console):
        logging.getLogger("controller.ble.links").warning("massager AA: link lost")
        logging.getLogger("asyncio").error("Exception in callback\nTraceback: InvalidStateError")
    shown = screen.getvalue()
    assert "link lost" in shown
    assert "InvalidStateError" not in shown
    assert "1 message(s) from libraries written to" in shown
    assert "InvalidStateError" in path.read_text()
    # The handlers the command line installed are back.
    assert not any(type(h).__name__ == "RichHandler" for h in logging.getLogger().handlers)


def test_the_terminal_is_given_back_as_it_was(tmp_path: Path) -> None:
    # The view reads keys without echo; after it, the shell must echo again.
    import sys  # noqa: PLC0415

    import pexpect  # noqa: PLC0415

    log = tmp_path / "screen.log"
    command = f"{sys.executable} -m controller demo --minutes 5 --no-mqtt; stty -a"
    child = pexpect.spawn(
        "sh",
        ["-c", command],
        env=isolated_env(tmp_path),
        dimensions=(40, 120),
        encoding="utf-8",
        timeout=60,
    )
    child.logfile_read = log.open("a", encoding="utf-8")
    child.expect("q or Ctrl-C: stop")
    child.send("q")
    child.expect(r"speed \d+ baud")
    assert finish(child) == 0
    settings = screen_text(log).rsplit("speed", 1)[1].replace(";", " ").split()
    assert "echo" in settings
    assert "-echo" not in settings
    assert "icanon" in settings
    assert "-icanon" not in settings


def test_the_simulator_readout_names_its_flags_and_the_settings_line(tmp_path: Path) -> None:
    log = tmp_path / "screen.log"
    child = spawn("sim", "--port", "0", env=isolated_env(tmp_path), log=log)
    child.expect(r'transport = "tcp-client:127\.0\.0\.1:\d+"')
    child.expect(drawn("firmware", r"\S"))
    child.expect("lease")
    child.sendintr()
    assert finish(child) == 0
    text = screen_text(log)
    firmware_rows = [line for line in text.splitlines() if "firmware" in line]
    assert firmware_rows
    for row in firmware_rows:
        assert "StatusFlags" not in row
        assert "<" not in row
    assert "BumbleRadio(" not in text
