"""Fuzz targets: every decoder, the caregiver command parser and the settings loader.

Each target is a hypothesis strategy and a check. The check swallows the typed errors the code
is allowed to raise (``ProtocolError`` from decoders, ``ConfigError`` from the settings loader;
``parse_command`` may not raise at all and answers ``CommandRefused``) and asserts that whatever
*is* accepted cannot loosen a limit:

- a decoded massager command never asks for more than the 70 mmHg hard limit, nor a lease longer
  than 3 s, nor a pad target outside the protocol's range; a decoded status, device-limits or
  temperature frame has every field in its documented range, and a temperature is either a
  finite number or marked as "no reading" (``special``), never a non-finite value that passes
  as valid;
- a caregiver command that parses is ``stop``, ``heater_off`` or ``lower_pressure``, only the
  last with an amount, finite and in (0, 70] mmHg; retained or oversized messages never parse;
- settings that load (from a TOML file, environment overrides, a named profile and a
  clinician's profile file, all fuzzed) give effective limits inside every hard limit of
  ``controller/settings/limits.py``, at least as strict as the user's values and as every
  profile applied, and heat only with a clinician's approval where a profile switches it off.

Round trips and "decoders raise only ProtocolError" on small inputs are already properties in
``tests/protocol/test_protocol_properties.py``; these targets add the limit checks, structured
inputs that reach the field checks, and the large counts (``bench/fuzz.py``).
"""

from __future__ import annotations

import json
import math
import os
import string
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.caregiver.commands import (
    ALLOWED_ACTIONS,
    MAX_COMMAND_BYTES,
    MAX_LOWER_PRESSURE_MMHG,
    CaregiverCommand,
    CommandRefused,
    parse_command,
)
from controller.errors import ConfigError, ProtocolError
from controller.protocol import (
    DeviceLimits,
    MassagerStatus,
    RenewLease,
    SetHeater,
    SetPressure,
    Stop,
    TemperatureMeasurement,
    classify_float,
    decode_command,
    decode_float,
)
from controller.protocol.massager import (
    LEASE_MS_MAX,
    LEASE_MS_MIN,
    PAD_TARGET_C_MAX,
    PAD_TARGET_C_MIN,
    PRESSURE_TARGET_MMHG_MAX,
)
from controller.settings import PROFILE_NAMES, effective_limits, load_settings
from controller.settings import limits as hard
from controller.settings.loader import profile_path

if TYPE_CHECKING:
    from collections.abc import Callable

# --- the protocol decoders ---------------------------------------------------------------------

VERSION = 1
# Values that sit on and around every field boundary, mixed into otherwise random bytes.
EDGE_U16 = [0, 1, 99, 100, 101, 699, 700, 701, 2000, 2999, 3000, 3001, 4500, 4501, 0x7FFF, 0xFFFF]


def _u16(value: int) -> bytes:
    return value.to_bytes(2, "little")


u16s = st.one_of(st.sampled_from(EDGE_U16), st.integers(0, 0xFFFF))
u8s = st.one_of(st.sampled_from([0, 1, 2, 3, 4, 5, 0x3F, 0x40, 0x80, 0xFF]), st.integers(0, 0xFF))

