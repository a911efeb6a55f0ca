"""The root of every error SoleGuard raises on purpose.

Each layer converts the errors of the library below it into one of these, with ``raise ... from``,
so callers handle SoleGuard failures without knowing whether bleak, bumble, aiomqtt or SQLite
was underneath.

`shown` cuts a user's value before any message echoes it.
"""

# A value echoed in an error is cut to this many characters: enough to recognise it, and a
# 10 MB string in a settings file (or 3000 characters on a command line) does not flood the
# terminal (issue 11 item 6).
SHOWN_VALUE_CHARS = 60


def shown(value: object, *, quoted: bool = True) -> str:
    """``value`` as an error message echoes it: ``repr`` (or the text itself when not
    ``quoted``), cut to `SHOWN_VALUE_CHARS` characters and saying how long it was.
    """
    text = repr(value) if quoted else str(value)
    if len(text) <= SHOWN_VALUE_CHARS:
        return text
    return f"{text[:SHOWN_VALUE_CHARS]}… ({len(text)} characters)"


class SoleGuardError(Exception):
    """Base class of all SoleGuard errors."""


class ConfigError(SoleGuardError):
    """The configuration is invalid; the message names every offending field."""


class ProtocolError(SoleGuardError, ValueError):
    """Bytes from or to a device do not follow the protocol; the message names the field."""


class LinkError(SoleGuardError):
    """A BLE link could not be established or was lost."""


class StoreError(SoleGuardError):
    """The journal database could not be read or written."""


class AlarmLatched(SoleGuardError):
    """An over-temperature latch is in force: no session until an alarm reset clears it."""


class Interrupted(SoleGuardError):
    """A command was ended by a signal (Ctrl-C, SIGTERM, SIGHUP).

    ``detail`` says what was done about it (by default: the massager was told to stop).
    """

    def __init__(self, signum: int, detail: str = "the massager was told to stop") -> None:
        self.signum = signum
        name = {2: "Ctrl-C", 15: "SIGTERM", 1: "SIGHUP"}.get(signum, f"signal {signum}")
        super().__init__(f"stopped by {name}; {detail}" if detail else f"stopped by {name}")
