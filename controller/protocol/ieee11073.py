"""IEEE 11073-20601 32-bit FLOAT, as used by the Health Thermometer Service.

Layout, little-endian on the wire: the low three bytes are a signed 24-bit mantissa, the high byte
a signed 8-bit exponent; the value is ``mantissa * 10 ** exponent``. So ``87 D6 12 FE`` is
1234567e-2 = 12345.67.

Five mantissas are special (the standard defines them with exponent 0): ``0x7FFFFF`` NaN,
``0x800000`` NRes (not at this resolution), ``0x7FFFFE`` +INF, ``0x800002`` -INF and ``0x800001``
reserved. A finite number therefore has a mantissa within +-(2**23 - 3). A special mantissa with a
non-zero exponent is neither a finite number nor a defined special; it is classified as RESERVED,
so the controller treats it as "no reading" like the other specials instead of as 83886 °C.
"""

from __future__ import annotations

import decimal
import enum
import math

from controller.errors import ProtocolError
from controller.protocol.errors import FieldRangeError, FrameLengthError

FLOAT_LENGTH = 4
MANTISSA_MAX = 0x7FFFFD  # 2**23 - 3: the largest finite mantissa
MANTISSA_MIN = -MANTISSA_MAX
EXPONENT_MIN = -128
EXPONENT_MAX = 127


class FloatSpecial(enum.Enum):
    """The special FLOAT values; each member's value is its 24-bit mantissa (exponent 0)."""

    NAN = 0x7FFFFF
    NRES = 0x800000
    POSITIVE_INFINITY = 0x7FFFFE
    NEGATIVE_INFINITY = 0x800002
    RESERVED = 0x800001


_SPECIAL_BY_MANTISSA = {member.value: member for member in FloatSpecial}
# Exact powers of ten for every exponent magnitude, as ints so decoding divides exactly-rounded.
_POWERS_OF_TEN: tuple[int, ...] = tuple(10**k for k in range(max(-EXPONENT_MIN, EXPONENT_MAX) + 1))


def _pow10(k: int) -> int:
    return _POWERS_OF_TEN[k]


