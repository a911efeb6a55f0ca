"""The SoleGuard massager protocol, version 1 (docs/protocol.md): commands, status, device limits.

Every value object validates itself in ``__post_init__``, so an out-of-range command cannot exist,
and quantises its fixed-point fields to the wire resolution by rounding to nearest (ties to even):
pressures to 0.1 mmHg, temperatures to 0.01 °C. ``SetPressure(1, 3000, 60.04).target_mmhg`` is
60.0, which is what the firmware receives, so ``decode(encode(x)) == x`` for every ``x``.

The ranges below are the protocol's (what the wire may carry), not safety limits: the supervisor
keeps pressure and heat far inside them.

Decoders raise only :class:`~controller.errors.ProtocolError`, through typed subclasses that carry
the ATT error a firmware answers with (``controller.protocol.errors``). They check, in this order:
version, opcode, length, then fields in wire order, so a frame from a newer protocol version is
refused as "unsupported version" and not as "wrong length".
"""

from __future__ import annotations

import dataclasses
import enum
import struct
from typing import ClassVar, NamedTuple, TypeAlias, TypeVar

from controller.errors import ProtocolError
from controller.protocol import _wire
from controller.protocol.errors import (
    AttErrorCode,
    FieldRangeError,
    FrameLengthError,
    UnknownOpcodeError,
    UnsupportedVersionError,
)

__all__ = [
    "BATTERY_PERCENT_MAX",
    "BATTERY_PERCENT_MIN",
    "COMMAND_HEADER_LENGTH",
    "COMMAND_LENGTHS",
    "DEVICE_LIMITS_LENGTH",
    "LEASE_MS_MAX",
    "LEASE_MS_MIN",
    "LEASE_REMAINING_MS_MAX",
    "LEASE_REMAINING_MS_MIN",
    "PAD_TARGET_C_MAX",
    "PAD_TARGET_C_MIN",
    "PAD_TEMPERATURE_C_MAX",
    "PAD_TEMPERATURE_C_MIN",
    "PRESSURE_MMHG_MAX",
    "PRESSURE_MMHG_MIN",
    "PRESSURE_RESOLUTION_MMHG",
    "PRESSURE_TARGET_MMHG_MAX",
    "PRESSURE_TARGET_MMHG_MIN",
    "PROTOCOL_VERSION",
    "SEQUENCE_MAX",
    "SEQUENCE_MIN",
    "START_PRESSES_MAX",
    "START_PRESSES_MIN",
    "STATUS_LENGTH",
    "STATUS_LENGTH_WITHOUT_START_PRESSES",
    "TEMPERATURE_RESOLUTION_C",
    "AttErrorCode",
    "Command",
    "DeviceLimits",
    "FaultCode",
    "MassagerStatus",
    "Opcode",
    "PartialStatus",
    "RenewLease",
    "SetHeater",
    "SetPressure",
    "StartPressTracker",
    "StatusFlags",
    "Stop",
    "decode_command",
    "decode_status",
    "encode_command",
    "next_sequence",
]

PROTOCOL_VERSION = 1

# Wire resolution of the fixed-point fields.
PRESSURE_RESOLUTION_MMHG = 0.1
TEMPERATURE_RESOLUTION_C = 0.01
_PRESSURE_SCALE = 10
_TEMPERATURE_SCALE = 100

# Command fields.
SEQUENCE_MIN = 0
SEQUENCE_MAX = 0xFFFF
LEASE_MS_MIN = 100
LEASE_MS_MAX = 3000
PRESSURE_TARGET_MMHG_MIN = 0.0
PRESSURE_TARGET_MMHG_MAX = 70.0
PAD_TARGET_C_MIN = 20.0
PAD_TARGET_C_MAX = 45.0
# Status fields.
PRESSURE_MMHG_MIN = 0.0
PRESSURE_MMHG_MAX = 300.0
PAD_TEMPERATURE_C_MIN = -40.0
PAD_TEMPERATURE_C_MAX = 120.0
BATTERY_PERCENT_MIN = 0
BATTERY_PERCENT_MAX = 100
LEASE_REMAINING_MS_MIN = 0
LEASE_REMAINING_MS_MAX = 3000
START_PRESSES_MIN = 0
START_PRESSES_MAX = 0xFF  # uint8, wraps to 0

