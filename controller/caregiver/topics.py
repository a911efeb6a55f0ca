"""The topic layout of DESIGN.md section 4, derived once from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from controller.settings.models import check_topic_prefix

__all__ = ["AVAILABILITY_OFFLINE", "AVAILABILITY_ONLINE", "HA_ONLINE", "Topics"]

AVAILABILITY_ONLINE = b"online"
AVAILABILITY_OFFLINE = b"offline"
# What Home Assistant publishes on `<prefix>/status` when it (re)starts.
HA_ONLINE = b"online"


@dataclass(frozen=True, slots=True)
class Topics:
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
        return f"{self.base_topic}/{self.device_id}"

    @property
    def availability(self) -> str:
        return f"{self.root}/availability"

    @property
    def state(self) -> str:
        return f"{self.root}/state"

    @property
    def telemetry(self) -> str:
        return f"{self.root}/telemetry"

    @property
    def alert(self) -> str:
        return f"{self.root}/alert"

    @property
    def command(self) -> str:
        return f"{self.root}/command"

    @property
    def alert_ack(self) -> str:
        return f"{self.root}/alert/ack"

    @property
    def command_clients(self) -> str:
        """``command/CLIENT``: a caregiver's own command topic (its own rate limit)."""
        return f"{self.root}/command/+"

    @property
    def command_result(self) -> str:
        return f"{self.root}/command/result"

    @property
    def discovery(self) -> str:
        return f"{self.discovery_prefix}/device/{self.device_id}/config"

    @property
    def ha_status(self) -> str:
        return f"{self.discovery_prefix}/status"
