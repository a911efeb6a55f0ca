"""`soleguard config check` on a hub configuration: a real process, its output and exit code."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import TYPE_CHECKING

from controller.cli import exit_codes

if TYPE_CHECKING:
    from pathlib import Path

HUB = """
[[hub.radios]]
id = "radio-1"
transport = "usb:0"

[[hub.residents]]
id = "room-1"
name = "Ada"
massager = "F0:00:00:00:01:01"
sensor = "F0:00:00:00:01:02"
radio = "radio-1"

[[hub.residents]]
id = "room-2"
name = "Bea"
massager = "F0:00:00:00:02:01"
sensor = "F0:00:00:00:02:02"
radio = "radio-1"
profile = "reduced-heat-sensation"
checklist = "recorded-today"
"""


def config_check(path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("SOLEGUARD")}
    return subprocess.run(
        [sys.executable, "-m", "controller", "config", "check", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**env, "COLUMNS": "200"},
        check=False,
    )


def test_config_check_shows_every_resident_with_their_own_limits(tmp_path: Path) -> None:
    path = tmp_path / "hub.toml"
    path.write_text(HUB)
    result = config_check(path)
    assert result.returncode == exit_codes.DONE, result.stderr
    assert "Hub: 2 resident(s)" in result.stdout
    lines = result.stdout.splitlines()
    rows = {line.split("│")[1].strip(): line for line in lines if "room-" in line}
    assert "radio-1 (usb:0)" in rows["room-1"]
    assert "cut-off 40.0 °C" in rows["room-1"]
    # Bea's profile switches heat off for her alone.
    assert "no heat" in rows["room-2"]
    assert "recorded-today" in rows["room-2"]


def test_config_check_refuses_a_hub_clash_with_one_line_and_the_usage_code(
    tmp_path: Path,
) -> None:
    path = tmp_path / "hub.toml"
    path.write_text(HUB.replace('"F0:00:00:00:02:01"', '"F0:00:00:00:01:02"'))
    result = config_check(path)
    assert result.returncode == exit_codes.USAGE
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        f"error: {path}: 1 problem(s):",
        "  hub.residents.1.massager: 'F0:00:00:00:01:02' is already hub.residents.0.sensor; "
        "each device belongs to exactly one resident",
    ]
