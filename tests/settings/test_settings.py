"""Settings: what a user or clinician may write, and what SoleGuard refuses."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.errors import ConfigError
from controller.settings import PROFILE_NAMES, Settings, effective_limits, load_settings
from controller.settings import limits as hard

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "soleguard.example.toml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "soleguard.toml"
    path.write_text(text)
    return path


def load(tmp_path: Path, text: str, **environ: str) -> Settings:
    return load_settings(write(tmp_path, text), environ=environ)


def test_shipped_example_loads_with_the_design_defaults() -> None:
    settings = load_settings(EXAMPLE, environ={})
    limits = effective_limits(settings)
    assert limits.pressure_cap_mmhg == 60.0
    assert limits.heater_target_c == 38.0
    assert limits.heater_cutoff_c == 40.0
    assert limits.latch_c == 43.0
    assert limits.stale_after_s == 2.0
    assert limits.max_session_s == 20 * 60
    assert limits.lease_s == 3.0


def test_cutoff_above_hard_limit_names_field_value_and_limit(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, "[heater]\ncutoff_c = 45\n")
    message = str(caught.value)
    assert "heater.cutoff_c" in message
    assert "45" in message
    assert "41.0" in message


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    text = '[heater]\ncutoff_c = 45\ntarget_c = "warm"\ncolour = 1\n[pressure]\ncap_mmhg = 90\n'
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, text)
    message = str(caught.value)
    for fragment in ("heater.cutoff_c", "heater.target_c", "heater.colour", "pressure.cap_mmhg"):
        assert fragment in message
    assert "unknown key" in message
    assert "70.0" in message  # the pressure hard limit is named


def test_boolean_is_not_a_pressure(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"pressure\.cap_mmhg"):
        load(tmp_path, "[pressure]\ncap_mmhg = true\n")


def test_cutoff_must_stay_above_target(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="target_c"):
        load(tmp_path, "[heater]\ntarget_c = 39.5\ncutoff_c = 39.0\n")


def test_invalid_toml_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(tmp_path, "[heater\ncutoff_c = 39\n")


def test_named_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "missing.toml", environ={})


def test_config_path_from_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "[heater]\ncutoff_c = 39.0\n")
    settings = load_settings(None, environ={"SOLEGUARD_CONFIG": str(path)})
    assert settings.heater.cutoff_c == 39.0


def test_environment_overrides_a_single_value(tmp_path: Path) -> None:
    settings = load(tmp_path, "[heater]\ncutoff_c = 40.0\n", SOLEGUARD__HEATER__CUTOFF_C="39.5")
    assert settings.heater.cutoff_c == 39.5


def test_environment_override_cannot_loosen_a_hard_limit(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"heater\.cutoff_c"):
        load(tmp_path, "", SOLEGUARD__HEATER__CUTOFF_C="42")


def test_allodynia_means_light_pressure_and_slower_ramp(tmp_path: Path) -> None:
    limits = effective_limits(load(tmp_path, '[profile]\nname = "allodynia"\n'))
    assert limits.pressure_cap_mmhg == hard.LIGHT_PRESSURE_CAP_MMHG
    assert limits.pressure_ramp_mmhg_per_s < hard.PRESSURE_RAMP_MMHG_PER_S.default


def test_reduced_heat_sensation_forbids_heat_until_a_clinician_allows_it(tmp_path: Path) -> None:
    text = '[profile]\nname = "reduced-heat-sensation"\n'
    assert not effective_limits(load(tmp_path, text)).heater_allowed
    approved = effective_limits(load(tmp_path, text + "[heater]\nclinician_approved = true\n"))
    assert approved.heater_allowed
    assert approved.heater_cutoff_c < hard.HEATER_CUTOFF_C.default


def test_profile_lower_cutoff_pulls_the_users_target_below_it(tmp_path: Path) -> None:
    text = '[profile]\nname = "diabetic"\n[heater]\ntarget_c = 38.9\ncutoff_c = 40.0\n'
    limits = effective_limits(load(tmp_path, text))
    assert limits.heater_target_c < limits.heater_cutoff_c


def test_clinician_profile_cannot_loosen(tmp_path: Path) -> None:
    loose = tmp_path / "loose.toml"
    loose.write_text("[pressure]\ncap_mmhg = 70.0\n[heater]\ncutoff_c = 41.0\n")
    text = f'[profile]\npath = "{loose}"\n[pressure]\ncap_mmhg = 40.0\n[heater]\ncutoff_c = 39.0\n'
    limits = effective_limits(load(tmp_path, text))
    assert limits.pressure_cap_mmhg == 40.0
    assert limits.heater_cutoff_c == 39.0


def test_unknown_profile_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"profile\.name"):
        load(tmp_path, '[profile]\nname = "deep-tissue"\n')


def _numeric_fields() -> list[tuple[str, str, hard.Bound]]:
    fields = []
    for section_name, section in Settings.model_fields.items():
        model: Any = section.annotation
        for key, info in getattr(model, "model_fields", {}).items():
            extra = info.json_schema_extra
            if isinstance(extra, dict) and "stricter" in extra:
                meta = {type(m).__name__: m for m in info.metadata}
                bound = hard.Bound(
                    info.default,
                    meta["Ge"].ge,
                    meta["Le"].le,
                    str(extra["unit"]),
                    str(extra["stricter"]),
                    str(extra["source"]),
                )
                fields.append((section_name, key, bound))
    return fields


SAFETY_FIELDS = _numeric_fields()


@given(
    profile=st.sampled_from([None, *PROFILE_NAMES]),
    choices=st.fixed_dictionaries(
        {
            f"{section}.{key}": st.floats(bound.minimum, bound.maximum)
            for section, key, bound in SAFETY_FIELDS
        }
    ),
)
def test_no_valid_file_or_profile_ever_loosens_a_hard_limit(
    profile: str | None, choices: dict[str, float]
) -> None:
    data: dict[str, Any] = {"profile": {"name": profile}} if profile else {}
    for dotted, value in choices.items():
        section, key = dotted.split(".")
        data.setdefault(section, {})[key] = value
    try:
        settings = Settings.model_validate(data)
    except ValueError:
        return  # cross-field rules refused the combination: nothing to enforce
    limits = effective_limits(settings)
    assert limits.pressure_cap_mmhg <= hard.PRESSURE_CAP_MMHG.hard_limit
    assert limits.pressure_ramp_mmhg_per_s <= hard.PRESSURE_RAMP_MMHG_PER_S.hard_limit
    assert limits.heater_target_c < limits.heater_cutoff_c <= hard.HEATER_CUTOFF_C.hard_limit
    assert limits.latch_c <= hard.LATCH_C.hard_limit
    assert limits.stale_after_s <= hard.STALE_AFTER_S.hard_limit
    assert limits.max_heat_s <= hard.MAX_HEAT_MIN.hard_limit * 60
    assert limits.max_session_s <= hard.SESSION_MIN.hard_limit * 60
    assert limits.lease_s <= hard.LEASE_S.hard_limit
    assert limits.heater_min_off_s >= hard.HEATER_MIN_OFF_S.hard_limit
    if profile is not None:
        bare = effective_limits(settings.model_copy(update={"profile": Settings().profile}))
        assert limits.pressure_cap_mmhg <= bare.pressure_cap_mmhg
        assert limits.heater_cutoff_c <= bare.heater_cutoff_c
        assert limits.max_heat_s <= bare.max_heat_s
        assert limits.heater_allowed <= bare.heater_allowed


def test_every_shipped_profile_is_valid() -> None:
    for name in PROFILE_NAMES:
        raw = tomllib.loads((REPO / "config" / "profiles" / f"{name}.toml").read_text())
        Settings.model_validate(raw)


def test_missing_tls_file_is_a_settings_error(tmp_path: Path) -> None:
    text = f'[mqtt.tls]\nca_file = "{tmp_path / "no-such-ca.crt"}"\n'
    with pytest.raises(ConfigError, match=r"mqtt\.tls\.ca_file"):
        load(tmp_path, text)


def test_client_key_without_its_certificate_is_refused(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_text("-")
    text = f'[mqtt.tls]\nca_file = "{ca}"\nkeyfile = "{ca}"\n'
    with pytest.raises(ConfigError, match="certfile"):
        load(tmp_path, text)