_UINT8_MAX = 0xFF
_UINT16_MAX = 0xFFFF

_SEQUENCE = _wire.IntField("sequence", SEQUENCE_MIN, SEQUENCE_MAX)
_LEASE_MS = _wire.IntField("lease_ms", LEASE_MS_MIN, LEASE_MS_MAX, "ms")
_TARGET = _wire.ScaledField("target", _PRESSURE_SCALE, 0, 700, "mmHg")
_ON = _wire.IntField("on", 0, 1)
_PAD_TARGET = _wire.ScaledField("pad_target", _TEMPERATURE_SCALE, 2000, 4500, "°C")
_FLAGS = _wire.IntField("flags", 0, _UINT8_MAX)
_LAST_SEQUENCE = _wire.IntField("last_sequence", SEQUENCE_MIN, SEQUENCE_MAX)
_PRESSURE = _wire.ScaledField("pressure", _PRESSURE_SCALE, 0, 3000, "mmHg")
_PRESSURE_TARGET = _wire.ScaledField("pressure_target", _PRESSURE_SCALE, 0, 700, "mmHg")
_PAD_TEMPERATURE = _wire.ScaledField("pad_temperature", _TEMPERATURE_SCALE, -4000, 12000, "°C")
_BATTERY = _wire.IntField("battery", BATTERY_PERCENT_MIN, BATTERY_PERCENT_MAX, "%")
_LEASE_REMAINING = _wire.IntField(
    "lease_remaining", LEASE_REMAINING_MS_MIN, LEASE_REMAINING_MS_MAX, "ms"
)
_FAULT = _wire.IntField("fault", 0, _UINT8_MAX)
_START_PRESSES = _wire.IntField("start_presses", START_PRESSES_MIN, START_PRESSES_MAX)
_MAX_PRESSURE = _wire.ScaledField("max_pressure", _PRESSURE_SCALE, 0, _UINT16_MAX, "mmHg")
_MAX_LEASE_MS = _wire.IntField("max_lease_ms", 0, _UINT16_MAX, "ms")
_CUTOUT = _wire.ScaledField("cutout", _TEMPERATURE_SCALE, 0, _UINT16_MAX, "°C")

_HEADER = struct.Struct("<BBHH")  # version, opcode, sequence, lease_ms
_U16 = struct.Struct("<H")
_HEATER_PAYLOAD = struct.Struct("<BH")  # on, pad_target
# version, flags, last_sequence, pressure, pressure_target, pad_temperature, battery,
# lease_remaining, fault
_STATUS = struct.Struct("<BBHHHhBHB")
_START_PRESSES_BYTE = struct.Struct("<B")  # appended to the frame by a firmware with the button
_LIMITS = struct.Struct("<BHHH")  # version, max_pressure, max_lease_ms, cutout

COMMAND_HEADER_LENGTH = _HEADER.size
# A firmware with a start button sends 15 bytes; one without (or older) sends 14, still accepted
# (docs/protocol.md, "Start button", its compatibility paragraph).
STATUS_LENGTH = _STATUS.size + _START_PRESSES_BYTE.size
STATUS_LENGTH_WITHOUT_START_PRESSES = _STATUS.size
DEVICE_LIMITS_LENGTH = _LIMITS.size


class Opcode(enum.IntEnum):
    """Command opcodes: byte 1 of every Command frame (docs/protocol.md, "Command")."""

    SET_PRESSURE = 0x01
    SET_HEATER = 0x02
    STOP = 0x03
    RENEW_LEASE = 0x04


COMMAND_LENGTHS: dict[Opcode, int] = {
    Opcode.SET_PRESSURE: COMMAND_HEADER_LENGTH + _U16.size,
    Opcode.SET_HEATER: COMMAND_HEADER_LENGTH + _HEATER_PAYLOAD.size,
    Opcode.STOP: COMMAND_HEADER_LENGTH,
    Opcode.RENEW_LEASE: COMMAND_HEADER_LENGTH,
}


