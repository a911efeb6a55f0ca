"""What a new user meets in the first hour, each rough edge once seen and now held by a test."""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from controller.ble.bumble_backend.radio import _make_keystore
from controller.cli.sim import _flag_names
from controller.protocol import StatusFlags
from tests.starvation import RunqueueWait

REPO = Path(__file__).resolve().parents[2]
# A malformed address must fail before the radio is opened (a scan listens 5 s, a pairing more).
AT_ONCE_S = 5.0


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOLEGUARD_")}
    env.update(
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_DATA_HOME=str(home / "data"),
        COLUMNS="100",
    )
    return env


def soleguard(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "controller", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(home),
        check=False,
    )


async def test_pair_refuses_a_malformed_address_at_once(tmp_path: Path) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "controller",
        "pair",
        "not-an-address",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_env(tmp_path),
    )
    async with RunqueueWait(process.pid).watching() as starved:
        async with asyncio.timeout(60):
            _, err = await process.communicate()
    # "At once" is about the program: the time it stood runnable but without a CPU on a loaded
    # machine (its start-up imports included) is the machine's, not a scan's.
    assert loop.time() - started - starved.seconds < AT_ONCE_S
    assert process.returncode == 2
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1, err.decode()
    assert lines[0].startswith("error: ADDRESS: 'not-an-address' is not a Bluetooth address")
    assert not (tmp_path / "data").exists()  # no radio opened, no bond store made


async def test_bonds_are_written_owner_only_and_old_ones_tightened(tmp_path: Path) -> None:
    from bumble import hci  # noqa: PLC0415
    from bumble.keys import JsonKeyStore  # noqa: PLC0415

    path = tmp_path / "store" / "bonds.json"
    address = hci.Address("F5:0E:6A:AD:00:09", hci.Address.RANDOM_DEVICE_ADDRESS)
    keystore = _make_keystore(path, address)
    assert isinstance(keystore, JsonKeyStore)  # a path given: bonds go to that file
    await keystore.save({"F5:0E:6A:AD:00:09": {"AA:BB:CC:DD:EE:FF/P": {}}})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    path.chmod(0o644)  # as an earlier version left it
    _make_keystore(path, address)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text())  # still readable by its owner


def test_sim_readout_names_flags_for_a_person() -> None:
    flags = StatusFlags(7)
    shown = _flag_names(flags)
    assert "StatusFlags" not in shown
    assert "<" not in shown
    assert shown.count(",") == 2
    assert _flag_names(StatusFlags(0)) == "none"


def test_example_config_uses_the_port_sim_listens_on() -> None:
    from controller.cli.sim import DEFAULT_PORT  # noqa: PLC0415

    example = (REPO / "config" / "soleguard.example.toml").read_text()
    assert f"tcp-client:127.0.0.1:{DEFAULT_PORT}" in example


def test_config_check_shows_ble_and_mqtt_and_refuses_a_bad_transport(tmp_path: Path) -> None:
    good = soleguard(
        "config", "check", str(REPO / "config" / "soleguard.example.toml"), home=tmp_path
    )
    assert good.returncode == 0, good.stderr
    assert "ble.transport" in good.stdout
    assert "platform" in good.stdout
    assert "mqtt" in good.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('[ble]\ntransport = "tcp-client:nowhere"\n')
    refused = soleguard("config", "check", str(bad), home=tmp_path)
    assert refused.returncode == 2
    assert "transport 'tcp-client:nowhere'" in refused.stderr
    assert "HOST:PORT" in refused.stderr
    assert "Traceback" not in refused.stderr


@pytest.mark.parametrize(
    "transport",
    ["platform", "tcp-client:127.0.0.1:9720", "usb:0", "serial:/dev/ttyACM0", "hci-socket:0"],
)
def test_real_transports_are_accepted(transport: str) -> None:
    from controller.settings.models import BleSettings  # noqa: PLC0415

    assert BleSettings(transport=transport).transport == transport


def test_help_names_arguments_and_flags_plainly(tmp_path: Path) -> None:
    pair_help = soleguard("pair", "--help", home=tmp_path).stdout
    assert "ADDRESS" in pair_help
    assert "{address}" not in pair_help
    history_help = soleguard("history", "--help", home=tmp_path).stdout
    assert "--json" in history_help
    assert "<bool>" not in history_help


def test_license_file_is_mit_for_the_contributors() -> None:
    text = (REPO / "LICENSE").read_text()
    assert text.startswith("MIT License")
    assert "SoleGuard contributors" in text


def test_the_wheel_carries_the_example_config_and_the_license(tmp_path: Path) -> None:
    pytest.importorskip("hatchling")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(REPO),
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (wheel,) = tmp_path.glob("soleguard-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "controller/settings/soleguard.example.toml" in names
    assert any(name.endswith("licenses/LICENSE") for name in names)


def test_config_example_prints_settings_that_load(tmp_path: Path) -> None:
    printed = soleguard("config", "example", home=tmp_path)
    assert printed.returncode == 0, printed.stderr
    saved = tmp_path / "soleguard.toml"
    saved.write_text(printed.stdout)
    assert soleguard("config", "check", str(saved), home=tmp_path).returncode == 0
