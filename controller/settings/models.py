"""The settings schema: what a ``soleguard.toml`` may contain, and the ranges each value may take.

Safety values take their default and bounds from :mod:`controller.settings.limits`; this module
only arranges them into sections. Unknown keys are errors, so a misspelt limit is never silently
ignored in favour of its default.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, FilePath, field_validator, model_validator

from controller.settings import limits

if TYPE_CHECKING:
    from controller.settings.limits import Bound

PROFILE_NAMES = ("allodynia", "reduced-heat-sensation", "diabetic")
ProfileName = Literal["allodynia", "reduced-heat-sensation", "diabetic"]
ProgramName = Literal["gentle", "standard"]

_DEVICE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def limit(bound: Bound) -> Any:
    """A pydantic field for a safety number, carrying its bound for error messages."""
    return Field(
        default=bound.default,
        ge=bound.minimum,
        le=bound.maximum,
        # Strict: TOML `true` must not quietly become a 1.0 mmHg cap.
        strict=True,
        json_schema_extra={
            "unit": bound.unit,
            "source": bound.source,
            "stricter": bound.stricter,
        },
    )


class Section(BaseModel):
    """Base of every settings section: immutable, and strict about unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


class PressureSettings(Section):
    """``[pressure]``: the pressure cap (mmHg) and its ramp (mmHg/s).

    Bounds, defaults and sources of both in `controller.settings.limits` (PRESSURE_CAP_MMHG,
    PRESSURE_RAMP_MMHG_PER_S); a value outside them is a `ConfigError` naming the field.
    """

    cap_mmhg: float = limit(limits.PRESSURE_CAP_MMHG)
    ramp_mmhg_per_s: float = limit(limits.PRESSURE_RAMP_MMHG_PER_S)


class HeaterSettings(Section):
    """``[heater]``: heat on or off, the pad target, skin cut-off and latch (°C), timings (s, min).

    Every number is bounded in `controller.settings.limits` with its source. Raises ValueError (a
    `ConfigError` at load) unless ``target_c < cutoff_c < latch_c``.
    """

    enabled: bool = True
    # Set by a clinician for a profile that forbids heat unless they allow it.
    clinician_approved: bool = False
    target_c: float = limit(limits.HEATER_TARGET_C)
    cutoff_c: float = limit(limits.HEATER_CUTOFF_C)
    reenable_margin_c: float = limit(limits.HEATER_REENABLE_MARGIN_C)
    min_off_s: float = limit(limits.HEATER_MIN_OFF_S)
    latch_c: float = limit(limits.LATCH_C)
    max_heat_minutes: float = limit(limits.MAX_HEAT_MIN)
    prediction_horizon_s: float = limit(limits.PREDICTION_HORIZON_S)

    @model_validator(mode="after")
    def _ordered(self) -> HeaterSettings:
        if not self.target_c < self.cutoff_c:
            raise ValueError(f"target_c ({self.target_c}) must be below cutoff_c ({self.cutoff_c})")
        if not self.cutoff_c < self.latch_c:
            raise ValueError(f"cutoff_c ({self.cutoff_c}) must be below latch_c ({self.latch_c})")
        return self


class SensorSettings(Section):
    """``[sensor]``: when a skin reading is stale (s), its valid range (°C) and rate (°C/s).

    ``non_skin_site`` says what to do with a thermometer that states a site other than the skin.
    Bounds and sources in `controller.settings.limits`.
    """

    stale_after_s: float = limit(limits.STALE_AFTER_S)
    valid_min_c: float = limit(limits.VALID_SKIN_MIN_C)
    valid_max_c: float = limit(limits.VALID_SKIN_MAX_C)
    max_rate_c_per_s: float = limit(limits.MAX_SKIN_RATE_C_PER_S)
    # A thermometer stating a site other than the skin (ear, mouth, ...): "report" says so at
    # pair and at each session start; "refuse" also refuses the session.
    non_skin_site: Literal["report", "refuse"] = "report"


class SessionSettings(Section):
    """``[session]``: the longest session (minutes, `limits.SESSION_MIN`) and its program."""

    max_minutes: float = limit(limits.SESSION_MIN)
    program: ProgramName = "standard"