class StatusFlags(enum.IntFlag):
    """Bits of the Status ``flags`` byte (docs/protocol.md, "Status"); unknown bits are ignored."""

    HEATER_ENERGISED = 0x01
    HEATER_ENABLED = 0x02
    LEASE_ACTIVE = 0x04
    CUTOUT_LATCHED = 0x08
    RELIEF_OPEN = 0x10
    BATTERY_LOW = 0x20


_KNOWN_FLAGS = int(
    StatusFlags.HEATER_ENERGISED
    | StatusFlags.HEATER_ENABLED
    | StatusFlags.LEASE_ACTIVE
    | StatusFlags.CUTOUT_LATCHED
    | StatusFlags.RELIEF_OPEN
    | StatusFlags.BATTERY_LOW
)


class FaultCode(enum.IntEnum):
    """Status ``fault``; values a newer firmware adds are kept as plain ints."""

    NONE = 0
    THERMAL_CUTOUT = 1
    OVER_PRESSURE = 2
    PAD_SENSOR_FAULT = 3
    REBOOTED = 4

    @classmethod
    def convert(cls, value: int) -> FaultCode | int:
        """The member for ``value``, or ``value`` itself when this version does not know it."""
        try:
            return cls(value)
        except ValueError:
            return value


def next_sequence(sequence: int) -> int:
    """The sequence number after ``sequence``; wraps from 65535 to 0."""
    return (sequence + 1) & SEQUENCE_MAX


def _header(opcode: Opcode, sequence: int, lease_ms: int) -> bytes:
    return _HEADER.pack(PROTOCOL_VERSION, opcode, sequence, lease_ms)


def _check_version(where: str, frame: bytes, minimum_length: int) -> None:
    if not frame:
        raise FrameLengthError(f"{where}: empty frame, expected at least {minimum_length} bytes")
    if frame[0] != PROTOCOL_VERSION:
        raise UnsupportedVersionError(
            f"{where}.version: {frame[0]} unsupported, expected {PROTOCOL_VERSION}"
        )


@dataclasses.dataclass(frozen=True, slots=True)
class SetPressure:
    """Drive the bladder towards ``target_mmhg`` (0.0..70.0, 0.1 mmHg) and (re)start the lease."""

    OPCODE: ClassVar[Opcode] = Opcode.SET_PRESSURE

    sequence: int
    lease_ms: int
    target_mmhg: float

    def __post_init__(self) -> None:
        _SEQUENCE.check("SetPressure", self.sequence)
        _LEASE_MS.check("SetPressure", self.lease_ms)
        object.__setattr__(self, "target_mmhg", _TARGET.quantise("SetPressure", self.target_mmhg))

    def encode(self) -> bytes:
        """The Command frame, little-endian (docs/protocol.md, "Command").

        Header (version, opcode, sequence u16, lease u16 in ms), target u16 (0.1 mmHg): 8 bytes.
        """
        target = _TARGET.to_raw("SetPressure", self.target_mmhg)
        return _header(self.OPCODE, self.sequence, self.lease_ms) + _U16.pack(target)

    @classmethod
    def decode(cls, data: bytes) -> SetPressure:
        """The SetPressure in ``data``.

        Raises a `ProtocolError` subclass for a malformed frame, `ProtocolError` for another opcode.
        """
        return _decode_as(cls, data)


@dataclasses.dataclass(frozen=True, slots=True)
class SetHeater:
    """Let the pad element run towards ``pad_target_c`` (20.00..45.00 °C) or switch it off.

    The firmware ignores ``pad_target_c`` while ``on`` is false, but the field is on the wire and
    must still be in range.
    """

    OPCODE: ClassVar[Opcode] = Opcode.SET_HEATER

    sequence: int
    lease_ms: int
    on: bool
    pad_target_c: float

    def __post_init__(self) -> None:
        _SEQUENCE.check("SetHeater", self.sequence)
        _LEASE_MS.check("SetHeater", self.lease_ms)
        if not isinstance(self.on, bool):
            raise FieldRangeError(
                f"SetHeater.on: {self.on!r} is not a bool", field="on", value=self.on
            )
        object.__setattr__(
            self, "pad_target_c", _PAD_TARGET.quantise("SetHeater", self.pad_target_c)
        )

    def encode(self) -> bytes:
        """The Command frame, little-endian (docs/protocol.md, "Command").

        Header (version, opcode, sequence u16, lease u16 in ms), on u8, pad target u16 (0.01 °C):
        9 bytes.
        """
        pad_target = _PAD_TARGET.to_raw("SetHeater", self.pad_target_c)
        return _header(self.OPCODE, self.sequence, self.lease_ms) + _HEATER_PAYLOAD.pack(
            int(self.on), pad_target
        )

    @classmethod
    def decode(cls, data: bytes) -> SetHeater:
        """The SetHeater in ``data``.

        Raises a `ProtocolError` subclass for a malformed frame, `ProtocolError` for another opcode.
        """
        return _decode_as(cls, data)


