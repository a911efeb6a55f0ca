"""Golden cases: every file in tests/golden/ is one case (format in tests/golden/README.md).

Encode must give the exact bytes, decode must give the value back or the typed error.
"""

from __future__ import annotations

import datetime
import json
import math
import pathlib
from typing import Any, Protocol

import pytest

from controller import protocol
from controller.protocol import (
    DeviceLimits,
    FaultCode,
    FloatSpecial,
    MassagerStatus,
    Opcode,
    PartialStatus,
    ProtocolError,
    RenewLease,
    SetHeater,
    SetPressure,
    StatusFlags,
    Stop,
    TemperatureMeasurement,
    TemperatureType,
    TemperatureUnit,
    att_error_for,
    classify_float,
    decode_command,
    decode_float,
    decode_status,
    encode_float,
)

GOLDEN_DIR = pathlib.Path(__file__).parent.parent / "golden"
CASE_FILES = sorted(GOLDEN_DIR.glob("*.json"))
KINDS = {"command", "status", "limits", "temperature", "float"}
DIRECTIONS = {"both", "encode", "decode"}


class _Encodable(Protocol):
    def encode(self) -> bytes: ...


def _load(path: pathlib.Path) -> dict[str, Any]:
    case: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return case


def _number(raw: float | str) -> float:
    """JSON has no NaN or infinity; the golden files spell them "nan", "inf", "-inf"."""
    return float(raw)


def _build(kind: str, value: dict[str, Any]) -> _Encodable:
    """The value object a case describes (construction itself may raise ProtocolError)."""
    fields = {key: item for key, item in value.items() if key != "type"}
    type_name = value["type"]
    if kind == "command":
        command_class = {
            "SetPressure": SetPressure,
            "SetHeater": SetHeater,
            "Stop": Stop,
            "RenewLease": RenewLease,
        }[type_name]
        for key in ("target_mmhg", "pad_target_c"):
            if key in fields:
                fields[key] = _number(fields[key])
        command: _Encodable = command_class(**fields)
        return command
    if kind == "status":
        flags = StatusFlags(0)
        for name in fields["flags"]:
            flags |= StatusFlags[name]
        fault = fields["fault"]
        return MassagerStatus(
            flags=flags,
            last_sequence=fields["last_sequence"],
            pressure_mmhg=_number(fields["pressure_mmhg"]),
            pressure_target_mmhg=_number(fields["pressure_target_mmhg"]),
            pad_temperature_c=_number(fields["pad_temperature_c"]),
            battery_percent=fields["battery_percent"],
            lease_remaining_ms=fields["lease_remaining_ms"],
            fault=FaultCode[fault] if isinstance(fault, str) else fault,
            # Absent: a 14-byte frame from a firmware without the start button.
            start_presses=fields.get("start_presses"),
        )
    if kind == "limits":
        return DeviceLimits(
            max_pressure_mmhg=_number(fields["max_pressure_mmhg"]),
            max_lease_ms=fields["max_lease_ms"],
            cutout_c=_number(fields["cutout_c"]),
        )
    if kind == "temperature":
        stamp = fields["timestamp"]
        temperature_type = fields["temperature_type"]
        special = fields["special"]
        return TemperatureMeasurement(
            value=_number(fields["value"]),
            unit=TemperatureUnit(fields["unit"]),
            timestamp=None if stamp is None else datetime.datetime.fromisoformat(stamp),
            temperature_type=TemperatureType[temperature_type]
            if isinstance(temperature_type, str)
            else temperature_type,
            special=None if special is None else FloatSpecial[special],
        )
    raise AssertionError(f"unknown kind {kind!r}")


def _encode(kind: str, value: dict[str, Any]) -> bytes:
    if kind == "float":
        return encode_float(_number(value["value"]), value["exponent"])
    return _build(kind, value).encode()


def _decode(kind: str, data: bytes) -> object:
    if kind == "command":
        return decode_command(data)
    if kind == "status":
        return MassagerStatus.decode(data)
    if kind == "limits":
        return DeviceLimits.decode(data)
    if kind == "temperature":
        return TemperatureMeasurement.decode(data)
    return decode_float(data)