class LeaseSettings(Section):
    """``[lease]``: the firmware lease the controller asks for (s, `limits.LEASE_S`)."""

    duration_s: float = limit(limits.LEASE_S)


class ProfileSettings(Section):
    """``[profile]``: a shipped clinical profile by name and/or a clinician's own profile file.

    Profiles only tighten limits (`controller.settings.profiles`).
    """

    name: ProfileName | None = None
    # A clinician's own profile file, applied after the named one; it too can only tighten.
    path: Path | None = None


class DeviceEntry(Section):
    """One paired device: its Bluetooth address ("AA:BB:CC:DD:EE:FF") and advertised name."""

    address: str | None = None
    name: str | None = None


class DevicesSettings(Section):
    """``[devices]``: the paired massager and skin sensor."""

    massager: DeviceEntry = DeviceEntry()
    sensor: DeviceEntry = DeviceEntry()


# Why 10 s: a BLE connect on a busy radio (or through BlueZ) can take several seconds; longer
# than that and the user is better served by an error and a retry.
DEFAULT_CONNECT_TIMEOUT_S = 10.0


# bumble transports that take HOST:PORT, and those that take a device name or path.
_HOST_PORT_TRANSPORTS = ("tcp-client", "tcp-server", "udp", "ws-client", "ws-server")
_NAMED_TRANSPORTS = ("usb", "pyusb", "serial", "pty", "file", "hci-socket", "vhci", "unix")
_TRANSPORT_FORMS = (
    '"platform", "usb:N", "serial:/dev/PATH", "tcp-client:HOST:PORT" (PORT 1-65535), '
    '"hci-socket:N" or another bumble transport'
)


class BleSettings(Section):
    """``[ble]``: the radio (``"platform"`` or a bumble transport), bond file, connect timeout (s).

    Raises ValueError (a `ConfigError` at load) for a transport spec of no known form.
    """

    # "platform" uses bleak's own backend (BlueZ, CoreBluetooth, WinRT); anything else is a bumble
    # transport spec, such as "usb:0", "serial:/dev/ttyACM0" or "tcp-client:127.0.0.1:9720".
    transport: str = "platform"
    keystore: Path | None = None
    connect_timeout_s: float = Field(default=DEFAULT_CONNECT_TIMEOUT_S, gt=0.0, le=60.0)

    @model_validator(mode="after")
    def _transport_form(self) -> BleSettings:
        # Checked here so a typo is one line at load time, not a radio that fails to open (or
        # waits on a host that does not exist) when a session starts.
        spec = self.transport
        if spec == "platform":
            return self
        scheme, _, rest = spec.partition(":")
        if scheme in _HOST_PORT_TRANSPORTS:
            host, _, port = rest.rpartition(":")
            if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
                raise ValueError(
                    f"transport {spec!r}: {scheme} needs HOST:PORT with PORT 1-65535, "
                    f"such as {scheme}:127.0.0.1:9720"
                )
        elif scheme in _NAMED_TRANSPORTS:
            if not rest and scheme not in ("hci-socket", "vhci"):
                raise ValueError(f"transport {spec!r}: {scheme} needs a device, e.g. {scheme}:0")
        elif scheme not in ("android-emulator", "android-netsim"):
            raise ValueError(f"transport {spec!r}: expected {_TRANSPORT_FORMS}")
        return self


class TlsSettings(Section):
    """``[mqtt.tls]``: CA, client certificate and key files; each must exist at load time."""

    # FilePath: a typo in a certificate path is a settings error at load time, not an endless
    # reconnect loop later.
    ca_file: FilePath
    certfile: FilePath | None = None
    keyfile: FilePath | None = None

    @model_validator(mode="after")
    def _pair(self) -> TlsSettings:
        if self.keyfile is not None and self.certfile is None:
            raise ValueError("keyfile is given without certfile; a client key needs its cert")
        return self


