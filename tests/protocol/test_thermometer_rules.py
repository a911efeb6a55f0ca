"""How fast a thermometer must measure for heat, against the stale limit (never loosened)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.ble.thermometer import ThermometerInfo, fast_enough, needed_interval_s


@given(st.floats(0.5, 3.0))
def test_the_interval_asked_for_is_the_longest_whole_second_under_the_stale_limit(
    stale_after_s: float,
) -> None:
    wanted = needed_interval_s(stale_after_s)
    assert wanted >= 1
    if stale_after_s > 1.0:
        assert fast_enough(wanted, stale_after_s)
        assert not fast_enough(wanted + 1, stale_after_s)


@pytest.mark.parametrize(
    ("interval_s", "stale_after_s", "ok"),
    [
        (1, 2.0, True),
        (1, 1.5, True),
        (2, 2.0, False),
        (5, 2.0, False),
        (2, 3.0, True),
        (0, 2.0, False),
    ],
)
def test_fast_enough(interval_s: int, stale_after_s: float, ok: bool) -> None:
    assert fast_enough(interval_s, stale_after_s) is ok


def test_an_unstated_interval_is_not_called_too_slow() -> None:
    info = ThermometerInfo("AA", True, None, None, None, 2.0)
    assert not info.too_slow
    assert info.lines() == []
    assert "not stated" in info.describe()
