"""Fixtures: no user settings leak in; a journal filled with synthetic sessions."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from controller.store import Store
from tests.journal.journal_fixtures import Filled, fill

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture(autouse=True)
def _no_user_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the machine's own settings and data folder out of every test."""
    monkeypatch.delenv("SOLEGUARD_CONFIG", raising=False)
    for key in list(os.environ):
        if key.startswith("SOLEGUARD__"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))


@pytest.fixture
def filled(tmp_path: Path) -> Iterator[Filled]:
    path = tmp_path / "journal.sqlite3"
    with Store.open(path) as store:
        ids, readings = fill(store)
        yield Filled(store, path, ids, readings)