# Command frames: right version, any opcode, lengths around the right one, edge field values.
structured_commands = st.builds(
    lambda version, opcode, seq, lease, a, b, c, cut: (
        bytes((version, opcode)) + _u16(seq) + _u16(lease) + bytes((a,)) + _u16(b) + _u16(c)
    )[:cut],
    st.sampled_from([VERSION, VERSION, VERSION, 0, 2, 0xFF]),
    st.integers(0, 6),
    u16s,
    u16s,
    u8s,
    u16s,
    u16s,
    st.integers(0, 12),
)
structured_statuses = st.builds(
    lambda flags, seq, p, pt, pad, batt, lease, fault, version, cut: (
        bytes((version, flags))
        + _u16(seq)
        + _u16(p)
        + _u16(pt)
        + pad.to_bytes(2, "little", signed=True)
        + bytes((batt,))
        + _u16(lease)
        + bytes((fault,))
    )[:cut],
    u8s,
    u16s,
    u16s,
    u16s,
    st.integers(-0x8000, 0x7FFF),
    st.one_of(st.integers(0, 101), u8s),
    u16s,
    u8s,
    st.sampled_from([VERSION, VERSION, VERSION, 0, 2]),
    st.sampled_from([14, 14, 14, 13, 15, 0, 1]),
)
structured_limits = st.builds(
    lambda version, a, b, c, cut: (bytes((version,)) + _u16(a) + _u16(b) + _u16(c))[:cut],
    st.sampled_from([VERSION, VERSION, 0, 2]),
    u16s,
    u16s,
    u16s,
    st.sampled_from([7, 7, 7, 6, 8]),
)
# IEEE-11073 FLOAT: mantissa edges (specials live at 0x7FFFFF, 0x800000..0x800002) and any exponent.
floats_11073 = st.builds(
    lambda mantissa, exponent: (
        (mantissa & 0xFFFFFF).to_bytes(3, "little") + (exponent & 0xFF).to_bytes(1, "little")
    ),
    st.one_of(
        st.sampled_from([0, 1, 0x7FFFFD, 0x7FFFFE, 0x7FFFFF, 0x800000, 0x800001, 0x800002]),
        st.integers(0, 0xFFFFFF),
    ),
    st.one_of(st.sampled_from([0, 0x7F, 0x80, 0xFE, 0xFF]), st.integers(0, 0xFF)),
)
structured_measurements = st.builds(
    lambda flags, value, stamp, kind, cut: (bytes((flags,)) + value + stamp + bytes((kind,)))[:cut],
    u8s,
    floats_11073,
    st.builds(
        lambda year, month, day, hour, minute, second: (
            _u16(year) + bytes((month, day, hour, minute, second))
        ),
        st.one_of(st.sampled_from([0, 1581, 1582, 9999, 10000]), st.integers(0, 0xFFFF)),
        st.integers(0, 13),
        st.integers(0, 32),
        st.integers(0, 25),
        st.integers(0, 61),
        st.integers(0, 61),
    ),
    u8s,
    st.integers(0, 14),
)


def _frames(structured: st.SearchStrategy[bytes], max_size: int) -> st.SearchStrategy[bytes]:
    return st.one_of(structured, structured, st.binary(max_size=max_size))


def check_command(data: bytes) -> None:
    try:
        command = decode_command(data)
    except ProtocolError:
        return
    assert isinstance(command, SetPressure | SetHeater | Stop | RenewLease)
    if isinstance(command, SetPressure):
        # The firmware would pump to this: never above the hard limit, never negative or NaN.
        assert 0.0 <= command.target_mmhg <= PRESSURE_TARGET_MMHG_MAX
        assert command.target_mmhg <= hard.PRESSURE_CAP_MMHG.hard_limit
    if isinstance(command, SetHeater):
        assert PAD_TARGET_C_MIN <= command.pad_target_c <= PAD_TARGET_C_MAX
    if isinstance(command, SetPressure | SetHeater | RenewLease):
        # A lease longer than the 3 s hard limit would keep actuators on after the controller died.
        assert LEASE_MS_MIN <= command.lease_ms <= LEASE_MS_MAX
        assert command.lease_ms <= hard.LEASE_S.hard_limit * 1000


def check_status(data: bytes) -> None:
    try:
        status = MassagerStatus.decode(data)
    except ProtocolError:
        return
    for value in (status.pressure_mmhg, status.pressure_target_mmhg, status.pad_temperature_c):
        assert math.isfinite(value)
    assert 0.0 <= status.pressure_mmhg <= 300.0
    assert 0.0 <= status.pressure_target_mmhg <= PRESSURE_TARGET_MMHG_MAX
    assert 0 <= status.battery_percent <= 100
    assert 0 <= int(status.flags) <= 0x3F
    assert 0 <= int(status.fault) <= 0xFF


