"""config/soleguard.service: valid for systemd, and its paths are where SoleGuard looks.

`systemd-analyze verify` runs where it is installed (the unit's ExecStart pointed at this
checkout's `soleguard`, as an installation's would be); the unit is also parsed here, so the
paths and exit statuses it names are checked against the settings defaults and the exit-code
table on every machine.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from controller.ble.access import default_keystore_path
from controller.cli import exit_codes
from controller.settings.loader import CONFIG_FILENAME, resolve_config_path
from controller.shutdown import EMERGENCY_STOP_S, GRACE_S
from controller.store.database import default_store_path

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "config" / "soleguard.service"
# systemd's specifiers for a system unit (systemd.unit(5), "Specifiers"): %S the state root,
# %E the configuration root.
SPECIFIERS = {"%S": "/var/lib", "%E": "/etc"}
# The promise of controller/shutdown.py: a soleguard process ends within 2 s of SIGTERM.
STOP_PROMISE_S = 2.0


def unit_lines(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) for every assignment, in order (keys may repeat, as in systemd)."""
    section, found = "", []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        found.append((section, key.strip(), value.strip()))
    return found


def service(key: str) -> list[str]:
    """Every value of ``key`` in [Service], specifiers expanded."""
    values = [v for s, k, v in unit_lines(UNIT.read_text()) if s == "Service" and k == key]
    for specifier, path in SPECIFIERS.items():
        values = [v.replace(specifier, path) for v in values]
    return values


def environment() -> dict[str, str]:
    pairs = [value.partition("=") for value in service("Environment")]
    return {name: value for name, _, value in pairs}


def test_the_service_finds_its_settings_journal_and_bonds_where_systemd_keeps_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = environment()
    (state,) = service("StateDirectory")
    (configuration,) = service("ConfigurationDirectory")
    # The settings file: SOLEGUARD_CONFIG names the file in the ConfigurationDirectory.
    assert resolve_config_path(None, env) == Path("/etc", configuration, CONFIG_FILENAME)
    # The journal and the bond file: the settings' own defaults, under the service's environment.
    monkeypatch.setenv("XDG_DATA_HOME", env["XDG_DATA_HOME"])
    state_dir = Path("/var/lib", state)
    assert default_store_path().parent == state_dir
    assert default_keystore_path().parent == state_dir


def test_restart_stop_and_exit_statuses_follow_the_exit_code_table() -> None:
    assert service("Restart") == ["on-failure"]
    # A configuration error fails the same way again: never restarted.
    assert str(exit_codes.USAGE) in service("RestartPreventExitStatus")[0].split()
    # `systemctl stop` sends SIGTERM; soleguard then exits 128 + 15, its clean stop.
    assert str(exit_codes.for_signal(signal.SIGTERM)) in service("SuccessExitStatus")[0].split()
    (timeout,) = service("TimeoutStopSec")
    assert float(timeout) > max(STOP_PROMISE_S, GRACE_S + EMERGENCY_STOP_S)


def test_the_unit_is_hardened_and_logs_to_the_journal() -> None:
    expected = {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "RestrictSUIDSGID": "yes",
        "CapabilityBoundingSet": "",
        "StandardOutput": "journal",
        "StandardError": "journal",
        "StateDirectoryMode": "0700",
        "UMask": "0077",
    }
    assert {key: service(key) for key in expected} == {k: [v] for k, v in expected.items()}


def test_execstart_names_a_command_this_soleguard_has() -> None:
    (command,) = service("ExecStart")
    program, *args = command.split()
    assert Path(program).name == "soleguard"
    result = subprocess.run(
        [sys.executable, "-m", "controller", *args, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == exit_codes.DONE, result.stderr


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_analyze_verify_accepts_the_unit_without_a_warning(tmp_path: Path) -> None:
    (command,) = service("ExecStart")
    installed = command.split()[0]
    # The installation's soleguard is not on this machine; this checkout's is.
    here = shutil.which("soleguard", path=str(Path(sys.executable).parent))
    assert here is not None
    unit = tmp_path / "soleguard.service"
    unit.write_text(UNIT.read_text().replace(installed, here))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # verify exits 0 even for an unknown or misspelt key, and only warns: no output at all.
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
