"""Measurement Interval (0x2A21) and Temperature Type (0x2A1D): bytes in, values out, and back."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.errors import ProtocolError
from controller.protocol import TemperatureType
from controller.protocol.hts import (
    decode_measurement_interval,
    decode_temperature_type,
    describe_temperature_type,
    encode_measurement_interval,
    is_skin_site,
)


@given(st.integers(0, 0xFFFF))
def test_measurement_interval_round_trips(seconds: int) -> None:
    assert decode_measurement_interval(encode_measurement_interval(seconds)) == seconds


def test_measurement_interval_is_little_endian_seconds() -> None:
    assert encode_measurement_interval(5) == b"\x05\x00"
    assert decode_measurement_interval(b"\x2c\x01") == 300


@pytest.mark.parametrize("data", [b"", b"\x01", b"\x01\x00\x00"])
def test_measurement_interval_of_the_wrong_length_is_a_protocol_error(data: bytes) -> None:
    with pytest.raises(ProtocolError, match="MeasurementInterval"):
        decode_measurement_interval(data)


@pytest.mark.parametrize("seconds", [-1, 0x10000])
def test_measurement_interval_out_of_range_names_the_field(seconds: int) -> None:
    with pytest.raises(ProtocolError, match=r"MeasurementInterval.interval: .* outside 0..65535"):
        encode_measurement_interval(seconds)


def test_temperature_type_keeps_unknown_values() -> None:
    assert decode_temperature_type(b"\x08") is TemperatureType.TOE
    assert decode_temperature_type(b"\x2a") == 42
    with pytest.raises(ProtocolError):
        decode_temperature_type(b"")


@pytest.mark.parametrize(
    ("site", "skin"),
    [
        (TemperatureType.TOE, True),
        (TemperatureType.FINGER, True),
        (TemperatureType.ARMPIT, True),
        (TemperatureType.BODY, True),
        (TemperatureType.EAR, False),
        (TemperatureType.MOUTH, False),
        (TemperatureType.RECTUM, False),
        (TemperatureType.TYMPANUM, False),
        (TemperatureType.GASTROINTESTINAL_TRACT, False),
        (42, False),
    ],
)
def test_skin_sites(site: TemperatureType | int, skin: bool) -> None:
    assert is_skin_site(site) is skin


def test_sites_are_described_in_words() -> None:
    assert describe_temperature_type(TemperatureType.GASTROINTESTINAL_TRACT) == (
        "gastrointestinal tract"
    )
    assert describe_temperature_type(42) == "type 42"