def check_limits(data: bytes) -> None:
    try:
        value = DeviceLimits.decode(data)
    except ProtocolError:
        return
    assert math.isfinite(value.max_pressure_mmhg)
    assert value.max_pressure_mmhg >= 0.0
    assert math.isfinite(value.cutout_c)
    assert value.cutout_c >= 0.0
    assert 0 <= value.max_lease_ms <= 0xFFFF


def check_measurement(data: bytes) -> None:
    try:
        measurement = TemperatureMeasurement.decode(data)
    except ProtocolError:
        return
    celsius = measurement.to_celsius()
    # A non-finite value is always marked "no reading"; a valid one is a finite number, in
    # Celsius too (a huge Fahrenheit value must not overflow into a valid-looking infinity).
    assert measurement.is_valid == math.isfinite(measurement.value)
    assert measurement.is_valid == math.isfinite(celsius)


def check_float(data: bytes) -> None:
    try:
        value = decode_float(data)
    except ProtocolError:
        return
    assert isinstance(value, float)
    assert math.isfinite(value) == (classify_float(data) is None)


# --- the caregiver command parser --------------------------------------------------------------

_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
_amounts = st.one_of(
    st.sampled_from([0, -0.0, 0.0, 1e-300, 5, 10, 69.99, 70, 70.0000001, 71, 1e308]),
    _json_scalars,
    st.lists(st.integers(), max_size=2),
)
_actions = st.one_of(
    st.sampled_from(
        [
            *ALLOWED_ACTIONS,
            "STOP",
            " stop",
            "stop\x00",
            "raise_pressure",
            "heater_on",
            "set_pressure",
            "start",
            "lower_pressure ",
            "Lower_Pressure",
        ]
    ),
    _json_scalars,
)
_keys = st.sampled_from(["action", "request_id", "amount_mmhg", "pressure", "target", "__proto__"])
_objects = st.one_of(
    st.fixed_dictionaries(
        {"action": _actions, "request_id": st.one_of(st.text(max_size=70), _json_scalars)},
        optional={"amount_mmhg": _amounts, "extra": _json_scalars},
    ),
    st.dictionaries(st.one_of(_keys, st.text(max_size=10)), _json_scalars, max_size=5),
)


def _to_payload(value: Any) -> bytes:
    # allow_nan: JSON's NaN/Infinity tokens are exactly what a hostile publisher could send.
    return json.dumps(value, allow_nan=True).encode()


_payloads = st.one_of(
    _objects.map(_to_payload),
    st.recursive(
        _json_scalars, lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner)
    ).map(_to_payload),
    st.binary(max_size=64),
    st.text(max_size=64).map(str.encode),
    st.integers(1, 5000).map(lambda n: b"[" * n),  # deep nesting
    st.builds(
        lambda pad: b'{"action": "stop", "request_id": "' + b"x" * pad + b'"}', st.integers(0, 1100)
    ),
)
command_inputs = st.tuples(_payloads, st.booleans())


def check_caregiver_command(case: tuple[bytes, bool]) -> None:
    payload, retained = case
    result = parse_command(payload, retained=retained)
    assert isinstance(result, CaregiverCommand | CommandRefused)
    if isinstance(result, CommandRefused):
        return
    assert not retained, "a retained command was accepted"
    assert len(payload) <= MAX_COMMAND_BYTES
    assert result.action in ALLOWED_ACTIONS
    if result.amount_mmhg is not None:
        assert result.action == "lower_pressure"
        assert not isinstance(result.amount_mmhg, bool)
        assert math.isfinite(result.amount_mmhg)
        assert 0.0 < result.amount_mmhg <= MAX_LOWER_PRESSURE_MMHG


