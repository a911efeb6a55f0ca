"""``soleguard demo`` as a user runs it, with a caregiver on a real broker (issue 5 acceptance)."""

from __future__ import annotations

import asyncio
import json

import pytest

from controller.caregiver.broker import LocalBroker
from tests.e2e.helpers import caregiver, run_cli, wait_until

pytestmark = pytest.mark.slow

DEMO_BASE = "soleguard/home"  # the default device id


async def test_demo_on_an_external_broker_is_watched_and_stopped_by_a_caregiver(
    mqtt_broker: LocalBroker, user_env: dict[str, str]
) -> None:
    async with caregiver(mqtt_broker, "soleguard/#") as person:
        demo = asyncio.create_task(
            run_cli(
                user_env,
                "demo",
                "--minutes",
                "3",
                "--speed",
                "10",
                "--broker",
                f"mqtt://127.0.0.1:{mqtt_broker.port}",
                "--no-journal",
            ),
            name="demo",
        )

        def on(suffix: str) -> list[object]:
            return [m for m in person.messages if m.topic.value == f"{DEMO_BASE}/{suffix}"]

        # Mid-run: the session is running and telemetry is flowing.
        await wait_until(lambda: len(on("telemetry")) >= 5 or demo.done())
        assert not demo.done(), demo.result()
        await person.client.publish(
            f"{DEMO_BASE}/command",
            json.dumps({"action": "stop", "request_id": "e2e-demo-stop"}),
            qos=1,
        )
        code, out, err = await demo
        # The CAREGIVER_STOP alert is drained before the demo exits.
        await wait_until(lambda: bool(on("alert")))

    assert code == 0, err
    assert "session ended by caregiver" in " ".join(out.split())
    availability = [m.payload for m in on("availability")]  # type: ignore[attr-defined]
    assert availability[0] == b"online"
    assert availability[-1] == b"offline"  # a clean exit says goodbye
    states = [json.loads(m.payload) for m in on("state")]  # type: ignore[attr-defined]
    assert "running" in [s["session_state"] for s in states]
    assert states[-1]["session_state"] == "ended"
    results = [json.loads(m.payload) for m in on("command/result")]  # type: ignore[attr-defined]
    assert [(r["request_id"], r["accepted"]) for r in results] == [("e2e-demo-stop", True)]
    alerts = [json.loads(m.payload) for m in on("alert")]  # type: ignore[attr-defined]
    # Only the stop itself, once (a start-up SENSOR_STALE is a known bug: see below).
    assert [a["code"] for a in alerts if a["code"] != "SENSOR_STALE"] == ["CAREGIVER_STOP"]
    assert len({a["id"] for a in alerts}) == len(alerts)


async def test_demo_with_its_embedded_broker_delivers_every_alert(
    user_env: dict[str, str],
) -> None:
    code, out, err = await run_cli(user_env, "demo", "--speed", "max", "--minutes", "2", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["broker"].startswith("mqtt://127.0.0.1:")
    assert summary["ended_by"] == "timer"
    assert summary["alerts_raised"] >= 1  # time up, at least
    assert summary["alerts_raised"] == summary["alerts_delivered"]
    # How a caregiver connects is printed for the user.
    assert f"soleguard monitor --broker {summary['broker']}" in err


@pytest.mark.xfail(
    strict=True,
    reason="SessionRunner starts on the first skin reading even when it is older than "
    "stale_after_s (the massager connected later), so every session not on 'max' virtual time "
    "opens with a SENSOR_STALE alert to caregivers",
)
async def test_a_healthy_demo_at_a_finite_speed_raises_no_sensor_alarm(
    user_env: dict[str, str],
) -> None:
    code, out, err = await run_cli(
        user_env, "demo", "--speed", "20", "--minutes", "1", "--json", "--no-mqtt", "--no-journal"
    )
    assert code == 0, err
    assert [a["code"] for a in json.loads(out)["alarms"]] == ["SESSION_TIME_UP"]
