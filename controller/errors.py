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
    """A command was ended by a signal (Ctrl-C, SIGTERM, SIGHUP).

    ``detail`` says what was done about it (by default: the massager was told to stop).
    """

    def __init__(self, signum: int, detail: str = "the massager was told to stop") -> None:
        self.signum = signum
        name = {2: "Ctrl-C", 15: "SIGTERM", 1: "SIGHUP"}.get(signum, f"signal {signum}")
        super().__init__(f"stopped by {name}; {detail}" if detail else f"stopped by {name}")