# --- the settings loader -----------------------------------------------------------------------

# Every safety field of the schema and its Bound; the fuzzer tries values on both sides of each.
SAFETY_FIELDS: dict[tuple[str, str], hard.Bound] = {
    ("pressure", "cap_mmhg"): hard.PRESSURE_CAP_MMHG,
    ("pressure", "ramp_mmhg_per_s"): hard.PRESSURE_RAMP_MMHG_PER_S,
    ("heater", "target_c"): hard.HEATER_TARGET_C,
    ("heater", "cutoff_c"): hard.HEATER_CUTOFF_C,
    ("heater", "reenable_margin_c"): hard.HEATER_REENABLE_MARGIN_C,
    ("heater", "min_off_s"): hard.HEATER_MIN_OFF_S,
    ("heater", "latch_c"): hard.LATCH_C,
    ("heater", "max_heat_minutes"): hard.MAX_HEAT_MIN,
    ("heater", "prediction_horizon_s"): hard.PREDICTION_HORIZON_S,
    ("sensor", "stale_after_s"): hard.STALE_AFTER_S,
    ("sensor", "valid_min_c"): hard.VALID_SKIN_MIN_C,
    ("sensor", "valid_max_c"): hard.VALID_SKIN_MAX_C,
    ("sensor", "max_rate_c_per_s"): hard.MAX_SKIN_RATE_C_PER_S,
    ("session", "max_minutes"): hard.SESSION_MIN,
    ("lease", "duration_s"): hard.LEASE_S,
}
# SafetyLimits attribute, the section/key it comes from, and the unit factor.
EFFECTIVE: dict[str, tuple[tuple[str, str], float]] = {
    "pressure_cap_mmhg": (("pressure", "cap_mmhg"), 1.0),
    "pressure_ramp_mmhg_per_s": (("pressure", "ramp_mmhg_per_s"), 1.0),
    "heater_cutoff_c": (("heater", "cutoff_c"), 1.0),
    "heater_reenable_margin_c": (("heater", "reenable_margin_c"), 1.0),
    "heater_min_off_s": (("heater", "min_off_s"), 1.0),
    "latch_c": (("heater", "latch_c"), 1.0),
    "max_heat_s": (("heater", "max_heat_minutes"), 60.0),
    "prediction_horizon_s": (("heater", "prediction_horizon_s"), 1.0),
    "stale_after_s": (("sensor", "stale_after_s"), 1.0),
    "valid_min_c": (("sensor", "valid_min_c"), 1.0),
    "valid_max_c": (("sensor", "valid_max_c"), 1.0),
    "max_skin_rate_c_per_s": (("sensor", "max_rate_c_per_s"), 1.0),
    "max_session_s": (("session", "max_minutes"), 60.0),
    "lease_s": (("lease", "duration_s"), 1.0),
}


def _values_around(bound: hard.Bound) -> st.SearchStrategy[Any]:
    span = bound.maximum - bound.minimum
    return st.one_of(
        st.sampled_from(
            [
                bound.default,
                bound.minimum,
                bound.maximum,
                bound.minimum - 1e-9,
                bound.maximum + 1e-9,
                bound.maximum + 1,
                bound.minimum - 1,
                -bound.maximum,
                math.nan,
                math.inf,
                -math.inf,
            ]
        ),
        st.floats(bound.minimum - span, bound.maximum + span),
        st.integers(int(bound.minimum) - 5, int(bound.maximum) + 5),
        st.sampled_from([True, False, "60", "", [], {}]),
    )


