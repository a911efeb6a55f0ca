"""Every async test under tests/service runs on firmware_sim's virtual clock ("max" speed).

The same pytest-asyncio 1.x hook as tests/sim: a whole supervised session (links over bleak and
bumble's virtual radio, supervisor loop, actuator, simulated firmware) replays exactly and in a
few seconds. A test marked ``real_time`` (a controller in another process, whose clock is the
real one) gets a normal event loop instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

import pytest

from firmware_sim.clock import loop_factory


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "real_time: run on a normal event loop instead of the virtual clock"
    )


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    if item.get_closest_marker("real_time") is not None:
        return {"real": asyncio.new_event_loop}
    return {"virtual": loop_factory("max")}
