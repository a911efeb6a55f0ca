"""Behaviour of the codecs that the golden files do not show: vectors, helpers, validation."""

from __future__ import annotations

import dataclasses
import datetime
import math
import re

import pytest

from controller.errors import ProtocolError
from controller.protocol import (
    BATTERY_SERVICE_UUID,
    HEALTH_THERMOMETER_SERVICE_UUID,
    MASSAGER_COMMAND_UUID,
    MASSAGER_SERVICE_UUID,
    STATUS_LENGTH,
    STATUS_LENGTH_WITHOUT_START_PRESSES,
    TEMPERATURE_MEASUREMENT_UUID,
    AttErrorCode,
    FaultCode,
    FieldRangeError,
    FloatSpecial,
    MassagerStatus,
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
    decode_float,
    encode_float,
    next_sequence,
    uuids,
)

# Published IEEE 11073 FLOAT vectors: (bytes, value, exponent).
PUBLISHED_VECTORS = [
    ("87 D6 12 FE", 12345.67, -2),
    ("6C 01 00 FF", 36.4, -1),
    ("01 00 00 00", 1.0, 0),
]


@pytest.mark.parametrize(("hex_bytes", "value", "exponent"), PUBLISHED_VECTORS)
def test_published_float_vectors_decode(hex_bytes: str, value: float, exponent: int) -> None:
    # Half a unit of the last place the exponent can express.
    assert decode_float(bytes.fromhex(hex_bytes)) == pytest.approx(value, abs=10**exponent / 2)


@pytest.mark.parametrize(("hex_bytes", "value", "exponent"), PUBLISHED_VECTORS)
def test_published_float_vectors_encode(hex_bytes: str, value: float, exponent: int) -> None:
    assert encode_float(value, exponent) == bytes.fromhex(hex_bytes)


@pytest.mark.parametrize(
    ("value", "special"),
    [
        (math.nan, FloatSpecial.NAN),
        (math.inf, FloatSpecial.POSITIVE_INFINITY),
        (-math.inf, FloatSpecial.NEGATIVE_INFINITY),
    ],
)
def test_encode_float_specials(value: float, special: FloatSpecial) -> None:
    assert classify_float(encode_float(value, -1)) is special


def test_encode_float_overflow_names_the_value() -> None:
    with pytest.raises(ProtocolError, match=r"123456789\.0"):
        encode_float(123456789.0)


def test_encode_float_rejects_exponent_outside_int8() -> None:
    with pytest.raises(ProtocolError, match="exponent 128"):
        encode_float(1.0, 128)


def test_uuids_are_bleak_normalised() -> None:
    assert HEALTH_THERMOMETER_SERVICE_UUID == "00001809-0000-1000-8000-00805f9b34fb"
    assert TEMPERATURE_MEASUREMENT_UUID == "00002a1c-0000-1000-8000-00805f9b34fb"
    assert BATTERY_SERVICE_UUID == "0000180f-0000-1000-8000-00805f9b34fb"
    assert MASSAGER_SERVICE_UUID == "5e7e0001-0c1a-4b8e-9f3d-6a2c1b0e4d5f"
    assert MASSAGER_COMMAND_UUID.startswith("5e7e0002")
    names = [name for name in dir(uuids) if name.endswith("_UUID")]
    assert len(names) == 15
    assert uuids.MEASUREMENT_INTERVAL_UUID == "00002a21-0000-1000-8000-00805f9b34fb"
    for name in names:
        value = getattr(uuids, name)
        assert value == value.lower()
        assert len(value) == 36


def test_fahrenheit_to_celsius() -> None:
    reading = TemperatureMeasurement(98.6, TemperatureUnit.FAHRENHEIT)
    assert reading.to_celsius() == pytest.approx(37.0)
    assert TemperatureMeasurement(36.4).to_celsius() == 36.4


@pytest.mark.parametrize("unit", list(TemperatureUnit))
def test_to_celsius_passes_specials_through(unit: TemperatureUnit) -> None:
    assert math.isnan(TemperatureMeasurement(math.nan, unit).to_celsius())
    assert TemperatureMeasurement(math.inf, unit).to_celsius() == math.inf
    assert TemperatureMeasurement(-math.inf, unit).to_celsius() == -math.inf


def test_nres_is_told_apart_from_a_real_reading_and_from_nan() -> None:
    nres = TemperatureMeasurement.decode(bytes.fromhex("00 00 00 80 00"))
    assert nres.special is FloatSpecial.NRES
    assert not nres.is_valid
    assert math.isnan(nres.value)
    nan = TemperatureMeasurement.decode(bytes.fromhex("00 ff ff 7f 00"))
    assert nan.special is FloatSpecial.NAN
    assert nan != nres
    assert TemperatureMeasurement.decode(bytes.fromhex("00 6c 01 00 ff")).is_valid


