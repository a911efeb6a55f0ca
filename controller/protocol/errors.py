"""Typed protocol errors and the ATT error codes a firmware answers them with.

Every error here is a :class:`~controller.errors.ProtocolError`, so callers that only care that a
frame was bad catch that one class. The subclasses exist for the firmware, which must answer a bad
write with a specific ATT error (``att_error``), and for messages that name the field, the value and
the allowed range.
"""

from __future__ import annotations

import enum

from controller.errors import ProtocolError

# Standard ATT error (Core spec Vol 3 Part F 3.4.1.1): the frame is shorter or longer than needed.
ATT_INVALID_ATTRIBUTE_VALUE_LENGTH = 0x0D


class AttErrorCode(enum.IntEnum):
    """Application ATT errors of the massager protocol (docs/protocol.md, "Command")."""

    UNSUPPORTED_VERSION = 0x80
    UNKNOWN_OPCODE = 0x81
    VALUE_OUT_OF_RANGE = 0x82
    CUTOUT_LATCHED = 0x83


class FrameLengthError(ProtocolError):
    """A frame is truncated or over-long."""

    att_error: int = ATT_INVALID_ATTRIBUTE_VALUE_LENGTH


class UnsupportedVersionError(ProtocolError):
    """A frame carries a protocol version other than ours."""

    att_error: int = AttErrorCode.UNSUPPORTED_VERSION


class UnknownOpcodeError(ProtocolError):
    """A command frame carries an opcode this version does not define."""

    att_error: int = AttErrorCode.UNKNOWN_OPCODE


class FieldRangeError(ProtocolError):
    """A field is outside its protocol range (or cannot be represented on the wire at all)."""

    att_error: int = AttErrorCode.VALUE_OUT_OF_RANGE

    def __init__(self, message: str, *, field: str, value: object) -> None:
        super().__init__(message)
        self.field = field
        self.value = value


def att_error_for(exc: ProtocolError) -> int:
    """The ATT error code a firmware answers a refused write with.

    A plain ``ProtocolError`` (not one of the typed subclasses) can only come from a frame that is
    malformed in a way the protocol has no specific code for; "value out of range" is the closest.
    """
    return int(getattr(exc, "att_error", AttErrorCode.VALUE_OUT_OF_RANGE))
