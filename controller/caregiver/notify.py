"""Alerts for caregivers without Home Assistant: ntfy, Telegram, e-mail, Pushover... via Apprise.

Apprise (https://github.com/caronc/apprise) turns one URL per service into a notification, so
SoleGuard needs no code per service. It runs on the caregiver bridge's loop, in a worker thread,
behind a bounded queue: a slow or unreachable service delays only further notifications, never
MQTT and never the safety loop. Best effort: what MQTT guarantees (the outbox, at least once) is
not repeated here; an unacknowledged HIGH alert is re-announced through both.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self

from controller.caregiver.models import AlertLike, iso_utc
from controller.errors import ConfigError
from controller.safety import Priority

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import TracebackType

__all__ = ["NOTIFY_QUEUE_MAX", "NOTIFY_TYPES", "AppriseNotifier", "NotifierStats"]

_LOGGER = logging.getLogger(__name__)

# Why 64: alerts are conditions (a handful per session); more than this waiting means the services
# are unreachable, and the oldest are dropped (counted) rather than growing memory.
NOTIFY_QUEUE_MAX = 64
# IEC 60601-1-8 priority -> Apprise's notification type (services show it as colour, icon or
# their own priority); a cleared condition is good news.
NOTIFY_TYPES: dict[str, str] = {
    Priority.HIGH: "failure",
    Priority.MEDIUM: "warning",
    Priority.LOW: "info",
    "cleared": "success",
}


@dataclass(slots=True)
class NotifierStats:
    """Counters of the Apprise notifier: alerts sent, failed and dropped (queue full)."""

    sent: int = 0
    failed: int = 0
    dropped: int = 0


class AppriseNotifier:
    """Sends each alert to every Apprise URL, from its own task; enter it on the bridge's loop.

    Raises ``ConfigError`` on entry when Apprise is not installed or a URL is not understood.
    """

    def __init__(self, urls: Sequence[str]) -> None:
        self._urls = list(urls)
        self._queue: deque[tuple[str, str, str]] = deque(maxlen=NOTIFY_QUEUE_MAX)
        self._ready = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._apprise: Any = None
        self.stats = NotifierStats()

    async def __aenter__(self) -> Self:
        if self._task is not None:
            raise RuntimeError("an AppriseNotifier can be entered only once")
        try:
            import apprise  # noqa: PLC0415 (optional dependency)
        except ImportError:
            raise ConfigError(
                "[mqtt] apprise_urls is set but Apprise is not installed: "
                "pip install 'soleguard[notify]'"
            ) from None
        notifier = apprise.Apprise()
        for number, url in enumerate(self._urls, start=1):
            if not notifier.add(url):
                raise ConfigError(
                    f"[mqtt] apprise_urls entry {number} is not a URL Apprise understands "
                    "(see https://github.com/caronc/apprise/wiki)"
                )
        self._apprise = notifier
        self._task = asyncio.create_task(self._run(), name="caregiver-apprise")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def submit(self, alert: AlertLike, event: str | None = None) -> None:
        """Queue one notification; never blocks. ``event`` overrides ``alert.event``."""
        kind = event or alert.event
        if len(self._queue) == self._queue.maxlen:
            self.stats.dropped += 1
        title = f"SoleGuard {alert.device_id}: {alert.priority.upper()} {alert.code}"
        if kind != "raised":
            title += f" ({kind})"
        body = f"{alert.message}\n{iso_utc(alert.time)} · alert {alert.condition}"
        notify_type = NOTIFY_TYPES["cleared" if kind == "cleared" else alert.priority]
        self._queue.append((title, body, notify_type))
        self._ready.set()

    async def _run(self) -> None:
        while True:
            while not self._queue:
                self._ready.clear()
                await self._ready.wait()
            title, body, notify_type = self._queue.popleft()
            # Apprise's plugins block on HTTP/SMTP (with their own timeouts): off this loop.
            ok = await asyncio.to_thread(
                self._apprise.notify, body=body, title=title, notify_type=notify_type
            )
            if ok:
                self.stats.sent += 1
            else:
                self.stats.failed += 1
                _LOGGER.warning("apprise: notification %r not delivered to every service", title)
