"""A bonded device that has lost its keys: the user decides, the controller never re-pairs alone.

When a massager or sensor we hold a bond with answers our encryption request with PIN or Key
Missing (HCI error 0x06), it no longer has its half of the bond: a factory reset, a firmware
update that wiped its key store, or another device answering under its address. The Bluetooth
Core Specification (Vol 3 Part H 2.4.4.1, Vol 3 Part C 10.3.2) leaves it to the host to tell the
user; a silent new Just Works pairing would give an impersonating device the same bond as the
real one. So the link stops, the session does not run (the massager stays off) and the alarm says
how to pair again; only ``soleguard pair ADDRESS``, the user's own act, forgets the stale keys
and bonds anew. docs/protocol.md, "Bonds".

This module imports no bumble: links use it with any bleak backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bleak.exc import BleakError

from controller.errors import LinkError

if TYPE_CHECKING:
    from controller.safety import DeviceKind

__all__ = ["BleakBondLostError", "BondLostError", "bond_lost_alarm_code", "pair_again"]


class BleakBondLostError(BleakError):
    """A bleak backend's report: the peer refused encryption with the keys held for it."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__(f"{address}: the device refused our stored bond (PIN or Key Missing)")


class BondLostError(LinkError):
    """A bonded massager or sensor has lost its keys; nothing runs until the user pairs again.

    ``kind`` is the device's `DeviceKind`; the message names the device and the command.
    """

    def __init__(self, kind: DeviceKind, address: str) -> None:
        self.kind = kind
        self.address = address
        super().__init__(pair_again(kind, address))


def pair_again(kind: DeviceKind, address: str) -> str:
    """What the user reads: which device, why nothing runs, and how to pair it again."""
    return (
        f"{kind} {address} has lost its bond with this controller (a factory reset or a firmware "
        f"update?); SoleGuard will not pair with it again on its own. If it is your {kind}, put "
        f"it in pairing mode and run `soleguard pair {address}`"
    )


def bond_lost_alarm_code(kind: DeviceKind) -> str:
    """``MASSAGER_BOND_LOST`` or ``SENSOR_BOND_LOST``."""
    return f"{kind.upper()}_BOND_LOST"
