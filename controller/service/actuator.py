"""Carries the supervisor's decisions to the massager: only what changed, and the lease.

The supervisor loop never awaits the radio: it states what it wants (latest wins) and this task
writes. Switching off always goes first (heater off, then pressure down) so a slow link delays a
rise, never a cut. When nothing changes the lease is renewed every ``renew_s``, so the firmware
stops on its own if this process dies.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from controller.ble.links import STOP_TIMEOUT_S, MassagerLink
from controller.errors import LinkError
from controller.protocol import (
    LEASE_MS_MAX,
    LEASE_MS_MIN,
    Command,
    RenewLease,
    SetHeater,
    SetPressure,
    Stop,
)
from controller.shutdown import raise_if_cancelling
from controller.timing import reached, remaining

if TYPE_CHECKING:
    from collections.abc import Callable

_LOGGER = logging.getLogger(__name__)

# When the heater is off the firmware still needs an in-range pad target on the wire.
IDLE_PAD_TARGET_C = 30.0
# Pressure changes smaller than the wire resolution are not worth a write.
PRESSURE_STEP_MMHG = 0.1
# Rising set-points go out at most this often: the bladder's own inflation rate smooths the steps,
# and each write costs radio time. Lowering pressure and any heater change go out at once.
PRESSURE_RISE_PERIOD_S = 0.5


@dataclass(frozen=True, slots=True)
class Wanted:
    """What the supervisor wants now: pressure (mmHg), heat on/off, pad target (°C), lease (s)."""

    pressure_mmhg: float
    heater_on: bool
    pad_target_c: float
    lease_s: float


OFF = Wanted(0.0, False, IDLE_PAD_TARGET_C, 0.0)


class Actuator:
    """Writes the supervisor's wishes to the massager link: changes only, switching off first.

    Renews the lease every ``renew_s`` (s) when nothing changes; ``clock`` is the loop's (s).
    """

    def __init__(self, link: MassagerLink, *, renew_s: float, clock: Callable[[], float]) -> None:
        self._link = link
        self._renew_s = renew_s
        self._clock = clock
        self._wanted = OFF
        self._sent: Wanted | None = None
        self._last_write = -float("inf")
        self._last_rise = -float("inf")
        self._rise_due = float("inf")
        self._changed = asyncio.Event()
        self._closing = False
        self.writes = 0
        self.failures = 0

    def want(self, wanted: Wanted) -> None:
        """Ask for ``wanted``, replacing the previous wish (latest wins); never blocks."""
        if wanted != self._wanted:
            self._wanted = wanted
            self._changed.set()

    def forget_sent(self) -> None:
        """The firmware lost its state (reconnect, reboot): send everything again."""
        self._sent = None
        self._changed.set()

    def closing(self) -> bool:
        """True once `close` was called."""
        return self._closing

    def close(self) -> None:
        """Let `run` return after the write in flight (never cut a GATT write in half)."""
        self._closing = True
        self._changed.set()

    async def run(self) -> None:
        """Write what is wanted until `close` (or cancellation); a lost link is waited out."""
        while not self.closing():
            raise_if_cancelling()
            # Stopped (all off): nothing to renew, wait for the next change only.
            renew_due = self._last_write + self._renew_s if self._wanted != OFF else math.inf
            due = min(renew_due, self._rise_due)
            try:
                async with asyncio.timeout(remaining(self._clock(), due)):
                    await self._changed.wait()
            except TimeoutError:
                pass
            self._changed.clear()
            self._rise_due = float("inf")
            if self.closing():
                return
            if not self._link.is_connected:
                self._sent = None
                await self._wait_connected_or_closed()
                continue
            try:
                await self._write_changes()
            except LinkError as exc:
                # The link task notices the loss and reconnects; the lease covers the gap.
                self.failures += 1
                self._sent = None
                _LOGGER.warning("%s", exc)

    async def _wait_connected_or_closed(self) -> None:
        connected = asyncio.ensure_future(self._link.wait_connected())
        changed = asyncio.ensure_future(self._changed.wait())
        try:
            await asyncio.wait({connected, changed}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            connected.cancel()
            changed.cancel()

    async def _write_changes(self) -> None:
        wanted, sent = self._wanted, self._sent
        lease_ms = _lease_ms(wanted.lease_s)
        commands: list[type[Command]] = []
        heater_changed = sent is None or (sent.heater_on, sent.pad_target_c) != (
            wanted.heater_on,
            wanted.pad_target_c,
        )
        pressure_changed = (
            sent is None or abs(sent.pressure_mmhg - wanted.pressure_mmhg) >= PRESSURE_STEP_MMHG
        )
        lowering = sent is None or wanted.pressure_mmhg < sent.pressure_mmhg
        now = self._clock()
        rise_allowed_at = self._last_rise + PRESSURE_RISE_PERIOD_S
        if pressure_changed and not lowering and not reached(now, rise_allowed_at):
            # Too soon for another rise: keep the last set-point (lower, so safe) and come back.
            pressure_changed = False
            wanted = replace(wanted, pressure_mmhg=sent.pressure_mmhg if sent else 0.0)
            self._rise_due = rise_allowed_at
        # Cuts first: heater off and pressure down go out before anything that adds energy.
        if heater_changed and not wanted.heater_on:
            commands.append(SetHeater)
        if pressure_changed and lowering:
            commands.append(SetPressure)
        if heater_changed and wanted.heater_on:
            commands.append(SetHeater)
        if pressure_changed and not lowering:
            commands.append(SetPressure)
            self._last_rise = now
        # Nothing to renew once stopped: a lease held for "all off" would read as a massager
        # still under control to the post-session watch.
        if (
            not commands
            and wanted != OFF
            and reached(self._clock(), self._last_write + self._renew_s)
        ):
            commands.append(RenewLease)
        for kind in commands:
            await self._link.send(self._command(kind, wanted, lease_ms))
            self.writes += 1
            self._last_write = self._clock()
        self._sent = wanted

    def _command(self, kind: type[Command], wanted: Wanted, lease_ms: int) -> Command:
        sequence = self._next()
        if kind is SetHeater:
            return SetHeater(sequence, lease_ms, wanted.heater_on, wanted.pad_target_c)
        if kind is SetPressure:
            return SetPressure(sequence, lease_ms, wanted.pressure_mmhg)
        return RenewLease(sequence, lease_ms)

    def _next(self) -> int:
        return self._link.next_sequence()

    async def stop(self) -> bool:
        """Tell the massager to stop now; True if it acknowledged."""
        self._wanted = OFF
        try:
            await self._link.send(Stop(self._next()), timeout_s=STOP_TIMEOUT_S)
        except LinkError as exc:
            _LOGGER.warning("stop not acknowledged (the lease will stop it): %s", exc)
            return False
        self._sent = OFF
        return True


def _lease_ms(lease_s: float) -> int:
    # An idle massager (lease 0) still needs a frame the protocol accepts: its shortest lease.
    return max(LEASE_MS_MIN, min(LEASE_MS_MAX, round(lease_s * 1000)))
