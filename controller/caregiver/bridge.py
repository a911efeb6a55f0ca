"""The caregiver bridge: one MQTT connection per device, owned by one background task.

The service talks to the bridge only through plain synchronous methods that store the newest value
in a bounded buffer and wake the bridge's task; every network operation happens in that task. So a
broker that is down, slow, or accepts TCP and never answers delays caregivers, never the safety
loop. Alerts go through the durable outbox first and are marked delivered only on PUBACK, so an
alert raised while the broker is away is published after the next connect, in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Self

import aiomqtt
from aiomqtt import MqttError
from aiomqtt.exceptions import MqttConnectError
from paho.mqtt.subscribeoptions import SubscribeOptions

from controller import __version__
from controller.backoff import Backoff
from controller.caregiver.commands import (
    CaregiverCommand,
    CommandRefused,
    is_bounded_text,
    parse_command,
)
from controller.caregiver.discovery import STATE_REFRESH_S, build_discovery
from controller.caregiver.inbox import (
    URGENT_ACTIONS,
    ClientLimits,
    CommandInbox,
    CommandLedger,
    FloodSummary,
)
from controller.caregiver.models import (
    DeviceState,
    TelemetrySample,
    alert_payload,
    iso_utc,
    safety_fields,
    state_payload,
    telemetry_payload,
)
from controller.caregiver.notify import AppriseNotifier
from controller.caregiver.outbox import AlertOutbox, AlertT, parse_ack
from controller.caregiver.topics import AVAILABILITY_OFFLINE, AVAILABILITY_ONLINE, HA_ONLINE, Topics
from controller.errors import StoreError
from controller.safety.decision import Priority, priority_rank

if TYPE_CHECKING:
    import random
    from collections.abc import AsyncIterator, Callable
    from types import TracebackType

    from controller.settings.models import MqttSettings

__all__ = [
    "ALERT_BATCH",
    "COMMAND_QUEUE_MAX",
    "OPERATION_TIMEOUT_S",
    "REANNOUNCE_S",
    "RECONNECT_INITIAL_S",
    "RECONNECT_MAX_S",
    "RESULT_QUEUE_MAX",
    "SHUTDOWN_TIMEOUT_S",
    "STATE_MIN_INTERVAL_S",
    "TELEMETRY_QUEUE_MAX",
    "URGENT_RESULT_QUEUE_MAX",
    "BridgeStats",
    "CaregiverBridge",
    "no_delay",
    "reconnect_delay",
]

_LOGGER = logging.getLogger(__name__)

# Why 1 s: a state message a second is as fast as a person reads a changing figure, and it keeps a
# session to about 1 retained message a second (Home Assistant records every one); a change of a
# safety-relevant field (see ``models.safety_fields``) is published at once regardless.
STATE_MIN_INTERVAL_S = 1.0
# Why 60 s: an unacknowledged HIGH alert is announced again this often (IEC 60601-1-8 repeats a
# high-priority alarm signal until someone responds); a phone pinging once a minute is hard to
# miss and not yet a reason to mute the app.
REANNOUNCE_S = 60.0
# Why 256: unacknowledged conditions kept for re-announcement; a session has a handful, and past
# this the oldest is forgotten (it stays in the outbox and the journal).
UNACKED_MEMORY = 256
# Why 1024: acknowledged condition ids remembered so a re-announcement never resumes after an ack;
# conditions are a handful per session.
ACKED_MEMORY = 1024
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
# Why 1024: results of stop and heater_off (never rate limited) get their own queue, published
# first; at ~150 bytes each, 1024 is ~150 KiB and outlasts a flood at the rate PUBACKs return.
URGENT_RESULT_QUEUE_MAX = 1024
# Why 100: the outbox is read in pages so a long backlog neither loads at once nor stalls the
# other topics for longer than one page of PUBACK round trips.
ALERT_BATCH = 100
# CONNACK reason codes of a broker that does not speak MQTT 5 (3.1.1's "unacceptable protocol
# version", 5's "unsupported protocol version"): the bridge then talks 3.1.1 to it.
_UNSUPPORTED_PROTOCOL = frozenset({1, 132})
# Why 64: the last topic level of `command/CLIENT` is an account or app name.
MAX_CLIENT_CHARS = 64
# Why 256: incoming messages are only commands and Home Assistant status; the rate limit refuses
# floods, and this bound keeps a broker pushing garbage from growing memory before it does.
INCOMING_QUEUE_MAX = 256


def reconnect_delay(attempt: int, rng: random.Random | None = None) -> float:
    """Seconds before broker reconnect attempt ``attempt`` (from 0): `Backoff` with equal jitter.

    Jitter spreads the reconnects of many hubs after a shared broker restarts; the fixed half keeps
    a single hub from retrying in a tight loop. Read at each call, so the constants above rule.
    """
    policy = Backoff(
        initial_s=RECONNECT_INITIAL_S,
        cap_s=RECONNECT_MAX_S,
        factor=RECONNECT_FACTOR,
        fixed_share=0.5,
    )
    return policy.delay(attempt, rng)


@dataclass(slots=True)
class BridgeStats:
    """Counters of what the bridge did since it started (messages published, refused, dropped)."""

    connects: int = 0
    states_published: int = 0
    alerts_published: int = 0
    telemetry_published: int = 0
    telemetry_dropped: int = 0
    commands_forwarded: int = 0
    commands_refused: int = 0
    commands_rate_limited: int = 0
    commands_duplicate: int = 0
    alerts_reannounced: int = 0
    alerts_acknowledged: int = 0
    acks_refused: int = 0
    results_dropped: int = 0
    messages_dropped: int = 0


def no_delay(client: aiomqtt.Client) -> aiomqtt.Client:
    """Turn Nagle's algorithm off on the client's socket once it opens; returns ``client``.

    paho leaves it on. Then a small packet written right after another (an alert PUBLISH after
    the PUBACK of an incoming acknowledgement) waits for the broker's delayed ACK of the first:
    about 40 ms on Linux, measured by bench/alert_latency.py. Uses paho's ``on_socket_open``,
    which aiomqtt sets and this wraps (pinned by tests/caregiver/test_conformance).
    """
    paho = client._client
    opened = paho.on_socket_open

    def on_socket_open(mqttc: Any, userdata: Any, sock: Any) -> None:
        with contextlib.suppress(OSError, AttributeError):  # not TCP (a Unix socket): no Nagle
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if opened is not None:
            opened(mqttc, userdata, sock)

    paho.on_socket_open = on_socket_open
    return client


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
        reannounce_s: float = REANNOUNCE_S,
    ) -> None:
        if settings.device_id is None:
            raise ValueError("settings.device_id is None: resolve it with identity.with_device_id")
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
        # What the broker last acknowledged, and when (bridge loop time): a change of a
        # safety-relevant field against it goes out at once, any other waits for the interval.
        self._published_state: DeviceState | None = None
        self._state_urgent = False
        self._state_published_at = -float("inf")
        self._telemetry: deque[TelemetrySample] = deque(maxlen=TELEMETRY_QUEUE_MAX)
        self._results: deque[bytes] = deque(maxlen=RESULT_QUEUE_MAX)
        self._urgent_results: deque[bytes] = deque(maxlen=URGENT_RESULT_QUEUE_MAX)
        self._urgent_results_dropped = 0
        self._commands = CommandInbox(COMMAND_QUEUE_MAX)
        # Survives reconnects (it lives as long as the bridge): a command redelivered after a
        # reconnect is recognised as well as one delivered twice on one connection.
        self._ledger = CommandLedger()
        self._limits: ClientLimits | None = None
        # Conditions published and not yet acknowledged nor cleared: condition id -> (its latest
        # alert, when it was last announced, bridge loop time). HIGH ones are announced again
        # every `reannounce_s`; all of them once after each reconnect (see _session).
        self._reannounce_s = reannounce_s
        self._unacked: OrderedDict[str, tuple[AlertT, float]] = OrderedDict()
        # Condition ids to announce once more on this connection (those unacknowledged when it
        # was made; not the alerts it publishes itself).
        self._reannounce_once: set[str] = set()
        # Acknowledged condition ids -> the priority rank that was acknowledged: an escalation
        # above it needs a new acknowledgement (a MEDIUM ack never silences its HIGH successor).
        self._acked: OrderedDict[str, int] = OrderedDict()
        # True until the journal's unacknowledged conditions have been read (on the first
        # connect): a new process re-announces what the previous one left unacknowledged.
        self._unacked_pending = True
        self._notifier: AppriseNotifier | None = None
        if settings.apprise_urls:
            self._notifier = AppriseNotifier(settings.apprise_urls)
        # False once the broker refused MQTT 5 (amqtt): then 3.1.1, and a retained command
        # published while connected can no longer be told apart (see _session).
        self._v5 = settings.protocol == "5"
        # True until the backlog has been read once: alerts left by a previous run go out first.
        self._alerts_pending = True
        self._discovery_pending = True

        self._wake = asyncio.Event()
        self._closing = asyncio.Event()
        self._connected = False
        self._task: asyncio.Task[None] | None = None

    # -- context manager ------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._task is not None:
            raise RuntimeError("a CaregiverBridge can be entered only once")
        loop = asyncio.get_running_loop()
        self._limits = ClientLimits(loop.time())
        if self._notifier is not None:
            await self._notifier.__aenter__()
        self._task = asyncio.create_task(self._run(), name=f"caregiver-bridge-{self.device_id}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._notifier is not None:
            await self._notifier.__aexit__(exc_type, exc, tb)
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
        """The device this bridge speaks for (the second level of its topics)."""
        return self._topics.device_id

    @property
    def topics(self) -> Topics:
        """The topic names of this device (`Topics`)."""
        return self._topics

    @property
    def connected(self) -> bool:
        """Whether the bridge currently has an acknowledged broker connection."""
        return self._connected

    def update_state(self, state: DeviceState) -> None:
        """Latest wins, retained. A change of a safety-relevant field is published at once; any
        other change at most once every ``STATE_MIN_INTERVAL_S``; unchanged, every 30 s."""
        if state == self._state:
            return
        self._state = state
        self._state_dirty = True
        published = self._published_state
        if published is None or safety_fields(state) != safety_fields(published):
            self._state_urgent = True
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
        self.alerts_stored(alert)

    def alerts_stored(self, *alerts: AlertT) -> None:
        """The caller wrote ``alerts`` to the outbox itself (off the loop): publish them now.

        The alerts themselves, when given, also go to the Apprise URLs at once, whether or not
        the broker is reachable.
        """
        if self._notifier is not None:
            for alert in alerts:
                self._notifier.submit(alert)
        self._alerts_pending = True
        self._wake.set()

    def command_result(self, request_id: str | None, accepted: bool, reason: str | None) -> None:
        """Tell the caregiver what became of their command (QoS 1 on ``command/result``).

        The result names the client whose command it answers (``client``: the last level of
        its ``command/CLIENT`` topic, null for the shared ``command`` topic), so two clients
        that chose the same ``request_id`` each get their own result.
        """
        who = self._ledger.answer(request_id) if request_id is not None else None
        client, urgent = who if who is not None else ("", False)
        payload = self._result_payload(request_id, accepted, reason, client)
        if who is not None and request_id is not None:
            self._ledger.record(client, request_id, payload)
        self._queue_result(payload, urgent=urgent)

    def _result_payload(
        self, request_id: str | None, accepted: bool, reason: str | None, client: str
    ) -> bytes:
        return json.dumps(
            {
                "request_id": request_id,
                "client": client or None,
                "accepted": accepted,
                "reason": reason,
                "time": iso_utc(self._clock()),
            },
            separators=(",", ":"),
        ).encode()

    def _queue_result(self, payload: bytes, *, urgent: bool = False) -> None:
        # Results of stop and heater_off have their own, larger queue, published first: a flood
        # of other results can never push them out. If even that overflows (a flood of stops
        # faster than PUBACKs), the overflow is counted and summarised in one result, never
        # dropped silently.
        queue = self._urgent_results if urgent else self._results
        if len(queue) == queue.maxlen:
            self.stats.results_dropped += 1
            if urgent:
                self._urgent_results_dropped += 1
        queue.append(payload)
        self._wake.set()

    def _next_result(self) -> deque[bytes] | None:
        """The queue whose first result goes out next (stop and heater_off first), or None."""
        if self._urgent_results_dropped and len(self._urgent_results) < URGENT_RESULT_QUEUE_MAX:
            dropped, self._urgent_results_dropped = self._urgent_results_dropped, 0
            self._urgent_results.append(
                json.dumps(
                    {
                        "request_id": None,
                        "client": None,
                        "accepted": None,
                        "reason": f"{dropped} results of stop/heater_off were not sent (more "
                        "than the result queue holds); each command was still acted on",
                        "results_dropped": dropped,
                        "time": iso_utc(self._clock()),
                    },
                    separators=(",", ":"),
                ).encode()
            )
        if self._urgent_results:
            return self._urgent_results
        return self._results or None

    async def commands(self) -> AsyncIterator[CaregiverCommand]:
        """Validated commands, ``stop`` and ``heater_off`` first; refused ones never come out.

        Answer each with :meth:`command_result` in the order they came out."""
        while True:
            yield await self.next_command()

    async def next_command(self) -> CaregiverCommand:
        """The next caregiver command (urgent ones first); waits unbounded: callers time it."""
        client, command = await self._commands.get_from()
        self._ledger.delivered(client, command.request_id, urgent=command.action in URGENT_ACTIONS)
        return command

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
        v5 = self._v5
        client = aiomqtt.Client(
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
            queue_type=self._inbound_queue_type(),
            logger=_LOGGER.getChild("paho"),
        )
        return no_delay(client)

    def _inbound_queue_type(self) -> type[asyncio.Queue[aiomqtt.Message]]:
        """The queue class for aiomqtt's incoming messages, taking commands out as they arrive.

        aiomqtt drops messages once its bounded queue is full, so during a flood a stop could be
        dropped before the bridge ever saw it. Commands are judged here instead, in paho's
        callback on this loop, the moment each arrives: a flood is refused as fast as it comes,
        nothing queues behind it, and only the rare other messages (Home Assistant's status)
        use the queue.
        """
        take = self._take_command

        class InboundQueue(asyncio.Queue[aiomqtt.Message]):
            def put_nowait(self, item: aiomqtt.Message) -> None:
                if not take(item):
                    super().put_nowait(item)

        return InboundQueue

    async def _run(self) -> None:
        attempt = 0
        s = self._settings
        while not self._closing.is_set():
            client = self._make_client()
            downgraded = False
            try:
                async with client:
                    attempt = 0
                    self._connected = True
                    self.stats.connects += 1
                    _LOGGER.info("%s: connected to %s:%d", self.device_id, s.host, s.port)
                    await self._session(client)
            except* MqttError as group:
                error = group.exceptions[0]
                if self._v5 and isinstance(error, MqttError) and _refuses_v5(error):
                    self._v5, downgraded = False, True
                    _LOGGER.warning(
                        "%s: broker %s:%d does not speak MQTT 5; using 3.1.1, where a retained "
                        "command published while connected cannot be recognised as retained",
                        self.device_id,
                        s.host,
                        s.port,
                    )
                else:
                    _LOGGER.warning("%s: broker %s:%d: %s", self.device_id, s.host, s.port, error)
            except* StoreError as group:
                # The outbox keeps its alerts; reading it is retried after the backoff.
                _LOGGER.error("%s: alert outbox failed: %s", self.device_id, group.exceptions[0])
            finally:
                self._connected = False
                _drop_socket(client)
            if self._closing.is_set():
                break
            if downgraded:
                continue  # at once: nothing is wrong with the broker
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
        # MQTT 5 retain-as-published keeps the retain flag on a retained command delivered live
        # (3.1.1 clears it then), so such a command is refused too, not only on (re)subscribe.
        # `command/CLIENT` is a caregiver's own command topic (the ACL binds it to the account),
        # which gives each caregiver its own rate limit.
        for topic in (t.command, t.command_clients):
            if self._v5:
                options = SubscribeOptions(qos=1, noLocal=True, retainAsPublished=True)
                await client.subscribe(topic, options=options)
            else:
                await client.subscribe(topic, qos=1)
        await client.subscribe(t.ha_status, qos=1)
        await client.subscribe(t.alert_ack, qos=1)
        await client.publish(t.availability, AVAILABILITY_ONLINE, qos=1, retain=True)
        self._discovery_pending = True
        self._state_dirty = self._state_urgent = self._state is not None
        self._alerts_pending = True
        if self._unacked_pending:
            # The journal, not this process's memory, says what is still unacknowledged: alerts
            # a previous run published and nobody acknowledged are announced again (and the
            # HIGH ones every `reannounce_s`) until acknowledged or cleared.
            try:
                journal = await asyncio.to_thread(
                    self._outbox.unacknowledged_alerts, device_id=self.device_id
                )
            except StoreError as exc:
                # The connection is fine: keep it, and read the journal again on the next one.
                _LOGGER.error("%s: unacknowledged alerts not read: %s", self.device_id, exc)
                journal = []
            else:
                self._unacked_pending = False
            for alert in journal:
                if alert.condition not in self._unacked:
                    self._track_unacknowledged(alert)
        # A broker that crashed may have acknowledged an alert it never wrote to disk (mosquitto
        # writes its database after the PUBACK): what nobody acknowledged is sent again.
        self._reannounce_once = set(self._unacked)
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
                # Answers still owed (a stop's result, a flood's summary) go out before
                # `offline`; __aexit__ bounds the whole goodbye by SHUTDOWN_TIMEOUT_S.
                self._flood_summaries(float("inf"))
                while (queue := self._next_result()) is not None:
                    await client.publish(
                        t.command_result, queue[0], qos=1, timeout=SHUTDOWN_TIMEOUT_S / 2
                    )
                    queue.popleft()
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
                self._state_dirty = self._state_urgent = self._state is not None
            if loop.time() >= next_refresh:
                self._state_dirty = self._state is not None
                self._state_urgent = True
                next_refresh = loop.time() + STATE_REFRESH_S
            deadline = next_refresh
            if self._state_dirty and self._state is not None:
                due = self._state_published_at + STATE_MIN_INTERVAL_S
                if self._state_urgent or loop.time() >= due:
                    state = self._state
                    self._state_dirty = self._state_urgent = False
                    payload = state_payload(state, device_id=self.device_id, now=self._clock())
                    await client.publish(t.state, payload, qos=1, retain=True)
                    self._published_state = state
                    self._state_published_at = loop.time()
                    self.stats.states_published += 1
                else:
                    deadline = min(deadline, due)
            await self._publish_alerts(client)
            reannounce_due = await self._reannounce(client, loop.time())
            if reannounce_due is not None:
                deadline = min(deadline, reannounce_due)
            flood_due = self._flood_summaries(loop.time())
            if flood_due is not None:
                deadline = min(deadline, flood_due)
            while (queue := self._next_result()) is not None and not self._closing.is_set():
                await client.publish(t.command_result, queue[0], qos=1)
                queue.popleft()
            while self._telemetry and not self._closing.is_set():
                sample = self._telemetry.popleft()
                await client.publish(t.telemetry, telemetry_payload(sample, device_id=t.device_id))
                self.stats.telemetry_published += 1
            if not self._wake.is_set():
                try:
                    async with asyncio.timeout(max(0.0, deadline - loop.time())):
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
                self._track_unacknowledged(alert)
            if len(batch) == ALERT_BATCH:
                self._alerts_pending = True

    def _track_unacknowledged(self, alert: AlertT) -> None:
        cid = alert.condition
        acked = self._acked.get(cid)
        if alert.event == "cleared" or (
            acked is not None and priority_rank(alert.priority) <= acked
        ):
            self._unacked.pop(cid, None)
            return
        # An escalation above what was acknowledged re-arms the need for an acknowledgement.
        self._acked.pop(cid, None)
        self._unacked[cid] = (alert, asyncio.get_running_loop().time())
        self._unacked.move_to_end(cid)
        while len(self._unacked) > UNACKED_MEMORY:
            self._unacked.popitem(last=False)

    async def _reannounce(self, client: aiomqtt.Client, now: float) -> float | None:
        """Announce again every HIGH alert unacknowledged for ``reannounce_s``, and after a
        reconnect every unacknowledged one; return when the next is due (loop time) or None."""
        once, self._reannounce_once = self._reannounce_once, set()
        for cid, (alert, last) in list(self._unacked.items()):
            due = alert.priority == Priority.HIGH and now - last >= self._reannounce_s
            if (due or cid in once) and cid in self._unacked:
                payload = alert_payload(alert, event="reannounced")
                await client.publish(self._topics.alert, payload, qos=1)
                self._unacked[cid] = (alert, now)
                self.stats.alerts_reannounced += 1
                if due and self._notifier is not None:
                    self._notifier.submit(alert, "reannounced")
        high = [last for alert, last in self._unacked.values() if alert.priority == Priority.HIGH]
        return min(high) + self._reannounce_s if high else None

    async def _on_ack(self, data: bytes) -> None:
        ack = parse_ack(data)
        if isinstance(ack, str):
            self.stats.acks_refused += 1
            _LOGGER.warning("%s: alert acknowledgement refused: %s", self.device_id, ack)
            return
        cid, who = ack
        # What was acknowledged is the condition at the priority last announced (low when this
        # bridge never announced it: then any escalation re-arms).
        announced = self._unacked.get(cid)
        rank = priority_rank(announced[0].priority) if announced is not None else 0
        self._acked[cid] = max(rank, self._acked.get(cid, 0))
        self._acked.move_to_end(cid)
        while len(self._acked) > ACKED_MEMORY:
            self._acked.popitem(last=False)
        self._unacked.pop(cid, None)
        try:
            known = await asyncio.to_thread(
                self._outbox.record_alert_ack, cid, client=who, at=self._clock()
            )
        except StoreError as exc:
            _LOGGER.error("%s: acknowledgement of %s not journalled: %s", self.device_id, cid, exc)
            return
        if known:
            self.stats.alerts_acknowledged += 1
            _LOGGER.info("%s: alert %s acknowledged by %s", self.device_id, cid, who)
        else:
            self.stats.acks_refused += 1
            _LOGGER.warning("%s: acknowledgement of unknown alert %s", self.device_id, cid)

    async def _receive(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            try:
                await self._on_message(message)
            except Exception as exc:  # one message, never the channel: see _dropped
                self._dropped(message, exc)

    def _dropped(self, message: aiomqtt.Message, exc: Exception) -> None:
        # Whatever one incoming message does (a bug, a store refusing a value the parsers let
        # through), it is logged and dropped; the bridge keeps serving the others. Ending the
        # bridge instead would silence every alert and command of the device.
        self.stats.messages_dropped += 1
        _LOGGER.error(
            "%s: message on %s dropped: handling it failed",
            self.device_id,
            message.topic.value,
            exc_info=exc,
        )

    async def _on_message(self, message: aiomqtt.Message) -> None:
        t = self._topics
        payload = message.payload
        data = payload if isinstance(payload, bytes) else str(payload).encode()
        if message.topic.matches(t.alert_ack):
            await self._on_ack(data)
        elif message.topic.matches(t.ha_status) and data == HA_ONLINE:
            _LOGGER.info("%s: Home Assistant is online; re-sending discovery", t.device_id)
            self._discovery_pending = True
            self._wake.set()

    def _take_command(self, message: aiomqtt.Message) -> bool:
        """Judge a message on a command topic at once; False for any other message.

        Runs in paho's callback: an exception here would end paho's network loop, so any
        failure to handle one command is logged and that command dropped (see _dropped).
        """
        try:
            return self._judge_command(message)
        except Exception as exc:  # see _dropped
            self._dropped(message, exc)
            return True

    def _judge_command(self, message: aiomqtt.Message) -> bool:
        t = self._topics
        topic = message.topic
        if topic.matches(t.command):
            sender = ""
        elif topic.matches(t.command_clients) and topic.value != t.command_result:
            sender = topic.value.rsplit("/", 1)[1]
            if not is_bounded_text(sender, MAX_CLIENT_CHARS):
                # The broker checks topic UTF-8; the bound keeps one client's key small.
                self.stats.commands_refused += 1
                _LOGGER.warning(
                    "%s: command refused: client name in the topic must be valid UTF-8 text "
                    "of 1-%d characters",
                    self.device_id,
                    MAX_CLIENT_CHARS,
                )
                return True
        else:
            return False
        payload = message.payload
        data = payload if isinstance(payload, bytes) else str(payload).encode()
        if data:  # empty: someone clearing a retained command, nothing to answer
            self._on_command(data, retained=message.retain, client=sender)
        return True

    def _on_command(self, data: bytes, *, retained: bool, client: str) -> None:
        assert self._limits is not None  # set in __aenter__, before the task starts
        now = asyncio.get_running_loop().time()
        result: CaregiverCommand | CommandRefused = parse_command(data, retained=retained)
        urgent = isinstance(result, CaregiverCommand) and result.action in URGENT_ACTIONS
        if not urgent and not self._limits.take(client, now):
            # Answered once for the whole flood (see ClientLimits.due), so a flood cannot push
            # the answers to other commands out of the bounded result queue.
            self.stats.commands_rate_limited += 1
            self._wake.set()
            return
        if isinstance(result, CaregiverCommand):
            seen, first = self._ledger.seen(client, result.request_id)
            if seen:
                # Delivered again (QoS 1 redelivery, a retry): applied once, answered with the
                # first result (or, while that is pending, by the result still to come).
                self.stats.commands_duplicate += 1
                _LOGGER.info(
                    "%s: caregiver command %s repeated; applied once",
                    self.device_id,
                    result.request_id,
                )
                if first is not None:
                    self._queue_result(first, urgent=urgent)
                return
            if self._commands.put(result, client):
                self._ledger.begin(client, result.request_id)
                self.stats.commands_forwarded += 1
                _LOGGER.info(
                    "%s: caregiver command %s (%s)",
                    self.device_id,
                    result.action,
                    result.request_id,
                )
                return
            result = CommandRefused(result.request_id, "busy: too many commands pending")
        self.stats.commands_refused += 1
        _LOGGER.warning(
            "%s: caregiver command refused (%s): %s",
            self.device_id,
            result.request_id,
            result.reason,
        )
        # Answered here, not through the ledger: this refusal is the bridge's, not the session's.
        self._queue_result(
            self._result_payload(result.request_id, False, result.reason, client), urgent=urgent
        )

    def _flood_summaries(self, now: float) -> float | None:
        """Queue the summary of every flood that ended; return when the next one is due."""
        assert self._limits is not None
        for flood in self._limits.due(now):
            _LOGGER.warning("%s: %s", self.device_id, flood.reason)
            self._queue_result(_flood_payload(flood, self._clock()))
        return self._limits.next_due()


def _flood_payload(flood: FloodSummary, now: float) -> bytes:
    return json.dumps(
        {
            "request_id": None,
            "accepted": False,
            "reason": flood.reason,
            "refused": flood.refused,
            "client": flood.client or None,
            "time": iso_utc(now),
        },
        separators=(",", ":"),
    ).encode()


def _refuses_v5(error: MqttError) -> bool:
    if not isinstance(error, MqttConnectError):
        return False
    rc = error.rc
    code = rc if isinstance(rc, int) or rc is None else rc.value
    return code in _UNSUPPORTED_PROTOCOL
