"""Caregiver test fixtures (the broker fixtures live in tests/conftest.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from controller.store import Store

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "journal.db") as opened:
        yield opened
