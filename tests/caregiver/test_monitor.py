"""soleguard monitor: its model of the screen, and its stop key against a real bridge."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from controller.caregiver import CaregiverBridge, DeviceState
from controller.caregiver.broker import LocalBroker, free_port
from controller.cli.monitor import MonitorModel, _ClientHolder, _handle_keys, monitor
from tests.caregiver.helpers import HANG_GUARD_S, make_alert, recorder, settings_for

if TYPE_CHECKING:
    from controller.store import Store


def _text(model: MonitorModel) -> str:
    console = Console(width=120, record=True)
    console.print(model.render())
    return console.export_text()


def test_model_shows_each_device_state_and_alerts() -> None:
    model = MonitorModel("soleguard")
    model.apply("soleguard/home/availability", b"online")
    model.apply(
        "soleguard/home/state",
        json.dumps(
            {
                "session_state": "running",
                "pressure_mmhg": 42.0,
                "skin_temp_c": 37.4,
                "over_temperature": True,
                "remaining_s": 125,
            }
        ).encode(),
    )
    model.apply(
        "soleguard/home/alert",
        json.dumps({"priority": "high", "code": "over_temperature", "message": "43 C"}).encode(),
    )
    model.apply("soleguard/attic/availability", b"offline")
    model.apply("soleguard/home/state", b"not json")  # ignored, never crashes
    model.apply("other/home/state", b"{}")  # not under the base topic
    text = _text(model)
    assert model.device_ids() == ["attic", "home"]
    assert "running" in text
    assert "42.0" in text
    assert "OVER-TEMPERATURE" in text
    assert "2:05" in text
    assert "over_temperature: 43 C" in text
    assert "offline" in text


async def test_stop_key_reaches_the_controller_and_shows_the_result(
    mqtt_broker: LocalBroker, store: Store
) -> None:
    model = MonitorModel("soleguard")

    class FakeLive:  # the terminal is not what this test is about
        def update(self, _renderable: object) -> None:
            pass

    async with (
        recorder(mqtt_broker, "soleguard/#") as caregiver,
        CaregiverBridge(settings_for(mqtt_broker, "home"), store) as bridge,
    ):
        bridge.update_state(DeviceState(session_state="running"))
        bridge.raise_alert(make_alert("home"))
        await caregiver.wait_for(lambda r: bool(r.on("/state")) and bool(r.on("/availability")))
        for m in caregiver.messages:
            model.apply(m.topic.value, m.payload)
        keys: asyncio.Queue[str] = asyncio.Queue()
        for key in "sq":
            keys.put_nowait(key)
        await _handle_keys(_ClientHolder(caregiver.client), model, FakeLive(), keys)
        async with asyncio.timeout(HANG_GUARD_S):
            command = await bridge.next_command()
        bridge.command_result(command.request_id, True, None)
        await caregiver.wait_for(lambda r: bool(r.on("/command/result")))
        model.apply("soleguard/home/command/result", caregiver.on("/command/result")[0].payload)
    assert command.action == "stop"
    assert command.request_id.startswith("monitor-")
    assert f"{command.request_id}: accepted" in _text(model)


def test_monitor_command_reports_an_unreachable_broker_in_one_line() -> None:
    app = typer.Typer()
    app.command()(monitor)
    result = CliRunner().invoke(app, ["--broker", f"mqtt://127.0.0.1:{free_port()}"])
    assert result.exit_code == 1
    assert "soleguard monitor: broker mqtt://127.0.0.1:" in result.output


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--broker", "http://x"], "scheme must be mqtt://"),
        (["--broker", "mqtt://127.0.0.1:99999"], "port must be 1-65535"),
        (["--base-topic", "a/#"], "--base-topic"),
    ],
)
def test_monitor_command_refuses_what_the_user_typed_wrong_as_a_usage_error(
    args: list[str], said: str
) -> None:
    """A wrong URL or topic is a usage error (exit 2, README's table), unlike a broker that
    cannot be reached (exit 1)."""
    app = typer.Typer()
    app.command()(monitor)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert said in result.output
    assert len(result.output.strip().splitlines()) == 1


class _Screen:
    def update(self, _renderable: object) -> None:
        pass


async def test_monitor_acknowledges_alerts_and_reconnects_when_the_broker_restarts(
    mqtt_broker: LocalBroker, store: Store
) -> None:
    import aiomqtt  # noqa: PLC0415

    from controller.caregiver.broker import parse_broker_url  # noqa: PLC0415
    from controller.cli.monitor import _stay_connected  # noqa: PLC0415

    model = MonitorModel("soleguard", client_name="monitor-test")
    holder = _ClientHolder()

    def make_client() -> aiomqtt.Client:
        return aiomqtt.Client(
            mqtt_broker.host, mqtt_broker.port, identifier="monitor-test", clean_session=False
        )

    async def until(condition: Any) -> None:
        async with asyncio.timeout(HANG_GUARD_S):
            while not condition():  # noqa: ASYNC110 (the model has no event to wait on)
                await asyncio.sleep(0.01)

    class Screen:
        """Counts redraws: the monitor redraws once its subscriptions are made."""

        updates = 0

        def update(self, _renderable: object) -> None:
            self.updates += 1

    screen = Screen()
    target = parse_broker_url(mqtt_broker.url)
    async with CaregiverBridge(settings_for(mqtt_broker, "home"), store) as bridge:
        watch = asyncio.create_task(_stay_connected(make_client, target, model, screen, holder))
        try:
            # Subscribed, not only connected: an alert published in between reached no one
            # (the session had no subscription yet), and the test waited out its guard.
            await until(lambda: holder.client is not None and screen.updates >= 1)
            bridge.raise_alert(make_alert("home", priority="high", condition_id="first"))
            await until(lambda: bridge.stats.alerts_acknowledged == 1)
            # The broker restarts: the monitor does not exit, it reconnects with backoff.
            await mqtt_broker.stop()
            await until(lambda: holder.client is None and "reconnecting" in model.status)
            redrawn = screen.updates
            await mqtt_broker.start()
            await until(
                lambda: holder.client is not None and bridge.connected and screen.updates > redrawn
            )
            bridge.raise_alert(make_alert("home", priority="high", condition_id="second"))
            await until(lambda: bridge.stats.alerts_acknowledged == 2)
            assert not watch.done()
        finally:
            watch.cancel()
    acked = {h.condition_id: h.acknowledged_by for h in store.alert_history()}
    assert acked == {"first": ("monitor-test",), "second": ("monitor-test",)}


def test_alert_times_are_shown_on_the_monitors_wall_clock() -> None:
    import time  # noqa: PLC0415

    model = MonitorModel("soleguard")
    # An accelerated demo stamps alerts ahead of the wall clock; the monitor shows receipt time.
    received = time.mktime((2026, 11, 30, 9, 15, 42, 0, 0, -1))
    ack = model.apply(
        "soleguard/home/alert",
        json.dumps(
            {
                "id": "c1",
                "priority": "high",
                "code": "X",
                "message": "m",
                "time": "2026-11-30T09:17:12.000Z",
                "event": "raised",
            }
        ).encode(),
        now=received,
    )
    assert "09:15:42 high X: m" in _text(model)
    assert ack == ("soleguard/home/alert/ack", b'{"id": "c1", "client": "monitor"}')
    cleared = {"id": "c1", "priority": "high", "code": "X", "message": "m", "event": "cleared"}
    assert model.apply("soleguard/home/alert", json.dumps(cleared).encode()) is None


def test_monitor_refuses_a_base_topic_no_controller_publishes_under() -> None:
    app = typer.Typer()
    app.command()(monitor)
    result = CliRunner().invoke(app, ["--base-topic", "soleguard/", "--broker", "mqtt://x:1"])
    assert result.exit_code == 2  # a usage error: README's exit-code table
    assert "--base-topic 'soleguard/' starts or ends with '/'" in result.output


async def test_with_an_account_the_stop_goes_to_the_accounts_own_command_topic(
    mqtt_broker: LocalBroker, store: Store
) -> None:
    model = MonitorModel("soleguard", client_name="anna", username="anna")
    async with (
        recorder(mqtt_broker, "soleguard/+/availability", "soleguard/porch/command/#") as caregiver,
        CaregiverBridge(settings_for(mqtt_broker, "porch"), store) as bridge,
    ):
        await caregiver.wait_for(lambda r: bool(r.on("/availability")))
        model.apply("soleguard/porch/availability", b"online")
        keys: asyncio.Queue[str] = asyncio.Queue()
        for key in "sq":
            keys.put_nowait(key)
        await _handle_keys(_ClientHolder(caregiver.client), model, _Screen(), keys)
        async with asyncio.timeout(HANG_GUARD_S):
            command = await bridge.next_command()
        # Mallory's flood on her own topic cannot use up Anna's rate limit (and the shipped ACL
        # lets Anna write only `command/anna`).
        assert command.action == "stop"
        assert bridge.stats.commands_forwarded == 1
        await caregiver.wait_for(lambda r: bool(r.on("/command/anna")))
    assert [m.topic.value for m in caregiver.messages if "/command" in m.topic.value] == [
        "soleguard/porch/command/anna"
    ]