def _split(data: bytes) -> tuple[int, int, int]:
    """Return (raw unsigned 24-bit mantissa, signed mantissa, signed exponent)."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise ProtocolError(f"FLOAT: expected bytes, got {type(data).__name__}")
    if len(data) != FLOAT_LENGTH:
        raise FrameLengthError(f"FLOAT: {len(data)} bytes, expected {FLOAT_LENGTH}")
    word = int.from_bytes(data, "little")
    raw_mantissa = word & 0xFFFFFF
    mantissa = raw_mantissa - 0x1000000 if raw_mantissa & 0x800000 else raw_mantissa
    exponent = (word >> 24) - 0x100 if word & 0x80000000 else word >> 24
    return raw_mantissa, mantissa, exponent


def classify_float(data: bytes) -> FloatSpecial | None:
    """The special value ``data`` encodes, or None for a finite number."""
    raw_mantissa, _, exponent = _split(data)
    special = _SPECIAL_BY_MANTISSA.get(raw_mantissa)
    if special is not None and exponent != 0:
        return FloatSpecial.RESERVED
    return special


def special_to_float(special: FloatSpecial) -> float:
    """The Python float a special decodes to: ±inf for the infinities, ``math.nan`` otherwise."""
    if special is FloatSpecial.POSITIVE_INFINITY:
        return math.inf
    if special is FloatSpecial.NEGATIVE_INFINITY:
        return -math.inf
    return math.nan


def decode_float(data: bytes) -> float:
    """Decode a 4-byte FLOAT; NaN, NRes and reserved give ``math.nan``, the infinities ±inf.

    Finite values are the correctly rounded double of ``mantissa * 10 ** exponent`` (integer
    arithmetic, so ``6C 01 00 FF`` is exactly the float literal ``36.4``).
    """
    special = classify_float(data)
    if special is not None:
        return special_to_float(special)
    _, mantissa, exponent = _split(data)
    if exponent >= 0:
        return float(mantissa * _pow10(exponent))
    return mantissa / _pow10(-exponent)


def _pack(mantissa: int, exponent: int) -> bytes:
    return ((exponent & 0xFF) << 24 | (mantissa & 0xFFFFFF)).to_bytes(FLOAT_LENGTH, "little")


def encode_special(special: FloatSpecial) -> bytes:
    """The 4-byte IEEE 11073-20601 FLOAT of a special value (its mantissa, exponent 0)."""
    return _pack(special.value, 0)


def _mantissa_for(value: float, exponent: int) -> int:
    scaled = value * _pow10(-exponent) if exponent <= 0 else value / _pow10(exponent)
    if not math.isfinite(scaled):
        mantissa_text = "an overflowing mantissa"
    else:
        mantissa = round(scaled)
        if MANTISSA_MIN <= mantissa <= MANTISSA_MAX:
            return mantissa
        mantissa_text = f"mantissa {mantissa}"
    raise FieldRangeError(
        f"FLOAT: {value} needs {mantissa_text} at exponent {exponent}, "
        f"outside {MANTISSA_MIN}..{MANTISSA_MAX}",
        field="mantissa",
        value=value,
    )


def _check_value(value: object, exponent: object) -> float:
    if isinstance(exponent, bool) or not isinstance(exponent, int):
        raise FieldRangeError(
            f"FLOAT: exponent {exponent!r} is not an integer", field="exponent", value=exponent
        )
    if not EXPONENT_MIN <= exponent <= EXPONENT_MAX:
        raise FieldRangeError(
            f"FLOAT: exponent {exponent} outside {EXPONENT_MIN}..{EXPONENT_MAX}",
            field="exponent",
            value=exponent,
        )
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FieldRangeError(f"FLOAT: {value!r} is not a number", field="value", value=value)
    return float(value)


def encode_float(value: float, exponent: int = -2) -> bytes:
    """Encode ``value`` as ``round(value / 10**exponent)`` at the given exponent.

    NaN encodes as the NaN special and ±inf as ±INF (exponent 0, whatever ``exponent`` says).
    A value whose mantissa does not fit (±8388605) raises a ProtocolError naming the value.
    """
    number = _check_value(value, exponent)
    if math.isnan(number):
        return encode_special(FloatSpecial.NAN)
    if math.isinf(number):
        return encode_special(
            FloatSpecial.POSITIVE_INFINITY if number > 0 else FloatSpecial.NEGATIVE_INFINITY
        )
    return _pack(_mantissa_for(number, exponent), exponent)


def encode_float_compact(value: float, exponent: int = -2) -> bytes:
    """Encode ``value`` rounded to resolution ``10**exponent``, with the fewest mantissa digits.

    Trailing decimal zeros move into the exponent, so 36.4 at resolution -2 is sent as ``364e-1``
    (``6C 01 00 FF``) and 1.0 as ``1e0``: the three published test vectors encode byte for byte.
    Values coarser than the resolution keep their own exponent, so every finite value that
    :func:`decode_float` can return encodes back to the same value (1e10 as ``1e10``).
    """
    number = _check_value(value, exponent)
    if not math.isfinite(number):
        return encode_float(number, exponent)
    rounded = round(number, -exponent)
    # repr is the shortest decimal that round-trips, so its digits are the mantissa we want.
    sign, digit_tuple, decimal_exponent = decimal.Decimal(repr(rounded)).as_tuple()
    assert isinstance(decimal_exponent, int)  # finite by the check above
    mantissa = int("".join(map(str, digit_tuple)))
    new_exponent = decimal_exponent
    while mantissa != 0 and mantissa % 10 == 0:
        mantissa //= 10
        new_exponent += 1
    if mantissa == 0:
        new_exponent = 0
    while new_exponent > EXPONENT_MAX and mantissa <= MANTISSA_MAX:
        mantissa *= 10
        new_exponent -= 1
    if mantissa > MANTISSA_MAX or new_exponent > EXPONENT_MAX:
        raise FieldRangeError(
            f"FLOAT: {value} at resolution 1e{exponent} does not fit a mantissa in "
            f"{MANTISSA_MIN}..{MANTISSA_MAX} with an exponent in {EXPONENT_MIN}..{EXPONENT_MAX}",
            field="mantissa",
            value=value,
        )
    return _pack(-mantissa if sign else mantissa, new_exponent)
