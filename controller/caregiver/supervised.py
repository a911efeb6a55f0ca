"""The caregiver bridge under supervision: a bridge that dies is logged, caregivers see
``offline`` while it is down, and a fresh bridge starts after a backoff.

The bridge retries broker and outbox failures itself; what ends its task is a bug (a payload
that cannot be built, an unexpected library error). Without a supervisor that task would die
with "Task exception was never retrieved" while the retained ``availability`` still says
``online``: caregivers would trust a silent bridge. Here the failure is logged once with its
traceback, ``offline`` is published (retained, QoS 1) on a short connection of its own, and a new
bridge is started with capped exponential backoff (`reconnect_delay`); ``recovered`` is logged
once it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

import aiomqtt

from controller.caregiver.bridge import OPERATION_TIMEOUT_S, CaregiverBridge, reconnect_delay
from controller.caregiver.topics import AVAILABILITY_OFFLINE, Topics
from controller.store import OutboxAlert

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from controller.caregiver.outbox import AlertOutbox
    from controller.settings.models import MqttSettings

__all__ = ["OFFLINE_PUBLISH_TIMEOUT_S", "publish_offline", "supervise_bridge"]

_LOGGER = logging.getLogger(__name__)

# Why 3 s: as the bridge's own goodbye (SHUTDOWN_TIMEOUT_S); a broker that cannot take one
# retained message in this long is down, and then its will already said `offline`.
OFFLINE_PUBLISH_TIMEOUT_S = 3.0

Bridge = CaregiverBridge[OutboxAlert]


async def publish_offline(settings: MqttSettings) -> bool:
    """Publish the retained ``offline`` for ``settings.device_id``; True if the broker took it."""
    device_id = settings.device_id
    if device_id is None:  # resolved by identity.with_device_id before any bridge starts
        raise ValueError("settings.device_id is None: resolve it with identity.with_device_id")
    topics = Topics(settings.base_topic, device_id, settings.discovery_prefix)
    tls = None
    if settings.tls is not None:
        tls = aiomqtt.TLSParameters(
            ca_certs=str(settings.tls.ca_file),
            certfile=str(settings.tls.certfile) if settings.tls.certfile else None,
            keyfile=str(settings.tls.keyfile) if settings.tls.keyfile else None,
        )
    v5 = settings.protocol == "5"
    client = aiomqtt.Client(
        settings.host,
        settings.port,
        username=settings.username,
        password=settings.password,
        # The bridge's own client id: the broker drops whatever is left of the dead bridge's
        # session, and an ACL that lets the device publish its availability lets this too.
        identifier=f"soleguard-{settings.device_id}",
        protocol=aiomqtt.ProtocolVersion.V5 if v5 else aiomqtt.ProtocolVersion.V311,
        clean_session=None if v5 else True,
        timeout=OPERATION_TIMEOUT_S,
        tls_params=tls,
    )
    try:
        async with asyncio.timeout(OFFLINE_PUBLISH_TIMEOUT_S), client:
            await client.publish(topics.availability, AVAILABILITY_OFFLINE, qos=1, retain=True)
    except (aiomqtt.MqttError, TimeoutError, OSError) as exc:
        _LOGGER.warning("%s: cannot publish offline: %s", settings.device_id, exc)
        return False
    return True


async def supervise_bridge(
    settings: MqttSettings,
    outbox: AlertOutbox[OutboxAlert],
    *,
    attach: Callable[[Bridge], Awaitable[None]],
    stop: asyncio.Event,
) -> None:
    """Run bridges one after another until ``stop`` is set.

    ``attach(bridge)`` runs while each bridge is up (it routes the session's calls to it and
    forwards its commands); it is cancelled when the bridge dies or ``stop`` is set. An error
    raised by ``attach`` or by the bridge is logged, ``offline`` is published, and a fresh bridge
    starts after ``reconnect_delay``. Errors while entering the first bridge propagate (they are
    configuration errors the caller reports).
    """
    failures = 0
    first = True
    while not stop.is_set():
        bridge: Bridge = CaregiverBridge(settings, outbox)
        try:
            async with bridge:
                first = False
                if failures:
                    _LOGGER.warning(
                        "%s: caregiver bridge recovered after %d restart(s)",
                        settings.device_id,
                        failures,
                    )
                await _until_stop_or_failure(bridge, attach, stop)
                return
        except Exception:
            if first:
                raise
            # A bug in the bridge (or in what feeds it), not a broker outage: the bridge
            # retries those itself. Said once per failure, with the traceback, then restarted.
            _LOGGER.exception("%s: caregiver bridge failed; restarting", settings.device_id)
        failures += 1
        await publish_offline(settings)
        delay = reconnect_delay(failures - 1)
        _LOGGER.info("%s: caregiver bridge restarts in %.1f s", settings.device_id, delay)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await stop.wait()


async def _until_stop_or_failure(
    bridge: Bridge, attach: Callable[[Bridge], Awaitable[None]], stop: asyncio.Event
) -> None:
    """Return when ``stop`` is set; raise what ended the bridge or ``attach`` otherwise."""
    stopped = asyncio.ensure_future(stop.wait())
    closed = asyncio.ensure_future(bridge.wait_closed())
    attached = asyncio.ensure_future(attach(bridge))
    tasks = {stopped, closed, attached}
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks)
    if stopped in done:
        return
    for task in (closed, attached):
        if task in done and not task.cancelled() and (error := task.exception()) is not None:
            raise error
    raise RuntimeError("the caregiver bridge ended without an error")