_other_values: st.SearchStrategy[Any] = st.one_of(
    st.booleans(),
    st.integers(-5, 70000),
    st.floats(allow_nan=True),
    st.text(alphabet=string.printable, max_size=12),
)
# The non-numeric keys worth hitting: profile choice, heater switches, program, MQTT identity.
OTHER_FIELDS: dict[tuple[str, str], st.SearchStrategy[Any]] = {
    ("profile", "name"): st.one_of(st.sampled_from([*PROFILE_NAMES, "none", ""]), _other_values),
    ("heater", "enabled"): st.one_of(st.booleans(), _other_values),
    ("heater", "clinician_approved"): st.one_of(st.booleans(), _other_values),
    ("session", "program"): st.one_of(
        st.sampled_from(["gentle", "standard", "deep"]), _other_values
    ),
    ("mqtt", "device_id"): st.one_of(st.sampled_from(["home", "a/b", "#", ""]), _other_values),
    ("mqtt", "port"): st.one_of(st.integers(-1, 70000), _other_values),
}
_field_values = {key: _values_around(bound) for key, bound in SAFETY_FIELDS.items()} | OTHER_FIELDS


@st.composite
def _settings_dicts(draw: st.DrawFn) -> dict[str, Any]:
    data: dict[str, Any] = {}
    keys = draw(st.lists(st.sampled_from(sorted(_field_values)), max_size=8, unique=True))
    for section, key in keys:
        data.setdefault(section, {})[key] = draw(_field_values[(section, key)])
    if draw(st.booleans()):
        junk_section = draw(st.sampled_from(["pressure", "heater", "nonsense", "profile"]))
        data.setdefault(junk_section, {})[
            draw(st.text(string.ascii_lowercase, min_size=1, max_size=8))
        ] = draw(_other_values)
    return data


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a TOML basic string is a JSON string for these characters
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return (
            "{" + ", ".join(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items()) + "}"
        )
    raise TypeError(value)