@dataclasses.dataclass(frozen=True, slots=True)
class Stop:
    """End the lease and switch pressure and heater off at once. Sent with ``lease_ms`` 0."""

    OPCODE: ClassVar[Opcode] = Opcode.STOP
    lease_ms: ClassVar[int] = 0

    sequence: int

    def __post_init__(self) -> None:
        _SEQUENCE.check("Stop", self.sequence)

    def encode(self) -> bytes:
        """The Command frame, little-endian (docs/protocol.md, "Command").

        Header (version, opcode, sequence u16, lease u16 in ms) with lease 0: 6 bytes.
        """
        return _header(self.OPCODE, self.sequence, 0)

    @classmethod
    def decode(cls, data: bytes) -> Stop:
        """The Stop in ``data``.

        Raises a `ProtocolError` subclass for a malformed frame, `ProtocolError` for another opcode.
        """
        return _decode_as(cls, data)


@dataclasses.dataclass(frozen=True, slots=True)
class RenewLease:
    """Restart the lease without changing any actuator target."""

    OPCODE: ClassVar[Opcode] = Opcode.RENEW_LEASE

    sequence: int
    lease_ms: int

    def __post_init__(self) -> None:
        _SEQUENCE.check("RenewLease", self.sequence)
        _LEASE_MS.check("RenewLease", self.lease_ms)

    def encode(self) -> bytes:
        """The Command frame, little-endian (docs/protocol.md, "Command").

        Header only (version, opcode, sequence u16, lease u16 in ms): 6 bytes.
        """
        return _header(self.OPCODE, self.sequence, self.lease_ms)

    @classmethod
    def decode(cls, data: bytes) -> RenewLease:
        """The RenewLease in ``data``.

        Raises a `ProtocolError` subclass for a malformed frame, `ProtocolError` for another opcode.
        """
        return _decode_as(cls, data)


Command: TypeAlias = SetPressure | SetHeater | Stop | RenewLease


def encode_command(cmd: Command) -> bytes:
    """The bytes to write to the Command characteristic: 6, 8 or 9 (docs/protocol.md, "Command").

    The command was range-checked when it was built; encoding raises nothing.
    """
    return cmd.encode()


def decode_command(data: bytes) -> Command:
    """Decode a Command frame; raises only ProtocolError (see ``att_error_for`` for the ATT code).

    ``STOP`` accepts any ``lease_ms``: the field is specified as 0, but refusing a stop because of
    it would leave the actuators running, so the firmware honours the stop and ignores the field.
    """
    frame = _wire.as_bytes("Command", data)
    _check_version("Command", frame, COMMAND_HEADER_LENGTH)
    # The opcode is read before the length is checked: a frame too short for its header but with
    # an unknown opcode is answered "unknown opcode", the more useful error.
    _wire.check_min_length("Command", frame, 2)
    try:
        opcode = Opcode(frame[1])
    except ValueError:
        raise UnknownOpcodeError(
            f"Command.opcode: 0x{frame[1]:02x} unknown, expected 0x01..0x{max(Opcode):02x}"
        ) from None
    where = _COMMAND_CLASSES[opcode].__name__
    _wire.check_length(where, frame, COMMAND_LENGTHS[opcode])
    _, _, sequence, lease_ms = _HEADER.unpack_from(frame)
    if opcode is Opcode.SET_PRESSURE:
        (raw_target,) = _U16.unpack_from(frame, COMMAND_HEADER_LENGTH)
        _LEASE_MS.check(where, lease_ms)
        return SetPressure(sequence, lease_ms, _TARGET.from_raw(where, raw_target))
    if opcode is Opcode.SET_HEATER:
        raw_on, raw_pad_target = _HEATER_PAYLOAD.unpack_from(frame, COMMAND_HEADER_LENGTH)
        _LEASE_MS.check(where, lease_ms)
        _ON.check(where, raw_on)
        return SetHeater(
            sequence, lease_ms, bool(raw_on), _PAD_TARGET.from_raw(where, raw_pad_target)
        )
    if opcode is Opcode.STOP:
        return Stop(sequence)
    return RenewLease(sequence, lease_ms)


