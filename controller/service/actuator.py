"""Carries the supervisor's decisions to the massager: only what changed, and the lease.

The supervisor loop never awaits the radio: it states what it wants (latest wins) and this task
writes. Switching off always goes first (heater off, then pressure down) so a slow link delays a
rise, never a cut. When nothing changes the lease is renewed every ``renew_s``, so the firmware
stops on its own if this process dies.

Cuts (heater off, pressure down) go out as ATT Write Without Response: the firmware executes
them one connection interval after the decision, with no request in flight to wait behind. A
Write Command is never answered, so a cut is confirmed by the next status that shows it (heater
not enabled, pressure target at or below the cut); if none does within `CUT_CONFIRM_S`, the
wanted state is sent again with response, and a failure then takes the usual way (LinkError,
reconnect), with the lease as the backstop. docs/protocol.md, "Cuts without response".
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
    MassagerStatus,
    PartialStatus,
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
# A cut sent without response must show in a status within this, or it is sent again with
# response. Why 0.5 s: the firmware notifies at once on the change a cut makes and at 5 Hz anyway
# (docs/protocol.md), so two periodic statuses and a 30 ms connection interval fit with room; the
# lease (>= 1 s) stays the backstop if even the resend fails.
CUT_CONFIRM_S = 0.5


@dataclass(frozen=True, slots=True)
class _UnconfirmedCut:
    deadline: float
    statuses_before: int  # the link's status count when the cut went out
    heater_off: bool
    pressure_mmhg: float | None  # the lowered target, if the cut lowered pressure


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
        self._unconfirmed: _UnconfirmedCut | None = None
        # After a cut went unconfirmed, everything goes with response until a write succeeds.
        self._with_response = False
        self.writes = 0
        self.failures = 0
        self.cuts_resent = 0

    def want(self, wanted: Wanted) -> None:
        """Ask for ``wanted``, replacing the previous wish (latest wins); never blocks."""
        if wanted != self._wanted:
            self._wanted = wanted
            self._changed.set()

    def forget_sent(self) -> None:
        """The firmware lost its state (reconnect, reboot): send everything again."""
        self._sent = None
        self._unconfirmed = None
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
            confirm_due = math.inf if self._unconfirmed is None else self._unconfirmed.deadline
            due = min(renew_due, self._rise_due, confirm_due)
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
                self._unconfirmed = None
                await self._wait_connected_or_closed()
                continue
            self._check_cut()
            try:
                await self._write_changes()
            except LinkError as exc:
                # The link task notices the loss and reconnects; the lease covers the gap.
                self.failures += 1
                self._sent = None
                _LOGGER.warning("%s", exc)

    def _check_cut(self) -> None:
        """Settle the cut sent without response: confirmed by a later status, superseded by a
        newer wish, or overdue, in which case the wanted state goes again, with response."""
        cut = self._unconfirmed
        if cut is None:
            return
        wanted = self._wanted
        heater_off = cut.heater_off and not wanted.heater_on
        pressure = cut.pressure_mmhg
        if pressure is not None and wanted.pressure_mmhg > pressure:
            pressure = None  # a rise was asked for since: the next write states the target
        if not heater_off and pressure is None:
            self._unconfirmed = None
            return
        status = self._link.last_status
        if (
            status is not None
            and self._link.statuses_received > cut.statuses_before
            and _shows(status, heater_off=heater_off, pressure_mmhg=pressure)
        ):
            self._unconfirmed = None
            return
        if reached(self._clock(), cut.deadline):
            self._unconfirmed = None
            self.cuts_resent += 1
            self._sent = None
            self._with_response = True
            _LOGGER.warning(
                "massager %s: a cut sent without response is not in its status after %.1f s; "
                "sending again with response",
                self._link.address,
                CUT_CONFIRM_S,
            )

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
        cut_heater = cut_pressure = False
        for kind in commands:
            is_cut = (kind is SetHeater and not wanted.heater_on) or (
                kind is SetPressure and lowering
            )
            if is_cut and not self._with_response:
                statuses_before = self._link.statuses_received
                await self._link.send(self._command(kind, wanted, lease_ms), response=False)
                cut_heater |= kind is SetHeater
                cut_pressure |= kind is SetPressure
                # Cuts pile up while the first is unconfirmed (a falling wave lowers the target
                # at every tick): the first one's deadline stands, or it would never come.
                pending = self._unconfirmed
                self._unconfirmed = _UnconfirmedCut(
                    deadline=(
                        self._clock() + CUT_CONFIRM_S if pending is None else pending.deadline
                    ),
                    statuses_before=(
                        statuses_before if pending is None else pending.statuses_before
                    ),
                    heater_off=cut_heater or (pending is not None and pending.heater_off),
                    pressure_mmhg=(
                        wanted.pressure_mmhg
                        if cut_pressure
                        else (None if pending is None else pending.pressure_mmhg)
                    ),
                )
            else:
                await self._link.send(self._command(kind, wanted, lease_ms))
                self._with_response = False
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
        """Tell the massager to stop now; True if it acknowledged within `STOP_TIMEOUT_S`.

        Never raises for the link: an unacknowledged STOP is logged and returns False (the
        firmware stops on its own when the lease, at most 3 s, runs out).
        """
        self._wanted = OFF
        try:
            await self._link.send(Stop(self._next()), timeout_s=STOP_TIMEOUT_S)
        except LinkError as exc:
            _LOGGER.warning("stop not acknowledged (the lease will stop it): %s", exc)
            return False
        self._sent = OFF
        return True


def _shows(
    status: MassagerStatus | PartialStatus, *, heater_off: bool, pressure_mmhg: float | None
) -> bool:
    """Whether ``status`` shows the cut: heater not enabled, pressure target at or below it."""
    if heater_off and status.heater_enabled:
        return False
    if pressure_mmhg is not None:
        target = status.pressure_target_mmhg
        if target is None or target > pressure_mmhg + PRESSURE_STEP_MMHG / 2:
            return False
    return True


def _lease_ms(lease_s: float) -> int:
    # An idle massager (lease 0) still needs a frame the protocol accepts: its shortest lease.
    return max(LEASE_MS_MIN, min(LEASE_MS_MAX, round(lease_s * 1000)))
