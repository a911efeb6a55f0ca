"""The command-line tests: nothing a test spawns outlives it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.cli.terminal import end_all

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture(autouse=True)
def _no_leftover_commands() -> Iterator[None]:
    yield
    end_all()