def _partial(value: dict[str, Any]) -> PartialStatus:
    """The PartialStatus a ``partial`` key describes (null: the field was out of range)."""
    flags = StatusFlags(0)
    for name in value["flags"]:
        flags |= StatusFlags[name]
    fault = value["fault"]

    def number(raw: float | str | None) -> float | None:
        return None if raw is None else _number(raw)

    return PartialStatus(
        flags=flags,
        last_sequence=value["last_sequence"],
        pressure_mmhg=number(value["pressure_mmhg"]),
        pressure_target_mmhg=number(value["pressure_target_mmhg"]),
        pad_temperature_c=number(value["pad_temperature_c"]),
        battery_percent=value["battery_percent"],
        lease_remaining_ms=value["lease_remaining_ms"],
        fault=FaultCode[fault] if isinstance(fault, str) else fault,
        invalid_fields=tuple(value["invalid_fields"]),
        start_presses=value.get("start_presses"),
    )


def _check_error(case: dict[str, Any], exc: ProtocolError) -> None:
    expected = case["error"]
    assert expected == "ProtocolError" or type(exc).__name__ == expected, repr(exc)
    assert expected == "ProtocolError" or isinstance(exc, getattr(protocol, expected))
    assert case["message"] in str(exc)
    if "att_error" in case:
        assert att_error_for(exc) == case["att_error"]


@pytest.mark.parametrize("path", CASE_FILES, ids=[path.stem for path in CASE_FILES])
def test_golden_case(path: pathlib.Path) -> None:
    case = _load(path)
    kind, direction = case["kind"], case["direction"]
    assert kind in KINDS
    assert direction in DIRECTIONS
    expected_bytes = bytes.fromhex(case["bytes"]) if "bytes" in case else None

    if direction in {"both", "encode"}:
        if "error" in case:
            with pytest.raises(ProtocolError) as excinfo:
                _encode(kind, case["value"])
            _check_error(case, excinfo.value)
        else:
            assert _encode(kind, case["value"]).hex(" ") == case["bytes"]

    if direction in {"both", "decode"}:
        assert expected_bytes is not None
        if "error" in case:
            with pytest.raises(ProtocolError) as excinfo:
                _decode(kind, expected_bytes)
            _check_error(case, excinfo.value)
        elif kind == "float":
            decoded = _decode(kind, expected_bytes)
            assert isinstance(decoded, float)
            wanted = _number(case["value"]["value"])
            assert decoded == wanted or (math.isnan(decoded) and math.isnan(wanted))
            special = case["value"]["special"]
            assert classify_float(expected_bytes) == (
                None if special is None else FloatSpecial[special]
            )
        else:
            assert _decode(kind, expected_bytes) == _build(kind, case["value"])
    if "partial" in case:
        # A whole frame whose measurement is out of range keeps its safety fields.
        assert expected_bytes is not None
        assert decode_status(expected_bytes) == _partial(case["partial"])


def test_golden_set_covers_the_protocol() -> None:
    """Deleting the case for an opcode, a special or an error class makes this fail."""
    cases = [_load(path) for path in CASE_FILES]
    round_trips = [case for case in cases if case["direction"] == "both" and "error" not in case]
    command_types = {case["value"]["type"] for case in round_trips if case["kind"] == "command"}
    assert command_types == {"SetPressure", "SetHeater", "Stop", "RenewLease"}
    assert len(command_types) == len(Opcode)
    specials = {
        case["value"]["special"] for case in round_trips if case["kind"] == "temperature"
    } - {None}
    assert specials == {member.name for member in FloatSpecial}
    errors = {case["error"] for case in cases if "error" in case}
    assert errors >= {"FrameLengthError", "UnsupportedVersionError", "UnknownOpcodeError"}
    assert "FieldRangeError" in errors
    assert {case["kind"] for case in cases} == KINDS
    assert any("partial" in case for case in cases)
    # Both status frame lengths: with the start-button counter (wrapping at 255) and without.
    presses = {
        case["value"].get("start_presses") for case in round_trips if case["kind"] == "status"
    }
    assert {None, 0, 255} <= presses
    units = {case["value"]["unit"] for case in round_trips if case["kind"] == "temperature"}
    assert units == {"celsius", "fahrenheit"}


def test_golden_readme_documents_every_key() -> None:
    readme = (GOLDEN_DIR / "README.md").read_text(encoding="utf-8")
    keys = {key for path in CASE_FILES for key in _load(path)}
    for key in keys:
        assert f"`{key}`" in readme, key
