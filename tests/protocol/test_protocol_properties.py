"""Hypothesis properties: round trips on quantised values, and decoders raise only ProtocolError."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import math
import struct
from typing import TYPE_CHECKING

from hypothesis import given, settings
from hypothesis import strategies as st

from controller.errors import ProtocolError
from controller.protocol import (
    DeviceLimits,
    FloatSpecial,
    MassagerStatus,
    RenewLease,
    SetHeater,
    SetPressure,
    Stop,
    TemperatureMeasurement,
    TemperatureUnit,
    classify_float,
    decode_command,
    decode_float,
    decode_status,
    encode_command,
    encode_float,
)

if TYPE_CHECKING:
    from collections.abc import Callable

# No deadline: the machine is shared and noisy, and speed is measured in bench/, not here.
PROPERTY = settings(deadline=None, max_examples=300)

sequences = st.integers(0, 0xFFFF)
leases = st.integers(100, 3000)

set_pressures = st.builds(SetPressure, sequences, leases, st.floats(0.0, 70.0))
set_heaters = st.builds(SetHeater, sequences, leases, st.booleans(), st.floats(20.0, 45.0))
stops = st.builds(Stop, sequences)
renew_leases = st.builds(RenewLease, sequences, leases)
commands = st.one_of(set_pressures, set_heaters, stops, renew_leases)

statuses = st.builds(
    MassagerStatus,
    flags=st.integers(0, 0xFF),
    last_sequence=sequences,
    pressure_mmhg=st.floats(0.0, 300.0),
    pressure_target_mmhg=st.floats(0.0, 70.0),
    pad_temperature_c=st.floats(-40.0, 120.0),
    battery_percent=st.integers(0, 100),
    lease_remaining_ms=st.integers(0, 3000),
    fault=st.integers(0, 0xFF),
    start_presses=st.none() | st.integers(0, 0xFF),
)

limits = st.builds(
    DeviceLimits,
    max_pressure_mmhg=st.floats(0.0, 6553.5),
    max_lease_ms=st.integers(0, 0xFFFF),
    cutout_c=st.floats(0.0, 655.35),
)

temperature_values = st.one_of(
    st.floats(-1000.0, 1000.0),
    st.floats(-80000.0, 80000.0),
    st.sampled_from([math.nan, math.inf, -math.inf]),
)
measurements = st.builds(
    TemperatureMeasurement,
    value=temperature_values,
    unit=st.sampled_from(TemperatureUnit),
    timestamp=st.none()
    | st.datetimes(datetime.datetime(1582, 1, 1), datetime.datetime(9999, 12, 31, 23, 59, 59)),
    temperature_type=st.none() | st.integers(0, 0xFF),
)
special_measurements = st.builds(
    lambda special: TemperatureMeasurement(
        math.inf
        if special is FloatSpecial.POSITIVE_INFINITY
        else -math.inf
        if special is FloatSpecial.NEGATIVE_INFINITY
        else math.nan,
        special=special,
    ),
    st.sampled_from(FloatSpecial),
)

DECODERS: list[Callable[[bytes], object]] = [
    decode_command,
    MassagerStatus.decode,
    decode_status,
    DeviceLimits.decode,
    TemperatureMeasurement.decode,
    decode_float,
]


@PROPERTY
@given(commands)
def test_command_round_trip(command: SetPressure | SetHeater | Stop | RenewLease) -> None:
    assert decode_command(encode_command(command)) == command
    assert type(command).decode(command.encode()) == command


@PROPERTY
@given(statuses)
def test_status_round_trip(status: MassagerStatus) -> None:
    assert MassagerStatus.decode(status.encode()) == status


@PROPERTY
@given(limits)
def test_limits_round_trip(value: DeviceLimits) -> None:
    assert DeviceLimits.decode(value.encode()) == value


@PROPERTY
@given(st.one_of(measurements, special_measurements))
def test_measurement_round_trip(measurement: TemperatureMeasurement) -> None:
    decoded = TemperatureMeasurement.decode(measurement.encode())
    assert decoded == measurement
    assert decoded.special is measurement.special


@PROPERTY
@given(st.floats(allow_nan=False, allow_infinity=False), st.integers(-6, 3))
def test_encode_float_is_within_half_a_unit(value: float, exponent: int) -> None:
    try:
        encoded = encode_float(value, exponent)
    except ProtocolError:
        return
    assert (
        abs(decode_float(encoded) - value) <= 10.0**exponent / 2 * (1 + 1e-9) + abs(value) * 1e-15
    )


@PROPERTY
@given(st.binary(min_size=4, max_size=4))
def test_decode_float_agrees_with_classify(data: bytes) -> None:
    value = decode_float(data)
    special = classify_float(data)
    if special is None:
        assert math.isfinite(value)
    elif special is FloatSpecial.POSITIVE_INFINITY:
        assert value == math.inf
    elif special is FloatSpecial.NEGATIVE_INFINITY:
        assert value == -math.inf
    else:
        assert math.isnan(value)


def _decodes_or_protocol_error(data: bytes) -> None:
    for decode in DECODERS:
        with contextlib.suppress(ProtocolError):
            decode(data)


@PROPERTY
@given(st.binary(max_size=32))
def test_decoders_raise_only_protocol_error_on_arbitrary_bytes(data: bytes) -> None:
    _decodes_or_protocol_error(data)


# Frames that pass the version check and have plausible lengths reach the field checks, which
# arbitrary bytes rarely do.
plausible_commands = st.builds(
    lambda opcode, length, body: bytes((1, opcode)) + body[: max(0, length - 2)],
    st.integers(0, 6),
    st.integers(2, 10),
    st.binary(min_size=8, max_size=8),
)
# 14 bytes (a firmware without the start button) and 15 (with its press counter).
plausible_statuses = st.binary(min_size=13, max_size=14).map(lambda body: b"\x01" + body)
plausible_limits = st.binary(min_size=6, max_size=6).map(lambda body: b"\x01" + body)
plausible_measurements = st.builds(
    lambda flags, body, length: bytes((flags,)) + body[:length],
    st.integers(0, 0xFF),
    st.binary(min_size=12, max_size=12),
    st.integers(3, 12),
)


@PROPERTY
@given(st.one_of(plausible_commands, plausible_statuses, plausible_limits, plausible_measurements))
def test_decoders_raise_only_protocol_error_on_plausible_frames(data: bytes) -> None:
    _decodes_or_protocol_error(data)


@PROPERTY
@given(plausible_commands)
def test_accepted_commands_re_encode_to_the_same_bytes(data: bytes) -> None:
    try:
        command = decode_command(data)
    except ProtocolError:
        return
    if isinstance(command, Stop):
        # STOP ignores a non-zero lease_ms on receipt and always sends 0.
        assert command.encode() == data[:4] + b"\x00\x00"
    else:
        assert command.encode() == data


@PROPERTY
@given(plausible_statuses)
def test_accepted_status_re_encodes_with_reserved_bits_cleared(data: bytes) -> None:
    try:
        status = MassagerStatus.decode(data)
    except ProtocolError:
        return
    assert status.encode() == data[:1] + bytes((data[1] & 0x3F,)) + data[2:]


@PROPERTY
@given(plausible_measurements)
def test_accepted_measurements_survive_a_round_trip(data: bytes) -> None:
    try:
        measurement = TemperatureMeasurement.decode(data)
    except ProtocolError:
        return
    assert TemperatureMeasurement.decode(measurement.encode()) == measurement


@PROPERTY
@given(st.integers(0, 700))
def test_pressure_wire_values_are_exact(raw: int) -> None:
    frame = struct.pack("<BBHHH", 1, 1, 0, 3000, raw)
    command = decode_command(frame)
    assert isinstance(command, SetPressure)
    assert command.target_mmhg == raw / 10
    assert command.encode() == frame


@PROPERTY
@given(plausible_statuses)
def test_a_decoded_status_is_what_the_validating_constructor_would_build(data: bytes) -> None:
    # Decoding checks each field once from the wire and skips `__post_init__`; running the
    # dataclass's own validation again (`replace`) must change nothing, not even a field's type.
    try:
        status = MassagerStatus.decode(data)
    except ProtocolError:
        return
    rebuilt = dataclasses.replace(status)
    assert rebuilt == status
    names = [field.name for field in dataclasses.fields(status)]
    assert [type(getattr(rebuilt, n)) for n in names] == [type(getattr(status, n)) for n in names]
