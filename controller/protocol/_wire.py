"""Shared helpers of the codecs: field specs that quantise and range-check with one message style.

Messages follow one pattern so logs and tests can rely on it:
``"<Class>.<field>: <value> <unit> outside <low>..<high>"``, for example
``"SetPressure.target: 75.0 mmHg outside 0.0..70.0"``. Field names are the ones of
docs/protocol.md, which firmware authors read.
"""

from __future__ import annotations

import dataclasses
import math

from controller.errors import ProtocolError
from controller.protocol.errors import FieldRangeError, FrameLengthError


def _with_unit(value: object, unit: str) -> str:
    return f"{value} {unit}" if unit else f"{value}"


@dataclasses.dataclass(frozen=True, slots=True)
class IntField:
    """An integer field with an inclusive range."""

    name: str
    low: int
    high: int
    unit: str = ""

    def check(self, where: str, value: object) -> int:
        """Return ``value`` if it is an integer in range, else raise FieldRangeError."""
        # bool is an int subclass; a flag passed where a number is expected is a caller bug.
        if not isinstance(value, int) or isinstance(value, bool):
            raise FieldRangeError(
                f"{where}.{self.name}: {value!r} is not an integer in {self.low}..{self.high}",
                field=self.name,
                value=value,
            )
        if not self.low <= value <= self.high:
            raise FieldRangeError(
                f"{where}.{self.name}: {_with_unit(value, self.unit)} outside "
                f"{self.low}..{self.high}",
                field=self.name,
                value=value,
            )
        return value


@dataclasses.dataclass(frozen=True, slots=True)
class ScaledField:
    """A fixed-point field: the wire integer is ``round(value * scale)``."""

    name: str
    scale: int
    raw_low: int
    raw_high: int
    unit: str

    @property
    def low(self) -> float:
        return self.raw_low / self.scale

    @property
    def high(self) -> float:
        return self.raw_high / self.scale

    def _error(self, where: str, value: object) -> FieldRangeError:
        return FieldRangeError(
            f"{where}.{self.name}: {_with_unit(value, self.unit)} outside {self.low}..{self.high}",
            field=self.name,
            value=value,
        )

    def to_raw(self, where: str, value: object) -> int:
        """Round ``value`` to the wire resolution and return the wire integer.

        The range check runs on the rounded value, because that is what goes on the wire: with a
        0.1 mmHg resolution, 70.04 mmHg is sent as 70.0 and is in range. Rounding is Python's
        ``round`` (to nearest, ties to even).
        """
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise FieldRangeError(
                f"{where}.{self.name}: {value!r} is not a number in {self.low}..{self.high}",
                field=self.name,
                value=value,
            )
        if not math.isfinite(value):
            raise self._error(where, value)
        raw = round(value * self.scale)
        if not self.raw_low <= raw <= self.raw_high:
            raise self._error(where, value)
        return raw

    def quantise(self, where: str, value: object) -> float:
        """``value`` rounded to the wire resolution; raises FieldRangeError when out of range."""
        return self.to_raw(where, value) / self.scale

    def from_raw(self, where: str, raw: int) -> float:
        """Range-check a decoded wire integer and return it in engineering units."""
        value = raw / self.scale
        if not self.raw_low <= raw <= self.raw_high:
            raise self._error(where, value)
        return value


def as_bytes(where: str, data: object) -> bytes:
    """Accept any bytes-like frame; anything else is a ProtocolError, not a TypeError."""
    if isinstance(data, bytes):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    raise ProtocolError(f"{where}: expected bytes, got {type(data).__name__}")


def check_length(where: str, data: bytes, expected: int) -> None:
    if len(data) != expected:
        kind = "truncated" if len(data) < expected else "over-long"
        raise FrameLengthError(f"{where}: {kind} frame of {len(data)} bytes, expected {expected}")


def check_min_length(where: str, data: bytes, minimum: int) -> None:
    if len(data) < minimum:
        raise FrameLengthError(
            f"{where}: truncated frame of {len(data)} bytes, expected at least {minimum}"
        )
