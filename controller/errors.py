"""The root of every error SoleGuard raises on purpose.

Each layer converts the errors of the library below it into one of these, with ``raise ... from``,
so callers handle SoleGuard failures without knowing whether bleak, bumble, aiomqtt or SQLite
was underneath.
"""


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
    """A session was ended by a signal (Ctrl-C, SIGTERM); the massager was told to stop first."""

    def __init__(self, signum: int) -> None:
        self.signum = signum
        name = "Ctrl-C" if signum == 2 else "SIGTERM" if signum == 15 else f"signal {signum}"
        super().__init__(f"stopped by {name}; the massager was told to stop")
