"""GATT UUIDs, as full 128-bit lowercase strings (the form bleak normalises every UUID to)."""

from __future__ import annotations

# The SIG base UUID; a 16-bit assigned number n is 0000nnnn-0000-1000-8000-00805f9b34fb.
_SIG_BASE_SUFFIX = "-0000-1000-8000-00805f9b34fb"


def sig_uuid(assigned_number: int) -> str:
    """The 128-bit string of a 16-bit Bluetooth SIG assigned number, e.g. 0x180F."""
    return f"0000{assigned_number:04x}{_SIG_BASE_SUFFIX}"


# SoleGuard massager (docs/protocol.md).
MASSAGER_SERVICE_UUID = "5e7e0001-0c1a-4b8e-9f3d-6a2c1b0e4d5f"
MASSAGER_COMMAND_UUID = "5e7e0002-0c1a-4b8e-9f3d-6a2c1b0e4d5f"
MASSAGER_STATUS_UUID = "5e7e0003-0c1a-4b8e-9f3d-6a2c1b0e4d5f"
MASSAGER_LIMITS_UUID = "5e7e0004-0c1a-4b8e-9f3d-6a2c1b0e4d5f"

# Health Thermometer Service (the skin sensor).
HEALTH_THERMOMETER_SERVICE_UUID = sig_uuid(0x1809)
TEMPERATURE_MEASUREMENT_UUID = sig_uuid(0x2A1C)
TEMPERATURE_TYPE_UUID = sig_uuid(0x2A1D)
MEASUREMENT_INTERVAL_UUID = sig_uuid(0x2A21)

# Battery Service.
BATTERY_SERVICE_UUID = sig_uuid(0x180F)
BATTERY_LEVEL_UUID = sig_uuid(0x2A19)

# Device Information Service.
DEVICE_INFORMATION_SERVICE_UUID = sig_uuid(0x180A)
MANUFACTURER_NAME_UUID = sig_uuid(0x2A29)
MODEL_NUMBER_UUID = sig_uuid(0x2A24)
SERIAL_NUMBER_UUID = sig_uuid(0x2A25)
FIRMWARE_REVISION_UUID = sig_uuid(0x2A26)
