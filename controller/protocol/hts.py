"""Health Thermometer Service (0x1809): Temperature Measurement (0x2A1C), Temperature Type
(0x2A1D) and Measurement Interval (0x2A21).

Bluetooth SIG Health Thermometer Service 1.0, section 3.1::

    flags   uint8   bit 0: 0 Celsius, 1 Fahrenheit; bit 1: timestamp present; bit 2: type present;
                    bits 3-7 reserved (ignored on receipt, sent as 0)
    value   FLOAT   IEEE 11073 32-bit (see ieee11073.py)
    stamp   7 bytes year uint16, month, day, hours, minutes, seconds (optional)
    type    uint8   Temperature Type, 1..9 (optional)

Values are quantised to 0.01 degree (in the measurement's own unit) by rounding to nearest, so a
measurement that exists can always be encoded and compares equal after a round trip. A value the
sensor sent with a finer exponent (say 36.425 at 1e-3) is rounded to 36.42 on decode.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import math

from controller.errors import ProtocolError
from controller.protocol import _wire
from controller.protocol.errors import FieldRangeError
from controller.protocol.ieee11073 import (
    FLOAT_LENGTH,
    FloatSpecial,
    classify_float,
    decode_float,
    encode_float_compact,
    encode_special,
    special_to_float,
)

FLAG_FAHRENHEIT = 0x01
FLAG_TIMESTAMP = 0x02
FLAG_TEMPERATURE_TYPE = 0x04

# Wire resolution of the value: 1e-2, i.e. 0.01 degree.
VALUE_EXPONENT = -2
VALUE_DECIMALS = -VALUE_EXPONENT

TIMESTAMP_LENGTH = 7
# SIG Date Time characteristic: year 1582..9999, 0 meaning "not known" (as do month 0 and day 0).
TIMESTAMP_YEAR_MIN = 1582
TIMESTAMP_YEAR_MAX = 9999
_TEMPERATURE_TYPE = _wire.IntField("temperature_type", 0, 0xFF)
_YEAR = _wire.IntField("timestamp.year", TIMESTAMP_YEAR_MIN, TIMESTAMP_YEAR_MAX)
_MONTH = _wire.IntField("timestamp.month", 0, 12)
_DAY = _wire.IntField("timestamp.day", 0, 31)
_HOURS = _wire.IntField("timestamp.hours", 0, 23)
_MINUTES = _wire.IntField("timestamp.minutes", 0, 59)
_SECONDS = _wire.IntField("timestamp.seconds", 0, 59)

_NAME = "TemperatureMeasurement"


class TemperatureUnit(enum.Enum):
    """The unit of a Temperature Measurement (HTS flags bit 0: 0 Celsius, 1 Fahrenheit)."""

    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


class TemperatureType(enum.IntEnum):
    """Temperature Type (0x2A1D) values; unknown values from the wire are kept as plain ints."""

    ARMPIT = 1
    BODY = 2
    EAR = 3
    FINGER = 4
    GASTROINTESTINAL_TRACT = 5
    MOUTH = 6
    RECTUM = 7
    TOE = 8
    TYMPANUM = 9

    @classmethod
    def convert(cls, value: int) -> TemperatureType | int:
        """The member for ``value``, or ``value`` itself when this version does not know it."""
        try:
            return cls(value)
        except ValueError:
            return value


def _check_timestamp(timestamp: object) -> datetime.datetime | None:
    if timestamp is None:
        return None
    if not isinstance(timestamp, datetime.datetime):
        raise FieldRangeError(
            f"{_NAME}.timestamp: {timestamp!r} is not a datetime.datetime",
            field="timestamp",
            value=timestamp,
        )
    if timestamp.tzinfo is not None:
        # The wire carries local wall-clock time without a zone; silently dropping one would
        # shift the reading's time.
        raise FieldRangeError(
            f"{_NAME}.timestamp: {timestamp.isoformat()} has a time zone; the wire carries naive "
            "local time",
            field="timestamp",
            value=timestamp,
        )
    if not TIMESTAMP_YEAR_MIN <= timestamp.year <= TIMESTAMP_YEAR_MAX:
        raise FieldRangeError(
            f"{_NAME}.timestamp: year {timestamp.year} outside "
            f"{TIMESTAMP_YEAR_MIN}..{TIMESTAMP_YEAR_MAX}",
            field="timestamp",
            value=timestamp,
        )
    # The wire resolution is one second; truncating (not rounding) cannot carry into year 10000.
    return timestamp.replace(microsecond=0)


@dataclasses.dataclass(frozen=True, slots=True)
class TemperatureMeasurement:
    """One Temperature Measurement.

    ``special`` tells which special FLOAT a non-finite ``value`` came from: NaN, NRes and reserved
    all have ``value`` ``math.nan``; the infinities have ``value`` ±inf. It is derived from
    ``value`` when not given (nan -> NAN, ±inf -> the infinities) and is None for finite values.
    Every non-finite value means "no reading" to the controller.
    """

    value: float
    unit: TemperatureUnit = TemperatureUnit.CELSIUS
    timestamp: datetime.datetime | None = None
    temperature_type: TemperatureType | int | None = None
    special: FloatSpecial | None = None

    def __post_init__(self) -> None:
        value: object = self.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise FieldRangeError(
                f"{_NAME}.value: {value!r} is not a number", field="value", value=value
            )
        special: object = self.special
        if special is not None and not isinstance(special, FloatSpecial):
            raise FieldRangeError(
                f"{_NAME}.special: {special!r} is not a FloatSpecial",
                field="special",
                value=special,
            )
        number = float(value)
        if special is None:
            if math.isnan(number):
                special = FloatSpecial.NAN
            elif math.isinf(number):
                special = (
                    FloatSpecial.POSITIVE_INFINITY if number > 0 else FloatSpecial.NEGATIVE_INFINITY
                )
        if special is not None:
            expected = special_to_float(special)
            if not (number == expected or (math.isnan(number) and math.isnan(expected))):
                raise FieldRangeError(
                    f"{_NAME}.value: {number} contradicts special {special.name}, "
                    f"which decodes to {expected}",
                    field="value",
                    value=number,
                )
            # One shared nan object: dataclass equality compares field tuples, and tuples treat
            # identical objects as equal, so two NaN measurements compare equal.
            number = expected if not math.isnan(expected) else math.nan
        else:
            number = round(number, VALUE_DECIMALS)
            encode_float_compact(number, VALUE_EXPONENT)  # raises if the wire cannot carry it
        object.__setattr__(self, "value", number)
        object.__setattr__(self, "special", special)

        if not isinstance(self.unit, TemperatureUnit):
            raise FieldRangeError(
                f"{_NAME}.unit: {self.unit!r} is not a TemperatureUnit",
                field="unit",
                value=self.unit,
            )
        object.__setattr__(self, "timestamp", _check_timestamp(self.timestamp))
        if self.temperature_type is not None:
            raw_type = _TEMPERATURE_TYPE.check(_NAME, self.temperature_type)
            object.__setattr__(self, "temperature_type", TemperatureType.convert(raw_type))

    def to_celsius(self) -> float:
        """The value in degrees Celsius; nan and ±inf pass through unchanged."""
        if self.unit is TemperatureUnit.FAHRENHEIT:
            return (self.value - 32.0) * 5.0 / 9.0
        return self.value

    @property
    def is_valid(self) -> bool:
        """False for every special (NaN, NRes, ±INF, reserved): "no reading"."""
        return self.special is None

    def encode(self) -> bytes:
        """The Temperature Measurement frame (HTS 0x2A1C): flags, FLOAT, optional stamp and type.

        The fields were range-checked when the measurement was built (`FieldRangeError`).
        """
        flags = FLAG_FAHRENHEIT if self.unit is TemperatureUnit.FAHRENHEIT else 0
        if self.special is not None:
            body = encode_special(self.special)
        else:
            body = encode_float_compact(self.value, VALUE_EXPONENT)
        parts = [body]
        if self.timestamp is not None:
            flags |= FLAG_TIMESTAMP
            stamp = self.timestamp
            parts.append(
                stamp.year.to_bytes(2, "little")
                + bytes((stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second))
            )
        if self.temperature_type is not None:
            flags |= FLAG_TEMPERATURE_TYPE
            parts.append(bytes((int(self.temperature_type),)))
        return bytes((flags,)) + b"".join(parts)

    @classmethod
    def decode(cls, data: bytes) -> TemperatureMeasurement:
        """Decode a Temperature Measurement; raises only ProtocolError.

        Reserved flag bits are ignored. A stamp whose year, month or day is 0 ("not known" in the
        SIG Date Time format) decodes to ``timestamp=None``; any other out-of-range stamp field
        (month 13, hour 24, 30 February, year 1000) is a ProtocolError.
        """
        frame = _wire.as_bytes(_NAME, data)
        _wire.check_min_length(_NAME, frame, 1 + FLOAT_LENGTH)
        flags = frame[0]
        expected = 1 + FLOAT_LENGTH
        if flags & FLAG_TIMESTAMP:
            expected += TIMESTAMP_LENGTH
        if flags & FLAG_TEMPERATURE_TYPE:
            expected += 1
        _wire.check_length(_NAME, frame, expected)
        float_bytes = frame[1 : 1 + FLOAT_LENGTH]
        offset = 1 + FLOAT_LENGTH
        timestamp = None
        if flags & FLAG_TIMESTAMP:
            timestamp = _decode_timestamp(frame[offset : offset + TIMESTAMP_LENGTH])
            offset += TIMESTAMP_LENGTH
        temperature_type = None
        if flags & FLAG_TEMPERATURE_TYPE:
            temperature_type = TemperatureType.convert(frame[offset])
        try:
            return cls(
                value=decode_float(float_bytes),
                unit=TemperatureUnit.FAHRENHEIT
                if flags & FLAG_FAHRENHEIT
                else TemperatureUnit.CELSIUS,
                timestamp=timestamp,
                temperature_type=temperature_type,
                special=classify_float(float_bytes),
            )
        except ProtocolError:
            raise
        except ValueError as exc:  # pragma: no cover - a decoder must only raise ProtocolError
            raise ProtocolError(f"{_NAME}: {exc}") from exc


def _decode_timestamp(stamp: bytes) -> datetime.datetime | None:
    year = int.from_bytes(stamp[0:2], "little")
    month, day, hour, minute, second = stamp[2:7]
    if year != 0:
        _YEAR.check(_NAME, year)
    for spec, field_value in (
        (_MONTH, month),
        (_DAY, day),
        (_HOURS, hour),
        (_MINUTES, minute),
        (_SECONDS, second),
    ):
        spec.check(_NAME, field_value)
    if 0 in (year, month, day):
        return None
    try:
        return datetime.datetime(year, month, day, hour, minute, second)
    except ValueError as exc:
        raise FieldRangeError(
            f"{_NAME}.timestamp.day: {day} does not exist in {year:04d}-{month:02d}",
            field="timestamp.day",
            value=day,
        ) from exc


# Measurement Interval (0x2A21, HTS 1.0 §3.4): uint16 seconds between measurements; 0 means the
# thermometer does not measure periodically.
MEASUREMENT_INTERVAL_LENGTH = 2
_MEASUREMENT_INTERVAL = _wire.IntField("interval", 0, 0xFFFF, "s")
_INTERVAL_NAME = "MeasurementInterval"

# Sites where a thermometer reads the skin's surface, as a foot sensor does. The others (ear,
# mouth, rectum, tympanum, gastrointestinal tract) read core temperature, which a heating pad on
# the foot does not move: the heater's cut-off would then act on the wrong number.
SKIN_SITES = frozenset(
    {TemperatureType.ARMPIT, TemperatureType.BODY, TemperatureType.FINGER, TemperatureType.TOE}
)


def is_skin_site(temperature_type: TemperatureType | int) -> bool:
    """True for a Temperature Type (0x2A1D) that measures at the skin; unknown values are not."""
    return temperature_type in SKIN_SITES


def describe_temperature_type(temperature_type: TemperatureType | int) -> str:
    """A person's word for a Temperature Type: ``"toe"``, ``"ear"``, ``"type 12"``."""
    if isinstance(temperature_type, TemperatureType):
        return temperature_type.name.lower().replace("_", " ")
    return f"type {temperature_type}"


def decode_temperature_type(data: bytes) -> TemperatureType | int:
    """The Temperature Type characteristic (0x2A1D): one byte; raises only ProtocolError."""
    frame = _wire.as_bytes("TemperatureType", data)
    _wire.check_length("TemperatureType", frame, 1)
    return TemperatureType.convert(frame[0])


def encode_measurement_interval(seconds: int) -> bytes:
    """The Measurement Interval characteristic's value: uint16 little-endian seconds.

    Raises FieldRangeError outside 0..65535.
    """
    return _MEASUREMENT_INTERVAL.check(_INTERVAL_NAME, seconds).to_bytes(2, "little")


def decode_measurement_interval(data: bytes) -> int:
    """Seconds between measurements (0: not periodic); raises only ProtocolError."""
    frame = _wire.as_bytes(_INTERVAL_NAME, data)
    _wire.check_length(_INTERVAL_NAME, frame, MEASUREMENT_INTERVAL_LENGTH)
    return int.from_bytes(frame, "little")
