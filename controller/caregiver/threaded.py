"""The caregiver side on its own thread and event loop.

Why a thread: safety must never wait for MQTT. In its own loop the bridge's CPU work (JSON,
TLS, paho) cannot delay a supervisor tick, and its timeouts always run on real time, even when
the session runs on a simulator's virtual clock, where a broker's replies would otherwise look
infinitely slow. The session talks to it through ``CaregiverLink``, whose calls only post work
to the bridge's loop (``call_soon_threadsafe``) and return at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import AsyncIterator
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from controller.caregiver.broker import embedded_broker, find_mosquitto, parse_broker_url
from controller.caregiver.fallback import FallbackOutbox
from controller.caregiver.identity import with_device_id
from controller.caregiver.inbox import CommandInbox
from controller.caregiver.models import safety_fields
from controller.caregiver.supervised import supervise_bridge
from controller.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from controller.caregiver.bridge import CaregiverBridge
    from controller.caregiver.commands import CaregiverCommand
    from controller.caregiver.models import DeviceState, TelemetrySample
    from controller.settings.models import MqttSettings
    from controller.store import OutboxAlert, Store

_LOGGER = logging.getLogger(__name__)

# Starting a broker and connecting can take a few seconds on a loaded Pi; longer means broken.
START_TIMEOUT_S = 15.0
# The bridge publishes `offline` and disconnects on the way out; give it time, not forever.
STOP_TIMEOUT_S = 10.0
# Commands waiting for the session: far more than a rate-limited caregiver can send.
COMMAND_BACKLOG = 64
# Why 0.1 s: non-urgent state changes (a reading drifting, the countdown) are published at most
# once per STATE_MIN_INTERVAL_S (1 s); handing them over ten times as often adds at most 0.1 s
# to that, and spares the session a cross-thread wake-up at every supervisor step.
STATE_HANDOVER_S = 0.1


class CaregiverLink:
    """The bridge's non-blocking API, usable from the session's loop in another thread.

    The bridge behind it may be replaced (`controller.caregiver.supervised` restarts one that
    died); the newest state is handed to each new bridge, so caregivers see it again at once.
    """

    def __init__(
        self,
        bridge: CaregiverBridge[OutboxAlert],
        bridge_loop: asyncio.AbstractEventLoop,
        session_loop: asyncio.AbstractEventLoop,
        broker_url: str,
    ) -> None:
        self._bridge = bridge
        self._last_state: DeviceState | None = None
        # The state changes at almost every supervisor step (readings are part of it); one
        # cross-thread post per change cost a self-pipe write and a thread switch each, most of
        # the CPU of a demo at --speed max (profiled: 0.3-0.5 ms a post). So a change of a safety
        # field is handed over at once, any other change at most once per STATE_HANDOVER_S (the
        # bridge publishes those at most once per STATE_MIN_INTERVAL_S anyway). Set here,
        # cleared on the bridge's loop when the batching period ends.
        self._state_queued = False
        self._handed_over: DeviceState | None = None
        self._batch_timer: asyncio.TimerHandle | None = None
        # The alert outbox the bridge publishes from, with its memory for alerts the journal
        # could not take (`controller.caregiver.fallback`); the session stores alerts through it.
        self.outbox: FallbackOutbox | None = None
        # Telemetry samples waiting for the next hand-over (deque appends and pops are atomic).
        self._telemetry: deque[TelemetrySample] = deque()
        self._loop = bridge_loop
        self._session_loop = session_loop
        self.broker_url = broker_url
        self.device_id = bridge.device_id
        # Its event binds to a loop on first use, so building it here is safe; it is only ever
        # used on the session's loop. Stop and heater_off come out before anything else.
        self._commands = CommandInbox(COMMAND_BACKLOG)

    def _post(self, method: str, *args: Any) -> None:
        # The bridge is looked up on the bridge's loop, when the call runs: after a restart the
        # call reaches the new bridge. A loop already closed (the bridge thread ended) drops it.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._call, method, *args)

    def _call(self, method: str, *args: Any) -> None:
        getattr(self._bridge, method)(*args)

    def update_state(self, state: DeviceState) -> None:
        """Hand the newest state to the bridge: a safety-field change at once, others batched.

        The bridge keeps only the latest state anyway (its `update_state` is "latest wins"), so a
        state that a newer one overtakes within the batching period is never handed over.
        """
        # Kept for a restarted bridge and for the hand-over (a reference swap: safe across the
        # two threads).
        previous, self._last_state = self._last_state, state
        urgent = previous is None or safety_fields(state) != safety_fields(previous)
        if urgent or not self._state_queued:
            self._state_queued = True
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._hand_over_state)

    def _hand_over_state(self) -> None:
        # Runs on the bridge's loop: give the newest state and the waiting telemetry, and open a
        # batching period in which non-urgent changes only wait here.
        self._give()
        if self._batch_timer is None:
            self._batch_timer = self._loop.call_later(STATE_HANDOVER_S, self._end_batch)

    def _end_batch(self) -> None:
        # Runs on the bridge's loop. The flag is cleared before the state is read: a state set
        # after the read sees the flag down and queues a hand-over of its own, so none is lost.
        self._batch_timer = None
        self._state_queued = False
        self._give()

    def _give(self) -> None:
        state = self._last_state
        if state is not None and state is not self._handed_over:
            self._handed_over = state
            self._bridge.update_state(state)
        while self._telemetry:
            self._bridge.telemetry(self._telemetry.popleft())

    def telemetry(self, sample: TelemetrySample) -> None:
        """Queue one telemetry sample; it goes to the bridge with the next state hand-over."""
        # Batched with the state (QoS 0 samples, 1 Hz): handed over within STATE_HANDOVER_S.
        self._telemetry.append(sample)
        if not self._state_queued:
            self._state_queued = True
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._hand_over_state)

    def alerts_stored(self, *alerts: OutboxAlert) -> None:
        """Tell the bridge thread that ``alerts`` are in the outbox, to publish."""
        self._post("alerts_stored", *alerts)

    def command_result(self, request_id: str | None, accepted: bool, reason: str | None) -> None:
        """Post the answer to a caregiver command (``reason`` when refused) to the bridge thread."""
        self._post("command_result", request_id, accepted, reason)

    async def _attach(self, bridge: CaregiverBridge[OutboxAlert]) -> None:
        """Runs on the bridge's loop while ``bridge`` is up: route calls to it, forward commands."""
        previous, self._bridge = self._bridge, bridge
        if bridge is not previous:
            # A restarted bridge: the newest state and the outbox's backlog, at once.
            state = self._last_state
            if state is not None:
                bridge.update_state(state)
            bridge.alerts_stored()
        await self._forward_commands()

    async def commands(self) -> AsyncIterator[CaregiverCommand]:
        """Caregiver commands forwarded from the bridge thread, as they arrive."""
        while True:
            yield await self._commands.get()

    def _deliver_command(self, command: CaregiverCommand) -> None:
        # Runs on the session's loop; a full backlog drops the newest, which the bridge's rate
        # limit makes practically impossible, and every command can only reduce anyway.
        if not self._commands.put(command):
            _LOGGER.warning("caregiver command %s dropped: backlog full", command.request_id)

    async def _forward_commands(self) -> None:
        """Runs on the bridge's loop, for the bridge attached now."""
        async for command in self._bridge.commands():
            self._session_loop.call_soon_threadsafe(self._deliver_command, command)


