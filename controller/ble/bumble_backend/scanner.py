"""The bleak scanner backend: ``BaseBleakScanner`` over a `BumbleRadio`'s shared scan.

Use it through bleak's public API only::

    await BleakScanner.discover(backend=radio.scanner_backend(), timeout=2.0)
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bumble import core
from bumble.core import AdvertisingData

from controller.ble.bumble_backend.client import bleak_uuid

if TYPE_CHECKING:
    from bumble.device import Advertisement

    from controller.ble.bumble_backend.radio import BumbleRadio

_UUID_LISTS: dict[int, int] = {
    AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS: 2,
    AdvertisingData.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS: 2,
    AdvertisingData.COMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS: 4,
    AdvertisingData.INCOMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS: 4,
    AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS: 16,
    AdvertisingData.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS: 16,
}
_SERVICE_DATA: dict[int, int] = {
    AdvertisingData.SERVICE_DATA_16_BIT_UUID: 2,
    AdvertisingData.SERVICE_DATA_32_BIT_UUID: 4,
    AdvertisingData.SERVICE_DATA_128_BIT_UUID: 16,
}


def _merge(previous: AdvertisementData | None, advertisement: Advertisement) -> AdvertisementData:
    """Fold one advertising or scan-response PDU into what is known about the device.

    A scan response adds to the advertisement rather than replacing it, as operating systems
    report it; UUIDs are deduplicated because bumble's virtual controller repeats the
    advertising data as the scan response.
    """
    name = previous.local_name if previous else None
    service_uuids = list(previous.service_uuids) if previous else []
    manufacturer_data = dict(previous.manufacturer_data) if previous else {}
    service_data = dict(previous.service_data) if previous else {}
    tx_power = previous.tx_power if previous else None

    for ad_type, payload in advertisement.data.ad_structures:
        if ad_type == AdvertisingData.COMPLETE_LOCAL_NAME or (
            ad_type == AdvertisingData.SHORTENED_LOCAL_NAME and name is None
        ):
            name = payload.decode("utf-8", errors="replace")
        elif (width := _UUID_LISTS.get(ad_type)) is not None:
            for offset in range(0, len(payload) - width + 1, width):
                value = bleak_uuid(core.UUID.from_bytes(payload[offset : offset + width]))
                if value not in service_uuids:
                    service_uuids.append(value)
        elif (width := _SERVICE_DATA.get(ad_type)) is not None and len(payload) >= width:
            service_data[bleak_uuid(core.UUID.from_bytes(payload[:width]))] = payload[width:]
        elif ad_type == AdvertisingData.MANUFACTURER_SPECIFIC_DATA and len(payload) >= 2:
            (company,) = struct.unpack_from("<H", payload)
            manufacturer_data[company] = payload[2:]
        elif ad_type == AdvertisingData.TX_POWER_LEVEL and payload:
            (tx_power,) = struct.unpack_from("<b", payload)

    return AdvertisementData(
        local_name=name,
        manufacturer_data=manufacturer_data,
        service_data=service_data,
        service_uuids=service_uuids,
        tx_power=tx_power,
        rssi=advertisement.rssi,
        platform_data=(advertisement,),
    )


class BumbleScannerBackend(BaseBleakScanner):
    """bleak scanner backend bound to a `BumbleRadio` (subclass per radio: `scanner_backend`)."""

    radio: ClassVar[BumbleRadio]

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: Literal["active", "passive"] = "active",
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self._token = object()
        # Everything heard per address, including devices the UUID filter hides: a later scan
        # response may carry the UUID that lets one through.
        self._heard: dict[str, AdvertisementData] = {}

    async def start(self) -> None:
        """Forget what earlier scans saw and listen to the shared scan."""
        self.seen_devices = {}
        self._heard = {}
        await self.radio.add_scan_listener(self._token, self._on_advertisement)

    async def stop(self) -> None:
        """Stop listening to the shared scan."""
        await self.radio.remove_scan_listener(self._token)

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        address = advertisement.address.to_string(False)
        data = _merge(self._heard.get(address), advertisement)
        self._heard[address] = data
        if not self.is_allowed_uuid(data.service_uuids):
            return
        device = self.create_or_update_device(
            address, address, data.local_name, advertisement.address, data
        )
        self.call_detection_callbacks(device, data)