_COMMAND_CLASSES: dict[Opcode, type[Command]] = {
    Opcode.SET_PRESSURE: SetPressure,
    Opcode.SET_HEATER: SetHeater,
    Opcode.STOP: Stop,
    Opcode.RENEW_LEASE: RenewLease,
}


_C = TypeVar("_C", SetPressure, SetHeater, Stop, RenewLease)


def _decode_as(cls: type[_C], data: bytes) -> _C:
    command = decode_command(data)
    if not isinstance(command, cls):
        raise ProtocolError(
            f"{cls.__name__}: frame carries opcode {command.OPCODE.name}, "
            f"expected {cls.OPCODE.name}"
        )
    return command


class _StatusFlagsView:
    """The safety flags of a status frame, read the same way from a whole or a partial frame."""

    __slots__ = ()
    flags: StatusFlags

    @property
    def heater_energised(self) -> bool:
        return StatusFlags.HEATER_ENERGISED in self.flags

    @property
    def heater_enabled(self) -> bool:
        return StatusFlags.HEATER_ENABLED in self.flags

    @property
    def lease_active(self) -> bool:
        return StatusFlags.LEASE_ACTIVE in self.flags

    @property
    def cutout_latched(self) -> bool:
        return StatusFlags.CUTOUT_LATCHED in self.flags