def check_topic_prefix(name: str, value: str) -> str:
    """Refuse a base topic or discovery prefix that is not one or more plain MQTT topic levels.

    Raises ``ValueError`` naming ``name`` and what is allowed: empty levels (``a//b``), a leading
    or trailing ``/``, the wildcards ``+`` and ``#``, a leading ``$`` (reserved for the broker),
    control characters, text that is not UTF-8, or more than 256 bytes.
    """
    allowed = "one or more topic levels separated by single '/', without wildcards"
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"{name} {value!r} is not UTF-8 text: {allowed}") from None
    if not value:
        raise ValueError(f"{name} must not be empty: {allowed}")
    problem = None
    if value.startswith("/") or value.endswith("/"):
        problem = "starts or ends with '/'"
    elif "//" in value:
        problem = "has an empty level ('//')"
    elif "+" in value or "#" in value:
        problem = "contains a wildcard ('+' or '#')"
    elif value.startswith("$"):
        problem = "starts with '$', which brokers reserve for their own topics"
    elif any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in value):
        problem = "contains a control character"
    elif len(encoded) > _MAX_TOPIC_PREFIX_BYTES:
        problem = f"is {len(encoded)} bytes long (at most {_MAX_TOPIC_PREFIX_BYTES})"
    if problem is not None:
        raise ValueError(f"{name} {value!r} {problem}: {allowed}")
    return value


# Why 256 bytes: MQTT allows 65535 per topic, but a prefix is repeated in every message and
# every ACL line; anything this long is a mistake.
_MAX_TOPIC_PREFIX_BYTES = 256


class MqttSettings(Section):
    """``[mqtt]``: the caregiver bridge's broker (host, port 1-65535), login, TLS and topics.

    Topic and client names that MQTT brokers or Home Assistant would not read are refused at load
    (ValueError, a `ConfigError` naming the field).
    """

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    username: str | None = None
    password: str | None = None
    tls: TlsSettings | None = None
    # "5": MQTT 5's retain-as-published lets the bridge refuse a retained command even when it
    # is delivered live; a broker that only speaks 3.1.1 is detected and used as such.
    protocol: Literal["3.1.1", "5"] = "5"
    base_topic: str = "soleguard"
    # None: an id made once per installation and kept in the journal (``sg-`` and 10 hex
    # digits), so two controllers left at the default never share topics or Home Assistant ids.
    device_id: str | None = None
    discovery_prefix: str = "homeassistant"
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    # Apprise URLs (ntfy://, tgram://, mailto://, pover://, json://, ...): every alert also goes
    # there, from the caregiver bridge's thread. Needs `pip install soleguard[notify]`.
    apprise_urls: list[str] = Field(default_factory=list, max_length=32)

    @model_validator(mode="after")
    def _topic_safe(self) -> MqttSettings:
        if self.device_id is not None and not _DEVICE_ID.match(self.device_id):
            raise ValueError(
                f"device_id {self.device_id!r} must be 1-64 letters, digits, '_' or '-'"
            )
        check_topic_prefix("base_topic", self.base_topic)
        check_topic_prefix("discovery_prefix", self.discovery_prefix)
        return self


class StorageSettings(Section):
    """``[storage]``: the journal file; None means the platform user data directory."""

    # None: the platform's user data directory (platformdirs).
    path: Path | None = None

    @field_validator("path", mode="before")
    @classmethod
    def _not_empty(cls, value: object) -> object:
        # An empty value would become the current folder ("."), not a journal file: say so here,
        # where the field (and the variable that set it) can be named.
        if isinstance(value, str) and not value.strip():
            raise ValueError("must be the path of the journal file, not empty")
        return value


class Settings(Section):
    """A whole ``soleguard.toml``."""

    profile: ProfileSettings = ProfileSettings()
    pressure: PressureSettings = PressureSettings()
    heater: HeaterSettings = HeaterSettings()
    sensor: SensorSettings = SensorSettings()
    session: SessionSettings = SessionSettings()
    lease: LeaseSettings = LeaseSettings()
    devices: DevicesSettings = DevicesSettings()
    ble: BleSettings = BleSettings()
    mqtt: MqttSettings = MqttSettings()
    storage: StorageSettings = StorageSettings()
