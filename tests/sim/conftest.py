"""Every async test under tests/sim runs on firmware_sim's virtual clock ("max" speed).

pytest-asyncio 1.x asks the ``pytest_asyncio_loop_factories`` hook for the loops to run a test in;
this conftest answers for its directory only. A test marked ``real_time`` (the cross-process test,
whose peer is another process on real time) gets a normal event loop instead.
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
