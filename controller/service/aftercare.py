"""The watch after a session: supervision outlives the session (FAULTS.md class 11).

A session that ends (timer, user, caregiver, fault, checklist excepted) has told the massager to
stop, but a welded relay or a stuck vent does not care. The supervisor keeps judging what the
massager reports (``Decision.after_session``); this module keeps feeding it, with the links
still up, until it says ``safe`` (heater de-energised, pressure under the floor, lease released)
or ``fault`` (not so within ``post_session_bound_s``: POST_SESSION_UNSAFE, a HIGH alarm that the
observers deliver to the user, the journal and caregivers). Nothing is actuated here: the
massager was sent STOP when the session ended.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from controller.safety.supervisor import AFTER_WATCHING

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from controller.safety import Decision

__all__ = ["AFTERCARE_MARGIN_S", "watch_after_session"]

_LOGGER = logging.getLogger(__name__)

# The supervisor decides within post_session_bound_s; this guard only bounds the loop if the
# clock or the supervisor misbehaves (a way out must always be bounded).
AFTERCARE_MARGIN_S = 5.0


async def watch_after_session(
    decision: Decision,
    *,
    bound_s: float,
    clock: Callable[[], float],
    step: Callable[[], Decision],
    wait: Callable[[float], Awaitable[None]],
    tick_s: float,
) -> Decision:
    """Step the supervisor until the post-session watch ends; returns the last decision.

    ``decision``: the one that ended the session. ``step()`` feeds the events received since
    the last call to the supervisor and returns its decision (observers notified); ``wait(s)``
    returns after at most ``s`` seconds, earlier when an event arrives. ``bound_s``: the
    supervisor's ``post_session_bound_s``; the loop gives up ``AFTERCARE_MARGIN_S`` later.
    """
    deadline = clock() + bound_s + AFTERCARE_MARGIN_S
    while decision.after_session == AFTER_WATCHING and clock() < deadline:
        await wait(tick_s)
        decision = step()
    if decision.after_session == AFTER_WATCHING:
        _LOGGER.error("post-session watch ended without a verdict; the lease stops the massager")
    elif decision.after_session is not None:
        _LOGGER.info("after the session the massager is %s", decision.after_session)
    return decision


async def wait_for_event(event: asyncio.Event, timeout_s: float) -> None:
    """Wait until ``event`` is set or ``timeout_s`` passes, then clear it."""
    try:
        async with asyncio.timeout(timeout_s):
            await event.wait()
    except TimeoutError:
        pass
    event.clear()
