"""The command-line tests: nothing a test spawns outlives it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cli.terminal import end_all


@pytest.fixture(autouse=True)
def _no_leftover_commands() -> Iterator[None]:
    yield
    end_all()
