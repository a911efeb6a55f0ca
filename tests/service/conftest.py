"""Every async test under tests/service runs on firmware_sim's virtual clock ("max" speed): a
whole supervised session (links over bleak and bumble's virtual radio, supervisor loop, actuator,
simulated firmware) replays exactly and in a few seconds. ``real_time`` marks the exceptions."""

from firmware_sim.pytest_plugin import pytest_asyncio_loop_factories, pytest_configure

__all__ = ["pytest_asyncio_loop_factories", "pytest_configure"]
