"""Home Assistant MQTT discovery: one device-based payload describing every SoleGuard entity.

Device-based discovery (``<prefix>/device/<id>/config`` with ``dev``, ``o`` and ``cmps``) lets one
retained message create the whole device, and one empty message remove it. Every sensor reads the
retained ``state`` topic through a ``value_template``, so Home Assistant shows the current state as
soon as it subscribes.
"""

from __future__ import annotations

import json
from typing import Any

from controller.caregiver.models import SENSOR_HEALTH_STATES
from controller.caregiver.topics import AVAILABILITY_OFFLINE, AVAILABILITY_ONLINE, Topics
from controller.safety import Priority

__all__ = [
    "ALERT_EVENT_TEMPLATE",
    "ALERT_EVENT_TYPES",
    "DISCOVERY_EXPIRE_AFTER_S",
    "STATE_REFRESH_S",
    "STOP_BUTTON_REQUEST_ID",
    "build_discovery",
]

# Why 30 s: the retained state is re-sent this often even when nothing changes, so a consumer that
# lost a message catches up and Home Assistant's expire_after can tell a dead controller from a
# quiet one.
STATE_REFRESH_S = 30.0
# Why three refreshes: a stale reading is already published as null (unknown) by the controller;
# this only covers a controller that stopped publishing without its last will reaching the
# broker, yet one lost refresh on a flaky Wi-Fi does not blank the value.
DISCOVERY_EXPIRE_AFTER_S = int(3 * STATE_REFRESH_S)
STOP_BUTTON_REQUEST_ID = "homeassistant-stop"
# Rendered by Home Assistant on each press (``now()`` is HA's template function).
STOP_BUTTON_TEMPLATE = (
    '{"action":"stop","request_id":"'
    + STOP_BUTTON_REQUEST_ID
    + '-{{ (now().timestamp() * 1000) | int }}"}'
)


ALERT_EVENT_TYPES = (Priority.HIGH, Priority.MEDIUM, Priority.LOW, "cleared")
ALERT_EVENT_TEMPLATE = (
    "{{ {'event_type': ('cleared' if value_json.event == 'cleared' else value_json.priority), "
    "'id': value_json.id, 'code': value_json.code, 'message': value_json.message, "
    "'event': value_json.event, 'occurrences': value_json.occurrences, "
    "'time': value_json.time} | tojson }}"
)


def _v(key: str) -> str:
    return f"{{{{ value_json.{key} }}}}"


def _on_off(key: str) -> str:
    return f"{{{{ 'ON' if value_json.{key} else 'OFF' }}}}"


def build_discovery(
    topics: Topics,
    *,
    sw_version: str,
    device_name: str | None = None,
    model: str = "Heated foot massager with skin sensor",
    manufacturer: str = "SoleGuard",
    origin_url: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """Return the discovery topic and payload for one device. Pure."""
    device_id = topics.device_id
    uid = f"soleguard_{device_id}"

    def sensor(key: str, name: str, **extra: Any) -> dict[str, Any]:
        return {
            "p": "sensor",
            "name": name,
            "unique_id": f"{uid}_{key}",
            "state_topic": topics.state,
            **extra,
        }

    def binary(key: str, name: str, field: str, device_class: str, **extra: Any) -> dict[str, Any]:
        return {
            "p": "binary_sensor",
            "name": name,
            "unique_id": f"{uid}_{key}",
            "state_topic": topics.state,
            "device_class": device_class,
            "value_template": _on_off(field),
            **extra,
        }

    stop_command = json.dumps(
        {"action": "stop", "request_id": STOP_BUTTON_REQUEST_ID}, separators=(",", ":")
    )
    components: dict[str, dict[str, Any]] = {
        "skin_temperature": sensor(
            "skin_temperature",
            "Skin temperature",
            device_class="temperature",
            unit_of_measurement="°C",
            state_class="measurement",
            suggested_display_precision=1,
            value_template=_v("skin_temp_c"),
            expire_after=DISCOVERY_EXPIRE_AFTER_S,
        ),
        "pressure": sensor(
            "pressure",
            "Pressure",
            device_class="pressure",
            unit_of_measurement="mmHg",
            state_class="measurement",
            # The measured bladder pressure; null (unknown) when the massager has not reported.
            value_template=_v("pressure_mmhg"),
        ),
        "pressure_target": sensor(
            "pressure_target",
            "Pressure target",
            device_class="pressure",
            unit_of_measurement="mmHg",
            state_class="measurement",
            entity_category="diagnostic",
            value_template=_v("pressure_target_mmhg"),
        ),
        "session_state": sensor(
            "session_state", "Session", icon="mdi:foot-print", value_template=_v("session_state")
        ),
        "time_remaining": sensor(
            "time_remaining",
            "Time remaining",
            device_class="duration",
            unit_of_measurement="s",
            value_template=_v("remaining_s"),
        ),
        "battery": sensor(
            "battery",
            "Battery",
            device_class="battery",
            unit_of_measurement="%",
            state_class="measurement",
            entity_category="diagnostic",
            value_template=_v("battery_pct"),
        ),
        "sensor_health": sensor(
            "sensor_health",
            "Skin sensor reading",
            device_class="enum",
            options=list(SENSOR_HEALTH_STATES),
            entity_category="diagnostic",
            icon="mdi:thermometer-check",
            value_template=_v("sensor_health"),
        ),
        "heater": binary("heater", "Heater", "heater_on", "heat"),
        "over_temperature": binary(
            "over_temperature", "Over-temperature", "over_temperature", "problem"
        ),
        "massager_connected": binary(
            "massager_connected",
            "Massager",
            "massager_connected",
            "connectivity",
            entity_category="diagnostic",
        ),
        "sensor_connected": binary(
            "sensor_connected",
            "Skin sensor",
            "sensor_connected",
            "connectivity",
            entity_category="diagnostic",
        ),
        # Alerts as Home Assistant events: the priority is the event type ("cleared" when the
        # condition is over), so an automation can notify phones on "high"; the alert's id, code
        # and message are attributes. The automation acknowledges with mqtt.publish on
        # `alert/ack` (config/mosquitto/README.md shows one).
        "alert": {
            "p": "event",
            "name": "Alert",
            "unique_id": f"{uid}_alert",
            "state_topic": topics.alert,
            "event_types": [*ALERT_EVENT_TYPES],
            "value_template": ALERT_EVENT_TEMPLATE,
            "icon": "mdi:alert",
            "qos": 1,
        },
        "stop": {
            "p": "button",
            "name": "Stop session",
            "unique_id": f"{uid}_stop",
            "icon": "mdi:stop-circle",
            "command_topic": topics.command,
            "payload_press": stop_command,
            # A request id per press: the bridge applies a repeated request id only once, so a
            # fixed id would make every press after the first a no-op.
            "command_template": STOP_BUTTON_TEMPLATE,
            "retain": False,
            "qos": 1,
        },
    }
    origin: dict[str, Any] = {"name": "SoleGuard", "sw": sw_version}
    if origin_url is not None:
        origin["url"] = origin_url
    payload: dict[str, Any] = {
        "dev": {
            "identifiers": [uid],
            "name": device_name or f"SoleGuard {device_id}",
            "manufacturer": manufacturer,
            "model": model,
            "sw_version": sw_version,
        },
        "o": origin,
        "cmps": components,
        "availability_topic": topics.availability,
        "payload_available": AVAILABILITY_ONLINE.decode(),
        "payload_not_available": AVAILABILITY_OFFLINE.decode(),
        "qos": 1,
    }
    return topics.discovery, payload
