"""The one reconnect backoff policy, as the BLE links and the MQTT bridge use it."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from controller.backoff import Backoff
from controller.ble.links import BACKOFF_BASE_S, BACKOFF_CAP_S, BLE_BACKOFF
from controller.caregiver.bridge import RECONNECT_INITIAL_S, RECONNECT_MAX_S, reconnect_delay

attempts = st.integers(min_value=0, max_value=10_000)
seeds = st.integers(min_value=0, max_value=2**32 - 1)


@given(attempts, seeds)
def test_a_lost_device_is_retried_within_the_cap_and_soon_at_first(attempt: int, seed: int) -> None:
    delay = BLE_BACKOFF.delay(attempt, random.Random(seed))
    assert 0.0 <= delay <= min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2.0 ** min(attempt, 32))


@given(attempts, seeds)
def test_a_broker_is_retried_after_at_least_half_the_window_and_within_the_cap(
    attempt: int, seed: int
) -> None:
    ceiling = min(RECONNECT_MAX_S, RECONNECT_INITIAL_S * 2.0 ** min(attempt, 32))
    delay = reconnect_delay(attempt, random.Random(seed))
    assert ceiling / 2 <= delay <= ceiling


def test_the_window_doubles_until_the_cap() -> None:
    policy = Backoff(initial_s=0.25, cap_s=30.0)
    assert [policy.ceiling(n) for n in range(9)] == [
        0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0
    ]  # fmt: skip


def test_retries_spread_out_rather_than_land_together() -> None:
    """Full jitter: a hundred hubs that lost the link together do not all retry at once."""
    rng = random.Random(7)
    delays = {round(BLE_BACKOFF.delay(6, rng), 3) for _ in range(100)}
    assert len(delays) > 50
