"""The shipped config/mosquitto/acl on a real mosquitto, with a password file from mosquitto_passwd.

A plain listener stands in for the TLS one: TLS changes the transport, not who may do what.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import aiomqtt
import pytest

from controller.caregiver import CaregiverBridge, DeviceState
from tests.caregiver.helpers import HANG_GUARD_S, recorder, settings_for

if TYPE_CHECKING:
    from controller.caregiver.broker import MosquittoBroker
    from controller.store import Store
    from tests.conftest import MakeMosquitto

SHIPPED_ACL = Path(__file__).parents[2] / "config" / "mosquitto" / "acl"
PASSWORDS = {
    "home": "home-secret",
    "kitchen": "kitchen-secret",
    "caregiver": "care-secret",
    "homeassistant": "ha-secret",
}
SHIPPED_CONF = SHIPPED_ACL.parent / "mosquitto.conf"


def _shipped(option: str) -> str:
    """One option's line from the shipped mosquitto.conf, so the test runs what ships."""
    [line] = [
        line for line in SHIPPED_CONF.read_text().splitlines() if line.startswith(option + " ")
    ]
    return line


@pytest.fixture
async def secured_broker(make_mosquitto: MakeMosquitto, tmp_path: Path) -> MosquittoBroker:
    passwd_tool = shutil.which("mosquitto_passwd") or shutil.which("/usr/bin/mosquitto_passwd")
    if passwd_tool is None:
        pytest.skip("needs mosquitto_passwd")
    passwd = tmp_path / "passwd"
    for i, (user, password) in enumerate(PASSWORDS.items()):
        create = ["-c"] if i == 0 else []
        tool = await asyncio.create_subprocess_exec(
            passwd_tool, *create, "-b", str(passwd), user, password
        )
        assert await tool.wait() == 0
    return await make_mosquitto(
        allow_anonymous=False,
        extra_config=[
            f"password_file {passwd}",
            f"acl_file {SHIPPED_ACL}",
            _shipped("use_username_as_clientid"),
        ],
    )


def _client(
    broker: MosquittoBroker, user: str | None, password: str | None = None
) -> aiomqtt.Client:
    return aiomqtt.Client(broker.host, broker.port, username=user, password=password)


async def test_anonymous_and_wrong_password_are_refused(secured_broker: MosquittoBroker) -> None:
    with pytest.raises(aiomqtt.MqttCodeError):
        async with _client(secured_broker, None):
            pass
    with pytest.raises(aiomqtt.MqttCodeError):
        async with _client(secured_broker, "caregiver", "guess"):
            pass


async def test_caregiver_reads_state_and_alerts_and_may_command_but_not_write_state(
    secured_broker: MosquittoBroker, store: Store
) -> None:
    settings = settings_for(secured_broker, "home", username="home", password=PASSWORDS["home"])
    async with (
        recorder(
            secured_broker,
            "soleguard/+/state",
            "soleguard/+/availability",
            "soleguard/+/command/result",
            username="caregiver",
            password=PASSWORDS["caregiver"],
        ) as caregiver,
        CaregiverBridge(settings, store) as bridge,
    ):
        await caregiver.wait_for(lambda r: bool(r.on("/availability")))
        # Denied: the broker acknowledges (MQTT 3.1.1 has no way to say no) and drops it.
        forged = json.dumps({"session_state": "forged"})
        await caregiver.client.publish("soleguard/home/state", forged, qos=1, retain=True)
        # The controller's genuine state comes after the forged one would have been delivered.
        bridge.update_state(DeviceState(session_state="genuine"))
        await caregiver.wait_for(lambda r: bool(r.on("/state")))

        # Allowed: a command reaches the controller, and its result comes back.
        stop = json.dumps({"action": "stop", "request_id": "acl-1"})
        await caregiver.client.publish("soleguard/home/command/caregiver", stop, qos=1)
        async with asyncio.timeout(HANG_GUARD_S):
            command = await bridge.next_command()
        bridge.command_result(command.request_id, True, None)
        await caregiver.wait_for(lambda r: bool(r.on("/command/result")))

    assert [s["session_state"] for s in caregiver.json_on("/state")] == ["genuine"]
    assert command.request_id == "acl-1"
    assert caregiver.json_on("/command/result")[0]["accepted"] is True


