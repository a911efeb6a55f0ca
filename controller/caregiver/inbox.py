"""Caregiver commands between the broker and the session: applied once, stop first.

Three small parts, each on a caller-supplied clock so tests drive them exactly:

- :class:`CommandLedger`: a bounded memory of recent ``request_id``s, so a command delivered twice
  (a QoS 1 redelivery, an app's retry) is applied once and the repeat answered with the first
  result (MQTT QoS 1 is at-least-once, FAULTS.md class 6);
- :class:`ClientLimits`: a token bucket per caregiver client, and one summary refusal per flood
  instead of one answer per refused message;
- :class:`CommandInbox`: the queue to the session, where ``stop`` and ``heater_off`` never wait
  behind other commands and are never refused as busy while there is room for them.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from dataclasses import dataclass

from controller.caregiver.commands import (
    RATE_LIMIT_BURST,
    RATE_LIMIT_PER_S,
    CaregiverCommand,
    TokenBucket,
)

__all__ = [
    "FLOOD_QUIET_S",
    "FLOOD_SUMMARY_EVERY_S",
    "LEDGER_PER_CLIENT",
    "MAX_CLIENTS",
    "MAX_LEDGER_CLIENTS",
    "URGENT_ACTIONS",
    "ClientLimits",
    "CommandInbox",
    "CommandLedger",
    "FloodSummary",
]

# Actions that only ever make a session safer at once: never rate limited, never queued behind
# another command.
URGENT_ACTIONS = frozenset({"stop", "heater_off"})
# Why 256 per client: a caregiver sends a few commands an hour, a QoS 1 redelivery comes within
# seconds of the original, an app's retry within minutes; 256 ids cover days of one person's use.
LEDGER_PER_CLIENT = 256
# Why 16 clients: caregivers per device are a handful (plus the shared `command` topic); with
# 256 ids each the memory stays under ~1 MiB even if every client floods.
MAX_LEDGER_CLIENTS = 16
# Why 64: caregivers per device are a handful; past this the least recently seen client's bucket is
# forgotten (it starts again full), which bounds memory against a client-id churning attacker.
MAX_CLIENTS = 64
# Why 1 s: a flood has ended when a client has been quiet this long; then its summary goes out.
FLOOD_QUIET_S = 1.0
# Why 10 s: a flood that never stops still gets a summary this often, so its sender learns why.
FLOOD_SUMMARY_EVERY_S = 10.0


@dataclass(frozen=True, slots=True)
class FloodSummary:
    """``refused`` commands from ``client`` were refused by the rate limit between ``first`` and
    ``last`` (caller's clock, seconds); one answer for all of them."""

    client: str
    refused: int
    first: float
    last: float

    @property
    def reason(self) -> str:
        """The line the refused commands get back: who was limited, how many, over how long."""
        who = f"client {self.client!r}" if self.client else "the shared command topic"
        return (
            f"rate limit: {self.refused} commands from {who} refused in "
            f"{self.last - self.first:.1f} s (at most {RATE_LIMIT_PER_S:g}/s, burst "
            f"{RATE_LIMIT_BURST}); stop and heater_off are never limited"
        )


class CommandLedger:
    """Recent request ids per client: pending (forwarded, no result yet) or answered.

    A key is ``(client, request_id)``: each client has its own ``per_client`` most recent ids,
    so one client's flood (even of never-limited ``heater_off``) never evicts another client's
    ids; at most ``max_clients`` clients are remembered (the least recently seen is forgotten,
    which bounds memory against a client-name-churning sender). The session answers by request
    id alone, so the ledger also remembers which client's command with that id it handed over
    (:meth:`delivered`), oldest first, and :meth:`answer` gives each result to its own client.
    """

    def __init__(
        self, per_client: int = LEDGER_PER_CLIENT, max_clients: int = MAX_LEDGER_CLIENTS
    ) -> None:
        self._per_client = per_client
        self._max_clients = max_clients
        self._clients: OrderedDict[str, OrderedDict[str, bytes | None]] = OrderedDict()
        # request id -> clients whose command with that id the session has and has not answered,
        # in the order it got them; bounded like the ids themselves.
        self._delivered: OrderedDict[str, deque[tuple[str, bool]]] = OrderedDict()

    def __len__(self) -> int:
        return sum(len(ids) for ids in self._clients.values())

    def seen(self, client: str, request_id: str) -> tuple[bool, bytes | None]:
        """(whether this id was seen from ``client``, the first result's payload once there is
        one)."""
        ids = self._clients.get(client)
        if ids is None or request_id not in ids:
            return False, None
        return True, ids[request_id]

    def begin(self, client: str, request_id: str) -> None:
        """Remember a command that is being forwarded; its result comes via :meth:`answer`."""
        ids = self._clients.get(client)
        if ids is None:
            ids = self._clients[client] = OrderedDict()
            while len(self._clients) > self._max_clients:
                self._clients.popitem(last=False)
        self._clients.move_to_end(client)
        ids[request_id] = None
        ids.move_to_end(request_id)
        while len(ids) > self._per_client:
            ids.popitem(last=False)

    def delivered(self, client: str, request_id: str, *, urgent: bool) -> None:
        """The session took ``client``'s command ``request_id`` (``urgent``: a stop or
        heater_off); the session answers commands in the order it took them."""
        waiting = self._delivered.setdefault(request_id, deque())
        self._delivered.move_to_end(request_id)
        waiting.append((client, urgent))
        while len(self._delivered) > self._per_client * self._max_clients:
            self._delivered.popitem(last=False)

    def answer(self, request_id: str) -> tuple[str, bool] | None:
        """(client, urgent) of the command the session's result for ``request_id`` belongs to,
        or None when the session answers an id it was not handed (nothing changes then)."""
        waiting = self._delivered.get(request_id)
        if not waiting:
            return None
        who = waiting.popleft()
        if not waiting:
            del self._delivered[request_id]
        return who

    def record(self, client: str, request_id: str, payload: bytes) -> None:
        """Keep the first result of ``client``'s command ``request_id`` for its repeats."""
        ids = self._clients.get(client)
        if ids is not None and request_id in ids and ids[request_id] is None:
            ids[request_id] = payload


class ClientLimits:
    """One token bucket per client; a refused flood is counted and answered once."""

    def __init__(self, now: float, max_clients: int = MAX_CLIENTS) -> None:
        self._max = max_clients
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()
        self._floods: dict[str, FloodSummary] = {}
        self._start = now

    def take(self, client: str, now: float) -> bool:
        """Whether ``client`` may send one more command now; a refusal is counted."""
        bucket = self._buckets.get(client)
        if bucket is None:
            bucket = self._buckets[client] = TokenBucket(RATE_LIMIT_PER_S, RATE_LIMIT_BURST, now)
            while len(self._buckets) > self._max:
                self._buckets.popitem(last=False)
        self._buckets.move_to_end(client)
        if bucket.take(now):
            return True
        flood = self._floods.get(client)
        self._floods[client] = (
            FloodSummary(client, 1, now, now)
            if flood is None
            else FloodSummary(client, flood.refused + 1, flood.first, now)
        )
        return False

    def due(self, now: float) -> list[FloodSummary]:
        """Summaries of floods that ended (quiet for ``FLOOD_QUIET_S``) or ran for
        ``FLOOD_SUMMARY_EVERY_S``; each is returned once, then counting starts again."""
        ready = [
            f
            for f in self._floods.values()
            if now - f.last >= FLOOD_QUIET_S or now - f.first >= FLOOD_SUMMARY_EVERY_S
        ]
        for flood in ready:
            del self._floods[flood.client]
        return ready

    def next_due(self) -> float | None:
        """When :meth:`due` next has something (caller's clock), or None."""
        if not self._floods:
            return None
        return min(
            min(f.last + FLOOD_QUIET_S, f.first + FLOOD_SUMMARY_EVERY_S)
            for f in self._floods.values()
        )


class CommandInbox:
    """Commands for the session: urgent ones (``stop``, ``heater_off``) always come out first.

    ``put`` never blocks; it returns False when there is no room (``maxsize`` other commands, or
    ``urgent_max`` urgent ones, which only a flood of stops can fill: each already pending stop
    does what the refused one would).
    """

    def __init__(self, maxsize: int, urgent_max: int = 64) -> None:
        self._urgent: deque[tuple[str, CaregiverCommand]] = deque()
        self._normal: deque[tuple[str, CaregiverCommand]] = deque()
        self._max = maxsize
        self._urgent_max = urgent_max
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._urgent) + len(self._normal)

    def put(self, command: CaregiverCommand, client: str = "") -> bool:
        """Queue ``client``'s command; False when there is no room for it."""
        if command.action in URGENT_ACTIONS:
            if len(self._urgent) >= self._urgent_max:
                return False
            self._urgent.append((client, command))
        else:
            if len(self._normal) >= self._max:
                return False
            self._normal.append((client, command))
        self._ready.set()
        return True

    async def get(self) -> CaregiverCommand:
        """The next command (urgent ones first), waiting for one."""
        return (await self.get_from())[1]

    async def get_from(self) -> tuple[str, CaregiverCommand]:
        """(the client that sent it, the next command), urgent ones first."""
        while not (self._urgent or self._normal):
            self._ready.clear()
            await self._ready.wait()
        return self._urgent.popleft() if self._urgent else self._normal.popleft()
