"""Home Assistant device-based discovery: the payload's structure, as HA validates it."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from controller.caregiver import Topics, build_discovery, parse_command
from controller.caregiver.commands import CaregiverCommand
from controller.caregiver.discovery import DISCOVERY_EXPIRE_AFTER_S, STATE_REFRESH_S

TOPICS = Topics("soleguard", "bedroom", "ha")


def _build() -> tuple[str, dict]:  # type: ignore[type-arg]
    return build_discovery(TOPICS, sw_version="1.2.3", origin_url="https://example.org/soleguard")


def test_topic_is_device_based_under_the_configured_prefix() -> None:
    topic, _ = _build()
    assert topic == "ha/device/bedroom/config"


def test_device_and_origin_blocks() -> None:
    _, payload = _build()
    assert payload["dev"]["identifiers"] == ["soleguard_bedroom"]
    assert {"name", "manufacturer", "model", "sw_version"} <= payload["dev"].keys()
    assert payload["dev"]["sw_version"] == "1.2.3"
    assert payload["o"] == {
        "name": "SoleGuard",
        "sw": "1.2.3",
        "url": "https://example.org/soleguard",
    }
    assert payload["availability_topic"] == "soleguard/bedroom/availability"
    assert (payload["payload_available"], payload["payload_not_available"]) == ("online", "offline")


def test_every_component_has_a_platform_and_a_unique_id() -> None:
    _, payload = _build()
    cmps = payload["cmps"]
    assert {
        "skin_temperature",
        "pressure",
        "heater",
        "session_state",
        "time_remaining",
        "over_temperature",
        "massager_connected",
        "sensor_connected",
        "battery",
        "sensor_health",
        "pressure_target",
        "stop",
    } <= cmps.keys()
    unique_ids = [c["unique_id"] for c in cmps.values()]
    assert len(set(unique_ids)) == len(unique_ids)
    assert all(c["p"] in {"sensor", "binary_sensor", "button", "event"} for c in cmps.values())
    for component in cmps.values():
        if component["p"] not in {"button", "event"}:
            assert component["state_topic"] == "soleguard/bedroom/state"
            assert "value_json." in component["value_template"]


def test_units_and_device_classes_match_what_home_assistant_accepts() -> None:
    cmps = _build()[1]["cmps"]
    skin = cmps["skin_temperature"]
    assert (skin["device_class"], skin["unit_of_measurement"]) == ("temperature", "°C")
    assert skin["state_class"] == "measurement"
    assert isinstance(skin["expire_after"], int)
    assert skin["expire_after"] == DISCOVERY_EXPIRE_AFTER_S
    # Longer than the state refresh, or a quiet but healthy device would blink unavailable.
    assert skin["expire_after"] > STATE_REFRESH_S
    assert cmps["pressure"]["unit_of_measurement"] == "mmHg"
    assert cmps["heater"]["device_class"] == "heat"
    assert cmps["over_temperature"]["device_class"] == "problem"
    assert cmps["massager_connected"]["device_class"] == "connectivity"
    assert cmps["sensor_connected"]["device_class"] == "connectivity"
    assert (
        cmps["time_remaining"]["device_class"],
        cmps["time_remaining"]["unit_of_measurement"],
    ) == ("duration", "s")
    battery, health = cmps["battery"], cmps["sensor_health"]
    assert (battery["device_class"], battery["unit_of_measurement"]) == ("battery", "%")
    assert health["device_class"] == "enum"
    assert battery["entity_category"] == health["entity_category"] == "diagnostic"


def test_the_stop_button_sends_a_stop_the_bridge_accepts() -> None:
    stop = _build()[1]["cmps"]["stop"]
    assert stop["p"] == "button"
    assert stop["command_topic"] == "soleguard/bedroom/command"
    assert stop["retain"] is False
    command = parse_command(stop["payload_press"].encode(), retained=False)
    assert isinstance(command, CaregiverCommand)
    assert command.action == "stop"


def test_each_press_of_the_stop_button_has_its_own_request_id() -> None:
    jinja2 = pytest.importorskip("jinja2")
    stop = _build()[1]["cmps"]["stop"]
    template = jinja2.Environment().from_string(stop["command_template"])
    ids = []
    for ms in (1_764_500_000_000, 1_764_500_000_250):
        moment = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)
        rendered = template.render(now=lambda m=moment: m, value=stop["payload_press"])
        command = parse_command(rendered.encode(), retained=False)
        assert isinstance(command, CaregiverCommand)
        assert command.action == "stop"
        ids.append(command.request_id)
    assert ids[0] != ids[1]


def test_payload_is_json_serialisable_without_origin_url() -> None:
    _, payload = build_discovery(TOPICS, sw_version="0.1.0")
    assert "url" not in payload["o"]
    assert json.loads(json.dumps(payload)) == payload
