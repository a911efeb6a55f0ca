"""End-to-end fixtures (the broker fixtures live in tests/conftest.py)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from controller.store import Store

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "journal.sqlite3") as opened:
        yield opened


def _matplotlib_cache() -> str:
    import matplotlib  # noqa: PLC0415 (only the journal tests need it)

    return str(matplotlib.get_cachedir())


@pytest.fixture
def user_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a user whose config and journal live under tmp_path, nowhere else."""
    home = tmp_path / "home"
    env = dict(os.environ)
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        XDG_STATE_HOME=str(home / ".local" / "state"),
        XDG_CACHE_HOME=str(home / ".cache"),
        # matplotlib's font cache stays where it is: rebuilding it costs seconds per test.
        MPLCONFIGDIR=_matplotlib_cache(),
        COLUMNS="120",
    )
    for name in list(env):
        if name.startswith("SOLEGUARD_") and name != "SOLEGUARD_REQUIRE_MOSQUITTO":
            del env[name]
    return env
