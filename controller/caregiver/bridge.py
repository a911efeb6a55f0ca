"""The caregiver bridge: one MQTT connection per device, owned by one background task.

The service talks to the bridge only through plain synchronous methods that store the newest value
in a bounded buffer and wake the bridge's task; every network operation happens in that task. So a
broker that is down, slow, or accepts TCP and never answers delays caregivers, never the safety
loop. Alerts go through the durable outbox first and are marked delivered only on PUBACK, so an
alert raised while the broker is away is published after the next connect, in order.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Generic, Self

import aiomqtt
from aiomqtt import MqttError

from controller import __version__
from controller.caregiver.commands import (
    RATE_LIMIT_BURST,
    RATE_LIMIT_PER_S,
    CaregiverCommand,
    CommandRefused,
    TokenBucket,
    parse_command,
)
from controller.caregiver.discovery import STATE_REFRESH_S, build_discovery
from controller.caregiver.models import (
    DeviceState,
    TelemetrySample,
    alert_payload,
    iso_utc,
    state_payload,
    telemetry_payload,
)
from controller.caregiver.outbox import AlertOutbox, AlertT
from controller.caregiver.topics import AVAILABILITY_OFFLINE, AVAILABILITY_ONLINE, HA_ONLINE, Topics
from controller.errors import StoreError
from controller.settings.models import MqttSettings

__all__ = [
    "ALERT_BATCH",
    "COMMAND_QUEUE_MAX",
    "OPERATION_TIMEOUT_S",
    "RECONNECT_INITIAL_S",
    "RECONNECT_MAX_S",
    "RESULT_QUEUE_MAX",
    "SHUTDOWN_TIMEOUT_S",
    "TELEMETRY_QUEUE_MAX",
    "BridgeStats",
    "CaregiverBridge",
    "reconnect_delay",
]

_LOGGER = logging.getLogger(__name__)

# Why 0.5 s: a broker restart (mosquitto, HA add-on) takes about a second; the first retry should
# land right after it, so alerts raised meanwhile reach caregivers without a long gap.
RECONNECT_INITIAL_S = 0.5
# Why 30 s: the longest an alert waits after the broker is back; longer saves nothing measurable
# on a home network, shorter hammers a broker that is down for maintenance.
RECONNECT_MAX_S = 30.0
RECONNECT_FACTOR = 2.0
# Why 5 s for CONNACK, SUBACK and PUBACK: brokers answer in milliseconds on a LAN and well under a
# second across the internet; one silent for 5 s is treated as gone and the connection is rebuilt,
# so a stuck TCP connection cannot hold the outbox back for long.
OPERATION_TIMEOUT_S = 5.0
# Why 3 s: on a clean exit the `offline` message is worth a short wait, but stopping the controller
# (and with it, telling the massager to stop) must never hang on a dead broker.
SHUTDOWN_TIMEOUT_S = 3.0
# Why 120: two minutes of 1 Hz samples ride out a broker restart; older samples are worth less than
# memory on a Raspberry Pi, and the oldest are dropped first (and counted).
TELEMETRY_QUEUE_MAX = 120
# Why 16: the service reads commands as they come; more than this unread means it is not reading,
# and further commands are refused as busy rather than queued behind stale ones.
COMMAND_QUEUE_MAX = 16
# Why 64: results are small and a rate-limited flood produces at most a burst of refusals.
RESULT_QUEUE_MAX = 64
# Why 100: the outbox is read in pages so a long backlog neither loads at once nor stalls the
# other topics for longer than one page of PUBACK round trips.
ALERT_BATCH = 100
# Why 256: incoming messages are only commands and Home Assistant status; the rate limit refuses
# floods, and this bound keeps a broker pushing garbage from growing memory before it does.
INCOMING_QUEUE_MAX = 256


def reconnect_delay(attempt: int, rng: random.Random | None = None) -> float:
    """Capped exponential backoff with jitter (half fixed, half random), attempt counted from 0.

    Jitter spreads the reconnects of many hubs after a shared broker restarts; the fixed half keeps
    a single hub from retrying in a tight loop.
    """
    ceiling = min(RECONNECT_MAX_S, RECONNECT_INITIAL_S * RECONNECT_FACTOR ** min(attempt, 32))
    return ceiling / 2 + (rng or random).uniform(0.0, ceiling / 2)


@dataclass(slots=True)
class BridgeStats:
    connects: int = 0
    alerts_published: int = 0
    telemetry_published: int = 0
    telemetry_dropped: int = 0
    commands_forwarded: int = 0
    commands_refused: int = 0
    results_dropped: int = 0


def _drop_socket(client: aiomqtt.Client) -> None:
    # aiomqtt 2.5 leaves the socket open when CONNACK never came (or the connect was cancelled);
    # a fresh client is made per attempt, so the old socket would linger until paho's keepalive
    # check. Close it through the paho client it wraps (pinned by tests/caregiver/test_conformance).
    paho = client._client
    paho._sock_close()


class CaregiverBridge(Generic[AlertT]):
    """MQTT bridge for one device: state, telemetry, alerts, commands, discovery, availability.

    All public methods except the context manager and :meth:`commands` are synchronous and must be
    called from the event loop's thread; none of them does network I/O.
    """

    def __init__(
        self,
        settings: MqttSettings,
        outbox: AlertOutbox[AlertT],
        *,
        client_id: str | None = None,
        sw_version: str = __version__,
        device_name: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._outbox = outbox
        self._topics = Topics(settings.base_topic, settings.device_id, settings.discovery_prefix)
        self._client_id = client_id or f"soleguard-{settings.device_id}"
        self._sw_version = sw_version
        self._device_name = device_name
        self._clock = clock
        self.stats = BridgeStats()

        self._state: DeviceState | None = None
        self._state_dirty = False
        self._telemetry: deque[TelemetrySample] = deque(maxlen=TELEMETRY_QUEUE_MAX)
        self._results: deque[bytes] = deque(maxlen=RESULT_QUEUE_MAX)
        self._commands: asyncio.Queue[CaregiverCommand] = asyncio.Queue(COMMAND_QUEUE_MAX)
        # True until the backlog has been read once: alerts left by a previous run go out first.
        self._alerts_pending = True
        self._discovery_pending = True

        self._wake = asyncio.Event()
        self._closing = asyncio.Event()
        self._connected = False
        self._bucket: TokenBucket | None = None
        self._task: asyncio.Task[None] | None = None

    # -- context manager ------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._task is not None:
            raise RuntimeError("a CaregiverBridge can be entered only once")
        loop = asyncio.get_running_loop()
        self._bucket = TokenBucket(RATE_LIMIT_PER_S, RATE_LIMIT_BURST, loop.time())
        self._task = asyncio.create_task(self._run(), name=f"caregiver-bridge-{self.device_id}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        task = self._task
        if task is None or task.done():
            return
        self._closing.set()
        self._wake.set()
        if not self._connected:
            # Nothing to say goodbye on: a connect in progress is abandoned at once.
            task.cancel()
        done, _ = await asyncio.wait({task}, timeout=SHUTDOWN_TIMEOUT_S)
        if not done:
            _LOGGER.warning("%s: broker did not let go in time; closing anyway", self.device_id)
            task.cancel()
            await asyncio.wait({task})
        if not task.cancelled() and (error := task.exception()) is not None:
            _LOGGER.error("%s: caregiver bridge failed", self.device_id, exc_info=error)

    async def wait_closed(self) -> None:
        """Return when the background task has ended; re-raise the error that ended it.

        It only ends on its own by a bug (a broker or outbox failure is retried inside): its
        supervisor (`controller.caregiver.supervised`) logs it and starts a fresh bridge.
        """
        if self._task is None:
            raise RuntimeError("the CaregiverBridge has not been entered")
        await asyncio.shield(self._task)

    # -- the service's API (synchronous, never touches the network) ------------------------------

    @property
    def device_id(self) -> str:
        return self._topics.device_id

    @property
    def topics(self) -> Topics:
        return self._topics

    @property
    def connected(self) -> bool:
        """Whether the bridge currently has an acknowledged broker connection."""
        return self._connected

    def update_state(self, state: DeviceState) -> None:
        """Latest wins: published at once when it differs from the last one, else every 30 s."""
        if state != self._state:
            self._state = state
            self._state_dirty = True
            self._wake.set()

    def telemetry(self, sample: TelemetrySample) -> None:
        """Queue one sample (QoS 0); when full, the oldest is dropped and counted."""
        if len(self._telemetry) == self._telemetry.maxlen:
            self.stats.telemetry_dropped += 1
        self._telemetry.append(sample)
        self._wake.set()

    def raise_alert(self, alert: AlertT) -> None:
        """Write the alert to the outbox (durable before this returns) and wake the publisher.

        Raises ``StoreError`` when the outbox cannot store it, and ``ValueError`` for an alert of
        another device (each device has its own bridge and topics).
        """
        if alert.device_id != self.device_id:
            raise ValueError(
                f"alert {alert.id!r} is for device {alert.device_id!r}, "
                f"this bridge publishes for {self.device_id!r}"
            )
        self._outbox.enqueue_alert(alert)
        self._alerts_pending = True
        self._wake.set()

    def alerts_stored(self) -> None:
        """The caller wrote alerts to the outbox itself (off the loop): publish them now."""
        self._alerts_pending = True
        self._wake.set()

    def command_result(self, request_id: str | None, accepted: bool, reason: str | None) -> None:
        """Tell the caregiver what became of their command (QoS 1 on ``command/result``)."""
        payload = json.dumps(
            {
                "request_id": request_id,
                "accepted": accepted,
                "reason": reason,
                "time": iso_utc(self._clock()),
            },
            separators=(",", ":"),
        ).encode()
        if len(self._results) == self._results.maxlen:
            self.stats.results_dropped += 1
        self._results.append(payload)
        self._wake.set()

    async def commands(self) -> AsyncIterator[CaregiverCommand]:
        """Validated commands, in arrival order; refused ones never come out."""
        while True:
            yield await self._commands.get()

    async def next_command(self) -> CaregiverCommand:
        return await self._commands.get()

    # -- background task ------------------------------------------------------------------------

    def _make_client(self) -> aiomqtt.Client:
        s = self._settings
        tls = None
        if s.tls is not None:
            tls = aiomqtt.TLSParameters(
                ca_certs=str(s.tls.ca_file),
                certfile=str(s.tls.certfile) if s.tls.certfile else None,
                keyfile=str(s.tls.keyfile) if s.tls.keyfile else None,
            )
        v5 = s.protocol == "5"
        return aiomqtt.Client(
            s.host,
            s.port,
            username=s.username,
            password=s.password,
            identifier=self._client_id,
            protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
            will=aiomqtt.Will(self._topics.availability, AVAILABILITY_OFFLINE, qos=1, retain=True),
            # paho refuses clean_session with MQTT 5 (it has clean_start instead).
            clean_session=None if v5 else True,
            keepalive=s.keepalive_s,
            timeout=OPERATION_TIMEOUT_S,
            tls_params=tls,
            max_queued_incoming_messages=INCOMING_QUEUE_MAX,
            logger=_LOGGER.getChild("paho"),
        )

    async def _run(self) -> None:
        attempt = 0
        s = self._settings
        while not self._closing.is_set():
            client = self._make_client()
            try:
                async with client:
                    attempt = 0
                    self._connected = True
                    self.stats.connects += 1
                    _LOGGER.info("%s: connected to %s:%d", self.device_id, s.host, s.port)
                    await self._session(client)
            except* MqttError as group:
                _LOGGER.warning(
                    "%s: broker %s:%d: %s", self.device_id, s.host, s.port, group.exceptions[0]
                )
            except* StoreError as group:
                # The outbox keeps its alerts; reading it is retried after the backoff.
                _LOGGER.error("%s: alert outbox failed: %s", self.device_id, group.exceptions[0])
            finally:
                self._connected = False
                _drop_socket(client)
            if self._closing.is_set():
                break
            delay = reconnect_delay(attempt)
            attempt += 1
            _LOGGER.info("%s: reconnecting in %.1f s", self.device_id, delay)
            try:
                async with asyncio.timeout(delay):
                    await self._closing.wait()
            except TimeoutError:
                pass

    async def _session(self, client: aiomqtt.Client) -> None:
        t = self._topics
        # Subscribed before `online`, so whoever sees `online` can send a command at once.
        await client.subscribe(t.command, qos=1)
        await client.subscribe(t.ha_status, qos=1)
        await client.publish(t.availability, AVAILABILITY_ONLINE, qos=1, retain=True)
        self._discovery_pending = True
        self._state_dirty = self._state is not None
        self._alerts_pending = True
        async with asyncio.TaskGroup() as tg:
            receiver = tg.create_task(self._receive(client), name=f"caregiver-rx-{self.device_id}")
            await self._publish_loop(client)
            receiver.cancel()

    async def _publish_loop(self, client: aiomqtt.Client) -> None:
        loop = asyncio.get_running_loop()
        next_refresh = loop.time()
        t = self._topics
        while True:
            self._wake.clear()
            if self._closing.is_set():
                await client.publish(
                    t.availability,
                    AVAILABILITY_OFFLINE,
                    qos=1,
                    retain=True,
                    timeout=SHUTDOWN_TIMEOUT_S / 2,
                )
                return
            if self._discovery_pending:
                self._discovery_pending = False
                topic, config = build_discovery(
                    t, sw_version=self._sw_version, device_name=self._device_name
                )
                await client.publish(topic, json.dumps(config).encode(), qos=1, retain=True)
                self._state_dirty = self._state is not None
            if loop.time() >= next_refresh:
                self._state_dirty = self._state is not None
                next_refresh = loop.time() + STATE_REFRESH_S
            if self._state_dirty and self._state is not None:
                self._state_dirty = False
                payload = state_payload(self._state, device_id=self.device_id, now=self._clock())
                await client.publish(t.state, payload, qos=1, retain=True)
            await self._publish_alerts(client)
            while self._results and not self._closing.is_set():
                await client.publish(t.command_result, self._results[0], qos=1)
                self._results.popleft()
            while self._telemetry and not self._closing.is_set():
                sample = self._telemetry.popleft()
                await client.publish(t.telemetry, telemetry_payload(sample, device_id=t.device_id))
                self.stats.telemetry_published += 1
            if not self._wake.is_set():
                try:
                    async with asyncio.timeout(max(0.0, next_refresh - loop.time())):
                        await self._wake.wait()
                except TimeoutError:
                    pass

    async def _publish_alerts(self, client: aiomqtt.Client) -> None:
        while self._alerts_pending and not self._closing.is_set():
            self._alerts_pending = False
            batch = self._outbox.undelivered_alerts(device_id=self.device_id, limit=ALERT_BATCH)
            for alert in batch:
                if self._closing.is_set():
                    return
                # With QoS 1, aiomqtt returns only once the broker's PUBACK arrived.
                await client.publish(self._topics.alert, alert_payload(alert), qos=1)
                # In a worker thread: the store fsyncs each write (a few ms), and this loop is
                # the safety loop's too. The store is safe to call from several threads.
                await asyncio.to_thread(
                    self._outbox.mark_alert_delivered, alert.id, at=self._clock()
                )
                self.stats.alerts_published += 1
            if len(batch) == ALERT_BATCH:
                self._alerts_pending = True

    async def _receive(self, client: aiomqtt.Client) -> None:
        t = self._topics
        async for message in client.messages:
            payload = message.payload
            data = payload if isinstance(payload, bytes) else str(payload).encode()
            if message.topic.matches(t.ha_status):
                if data == HA_ONLINE:
                    _LOGGER.info("%s: Home Assistant is online; re-sending discovery", t.device_id)
                    self._discovery_pending = True
                    self._wake.set()
            elif message.topic.matches(t.command):
                self._on_command(data, retained=message.retain)

    def _on_command(self, data: bytes, *, retained: bool) -> None:
        assert self._bucket is not None  # set in __aenter__, before the task starts
        now = asyncio.get_running_loop().time()
        result: CaregiverCommand | CommandRefused
        if not self._bucket.take(now):
            result = CommandRefused(
                None,
                f"rate limit: at most {RATE_LIMIT_PER_S:g} commands/s "
                f"(burst {RATE_LIMIT_BURST}); try again shortly",
            )
        else:
            result = parse_command(data, retained=retained)
        if isinstance(result, CaregiverCommand):
            try:
                self._commands.put_nowait(result)
            except asyncio.QueueFull:
                result = CommandRefused(result.request_id, "busy: too many commands pending")
            else:
                self.stats.commands_forwarded += 1
                _LOGGER.info(
                    "%s: caregiver command %s (%s)",
                    self.device_id,
                    result.action,
                    result.request_id,
                )
                return
        self.stats.commands_refused += 1
        _LOGGER.warning(
            "%s: caregiver command refused (%s): %s",
            self.device_id,
            result.request_id,
            result.reason,
        )
        self.command_result(result.request_id, False, result.reason)
