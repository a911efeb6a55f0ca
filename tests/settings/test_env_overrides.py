"""Environment overrides are as strict as the settings file (issue 18, item 1).

One rule for the whole name: upper case, ``SOLEGUARD``, then each part of the settings path after
two underscores. Any other name that starts with ``SOLEGUARD`` in any case, and is not one of
SoleGuard's few other variables, is refused with one line naming it and the nearest valid name.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from typer.testing import CliRunner

from controller.cli import app
from controller.errors import ConfigError
from controller.settings import effective_limits, load_settings
from controller.settings.loader import OTHER_ENV, env_names

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "soleguard.example.toml"
CUTOFF = "SOLEGUARD__HEATER__CUTOFF_C"

# The three mistyped overrides: one underscore after the prefix, lower case, mixed case.
MISTYPED = [
    "SOLEGUARD_HEATER__CUTOFF_C",
    "soleguard__heater__cutoff_c",
    "SOLEGUARD__Heater__Cutoff_C",
]


@pytest.mark.parametrize("name", MISTYPED)
def test_a_mistyped_override_is_refused_naming_it_and_the_right_name(name: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(EXAMPLE, environ={name: "39"})
    message = str(caught.value)
    assert "\n" not in message  # one line
    assert message.startswith(f"{name}: ")
    assert f"did you mean {CUTOFF} (heater.cutoff_c)?" in message


def test_the_documented_name_is_honoured() -> None:
    limits = effective_limits(load_settings(EXAMPLE, environ={CUTOFF: "39"}))
    assert limits.heater_cutoff_c == 39.0


def test_every_setting_has_exactly_one_name_and_it_works() -> None:
    names = env_names()
    assert names["SOLEGUARD__MQTT__TLS__CA_FILE"] == ("mqtt", "tls", "ca_file")
    assert names["SOLEGUARD__DEVICES__MASSAGER__ADDRESS"] == ("devices", "massager", "address")
    settings = load_settings(
        EXAMPLE,
        environ={"SOLEGUARD__DEVICES__MASSAGER__ADDRESS": "C0:98:E5:49:00:01"},
    )
    assert settings.devices.massager.address == "C0:98:E5:49:00:01"


def test_a_section_name_is_not_a_setting() -> None:
    with pytest.raises(ConfigError, match=r"^SOLEGUARD__HEATER: not a SoleGuard setting"):
        load_settings(EXAMPLE, environ={"SOLEGUARD__HEATER": "{cutoff_c = 39}"})


def test_several_mistakes_are_all_named_at_once() -> None:
    environ = {"SOLEGUARD__HEATER__CUTOF_C": "39", "SOLEGUARD__PRESURE__CAP_MMHG": "50"}
    with pytest.raises(ConfigError) as caught:
        load_settings(EXAMPLE, environ=environ)
    message = str(caught.value)
    assert "2 problem(s)" in message
    assert "SOLEGUARD__HEATER__CUTOF_C: not a SoleGuard setting; did you mean " + CUTOFF in message
    assert "did you mean SOLEGUARD__PRESSURE__CAP_MMHG (pressure.cap_mmhg)?" in message


def test_a_bad_value_names_the_variable_not_the_file() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(EXAMPLE, environ={CUTOFF: "42"})
    message = str(caught.value)
    assert str(EXAMPLE) not in message
    assert message.startswith("environment: 1 problem(s)")
    assert f"{CUTOFF} (heater.cutoff_c): 42 is outside the allowed range" in message


def test_a_cross_field_problem_names_the_variables_involved(tmp_path: Path) -> None:
    path = tmp_path / "soleguard.toml"
    path.write_text("[heater]\ntarget_c = 39.0\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={CUTOFF: "38.5"})
    message = str(caught.value)
    # The file set the target, the environment the cut-off: both sources are named.
    assert message.startswith(f"{path}: 1 problem(s)")
    assert f"{CUTOFF} (heater): target_c (39.0) must be below cutoff_c (38.5)" in message


def test_a_file_problem_still_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "soleguard.toml"
    path.write_text("[heater]\ncutoff_c = 45\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ={"SOLEGUARD__PRESSURE__CAP_MMHG": "50"})
    message = str(caught.value)
    assert message.startswith(f"{path}: 1 problem(s)")
    assert "  heater.cutoff_c: 45" in message


def test_soleguards_other_variables_are_not_refused(tmp_path: Path) -> None:
    path = tmp_path / "soleguard.toml"
    path.write_text("")
    environ = dict.fromkeys(OTHER_ENV, "1") | {"SOLEGUARD_CONFIG": str(path)}
    load_settings(None, environ=environ)
    with pytest.raises(ConfigError, match=r"^soleguard_config: .*did you mean SOLEGUARD_CONFIG\?"):
        load_settings(None, environ=environ | {"soleguard_config": str(path)})


def test_every_soleguard_variable_the_code_reads_is_known() -> None:
    """A new ``SOLEGUARD_...`` variable must be added to OTHER_ENV, or every command refuses it."""
    pattern = re.compile(r"\bSOLEGUARD_[A-Z0-9_]*[A-Z0-9]\b")
    found: set[str] = set()
    for folder in ("controller", "firmware_sim", "bench", "tests", "tools", ".ci"):
        for path in (REPO / folder).rglob("*"):
            if path.is_file() and path.suffix in {".py", ".toml", ".md", ".sh", ""}:
                found |= set(pattern.findall(path.read_text(errors="replace")))
    found |= set(pattern.findall((REPO / "Makefile").read_text()))
    this_file = {*MISTYPED, "SOLEGUARD_HEATER__CUTOFF_C"}
    unknown = {
        name
        for name in found - this_file
        if "__" not in name and name not in OTHER_ENV and name not in env_names()
    }
    assert not unknown


_names = sorted(env_names())


@st.composite
def _misspelt(draw: st.DrawFn) -> tuple[str, str]:
    """A valid name with its case or its separators changed: (the valid name, the variant)."""
    valid = draw(st.sampled_from(_names))
    parts = valid.split("__")
    separators = draw(
        st.lists(
            st.sampled_from(["_", "__", "___", "-", ""]),
            min_size=len(parts) - 1,
            max_size=len(parts) - 1,
        )
    )
    word = parts[0] + "".join(s + p for s, p in zip(separators, parts[1:], strict=True))
    flips = draw(st.lists(st.booleans(), min_size=len(word), max_size=len(word)))
    variant = "".join(c.swapcase() if f else c for c, f in zip(word, flips, strict=True))
    return valid, variant


@given(_misspelt())
def test_any_other_spelling_of_a_setting_is_refused_never_ignored(case: tuple[str, str]) -> None:
    valid, variant = case
    environ = {variant: "39"}
    # The one documented spelling (its value may or may not fit the field), and SoleGuard's
    # other variables (SOLEGUARD_MQTT_PASSWORD is `soleguard monitor`'s, not mqtt.password).
    assume(variant != valid and variant not in OTHER_ENV)
    with pytest.raises(ConfigError) as caught:
        load_settings(EXAMPLE, environ=environ)
    message = str(caught.value)
    assert message.startswith(f"{variant}: not a SoleGuard setting; did you mean ")
    if variant.upper() == valid:
        assert f"did you mean {valid} (" in message


# -- every command that loads settings ------------------------------------------------------------

COMMANDS = [
    ["config", "check", str(EXAMPLE)],
    ["history"],
    ["journal", "export", "--out", "-"],
    ["diary", "sleep", "3"],
    ["report", "--weeks", "2"],
    ["scan"],
    ["pair", "C0:98:E5:49:00:01"],
    ["session", "--checklist", "answers.toml", "--no-live"],
    ["run", "--checklist", "answers.toml"],
    ["demo", "--minutes", "1", "--speed", "max", "--json"],
]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda args: " ".join(args[:2]))
def test_every_command_refuses_a_mistyped_override(
    args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for key in list(os.environ):
        if key.upper().startswith("SOLEGUARD"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("SOLEGUARD_HEATER__CUTOFF_C", "39")
    result = CliRunner().invoke(app, args)
    # The README's exit-code table: a settings problem is a usage or configuration error.
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == [
        "error: SOLEGUARD_HEATER__CUTOFF_C: not a SoleGuard setting; did you mean "
        f"{CUTOFF} (heater.cutoff_c)? (overrides are named SOLEGUARD__SECTION__KEY, in upper case)"
    ]


def test_an_empty_journal_path_is_refused_naming_its_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"SOLEGUARD__STORAGE__PATH \(storage\.path\): must be"):
        load_settings(None, environ={"SOLEGUARD__STORAGE__PATH": ""})


def test_a_value_of_several_lines_is_refused_whole() -> None:
    with pytest.raises(ConfigError, match=r"SOLEGUARD__HEATER__CUTOFF_C: one value expected"):
        load_settings(
            None, environ={"SOLEGUARD__HEATER__CUTOFF_C": "39.5\nSOLEGUARD__HEATER__LATCH_C=50"}
        )
