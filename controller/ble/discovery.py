"""Finding and bonding devices: what ``soleguard scan`` and ``soleguard pair`` do."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bleak import BleakClient, BleakScanner
from bleak.exc import BleakError

from controller.ble.access import BleAccess, platform_unavailable
from controller.ble.bonds import BleakBondLostError
from controller.ble.thermometer import PACE_LISTEN_S, ThermometerInfo, measure_pace
from controller.ble.thermometer import inspect as inspect_thermometer
from controller.errors import LinkError
from controller.protocol import HEALTH_THERMOMETER_SERVICE_UUID, MASSAGER_SERVICE_UUID
from controller.safety.events import DeviceKind

_KIND_BY_SERVICE = {
    MASSAGER_SERVICE_UUID: DeviceKind.MASSAGER,
    HEALTH_THERMOMETER_SERVICE_UUID: DeviceKind.SENSOR,
}


@dataclass(frozen=True, slots=True)
class FoundDevice:
    """A massager or skin sensor seen in a scan: address, advertised name, RSSI (dBm, if known)."""

    kind: DeviceKind
    name: str | None
    address: str
    rssi: int | None
    # What a skin thermometer said about itself when paired (None for a massager, or a scan).
    thermometer: ThermometerInfo | None = None


async def scan(access: BleAccess, *, timeout_s: float) -> list[FoundDevice]:
    """Massagers and Health Thermometer sensors in range, strongest signal first.

    Listens for ``timeout_s`` seconds for the massager's service UUID or the Health Thermometer
    Service (0x1809). Raises `LinkError` (`platform_unavailable`) when bleak's platform backend
    cannot reach the system's Bluetooth.
    """
    if access.scanner_backend is None:
        try:
            found = await BleakScanner.discover(
                timeout=timeout_s, return_adv=True, service_uuids=list(_KIND_BY_SERVICE)
            )
        except (OSError, BleakError) as exc:
            # No BlueZ: D-Bus's socket is missing (FileNotFoundError), or bleak finds no adapter.
            raise platform_unavailable(exc) from exc
    else:
        found = await BleakScanner.discover(
            timeout=timeout_s,
            return_adv=True,
            service_uuids=list(_KIND_BY_SERVICE),
            backend=access.scanner_backend,
        )
    devices = []
    for device, advertisement in found.values():
        kind = next(
            (_KIND_BY_SERVICE[u] for u in advertisement.service_uuids if u in _KIND_BY_SERVICE),
            None,
        )
        if kind is not None:
            name = advertisement.local_name or device.name
            devices.append(FoundDevice(kind, name, device.address, advertisement.rssi))
    return sorted(devices, key=lambda d: -(d.rssi if d.rssi is not None else -1000))


async def pair(access: BleAccess, address: str, *, stale_after_s: float) -> FoundDevice:
    """Connect, bond (LE Secure Connections where the backend supports it) and identify.

    A massager must bond. A skin thermometer that refuses pairing is kept unbonded (reading its
    indications needs no encryption); its Temperature Type and Measurement Interval are read, and
    the interval written down to what ``stale_after_s`` needs when writable
    (``FoundDevice.thermometer``). Raises LinkError.

    This is the user's own request to pair: keys we still hold for a device that has lost its
    half of the bond (controller/ble/bonds.py) are forgotten here, and a new bond is made.
    """
    try:
        return await _pair_once(access, address, stale_after_s=stale_after_s)
    except BleakBondLostError:
        forgetting = BleakClient(address, backend=access.links.backend)
        try:
            await forgetting.unpair()
        except (BleakError, OSError) as exc:
            raise LinkError(f"{address}: cannot forget the old bond: {exc}") from exc
        return await _pair_once(access, address, stale_after_s=stale_after_s)


async def _pair_once(access: BleAccess, address: str, *, stale_after_s: float) -> FoundDevice:
    client = BleakClient(
        address, timeout=access.links.connect_timeout_s, backend=access.links.backend
    )
    thermometer = None
    try:
        # Connect and pair, then perhaps listen for a thermometer's pace.
        async with asyncio.timeout(access.links.connect_timeout_s * 2 + PACE_LISTEN_S):
            await client.connect()
            try:
                kinds = [
                    _KIND_BY_SERVICE[service.uuid]
                    for service in client.services
                    if service.uuid in _KIND_BY_SERVICE
                ]
                encrypted = True
                try:
                    await client.pair()
                except BleakError:
                    if kinds[:1] != [DeviceKind.SENSOR] or not client.is_connected:
                        raise
                    encrypted = False
                if kinds[:1] == [DeviceKind.SENSOR]:
                    thermometer = await inspect_thermometer(
                        client, address, encrypted=encrypted, stale_after_s=stale_after_s
                    )
                    if thermometer.interval_s is None:
                        thermometer = await measure_pace(client, thermometer)
                name = client.name
            finally:
                await client.disconnect()
    except BleakBondLostError:
        raise
    except (BleakError, TimeoutError, OSError) as exc:
        raise LinkError(f"{address}: cannot connect and pair: {exc or type(exc).__name__}") from exc
    if not kinds:
        raise LinkError(f"{address}: neither a SoleGuard massager nor a Health Thermometer")
    return FoundDevice(kinds[0], name, address, None, thermometer)
