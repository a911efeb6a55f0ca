"""The topic layout of DESIGN.md section 4, derived once from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from controller.settings.models import check_topic_prefix

__all__ = [
    "AVAILABILITY_OFFLINE",
    "AVAILABILITY_ONLINE",
    "CAREGIVER_SUBSCRIPTIONS",
    "HA_ONLINE",
    "Topics",
]

AVAILABILITY_ONLINE = b"online"
AVAILABILITY_OFFLINE = b"offline"
# What Home Assistant publishes on `<prefix>/status` when it (re)starts.
HA_ONLINE = b"online"

# What a caregiver client (``soleguard monitor``, an app with a persistent session) subscribes
# to under ``BASE/+/``, with the QoS it asks for. A broker queues QoS 1 messages for an offline
# persistent session in one queue per client, shared by all its topics (mosquitto's
# `max_queued_messages`); retained state (about one a second per device) would fill it and the
# broker would then drop alerts. So only what must not be missed is QoS 1: alerts and command
# results. State and availability are QoS 0, which mosquitto does not queue for an offline client
# (`queue_qos0_messages false`); their newest value is retained and arrives on every
# (re)subscribe, so nothing is lost by it.
CAREGIVER_SUBSCRIPTIONS: tuple[tuple[str, int], ...] = (
    ("availability", 0),
    ("state", 0),
    ("alert", 1),
    ("command/result", 1),
)


@dataclass(frozen=True, slots=True)
class Topics:
    """The MQTT topics of one device under ``base_topic``, and its Home Assistant discovery topic.

    Raises ValueError for a prefix or device id that brokers or Home Assistant would not read.
    """

    base_topic: str
    device_id: str
    discovery_prefix: str = "homeassistant"

    def __post_init__(self) -> None:
        # The same checks as the settings, for topics built directly (tests, benches, tools):
        # a malformed prefix would publish where no subscriber ever reads.
        check_topic_prefix("base_topic", self.base_topic)
        check_topic_prefix("discovery_prefix", self.discovery_prefix)
        check_topic_prefix("device_id", self.device_id)
        if "/" in self.device_id:
            raise ValueError(f"device_id {self.device_id!r} must be a single topic level")

    @property
    def root(self) -> str:
        """``BASE/DEVICE``: every topic of the device is under it."""
        return f"{self.base_topic}/{self.device_id}"

    @property
    def availability(self) -> str:
        """``BASE/DEVICE/availability``: "online", or "offline" (the will)."""
        return f"{self.root}/availability"

    @property
    def state(self) -> str:
        """``BASE/DEVICE/state``: the retained device state (JSON)."""
        return f"{self.root}/state"

    @property
    def telemetry(self) -> str:
        """``BASE/DEVICE/telemetry``: readings while a session runs (JSON)."""
        return f"{self.root}/telemetry"

    @property
    def alert(self) -> str:
        """``BASE/DEVICE/alert``: alerts, QoS 1, each until acknowledged."""
        return f"{self.root}/alert"

    @property
    def command(self) -> str:
        """``BASE/DEVICE/command``: the shared caregiver command topic."""
        return f"{self.root}/command"

    @property
    def alert_ack(self) -> str:
        """``BASE/DEVICE/alert/ack``: where caregivers acknowledge alerts."""
        return f"{self.root}/alert/ack"

    @property
    def command_clients(self) -> str:
        """``command/CLIENT``: a caregiver's own command topic (its own rate limit)."""
        return f"{self.root}/command/+"

    @property
    def command_result(self) -> str:
        """``BASE/DEVICE/command/result``: the answer to each command."""
        return f"{self.root}/command/result"

    @property
    def discovery(self) -> str:
        """``PREFIX/device/DEVICE/config``: the Home Assistant device discovery message."""
        return f"{self.discovery_prefix}/device/{self.device_id}/config"

    @property
    def ha_status(self) -> str:
        """``PREFIX/status``: Home Assistant's birth and will ("online"/"offline")."""
        return f"{self.discovery_prefix}/status"