@dataclasses.dataclass(frozen=True, slots=True)
class MassagerStatus(_StatusFlagsView):
    """One Status notification (docs/protocol.md, "Status"; 15 bytes on the wire, 14 without
    ``start_presses``).

    Fields, units and wire ranges (construction raises `FieldRangeError` outside them):
    ``last_sequence`` the last command accepted (uint16); ``pressure_mmhg`` measured,
    0.0..300.0 mmHg at 0.1 mmHg; ``pressure_target_mmhg`` the target in force, 0.0..70.0 mmHg;
    ``pad_temperature_c`` -40.00..120.00 °C at 0.01 °C; ``battery_percent`` 0..100;
    ``lease_remaining_ms`` 0..3000 ms; ``start_presses`` the massager's start-button press
    counter, 0..255, wrapping (uint8), or ``None`` for a 14-byte frame from a firmware that does
    not send it (press count unknown). A counter is not a start request by itself: see
    `StartPressTracker`.

    ``flags`` keeps only the defined bits: reserved bits 6-7 are dropped on construction and on
    receipt, as the protocol says. ``fault`` is a FaultCode, or a plain int a newer firmware sent.
    """

    flags: StatusFlags
    last_sequence: int
    pressure_mmhg: float
    pressure_target_mmhg: float
    pad_temperature_c: float
    battery_percent: int
    lease_remaining_ms: int
    fault: FaultCode | int
    start_presses: int | None = None

    def __post_init__(self) -> None:
        name = "MassagerStatus"
        raw_flags = _FLAGS.check(name, self.flags)
        object.__setattr__(self, "flags", StatusFlags(raw_flags & _KNOWN_FLAGS))
        _LAST_SEQUENCE.check(name, self.last_sequence)
        object.__setattr__(self, "pressure_mmhg", _PRESSURE.quantise(name, self.pressure_mmhg))
        object.__setattr__(
            self,
            "pressure_target_mmhg",
            _PRESSURE_TARGET.quantise(name, self.pressure_target_mmhg),
        )
        object.__setattr__(
            self, "pad_temperature_c", _PAD_TEMPERATURE.quantise(name, self.pad_temperature_c)
        )
        _BATTERY.check(name, self.battery_percent)
        _LEASE_REMAINING.check(name, self.lease_remaining_ms)
        fault: object = self.fault
        object.__setattr__(self, "fault", FaultCode.convert(_FAULT.check(name, fault)))
        if self.start_presses is not None:
            _START_PRESSES.check(name, self.start_presses)

    @property
    def relief_open(self) -> bool:
        """True when the over-pressure relief valve is open (flag bit 4)."""
        return StatusFlags.RELIEF_OPEN in self.flags

    @property
    def battery_low(self) -> bool:
        """True when the firmware reports its battery low (flag bit 5)."""
        return StatusFlags.BATTERY_LOW in self.flags

    def encode(self) -> bytes:
        """The Status frame (docs/protocol.md, "Status"), little-endian: 15 bytes, or the 14 of a
        firmware without the start button when ``start_presses`` is ``None``.

        The fields were range-checked when the status was built (`FieldRangeError`).
        """
        name = "MassagerStatus"
        frame = _STATUS.pack(
            PROTOCOL_VERSION,
            int(self.flags),
            self.last_sequence,
            _PRESSURE.to_raw(name, self.pressure_mmhg),
            _PRESSURE_TARGET.to_raw(name, self.pressure_target_mmhg),
            _PAD_TEMPERATURE.to_raw(name, self.pad_temperature_c),
            self.battery_percent,
            self.lease_remaining_ms,
            int(self.fault),
        )
        if self.start_presses is None:
            return frame
        return frame + _START_PRESSES_BYTE.pack(self.start_presses)

    @classmethod
    def decode(cls, data: bytes) -> MassagerStatus:
        """Decode a Status notification; raises only ProtocolError."""
        return cls._from_fields(_unpack_status(data))

    @classmethod
    def _from_fields(cls, fields: _StatusFields) -> MassagerStatus:
        """Range-check unpacked fields; raises FieldRangeError for the first one out of range.

        Each field is checked here once, from its wire integer, in wire order; the result is
        then built without `__post_init__`, which would check and re-quantise every field again
        (most of a decode's cost, run for every status notification). The fields it would
        change are already as it leaves them: reserved flag bits dropped, measurements at wire
        resolution (``raw / scale``), the fault converted. Sequence, flags, fault and start presses
        are whole wire integers of their full width, so they cannot be out of range.
        """
        name = "MassagerStatus"
        values = (
            fields.flags,
            fields.last_sequence,
            _PRESSURE.from_raw(name, fields.raw_pressure),
            _PRESSURE_TARGET.from_raw(name, fields.raw_pressure_target),
            _PAD_TEMPERATURE.from_raw(name, fields.raw_pad_temperature),
            _BATTERY.check(name, fields.battery),
            _LEASE_REMAINING.check(name, fields.lease_remaining),
            fields.fault,
            fields.start_presses,
        )
        status = object.__new__(cls)
        for field_name, value in zip(_STATUS_FIELD_NAMES, values, strict=True):
            object.__setattr__(status, field_name, value)
        return status


_STATUS_FIELD_NAMES = tuple(field.name for field in dataclasses.fields(MassagerStatus))


class _StatusFields(NamedTuple):
    """A whole Status frame's fields as on the wire (measurements raw, not range-checked); the
    flags with reserved bits dropped and the fault as a FaultCode where this version knows it."""

    flags: StatusFlags
    last_sequence: int
    raw_pressure: int
    raw_pressure_target: int
    raw_pad_temperature: int
    battery: int
    lease_remaining: int
    fault: FaultCode | int
    start_presses: int | None


def _unpack_status(data: object) -> _StatusFields:
    """The one unpacking of a Status frame, for whole and partial decoding alike.

    Raises :class:`~controller.errors.ProtocolError` when the frame itself cannot be trusted: not
    bytes, a wrong version, a wrong length (neither 14 nor 15 bytes). Measurements are not
    range-checked here.
    """
    name = "MassagerStatus"
    frame = _wire.as_bytes(name, data)
    _check_version(name, frame, STATUS_LENGTH_WITHOUT_START_PRESSES)
    start_presses: int | None
    if len(frame) == STATUS_LENGTH:
        (start_presses,) = _START_PRESSES_BYTE.unpack_from(frame, _STATUS.size)
    elif len(frame) == STATUS_LENGTH_WITHOUT_START_PRESSES:
        start_presses = None  # a firmware without the start button: press count unknown
    else:
        kind = "truncated" if len(frame) < STATUS_LENGTH_WITHOUT_START_PRESSES else "over-long"
        raise FrameLengthError(
            f"{name}: {kind} frame of {len(frame)} bytes, expected "
            f"{STATUS_LENGTH_WITHOUT_START_PRESSES} or {STATUS_LENGTH}"
        )
    _, flags, last_sequence, pressure, target, pad, battery, lease, fault = _STATUS.unpack_from(
        frame
    )
    return _StatusFields(
        StatusFlags(flags & _KNOWN_FLAGS),
        last_sequence,
        pressure,
        target,
        pad,
        battery,
        lease,
        FaultCode.convert(fault),
        start_presses,
    )


