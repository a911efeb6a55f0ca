"""The commonest failures a user meets end as one line with the fix and the documented status.

Each case of issue 11 runs the real ``soleguard`` process, as a user would, in a home of its own
(no settings file unless the case writes one). The statuses are those of
``controller.cli.exit_codes``: 1 runtime failure, 2 usage or configuration.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from types import SimpleNamespace
from typing import TYPE_CHECKING

import pytest
import typer

from controller.cli import exit_codes
from controller.cli.errors import MAX_LINE_CHARS, clip, describe
from controller.cli.session import ask_pain
from controller.errors import ConfigError, LinkError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

# Longer than any one line of ours, far shorter than a traceback or a 10 MB value.
MAX_OUTPUT_CHARS = 2 * MAX_LINE_CHARS + 200


def soleguard(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SOLEGUARD_")}
    environ.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_DATA_HOME=str(home / "data"),
        **env,
    )
    return subprocess.run(
        [sys.executable, "-m", "controller", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=environ,
        check=False,
    )


def assert_one_line(result: subprocess.CompletedProcess[str], status: int, *words: str) -> str:
    err = result.stderr.strip()
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == status, result.stderr
    assert len(err) <= MAX_OUTPUT_CHARS, err[:3000]
    for word in words:
        assert word in err, err
    return err


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


CASES: list[tuple[str, Callable[[Path], list[str]], int, tuple[str, ...]]] = [
    ("sim port out of range", lambda h: ["sim", "--port", "99999"], exit_codes.USAGE, ("--port",)),
    (
        "demo broker not mqtt",
        lambda h: ["demo", "--broker", "http://x", "--speed", "max", "--no-journal"],
        exit_codes.USAGE,
        ("mqtt://",),
    ),
    (
        "settings not UTF-8",
        lambda h: ["config", "check", str(write(h / "s.toml", b'[profile]\nname = "\xff"\n'))],
        exit_codes.USAGE,
        ("s.toml", "UTF-8"),
    ),
    (
        "settings nested 200,000 deep",
        lambda h: ["config", "check", str(write(h / "s.toml", b"a=" + b"[" * 200_000))],
        exit_codes.USAGE,
        ("s.toml", "nested"),
    ),
    (
        "a 10 MB value",
        lambda h: [
            "config",
            "check",
            str(write(h / "s.toml", b'[profile]\nname = "' + b"x" * 10_000_000 + b'"\n')),
        ],
        exit_codes.USAGE,
        ("profile.name", "characters"),
    ),
    (
        "minutes 0",
        lambda h: ["demo", "--minutes", "0", "--no-mqtt", "--no-journal"],
        exit_codes.USAGE,
        # The option the user typed, beside the setting it sets.
        ("--minutes", "session.max_minutes", "command line"),
    ),
    (
        "unknown profile",
        lambda h: ["demo", "--profile", "bogus", "--no-mqtt", "--no-journal"],
        exit_codes.USAGE,
        ("--profile", "profile.name", "diabetic"),
    ),
    ("speed above the maximum", lambda h: ["demo", "--speed", "1e9"], exit_codes.USAGE, ("max",)),
]


@pytest.mark.parametrize(
    ("args", "status", "words"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_a_common_failure_is_one_line(
    tmp_path: Path, args: Callable[[Path], list[str]], status: int, words: tuple[str, ...]
) -> None:
    assert_one_line(soleguard(tmp_path, *args(tmp_path)), status, *words)


def test_an_environment_typo_is_blamed_on_the_variable_not_the_file(tmp_path: Path) -> None:
    result = soleguard(tmp_path, "config", "check", SOLEGUARD__HEATER__CUTOF_C="39")
    err = assert_one_line(result, exit_codes.USAGE, "SOLEGUARD__HEATER__CUTOF_C", "cutoff_c")
    assert "soleguard.toml" not in err  # there is no settings file to blame


def test_a_port_in_use_names_the_port_and_the_fix(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = soleguard(tmp_path, "sim", "--port", port, "--no-readout")
    assert_one_line(result, exit_codes.FAILED, port, "--port 0")


def test_a_transport_that_cannot_be_opened_is_one_line(tmp_path: Path) -> None:
    # Nothing listens on port 1: the same one line as a missing USB dongle.
    result = soleguard(
        tmp_path, "scan", "--timeout", "1", SOLEGUARD__BLE__TRANSPORT="tcp-client:127.0.0.1:1"
    )
    assert_one_line(result, exit_codes.FAILED, "tcp-client:127.0.0.1:1", "cannot open")


def test_an_unreachable_device_inside_task_groups_is_reported_by_its_own_words() -> None:
    deep = ExceptionGroup(
        "outer", [ExceptionGroup("inner", [LinkError("massager AA: not reached in 30 s")])]
    )
    assert describe(deep) == ("error: massager AA: not reached in 30 s", exit_codes.FAILED)
    assert describe(ConfigError("x"))[1] == exit_codes.USAGE


def test_a_pain_score_out_of_range_is_asked_again(capsys: pytest.CaptureFixture[str]) -> None:
    answers = iter(["11", "-1", "seven", "7"])
    assert ask_pain(lambda _question: next(answers)) == 7
    assert capsys.readouterr().out.count("a whole number from 0 to 10") == 3
    assert ask_pain(lambda _question: "") is None


def test_an_instruction_to_copy_is_never_cut() -> None:
    # A lost bond's message ends with the command to run; cutting it would hide the fix.
    message = (
        "massager F5:0E:5A:11:22:33 has lost its bond (factory reset or firmware update): the "
        "session did not start and nothing heats or presses. To use it again, put it in pairing "
        "mode and run `soleguard pair F5:0E:5A:11:22:33` (a new bond is never made without you)"
    )
    assert len(message) > 240
    assert clip(message) == message


def test_an_interrupt_before_the_command_said_anything_is_said_in_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """typer turns a Ctrl-C into a silent exit 130; one that lands before the command could say
    why (`monitor` or `pair` starting, seen under load) still gets its one line."""
    from controller.cli import errors  # noqa: PLC0415
    from controller.shutdown import Signalled  # noqa: PLC0415

    app = typer.Typer()

    @app.command()
    def starting() -> None:
        raise Signalled(signal.SIGINT)

    # The process's shutdown state, as after a first Ctrl-C (not the thing under test).
    monkeypatch.setattr(errors, "current_shutdown", lambda: SimpleNamespace(signum=signal.SIGINT))
    monkeypatch.setattr(errors, "_said", [])
    monkeypatch.setattr(sys, "argv", ["soleguard"])
    assert errors.run_app(app) == 130
    assert capsys.readouterr().err.strip().splitlines() == ["stopped by Ctrl-C"]
