"""Every async test under tests/sim runs on firmware_sim's virtual clock ("max" speed); a test
marked ``real_time`` (the cross-process test, whose peer runs on real time) does not."""

from firmware_sim.pytest_plugin import pytest_asyncio_loop_factories, pytest_configure

__all__ = ["pytest_asyncio_loop_factories", "pytest_configure"]