@dataclasses.dataclass(frozen=True, slots=True)
class PartialStatus(_StatusFlagsView):
    """A Status notification with at least one measurement out of its protocol range.

    The frame is whole (right version, right length) but a sensor behind it sends nonsense,
    e.g. a pressure of 0xFFFF. Its flags, fault byte and sequence carry no range and are kept:
    a cut-out latched or a heater energised must reach the supervisor even when the pressure
    field beside it is garbage (FAULTS.md class 7). Each measurement is ``None`` when out of
    range; ``invalid_fields`` names them, in wire order, with the protocol's field names.
    ``start_presses`` is kept as well (a whole uint8, never out of range; ``None`` in a 14-byte
    frame), so a press is not lost behind a bad measurement.
    """

    flags: StatusFlags
    last_sequence: int
    pressure_mmhg: float | None
    pressure_target_mmhg: float | None
    pad_temperature_c: float | None
    battery_percent: int | None
    lease_remaining_ms: int | None
    fault: FaultCode | int
    invalid_fields: tuple[str, ...]
    start_presses: int | None = None


def _in_range_scaled(field: _wire.ScaledField, raw: int) -> float | None:
    return raw / field.scale if field.raw_low <= raw <= field.raw_high else None


def _in_range_int(field: _wire.IntField, raw: int) -> int | None:
    return raw if field.low <= raw <= field.high else None


def decode_status(data: bytes) -> MassagerStatus | PartialStatus:
    """Decode a Status notification, keeping its safety fields whatever its measurements say.

    Returns a :class:`MassagerStatus` when every field is in range, else a
    :class:`PartialStatus` with the out-of-range measurements as ``None``. Raises
    :class:`~controller.errors.ProtocolError` only when the frame itself cannot be trusted:
    not bytes, a wrong version, a wrong length (neither 14 nor 15 bytes).
    """
    fields = _unpack_status(data)
    try:
        return MassagerStatus._from_fields(fields)
    except FieldRangeError:
        pass
    values = {
        _PRESSURE.name: _in_range_scaled(_PRESSURE, fields.raw_pressure),
        _PRESSURE_TARGET.name: _in_range_scaled(_PRESSURE_TARGET, fields.raw_pressure_target),
        _PAD_TEMPERATURE.name: _in_range_scaled(_PAD_TEMPERATURE, fields.raw_pad_temperature),
        _BATTERY.name: _in_range_int(_BATTERY, fields.battery),
        _LEASE_REMAINING.name: _in_range_int(_LEASE_REMAINING, fields.lease_remaining),
    }
    battery_value = values[_BATTERY.name]
    lease_value = values[_LEASE_REMAINING.name]
    return PartialStatus(
        flags=fields.flags,
        last_sequence=fields.last_sequence,
        pressure_mmhg=values[_PRESSURE.name],
        pressure_target_mmhg=values[_PRESSURE_TARGET.name],
        pad_temperature_c=values[_PAD_TEMPERATURE.name],
        battery_percent=None if battery_value is None else int(battery_value),
        lease_remaining_ms=None if lease_value is None else int(lease_value),
        fault=fields.fault,
        invalid_fields=tuple(name for name, value in values.items() if value is None),
        start_presses=fields.start_presses,
    )


# Serial-number arithmetic on the uint8 counter (RFC 1982): a frame whose counter is 1..127 ahead
# of the last one counted shows new presses; 128..255 ahead is a frame older than that one (a
# replayed or reordered notification), not 128 or more presses: the firmware notifies at once on
# every press, so a human cannot press 128 times between two frames the controller receives.
_START_PRESSES_WINDOW = (START_PRESSES_MAX + 1) // 2


