"""Caregivers over MQTT: the bridge, its payloads, commands, Home Assistant discovery, a broker."""

from controller.caregiver.bridge import BridgeStats, CaregiverBridge
from controller.caregiver.commands import CaregiverCommand, CommandRefused, parse_command
from controller.caregiver.discovery import build_discovery
from controller.caregiver.models import (
    ActiveAlarm,
    DeviceState,
    TelemetrySample,
)
from controller.caregiver.outbox import AlertOutbox
from controller.caregiver.topics import Topics

__all__ = [
    "ActiveAlarm",
    "AlertOutbox",
    "BridgeStats",
    "CaregiverBridge",
    "CaregiverCommand",
    "CommandRefused",
    "DeviceState",
    "TelemetrySample",
    "Topics",
    "build_discovery",
    "parse_command",
]
