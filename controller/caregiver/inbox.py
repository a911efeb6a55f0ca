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
    "LEDGER_SIZE",
    "MAX_CLIENTS",
    "URGENT_ACTIONS",
    "ClientLimits",
    "CommandInbox",
    "CommandLedger",
    "FloodSummary",
]

# Actions that only ever make a session safer at once: never rate limited, never queued behind
# another command.
URGENT_ACTIONS = frozenset({"stop", "heater_off"})
# Why 1024: a caregiver sends a few commands an hour, a QoS 1 redelivery comes within seconds of
# the original, an app's retry within minutes; a thousand ids cover days of use in ~100 KiB.
LEDGER_SIZE = 1024
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
        who = f"client {self.client!r}" if self.client else "the shared command topic"
        return (
            f"rate limit: {self.refused} commands from {who} refused in "
            f"{self.last - self.first:.1f} s (at most {RATE_LIMIT_PER_S:g}/s, burst "
            f"{RATE_LIMIT_BURST}); stop and heater_off are never limited"
        )


class CommandLedger:
    """Recent request ids per client: pending (forwarded, no result yet) or answered.

    ``key`` is ``(client, request_id)``; the oldest of more than ``size`` ids is forgotten.
    """

    def __init__(self, size: int = LEDGER_SIZE) -> None:
        self._size = size
        self._entries: OrderedDict[tuple[str, str], bytes | None] = OrderedDict()
        self._by_request: dict[str, tuple[str, str]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def seen(self, client: str, request_id: str) -> tuple[bool, bytes | None]:
        """(whether this id was seen, the first result's payload once there is one)."""
        key = (client, request_id)
        if key not in self._entries:
            return False, None
        return True, self._entries[key]

    def begin(self, client: str, request_id: str) -> None:
        """Remember a command that is being forwarded; its result comes via :meth:`answer`."""
        key = (client, request_id)
        self._entries[key] = None
        self._entries.move_to_end(key)
        self._by_request[request_id] = key
        while len(self._entries) > self._size:
            old_key, _ = self._entries.popitem(last=False)
            if self._by_request.get(old_key[1]) == old_key:
                del self._by_request[old_key[1]]

    def answer(self, request_id: str, payload: bytes) -> None:
        """Keep the first result of a forwarded command (the session answers by request id)."""
        key = self._by_request.get(request_id)
        if key is not None and self._entries.get(key, b"") is None:
            self._entries[key] = payload


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
        self._urgent: deque[CaregiverCommand] = deque()
        self._normal: deque[CaregiverCommand] = deque()
        self._max = maxsize
        self._urgent_max = urgent_max
        self._ready = asyncio.Event()

    def __len__(self) -> int:
        return len(self._urgent) + len(self._normal)

    def put(self, command: CaregiverCommand) -> bool:
        if command.action in URGENT_ACTIONS:
            if len(self._urgent) >= self._urgent_max:
                return False
            self._urgent.append(command)
        else:
            if len(self._normal) >= self._max:
                return False
            self._normal.append(command)
        self._ready.set()
        return True

    async def get(self) -> CaregiverCommand:
        while not (self._urgent or self._normal):
            self._ready.clear()
            await self._ready.wait()
        return self._urgent.popleft() if self._urgent else self._normal.popleft()