async def test_a_controller_cannot_touch_another_devices_topics(
    secured_broker: MosquittoBroker,
) -> None:
    async with (
        recorder(
            secured_broker,
            "soleguard/+/alert",
            username="caregiver",
            password=PASSWORDS["caregiver"],
        ) as caregiver,
        _client(secured_broker, "home", PASSWORDS["home"]) as home,
    ):
        await home.publish("soleguard/kitchen/alert", b'{"id":"forged"}', qos=1)
        await home.publish("soleguard/home/alert", b'{"id":"own"}', qos=1)
        await caregiver.wait_for(lambda r: bool(r.messages))
    assert [json.loads(m.payload)["id"] for m in caregiver.messages] == ["own"]


async def test_a_caregiver_reads_and_commands_only_the_devices_assigned_to_it(
    secured_broker: MosquittoBroker, store: Store
) -> None:
    """`caregiver` is assigned "home" in the shipped ACL, not "kitchen"."""
    kitchen = settings_for(
        secured_broker, "kitchen", username="kitchen", password=PASSWORDS["kitchen"]
    )
    home = settings_for(secured_broker, "home", username="home", password=PASSWORDS["home"])
    async with (
        recorder(
            secured_broker, "soleguard/#", username="caregiver", password=PASSWORDS["caregiver"]
        ) as caregiver,
        CaregiverBridge(kitchen, store) as kitchen_bridge,
        CaregiverBridge(home, store) as home_bridge,
    ):
        kitchen_bridge.update_state(DeviceState(session_state="kitchen-secret-state"))
        home_bridge.update_state(DeviceState(session_state="home-state"))
        await caregiver.wait_for(lambda r: bool(r.on("home/state")))
        stop = json.dumps({"action": "stop", "request_id": "not-yours"})
        # Neither the shared nor its own command topic of a device not assigned to it.
        await caregiver.client.publish("soleguard/kitchen/command/caregiver", stop, qos=1)
        await caregiver.client.publish("soleguard/kitchen/command", stop, qos=1)
        # Nor another account's command topic on its own device (rate limits stay apart).
        await caregiver.client.publish("soleguard/home/command/homeassistant", stop, qos=1)
        # Its own topic on its own device passes: the ordering proves the others were dropped.
        mine = json.dumps({"action": "stop", "request_id": "mine"})
        await caregiver.client.publish("soleguard/home/command/caregiver", mine, qos=1)
        async with asyncio.timeout(HANG_GUARD_S):
            command = await home_bridge.next_command()
        assert command.request_id == "mine"
        assert kitchen_bridge.stats.commands_forwarded == 0
        assert home_bridge.stats.commands_forwarded == 1
    topics = {m.topic.value for m in caregiver.messages}
    assert not any(t.startswith("soleguard/kitchen/") for t in topics)


async def test_no_account_can_take_over_the_controllers_client_id(
    secured_broker: MosquittoBroker, store: Store
) -> None:
    settings = settings_for(secured_broker, "home", username="home", password=PASSWORDS["home"])
    async with (
        recorder(
            secured_broker,
            "soleguard/home/availability",
            username="caregiver",
            password=PASSWORDS["caregiver"],
        ) as watcher,
        CaregiverBridge(settings, store) as bridge,
    ):
        await watcher.wait_for(lambda r: [m.payload for m in r.messages][-1:] == [b"online"])
        # 22 attempts with the controller's own client id, from another account.
        for _ in range(22):
            async with aiomqtt.Client(
                secured_broker.host,
                secured_broker.port,
                username="homeassistant",
                password=PASSWORDS["homeassistant"],
                identifier="soleguard-home",
            ):
                pass
        # A later message through the same broker shows everything before it was delivered.
        bridge.update_state(DeviceState(session_state="still-here"))
        # (Another account: with client id = username, a second `caregiver` login would
        # replace the watcher's own connection.)
        async with recorder(
            secured_broker,
            "soleguard/home/state",
            username="homeassistant",
            password=PASSWORDS["homeassistant"],
        ) as late:
            await late.wait_for(lambda r: bool(r.messages))
        assert bridge.stats.connects == 1
        assert bridge.connected
    assert [m.payload for m in watcher.messages].count(b"offline") <= 1  # only the clean exit