@contextlib.asynccontextmanager
async def caregiver_side(
    settings: MqttSettings, store: Store, *, broker: str | None = None, embedded: bool = False
) -> AsyncIterator[CaregiverLink]:
    """Run the bridge (and, if ``embedded``, a throwaway broker) in a thread of its own.

    ``broker`` (``mqtt://HOST:PORT``) overrides the host and port of ``settings``.
    """
    if broker is not None:
        parse_broker_url(broker)  # a bad URL is a ConfigError here, before any thread starts
    ready: Future[CaregiverLink] = Future()
    session_loop = asyncio.get_running_loop()
    stop: asyncio.Event | None = None
    bridge_loop: asyncio.AbstractEventLoop | None = None
    serving: asyncio.Task[None] | None = None

    async def serve() -> None:
        nonlocal stop, bridge_loop, serving
        stop = asyncio.Event()
        bridge_loop = asyncio.get_running_loop()
        serving = asyncio.current_task()
        async with contextlib.AsyncExitStack() as stack:
            url = broker
            mqtt = with_device_id(settings, store)
            if embedded and url is None:
                url = await stack.enter_async_context(embedded_broker())
                if find_mosquitto() is None:
                    # The fallback (amqtt) speaks MQTT 3.1.1 only.
                    mqtt = mqtt.model_copy(update={"protocol": "3.1.1"})
            if url is not None:
                parsed = parse_broker_url(url)
                if parsed.tls and settings.tls is None:
                    raise ConfigError(
                        f"broker {url}: mqtts:// needs [mqtt.tls] ca_file in the settings"
                    )
                mqtt = mqtt.model_copy(
                    update={"enabled": True, "host": parsed.host, "port": parsed.port}
                )
            link: CaregiverLink | None = None
            loop = bridge_loop
            outbox = FallbackOutbox(store, mqtt.device_id or "")

            async def attach(bridge: CaregiverBridge[OutboxAlert]) -> None:
                nonlocal link
                if link is None:
                    link = CaregiverLink(
                        bridge, loop, session_loop, f"mqtt://{mqtt.host}:{mqtt.port}"
                    )
                    link.outbox = outbox
                    ready.set_result(link)
                await link._attach(bridge)

            # A bridge that dies is logged, shown `offline` and restarted with backoff.
            await supervise_bridge(mqtt, outbox, attach=attach, stop=stop)

    def thread_main() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:  # reported to the session, which owns the failure
            if not ready.done():
                ready.set_exception(exc)
            elif isinstance(exc, asyncio.CancelledError):
                # Only `leave` below cancels `serve`, and only on a way out (a signal while
                # the bridge starts): an orderly end, not a bridge failure.
                _LOGGER.debug("caregiver bridge cancelled on the way out")
            else:
                _LOGGER.exception("caregiver bridge thread failed")

    def leave() -> None:
        # Runs on the bridge's loop, where `attach` sets `ready`: deciding there leaves no
        # window between "not ready yet" and the cancel (a link that came up in between is
        # stopped through `stop`, as any running bridge is).
        assert stop is not None
        stop.set()
        if not ready.done() and serving is not None:
            # Left while still starting (a signal during the broker's start): nothing watches
            # `stop` yet, and the start would run out its own timeout first.
            serving.cancel()

    thread = threading.Thread(target=thread_main, name="caregiver-bridge", daemon=True)
    thread.start()
    try:
        # Waited for in a worker thread: on a virtual clock that is what keeps the wait real.
        link = await asyncio.to_thread(ready.result, START_TIMEOUT_S)
        yield link
    finally:
        if bridge_loop is not None and stop is not None:
            # The thread may have ended already (a failed start): its loop is then closed.
            with contextlib.suppress(RuntimeError):
                bridge_loop.call_soon_threadsafe(leave)
        await _join(thread)


async def _join(thread: threading.Thread) -> None:
    await asyncio.to_thread(thread.join, STOP_TIMEOUT_S)
    if thread.is_alive():
        _LOGGER.warning("caregiver bridge did not stop within %.0f s", STOP_TIMEOUT_S)
