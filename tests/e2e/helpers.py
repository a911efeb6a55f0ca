"""End-to-end helpers: a whole simulated session in a thread of its own, and caregiver clients.

The session runs the way ``soleguard demo`` runs it: its own event loop (virtual time at a finite
speed, or real time), the caregiver bridge on a third thread, a real broker process. The test's
own loop stays on real time, so the broker fixture, aiomqtt clients and subprocesses keep their
real timeouts whatever speed the session runs at.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import shutil
import sys
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import aiomqtt

from controller.caregiver.threaded import caregiver_side
from controller.service.caregiver import CaregiverRelay
from controller.service.runner import SessionObserver
from controller.service.simulated import SimulatedRun, run_simulated_session
from controller.settings import Settings
from controller.treatment.checklist import NO_CONTRAINDICATIONS
from firmware_sim import clock

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from controller.caregiver.broker import LocalBroker
    from controller.safety import Decision
    from controller.service.runner import SessionRunner
    from controller.store import Store

# Only guards against a hung test, never a measure of speed: every wait ends as soon as its
# condition holds. Generous because the machine is shared and has two cores.
HANG_GUARD_S = 60.0
# Real seconds the session thread waits, after the session, for every alert's PUBACK.
DRAIN_S = 20.0
DEVICE_ID = "e2e"
BASE = f"soleguard/{DEVICE_ID}"


def session_settings(minutes: float, **sections: Any) -> Settings:
    """Settings without reading the machine's own config file."""
    data: dict[str, Any] = {"session": {"max_minutes": minutes}, "mqtt": {"device_id": DEVICE_ID}}
    data.update(sections)
    return Settings.model_validate(data)


@dataclass
class SessionResult:
    run: SimulatedRun
    raised: int
    delivered: int
    alert_ids: list[str]


@dataclass
class BackgroundSession(SessionObserver):
    """One supervised simulated session with a caregiver relay, on its own thread and loop."""

    settings: Settings
    store: Store
    broker_url: str
    scenario: str = "normal"
    seed: int = 0
    # None: real time; a float: virtual time at that many times real time.
    speed: float | None = 10.0
    decisions: list[tuple[float, Decision]] = field(default_factory=list)
    loop: asyncio.AbstractEventLoop | None = None
    relay: CaregiverRelay | None = None
    runner: SessionRunner | None = None
    _done: concurrent.futures.Future[SessionResult] = field(
        default_factory=concurrent.futures.Future
    )

    def start(self) -> Self:
        threading.Thread(target=self._main, name="e2e-session", daemon=True).start()
        return self

    def _main(self) -> None:
        try:
            result = clock.run(self._session(), speed=self.speed)
        except BaseException as exc:  # handed to the test, which fails with it
            self._done.set_exception(exc)
        else:
            self._done.set_result(result)

    async def _session(self) -> SessionResult:
        self.loop = asyncio.get_running_loop()
        async with caregiver_side(self.settings.mqtt, self.store, broker=self.broker_url) as link:
            relay = CaregiverRelay(link, self.store)
            self.relay = relay
            run = await run_simulated_session(
                self.settings,
                answers=NO_CONTRAINDICATIONS,
                scenario=self.scenario,
                seed=self.seed,
                store=self.store,
                observers=(self,),
                caregiver=relay,
                on_runner=self._got_runner,
            )
            raised, delivered = await relay.drain(DRAIN_S)
        return SessionResult(run, raised, delivered, list(relay.raised))

    def _got_runner(self, runner: SessionRunner) -> None:
        self.runner = runner

    def on_decision(self, now: float, decision: Decision) -> None:
        # list.append is atomic under the GIL; the test thread only reads.
        self.decisions.append((now, decision))

    # -- read from the test's thread -----------------------------------------------------------

    def session_time(self) -> float:
        """The session loop's clock (virtual or real), readable from any thread."""
        assert self.loop is not None
        return self.loop.time()

    @property
    def elapsed_s(self) -> float:
        return self.decisions[-1][1].elapsed_s if self.decisions else 0.0

    @property
    def running(self) -> bool:
        return bool(self.decisions) and str(self.decisions[-1][1].state) == "running"

    @property
    def raised_count(self) -> int:
        return 0 if self.relay is None else len(self.relay.raised)

    async def result(self) -> SessionResult:
        async with asyncio.timeout(HANG_GUARD_S * 2):
            return await asyncio.wrap_future(self._done)


async def wait_until(condition: Callable[[], bool], guard_s: float = HANG_GUARD_S) -> None:
    async with asyncio.timeout(guard_s):
        # Polls state owned by another thread (the session's), which has no event to await here.
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


class Caregiver:
    """A caregiver's client: records every message on the topics it subscribed to."""

    def __init__(self, client: aiomqtt.Client, base: str = BASE) -> None:
        self.client = client
        self.base = base
        self.messages: list[aiomqtt.Message] = []

    async def _run(self) -> None:
        async for message in self.client.messages:
            self.messages.append(message)

    def on(self, suffix: str) -> list[aiomqtt.Message]:
        return [m for m in self.messages if m.topic.value == f"{self.base}/{suffix}"]

    def json_on(self, suffix: str) -> list[Any]:
        return [json.loads(m.payload) for m in self.on(suffix)]

    async def send(self, payload: dict[str, Any]) -> None:
        await self.client.publish(f"{self.base}/command", json.dumps(payload), qos=1)

    def result_for(self, request_id: str) -> dict[str, Any] | None:
        found = [r for r in self.json_on("command/result") if r["request_id"] == request_id]
        return found[0] if found else None


@contextlib.asynccontextmanager
async def caregiver(
    broker: LocalBroker, *topics: str, base: str = BASE, **client_options: Any
) -> AsyncIterator[Caregiver]:
    async with aiomqtt.Client(broker.host, broker.port, **client_options) as client:
        for topic in topics or (f"{BASE}/#",):
            await client.subscribe(topic, qos=1)
        rec = Caregiver(client, base)
        task = asyncio.create_task(rec._run(), name="e2e-caregiver")
        try:
            yield rec
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def iso_seconds(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def first_occurrences(ids: list[str]) -> list[str]:
    """Ids in the order first received; a redelivery (at-least-once) is dropped, as consumers do."""
    return list(dict.fromkeys(ids))


def soleguard() -> str:
    """The installed console script, next to this interpreter (as a user's shell finds it)."""
    found = shutil.which("soleguard", path=str(Path(sys.executable).parent))
    assert found is not None, "the soleguard console script is not installed in this venv"
    return found


async def run_cli(env: dict[str, str], *args: str, cwd: Path | None = None) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        soleguard(),
        *args,
        env=env,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(HANG_GUARD_S * 2):
            out, err = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()