def to_toml(data: dict[str, Any]) -> str:
    lines = []
    for section, values in data.items():
        lines.append(f"[{json.dumps(section)}]")
        lines += [f"{json.dumps(k)} = {_toml_value(v)}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


_VALID_BASE = to_toml(
    {"heater": {"target_c": 38.0, "cutoff_c": 40.0}, "pressure": {"cap_mmhg": 60.0}}
)
# Random text, and valid TOML mutated: spliced, truncated, or with characters swapped in.
toml_texts = st.one_of(
    st.text(max_size=200),
    st.builds(
        lambda start, stop, insert: _VALID_BASE[:start] + insert + _VALID_BASE[stop:],
        st.integers(0, len(_VALID_BASE)),
        st.integers(0, len(_VALID_BASE)),
        st.text(alphabet="[]=\"'#.\n 0123456789-+einfatrulsc_x", max_size=12),
    ),
    _settings_dicts().map(to_toml),
)

_env_keys = st.one_of(
    st.sampled_from(
        [f"SOLEGUARD__{section.upper()}__{key.upper()}" for section, key in _field_values]
        + ["SOLEGUARD__", "SOLEGUARD____", "SOLEGUARD__HEATER", "SOLEGUARD__PROFILE__NAME__X"]
    ),
    st.text(string.ascii_uppercase + "_", max_size=20).map(lambda s: "SOLEGUARD__" + s),
)
_env_values = st.one_of(
    st.sampled_from(
        [
            "70",
            "70.1",
            "41.5",
            "nan",
            "inf",
            "-inf",
            "true",
            '"diabetic"',
            "diabetic",
            "[1]",
            "{a=1}",
        ]
    ),
    st.text(max_size=12),
)


@dataclass(frozen=True)
class SettingsCase:
    user: str  # the user's soleguard.toml text
    environ: dict[str, str]
    clinician_profile: str | None  # the text of a clinician's profile file, if any

    def __repr__(self) -> str:  # hypothesis prints this for a falsifying example
        return (
            f"SettingsCase(user={self.user!r}, environ={self.environ!r}, "
            f"clinician_profile={self.clinician_profile!r})"
        )


settings_cases = st.builds(
    SettingsCase,
    user=toml_texts,
    environ=st.dictionaries(_env_keys, _env_values, max_size=3),
    clinician_profile=st.none() | toml_texts,
)


def _strict_enough(section_key: tuple[str, str], effective: float, given: Any) -> bool:
    """``effective`` is at least as strict as a value someone gave (validated numbers only)."""
    bound = SAFETY_FIELDS[section_key]
    if bound.stricter == "lower":
        return effective <= float(given) + 1e-9
    return effective >= float(given) - 1e-9


_SCRATCH = Path(tempfile.mkdtemp(prefix="soleguard-fuzz-"))


def check_settings(case: SettingsCase) -> None:
    user_file = _SCRATCH / f"user-{os.getpid()}.toml"
    user_text = case.user
    if case.clinician_profile is not None:
        clinician_file = _SCRATCH / f"clinician-{os.getpid()}.toml"
        clinician_file.write_text(case.clinician_profile)
        # Point the user's file at it ([profile] path = ...); a [profile] table already in the
        # text makes the file invalid TOML, which is a case worth having too.
        user_text = user_text + f"\n[profile]\npath = {json.dumps(str(clinician_file))}\n"
    user_file.write_text(user_text)
    try:
        loaded = load_settings(user_file, environ=case.environ)
    except ConfigError:
        return
    limits = effective_limits(loaded)
    # 1. Inside every hard limit, and finite.
    for attribute, (section_key, factor) in EFFECTIVE.items():
        value = getattr(limits, attribute)
        bound = SAFETY_FIELDS[section_key]
        assert math.isfinite(value), attribute
        assert bound.minimum * factor - 1e-9 <= value <= bound.maximum * factor + 1e-9, attribute
    assert limits.heater_target_c <= limits.heater_cutoff_c - limits.heater_reenable_margin_c + 1e-9
    assert limits.heater_cutoff_c < limits.latch_c
    # 2. At least as strict as the user's own values and as every key a profile sets (a
    # profile only speaks for the keys in its file; the rest are the user's choice).
    layers: list[dict[str, Any]] = [loaded.model_dump()]
    profile_files = []
    if loaded.profile.name is not None:
        profile_files.append(profile_path(loaded.profile.name))
    if loaded.profile.path is not None:
        profile_files.append(Path(loaded.profile.path))
    for path in profile_files:
        with path.open("rb") as handle:
            layers.append(tomllib.load(handle))
    for layer in layers:
        for attribute, (section_key, factor) in EFFECTIVE.items():
            section, key = section_key
            if key in layer.get(section, {}):
                assert _strict_enough(
                    section_key, getattr(limits, attribute) / factor, layer[section][key]
                ), f"{attribute} looser than a layer's {section}.{key}"
        if layer.get("heater", {}).get("enabled", True) is False:
            # A profile that switches heat off: only the user's own clinician approval turns it on.
            assert not limits.heater_allowed or loaded.heater.clinician_approved
    if not loaded.heater.enabled:
        assert not limits.heater_allowed


# --- the registry --------------------------------------------------------------------------------


@dataclass
class Target:
    name: str
    strategy: st.SearchStrategy[Any]
    check: Callable[[Any], None]
    calls: int = field(default=0)


def targets() -> list[Target]:
    return [
        Target("decode_command", _frames(structured_commands, 16), check_command),
        Target("MassagerStatus.decode", _frames(structured_statuses, 20), check_status),
        Target("DeviceLimits.decode", _frames(structured_limits, 10), check_limits),
        Target(
            "TemperatureMeasurement.decode", _frames(structured_measurements, 16), check_measurement
        ),
        Target("decode_float", st.one_of(floats_11073, st.binary(max_size=6)), check_float),
        Target("parse_command", command_inputs, check_caregiver_command),
        Target("load_settings", settings_cases, check_settings),
    ]


def run(target: Target, examples: int) -> None:
    """Run ``examples`` hypothesis examples of one target; raises on the first finding."""

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    @given(target.strategy)
    def fuzz(value: Any) -> None:
        target.calls += 1
        target.check(value)

    fuzz()
