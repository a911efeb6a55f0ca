"""Run a directory's async tests on the virtual clock (pytest-asyncio 1.x).

A ``conftest.py`` opts its directory in with::

    from firmware_sim.pytest_plugin import pytest_asyncio_loop_factories, pytest_configure

Every async test there then runs on ``VirtualTimeLoop("max")``: whole sessions replay exactly and
in seconds. A test marked ``real_time`` (one that talks to another process, whose clock is the
real one) gets a normal event loop instead.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from firmware_sim.clock import loop_factory

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    import pytest

__all__ = ["pytest_asyncio_loop_factories", "pytest_configure"]


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``real_time`` marker."""
    config.addinivalue_line(
        "markers", "real_time: run on a normal event loop instead of the virtual clock"
    )


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """The event loop of a test: the virtual clock, or a normal loop for ``real_time`` tests."""
    if item.get_closest_marker("real_time") is not None:
        return {"real": asyncio.new_event_loop}
    return {"virtual": loop_factory("max")}
