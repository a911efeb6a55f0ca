"""The one interface a session uses to reach caregivers, whatever carries it.

Both :class:`~controller.caregiver.bridge.CaregiverBridge` (on the caller's loop) and
:class:`~controller.caregiver.threaded.CaregiverLink` (a proxy to a bridge on its own thread)
satisfy it, checked by mypy at the end of this module. Every method returns at once:
none does network or disk I/O on the caller's loop.

Why the session still uses the thread in real time too: the bridge's CPU work (JSON, TLS, paho's
packet handling, a flood of refused commands) would otherwise run on the supervisor's loop,
and one code path for real and virtual time is the one the tests exercise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from controller.caregiver.commands import CaregiverCommand
    from controller.caregiver.models import DeviceState, TelemetrySample
    from controller.store import OutboxAlert

__all__ = ["CaregiverPort"]


class CaregiverPort(Protocol):
    """What a session needs of the caregiver side: state, telemetry and alerts out, commands in."""

    @property
    def device_id(self) -> str:
        """The device this speaks for (its topics' second level)."""

    def update_state(self, state: DeviceState) -> None:
        """Latest wins; published at once on a safety-relevant change, else at most 1/s."""

    def telemetry(self, sample: TelemetrySample) -> None:
        """Queue one sample (QoS 0, bounded: the oldest is dropped)."""

    def alerts_stored(self, *alerts: OutboxAlert) -> None:
        """``alerts`` are in the outbox: publish them (and send them to Apprise)."""

    def command_result(self, request_id: str | None, accepted: bool, reason: str | None) -> None:
        """Answer a caregiver's command on ``command/result``."""

    def commands(self) -> AsyncIterator[CaregiverCommand]:
        """Validated commands, ``stop`` and ``heater_off`` first."""


if TYPE_CHECKING:
    # mypy (make lint) proves both carriers satisfy the port; nothing runs here.
    from controller.caregiver.bridge import CaregiverBridge
    from controller.caregiver.threaded import CaregiverLink

    def _check(bridge: CaregiverBridge[OutboxAlert], link: CaregiverLink) -> None:
        ports: list[CaregiverPort] = [bridge, link]
        del ports