class StartPressTracker:
    """Turns the Status ``start_presses`` counter into new start-button presses, each once.

    ``StartPressTracker()``, then `observe` for each decoded Status of one connection, in arrival
    order; `reset` when the link is (re)established. Pure and synchronous: no clock, no I/O.
    The rules (docs/protocol.md, "Start button"):

    - the first frame with a counter after a reset only sets the baseline: a counter that
      changed while the link was down (or a firmware restart, which ends the link and restarts
      the counter at 0) never counts as a press by itself;
    - a frame repeating the baseline (a duplicated notification, a periodic status) counts 0;
    - a counter 1..127 ahead, modulo 256, counts that many presses and becomes the baseline;
    - a counter 128..255 ahead is an older frame (a replay): it counts 0 and changes nothing;
    - a frame without the counter (``None``, a firmware without the button) counts 0 and
      changes nothing.
    """

    __slots__ = ("_baseline",)

    def __init__(self) -> None:
        self._baseline: int | None = None

    @property
    def baseline(self) -> int | None:
        """The last counter value counted (0..255), or ``None`` before the first frame."""
        return self._baseline

    def reset(self) -> None:
        """Forget the baseline: the link was (re)established, the next frame sets it again."""
        self._baseline = None

    def observe(self, status: MassagerStatus | PartialStatus) -> int:
        """The presses ``status`` shows that no earlier frame showed: 0..127.

        A controller treats any non-zero result as one start request (presses between two
        frames are one wish, not several sessions). Raises nothing: every decoded status is
        acceptable input.
        """
        counter = status.start_presses
        if counter is None:
            return 0
        if self._baseline is None:
            self._baseline = counter
            return 0
        ahead = (counter - self._baseline) % (START_PRESSES_MAX + 1)
        if ahead == 0 or ahead >= _START_PRESSES_WINDOW:
            return 0
        self._baseline = counter
        return ahead


@dataclasses.dataclass(frozen=True, slots=True)
class DeviceLimits:
    """The Device limits characteristic (docs/protocol.md, "Device limits"; 7 bytes).

    The firmware's own ceilings, compared with the controller's settings, never relied on:
    ``max_pressure_mmhg`` 0.0..6553.5 mmHg at 0.1 mmHg, ``max_lease_ms`` 0..65535 ms,
    ``cutout_c`` the pad cut-out, 0.00..655.35 °C at 0.01 °C. Construction raises
    `FieldRangeError` outside these (uint16) ranges.
    """

    max_pressure_mmhg: float
    max_lease_ms: int
    cutout_c: float

    def __post_init__(self) -> None:
        name = "DeviceLimits"
        object.__setattr__(
            self, "max_pressure_mmhg", _MAX_PRESSURE.quantise(name, self.max_pressure_mmhg)
        )
        _MAX_LEASE_MS.check(name, self.max_lease_ms)
        object.__setattr__(self, "cutout_c", _CUTOUT.quantise(name, self.cutout_c))

    def encode(self) -> bytes:
        """The Device limits frame (docs/protocol.md, "Device limits"), little-endian.

        The fields were range-checked when the limits were built (`FieldRangeError`).
        """
        name = "DeviceLimits"
        return _LIMITS.pack(
            PROTOCOL_VERSION,
            _MAX_PRESSURE.to_raw(name, self.max_pressure_mmhg),
            self.max_lease_ms,
            _CUTOUT.to_raw(name, self.cutout_c),
        )

    @classmethod
    def decode(cls, data: bytes) -> DeviceLimits:
        """Decode the Device limits value; raises only ProtocolError."""
        name = "DeviceLimits"
        frame = _wire.as_bytes(name, data)
        _check_version(name, frame, DEVICE_LIMITS_LENGTH)
        _wire.check_length(name, frame, DEVICE_LIMITS_LENGTH)
        _, raw_max_pressure, max_lease_ms, raw_cutout = _LIMITS.unpack(frame)
        return cls(
            max_pressure_mmhg=_MAX_PRESSURE.from_raw(name, raw_max_pressure),
            max_lease_ms=max_lease_ms,
            cutout_c=_CUTOUT.from_raw(name, raw_cutout),
        )
