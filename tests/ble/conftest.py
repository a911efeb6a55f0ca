"""Fixtures for the bumble backend: a virtual radio world built inside the test's event loop."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from bumble.link import LocalLink

from controller.ble.bumble_backend import BumbleRadio
from tests.ble.bumble_peripheral import Peripheral, run_peripheral

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


@pytest.fixture
def link() -> LocalLink:
    return LocalLink()


@pytest.fixture
async def peripheral(link: LocalLink) -> AsyncIterator[Peripheral]:
    async with run_peripheral(link) as running:
        yield running


@pytest.fixture
async def radio(link: LocalLink) -> AsyncIterator[BumbleRadio]:
    async with BumbleRadio(link) as powered:
        yield powered
