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

from controller.errors import shown
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


def check_transport(spec: str) -> str:
    """Refuse a radio transport spec of no known form; return it unchanged.

    ``spec`` is ``"platform"`` (bleak's own backend) or a bumble transport spec such as
    ``"usb:0"``, ``"serial:/dev/ttyACM0"`` or ``"tcp-client:127.0.0.1:9720"``. Raises
    ``ValueError`` naming the spec and the allowed forms. Shared by ``[ble]`` and
    ``[[hub.radios]]``.
    """
    # Checked at load time so a typo is one line, not a radio that fails to open (or waits on a
    # host that does not exist) when a session starts.
    if spec == "platform":
        return spec
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
    return spec


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
        check_transport(self.transport)
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
        raise ValueError(f"{name} {shown(value)} is not UTF-8 text: {allowed}") from None
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
        raise ValueError(f"{name} {shown(value)} {problem}: {allowed}")
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


# A Bluetooth device address as bleak spells it (BlueZ, WinRT, bumble; "/P" marks a public
# address for bumble), or the UUID CoreBluetooth gives a device instead: the same forms
# `soleguard pair ADDRESS` accepts (controller/cli/devices.py uses this pattern too).
BLUETOOTH_ADDRESS = re.compile(
    r"^(?:[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}(?:/P)?"
    r"|[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})$"
)
_ADDRESS_FORMS = "six hex pairs such as F5:0E:6A:AD:00:02 (or a macOS device UUID)"
# Where a resident's checklist answers come from before a session (docs/hub.md):
# - "at-start": answered at the hub's local console each time a session starts;
# - "recorded-today": the day's answers recorded ahead (`soleguard diary inspect --resident ID`)
#   let the massager's own start button start a session; without today's record it is refused.
# Either way the supervisor alone decides whether the answers allow the session.
ChecklistPolicy = Literal["at-start", "recorded-today"]


class RadioEntry(Section):
    """One ``[[hub.radios]]`` entry: an id (1-64 letters, digits, '_', '-') and one transport.

    ``transport`` has the forms of ``[ble] transport`` (:func:`check_transport`). Raises
    ValueError (a `ConfigError` at load) for a bad id or transport.
    """

    id: str
    transport: str

    @field_validator("id")
    @classmethod
    def _id_form(cls, value: str) -> str:
        if not _DEVICE_ID.match(value):
            raise ValueError(f"{shown(value)} must be 1-64 letters, digits, '_' or '-'")
        return value

    @field_validator("transport")
    @classmethod
    def _transport_form(cls, value: str) -> str:
        return check_transport(value)


class ResidentEntry(Section):
    """One ``[[hub.residents]]`` entry: a person the hub supervises, with their own pair.

    ``id``: 1-64 letters, digits, '_' or '-' (it becomes an MQTT topic level and a console
    argument); ``name``: the display name caregivers see (1-80 characters); ``massager`` and
    ``sensor``: Bluetooth addresses (:data:`BLUETOOTH_ADDRESS`); ``profile``: a shipped profile
    that tightens this resident's limits beyond ``[profile]`` (None: ``[profile]`` alone);
    ``checklist``: a :data:`ChecklistPolicy`; ``radio``: the id of the ``[[hub.radios]]`` entry
    that serves both devices. Raises ValueError (a `ConfigError` at load) for a bad id, address
    or missing radio; ids, addresses and radio names across entries are checked by
    :meth:`HubSettings.problems`.
    """

    id: str
    name: str = Field(min_length=1, max_length=80)
    massager: str
    sensor: str
    profile: ProfileName | None = None
    checklist: ChecklistPolicy = "at-start"
    radio: str | None = None

    # Field validators, not one model validator: each bad field is its own line, named exactly.
    @field_validator("id")
    @classmethod
    def _id_form(cls, value: str) -> str:
        if not _DEVICE_ID.match(value):
            raise ValueError(f"{shown(value)} must be 1-64 letters, digits, '_' or '-'")
        return value

    @field_validator("massager", "sensor")
    @classmethod
    def _address_form(cls, value: str) -> str:
        if not BLUETOOTH_ADDRESS.match(value):
            raise ValueError(
                f"{shown(value)} is not a Bluetooth address; expected {_ADDRESS_FORMS}"
            )
        return value


class HubSettings(Section):
    """``[hub]``: the residents one hub supervises and the radios that serve them.

    Empty (the default) is a single-pair installation: ``[devices]`` and ``[ble]`` as before.
    Problems that span entries (a repeated id or address, a resident on no radio or an unknown
    one) are listed by :meth:`problems`, which `load_settings` turns into a `ConfigError`.
    """

    radios: list[RadioEntry] = Field(default_factory=list, max_length=16)
    residents: list[ResidentEntry] = Field(default_factory=list, max_length=256)

    def problems(self, devices: DevicesSettings) -> list[str]:
        """One line per problem across entries, each naming its field and what is allowed.

        ``devices``: the single-pair ``[devices]`` section, which a hub configuration must leave
        without addresses (each device belongs to one resident). Empty: no problem.
        """
        problems: list[str] = []
        radio_ids = [radio.id for radio in self.radios]
        known = ", ".join(repr(r) for r in radio_ids) or "none: add a [[hub.radios]] entry"
        _repeats(problems, "hub.radios", "id", radio_ids, "each radio needs its own id")
        _repeats(
            problems,
            "hub.radios",
            "transport",
            [radio.transport for radio in self.radios],
            "one transport serves one radio",
        )
        _repeats(
            problems,
            "hub.residents",
            "id",
            [resident.id for resident in self.residents],
            "each resident needs their own id",
        )
        # One address per device: the same device under two residents (or as both devices of
        # one) would let one person's readings decide another person's heater.
        seen: dict[str, str] = {}
        for index, resident in enumerate(self.residents):
            for role in ("massager", "sensor"):
                field = f"hub.residents.{index}.{role}"
                address = getattr(resident, role).upper()
                if address in seen:
                    problems.append(
                        f"{field}: {getattr(resident, role)!r} is already {seen[address]}; "
                        "each device belongs to exactly one resident"
                    )
                else:
                    seen[address] = field
            field = f"hub.residents.{index}.radio"
            if resident.radio is None:
                problems.append(
                    f"{field}: resident {resident.id!r} is on no radio; name one of: {known}"
                )
            elif resident.radio not in radio_ids:
                problems.append(
                    f"{field}: {resident.radio!r} is not a radio of this hub; name one of: {known}"
                )
        if self.residents:
            for role in ("massager", "sensor"):
                if getattr(devices, role).address is not None:
                    problems.append(
                        f"devices.{role}.address: a hub lists its devices per resident in "
                        "[[hub.residents]]; remove it from [devices]"
                    )
        return problems


def _repeats(problems: list[str], table: str, key: str, values: list[str], why: str) -> None:
    """Append a line for each value of ``key`` that an earlier entry of ``table`` already has."""
    first: dict[str, int] = {}
    for index, value in enumerate(values):
        if value in first:
            problems.append(
                f"{table}.{index}.{key}: {value!r} is already {table}.{first[value]}.{key}; {why}"
            )
        else:
            first[value] = index


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
    hub: HubSettings = HubSettings()
