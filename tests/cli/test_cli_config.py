"""The `soleguard` command as a user runs it: a real process, its output and exit code."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def soleguard(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controller", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_version() -> None:
    result = soleguard("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("soleguard ")


def test_config_check_prints_effective_limits_of_the_example() -> None:
    result = soleguard("config", "check", str(REPO / "config" / "soleguard.example.toml"))
    assert result.returncode == 0, result.stderr
    assert "heater cut-off" in result.stdout
    assert "40.0 °C" in result.stdout
    assert "60.0 mmHg" in result.stdout


def test_config_check_refuses_a_cutoff_of_45(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[heater]\ncutoff_c = 45\n")
    result = soleguard("config", "check", str(bad))
    assert result.returncode == 2
    assert "heater.cutoff_c" in result.stderr
    assert "45" in result.stderr
    assert "41.0" in result.stderr
    assert "Traceback" not in result.stderr
