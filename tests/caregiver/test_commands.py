"""Caregiver commands: only stop, heater off and lower pressure ever reach the service."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.caregiver import CaregiverBridge, CaregiverCommand, CommandRefused, parse_command
from controller.caregiver.commands import (
    MAX_COMMAND_BYTES,
    TokenBucket,
)
from tests.caregiver.helpers import recorder, settings_for, wait_until

if TYPE_CHECKING:
    from controller.caregiver.broker import LocalBroker
    from controller.store import Store

ALLOWED = "'stop', 'heater_off', 'lower_pressure'"


def _j(obj: object) -> bytes:
    return json.dumps(obj).encode()


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (_j({"action": "stop", "request_id": "a"}), ("stop", "a", None)),
        (_j({"action": "heater_off", "request_id": "b"}), ("heater_off", "b", None)),
        (_j({"action": "lower_pressure", "request_id": "c"}), ("lower_pressure", "c", None)),
        (
            _j({"action": "lower_pressure", "request_id": "d", "amount_mmhg": 12.5}),
            ("lower_pressure", "d", 12.5),
        ),
        (
            _j({"action": "lower_pressure", "request_id": "e", "amount_mmhg": 70}),
            ("lower_pressure", "e", 70),
        ),
    ],
)
def test_valid_commands_parse(payload: bytes, expected: tuple[str, str, float | None]) -> None:
    command = parse_command(payload, retained=False)
    assert isinstance(command, CaregiverCommand)
    assert (command.action, command.request_id, command.amount_mmhg) == expected


BAD_COMMANDS: list[tuple[bytes, str | None, str]] = [
    # (payload, request_id in the refusal, text the reason must contain)
    (_j({"action": "raise_pressure", "request_id": "r1"}), "r1", "may only reduce"),
    (_j({"action": "heater_on", "request_id": "r2"}), "r2", "may only reduce"),
    (_j({"action": "set_pressure", "request_id": "r3", "amount_mmhg": 120}), "r3", "only reduce"),
    (_j({"action": "dance", "request_id": "r4"}), "r4", f"action must be one of {ALLOWED}"),
    (_j({"request_id": "r5"}), "r5", f"action must be one of {ALLOWED}"),
    (b"{not json", None, "not valid JSON"),
    (b"\xff\xfe\x00", None, "UTF-8"),
    (b"[1, 2]", None, "JSON object"),
    (b"x" * (MAX_COMMAND_BYTES + 1), None, f"at most {MAX_COMMAND_BYTES}"),
    (_j({"action": "stop", "request_id": "r6", "force": True}), "r6", "unknown field 'force'"),
    (_j({"action": "stop"}), None, "request_id must be valid UTF-8 text of 1-64"),
    (_j({"action": "stop", "request_id": ""}), None, "request_id must be valid UTF-8 text of 1-64"),
    (_j({"action": "stop", "request_id": "x" * 65}), None, "request_id must be valid UTF-8 text"),
    (_j({"action": "stop", "request_id": 7}), None, "request_id must be valid UTF-8 text"),
    # A JSON lone surrogate: a Python str that no UTF-8 encoder (SQLite's, MQTT's) accepts.
    (b'{"action": "stop", "request_id": "\\ud800"}', None, "must be valid UTF-8 text"),
    (
        _j({"action": "lower_pressure", "request_id": "r7", "amount_mmhg": 500}),
        "r7",
        "amount_mmhg must be a number > 0 and <= 70",
    ),
    (
        _j({"action": "lower_pressure", "request_id": "r8", "amount_mmhg": -5}),
        "r8",
        "amount_mmhg must be a number > 0",
    ),
    (
        _j({"action": "lower_pressure", "request_id": "r9", "amount_mmhg": "10"}),
        "r9",
        "amount_mmhg must be a number",
    ),
    (
        _j({"action": "lower_pressure", "request_id": "r10", "amount_mmhg": True}),
        "r10",
        "amount_mmhg must be a number",
    ),
    (b'{"action": "lower_pressure", "request_id": "r11", "amount_mmhg": NaN}', "r11", "amount"),
    (_j({"action": "stop", "request_id": "r12", "amount_mmhg": 5}), "r12", "only allowed with"),
]


@pytest.mark.parametrize(("payload", "request_id", "reason"), BAD_COMMANDS)
def test_bad_commands_are_refused_with_a_reason(
    payload: bytes, request_id: str | None, reason: str
) -> None:
    refused = parse_command(payload, retained=False)
    assert isinstance(refused, CommandRefused)
    assert refused.request_id == request_id
    assert reason in refused.reason


def test_a_retained_command_is_refused_even_when_valid() -> None:
    refused = parse_command(_j({"action": "stop", "request_id": "old"}), retained=True)
    assert isinstance(refused, CommandRefused)
    assert "retained" in refused.reason


@given(st.binary(max_size=2048))
def test_no_bytes_crash_the_parser_or_raise_anything(payload: bytes) -> None:
    result = parse_command(payload, retained=False)
    if isinstance(result, CaregiverCommand):
        assert result.action in ("stop", "heater_off", "lower_pressure")


@given(
    st.dictionaries(
        st.sampled_from(["action", "request_id", "amount_mmhg", "extra"]),
        st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=70)),
    )
)
def test_only_reducing_actions_ever_pass(data: dict[str, object]) -> None:
    result = parse_command(json.dumps(data).encode(), retained=False)
    if isinstance(result, CaregiverCommand):
        assert result.action in ("stop", "heater_off", "lower_pressure")
        assert result.amount_mmhg is None or 0 < result.amount_mmhg <= 70


def test_token_bucket_allows_a_burst_then_the_rate() -> None:
    bucket = TokenBucket(5.0, 10, now=0.0)
    assert sum(bucket.take(0.0) for _ in range(20)) == 10
    assert bucket.take(0.1) is False  # half a token
    assert bucket.take(0.2) is True  # one token after 0.2 s at 5/s
    assert sum(bucket.take(100.0) for _ in range(20)) == 10  # never more than the burst


async def test_over_the_broker_bad_commands_get_results_and_good_ones_come_out(
    mqtt_broker: LocalBroker, store: Store
) -> None:
    # Nine refusals and one valid command: within the rate limit's burst of ten.
    bad = [case for case in BAD_COMMANDS if case[1] is not None][:9]
    async with (
        recorder(mqtt_broker, "soleguard/porch/command/result") as rec,
        CaregiverBridge(settings_for(mqtt_broker, "porch"), store) as bridge,
    ):
        await wait_until(lambda: bridge.connected and bridge.stats.connects == 1)
        # `connected` is set before the subscriptions; `online` is published after them.
        async with recorder(mqtt_broker, "soleguard/porch/availability") as avail:
            await avail.wait_for(lambda r: bool(r.messages))
        for payload, _, _ in bad:
            await rec.client.publish("soleguard/porch/command", payload, qos=1)
        await rec.client.publish(
            "soleguard/porch/command", _j({"action": "heater_off", "request_id": "ok"}), qos=1
        )
        async with asyncio.timeout(30):
            command = await bridge.next_command()
        await rec.wait_for(lambda r: len(r.messages) == len(bad))
        bridge.command_result(command.request_id, True, None)
        await rec.wait_for(lambda r: len(r.messages) == len(bad) + 1)
    results = rec.json_on("/result")
    for (_, request_id, reason), result in zip(bad, results, strict=False):
        assert result["request_id"] == request_id
        assert result["accepted"] is False
        assert reason in result["reason"]
    assert results[-1] == {**results[-1], "request_id": "ok", "accepted": True, "reason": None}
    assert (command.action, command.request_id) == ("heater_off", "ok")
    assert bridge.stats.commands_forwarded == 1
    assert all(m.qos == 1 for m in rec.messages)


async def test_a_retained_stop_is_not_replayed_on_connect(
    mqtt_broker: LocalBroker, store: Store
) -> None:
    async with recorder(mqtt_broker, "soleguard/shed/command/result") as rec:
        await rec.client.publish(
            "soleguard/shed/command",
            _j({"action": "stop", "request_id": "yesterday"}),
            qos=1,
            retain=True,
        )
        async with CaregiverBridge(settings_for(mqtt_broker, "shed"), store) as bridge:
            await rec.wait_for(lambda r: bool(r.messages))
            [result] = rec.json_on("/result")
            assert result["accepted"] is False
            assert "retained" in result["reason"]
            assert bridge.stats.commands_forwarded == 0
        await rec.client.publish("soleguard/shed/command", b"", qos=1, retain=True)