def test_special_contradicting_value_is_refused() -> None:
    with pytest.raises(FieldRangeError, match="contradicts special NRES"):
        TemperatureMeasurement(36.4, special=FloatSpecial.NRES)


def test_measurement_quantises_to_hundredths_and_seconds() -> None:
    reading = TemperatureMeasurement(
        36.4271, timestamp=datetime.datetime(2024, 5, 1, 8, 30, 15, 999_999)
    )
    assert reading.value == 36.43
    assert reading.timestamp == datetime.datetime(2024, 5, 1, 8, 30, 15)


def test_unknown_temperature_type_is_kept_and_known_int_becomes_member() -> None:
    assert TemperatureMeasurement(36.0, temperature_type=42).temperature_type == 42
    assert TemperatureMeasurement(36.0, temperature_type=8).temperature_type is TemperatureType.TOE
    with pytest.raises(FieldRangeError, match=re.escape("temperature_type: 256 outside 0..255")):
        TemperatureMeasurement(36.0, temperature_type=256)


def test_partially_unknown_date_decodes_without_timestamp() -> None:
    frame = bytes.fromhex("02 6c 01 00 ff") + bytes.fromhex("e8 07 00 01 08 1e 0f")  # month 0
    assert TemperatureMeasurement.decode(frame).timestamp is None


def test_value_objects_are_frozen() -> None:
    command = SetPressure(1, 3000, 60.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        command.target_mmhg = 70.0  # type: ignore[misc]


def test_out_of_range_command_cannot_exist() -> None:
    with pytest.raises(
        ProtocolError, match=r"SetPressure\.target: 75\.0 mmHg outside 0\.0\.\.70\.0"
    ):
        SetPressure(1, 3000, 75.0)
    message = "SetHeater.lease_ms: 3500 ms outside 100..3000"
    with pytest.raises(ProtocolError, match=re.escape(message)):
        SetHeater(1, 3500, True, 38.0)
    with pytest.raises(ProtocolError, match="not a bool"):
        SetHeater(1, 3000, 1, 38.0)  # type: ignore[arg-type]
    with pytest.raises(ProtocolError, match="is not an integer"):
        RenewLease(1, 3000.0)  # type: ignore[arg-type]


def test_command_quantised_on_construction() -> None:
    assert SetPressure(1, 3000, 70.04).target_mmhg == 70.0
    assert SetHeater(1, 3000, True, 38.005).pad_target_c in {38.0, 38.01}


def test_class_decode_refuses_other_opcodes() -> None:
    with pytest.raises(ProtocolError, match="opcode STOP, expected SET_PRESSURE"):
        SetPressure.decode(Stop(5).encode())
    assert Stop.decode(Stop(5).encode()) == Stop(5)


def test_sequence_wraps() -> None:
    assert next_sequence(7) == 8
    assert next_sequence(65535) == 0


def test_status_properties_and_reserved_bits() -> None:
    status = MassagerStatus(
        flags=StatusFlags.CUTOUT_LATCHED | StatusFlags.BATTERY_LOW | 0xC0,
        last_sequence=1,
        pressure_mmhg=0.0,
        pressure_target_mmhg=0.0,
        pad_temperature_c=44.0,
        battery_percent=10,
        lease_remaining_ms=0,
        fault=FaultCode.THERMAL_CUTOUT,
        start_presses=255,
    )
    assert status.flags == StatusFlags.CUTOUT_LATCHED | StatusFlags.BATTERY_LOW
    assert status.cutout_latched
    assert status.battery_low
    assert not status.heater_energised
    assert not status.heater_enabled
    assert not status.lease_active
    assert not status.relief_open
    assert len(status.encode()) == STATUS_LENGTH <= 20  # fits the default ATT MTU payload
    # A firmware without the start button sends the older, shorter frame.
    older = dataclasses.replace(status, start_presses=None)
    assert len(older.encode()) == STATUS_LENGTH_WITHOUT_START_PRESSES == STATUS_LENGTH - 1


def test_att_error_mapping() -> None:
    assert AttErrorCode.CUTOUT_LATCHED.value == 0x83
    assert att_error_for(ProtocolError("plain")) == AttErrorCode.VALUE_OUT_OF_RANGE


def test_nan_measurements_compare_equal() -> None:
    assert TemperatureMeasurement(float("nan")) == TemperatureMeasurement(math.nan)
    assert hash(TemperatureMeasurement(float("nan"))) == hash(TemperatureMeasurement(math.nan))
