"""Shared fixtures: a real MQTT broker process per test.

``mqtt_broker`` starts mosquitto (Debian: /usr/sbin/mosquitto) on 127.0.0.1 and a free port with a
config written to the test's tmp_path, never the machine's own broker; ``await broker.stop()`` and
``await broker.start()`` take it away and bring it back on the same port (with persistence, so
retained messages and persistent sessions survive, as on a real deployment). Without mosquitto it
falls back to amqtt in-process, unless ``SOLEGUARD_REQUIRE_MOSQUITTO=1`` (set by CI), which makes a
missing mosquitto a failure. ``make_mosquitto`` starts one with extra config lines (ACL tests).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.caregiver.broker import (
    AmqttBroker,
    LocalBroker,
    MosquittoBroker,
    find_mosquitto,
)

if TYPE_CHECKING:
    from pathlib import Path

# --- Hypothesis: one configuration for the whole suite --------------------------------------------
#
# Profiles are registered here, in the root conftest, so that every test module sees the same
# settings whichever subset of the suite runs (a profile loaded from a sub-directory's conftest
# applies only once that directory is collected, so a test's settings depended on the selection).
#
# - No deadlines: speed is measured by bench/, never asserted in tests; a deadline turns a loaded
#   machine into a failure.
# - The too_slow health check stays on for ordinary tests: their strategies are cheap, and a slow
#   one is a real problem to fix. The one stateful proof that legitimately does work while it
#   generates (each step runs the supervisor) suppresses it itself, with its reason.
# - `proof` is the long run of the safety proofs (>= 10,000 state-machine examples); CI runs it as
#   its own step (`make proofs`), so `make test` stays quick for everyone.
settings.register_profile("dev", deadline=None, print_blob=True)
settings.register_profile("ci", deadline=None, print_blob=True)
settings.register_profile("proof", max_examples=10_000, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


def _warm_hypothesis_caches() -> None:
    """Build Hypothesis' one-off caches before any test is timed by its health checks.

    On a fresh checkout the first text strategy builds the Unicode character tables and the first
    @given collects constants from the source tree: about a second once, which the too_slow health
    check blamed on whichever test happened to run first (a flake that only a clean clone shows).
    """

    @settings(database=None, max_examples=1, suppress_health_check=list(HealthCheck))
    @given(st.text(min_size=1), st.floats(), st.binary(min_size=1))
    def warm(_text: str, _number: float, _data: bytes) -> None:
        pass

    warm()


@pytest.fixture(scope="session", autouse=True)
def _hypothesis_caches_built() -> None:
    # A fixture, not pytest_sessionstart: Hypothesis warns about work done while plugins load.
    _warm_hypothesis_caches()


MakeMosquitto = Callable[..., Awaitable[MosquittoBroker]]


@pytest.fixture(scope="session")
def mosquitto_executable() -> str | None:
    """The mosquitto binary, or None (a failure when SOLEGUARD_REQUIRE_MOSQUITTO=1)."""
    found = find_mosquitto()
    if found is None and os.environ.get("SOLEGUARD_REQUIRE_MOSQUITTO") == "1":
        pytest.fail("SOLEGUARD_REQUIRE_MOSQUITTO=1 but mosquitto is not installed")
    return found


@pytest.fixture
async def make_mosquitto(
    tmp_path: Path, mosquitto_executable: str | None
) -> AsyncIterator[MakeMosquitto]:
    """Start mosquitto brokers with extra config; skips the test when mosquitto is missing."""
    if mosquitto_executable is None:
        pytest.skip("needs the mosquitto binary")
    started: list[MosquittoBroker] = []

    async def make(**kwargs: Any) -> MosquittoBroker:
        workdir = tmp_path / f"mosquitto-{len(started)}"
        workdir.mkdir()
        broker = MosquittoBroker(workdir, executable=mosquitto_executable, **kwargs)
        started.append(broker)
        await broker.start()
        return broker

    yield make
    for broker in started:
        await broker.stop()


@pytest.fixture
async def mqtt_broker(
    tmp_path: Path, mosquitto_executable: str | None
) -> AsyncIterator[LocalBroker]:
    """A running broker on a free port; ``broker.kind`` says which one."""
    broker: LocalBroker
    if mosquitto_executable is not None:
        workdir = tmp_path / "mqtt-broker"
        workdir.mkdir()
        broker = MosquittoBroker(workdir, executable=mosquitto_executable, persistence=True)
    else:
        broker = AmqttBroker()
    await broker.start()
    yield broker
    await broker.stop()


# --- Order: the long tests first ------------------------------------------------------------------
#
# With several workers (`make test` runs pytest-xdist), a one-minute real-time test that starts last
# is the whole run's tail. Tests marked ``slow`` or ``real_time`` go first (a stable sort, so the
# order within each group stays the file order); in one process the order changes nothing.
_LONG_MARKERS = frozenset({"slow", "real_time"})


def pytest_configure(config: pytest.Config) -> None:
    """Every command under test starts as a terminal starts it: with SIGINT at its default.

    A test run started in the background by a shell without job control (``make test &``,
    ``nohup``, a script) has SIGINT ignored, and every process it starts inherits that. The
    interpreter leaves an inherited ignore in place, so until SoleGuard's first line installs its
    handlers a Ctrl-C was not delivered at all: on a loaded machine a ``session`` signalled
    0.09 s after its start ran its whole minute (the signal loop, loaded flake run 3 on
    ``1229c8f``). A user's Ctrl-C reaches a foreground job whose SIGINT is at its default; the
    tests of the ways out promise that case. (Each xdist worker runs this in its main thread.)
    """
    del config
    is_main = threading.current_thread() is threading.main_thread()
    if is_main and signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put the long tests first, keeping the collection order otherwise."""
    items.sort(key=lambda item: not any(m.name in _LONG_MARKERS for m in item.iter_markers()))
