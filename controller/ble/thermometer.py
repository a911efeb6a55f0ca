"""What a Health Thermometer says about itself at connection, and what SoleGuard asks of it.

Consumer thermometers differ in ways that matter to a heater's supervisor: many do not bond (an
indication needs no encryption to be read), many measure only every few seconds, and some are made
for the ear or the mouth, not the skin. At each connection the sensor link reads the Temperature
Type (0x2A1D) and the Measurement Interval (0x2A21); when the interval is slower than the stale
limit allows and the characteristic is writable, it writes it down. What it finds becomes a
`ThermometerInfo`, from which the session keeps heat off (a too slow thermometer) or refuses (a
non-skin site, when the settings say so), and tells the user in one line why.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bleak.exc import BleakError

from controller.errors import ProtocolError
from controller.protocol import (
    MEASUREMENT_INTERVAL_UUID,
    TEMPERATURE_MEASUREMENT_UUID,
    TEMPERATURE_TYPE_UUID,
)
from controller.protocol.hts import (
    TemperatureType,
    decode_measurement_interval,
    decode_temperature_type,
    describe_temperature_type,
    encode_measurement_interval,
    is_skin_site,
)
from controller.safety import pace_fast_enough

if TYPE_CHECKING:
    from bleak import BleakClient

_LOGGER = logging.getLogger(__name__)

# Whether a pace allows heat is the supervisor's rule; here it decides what to write.
fast_enough = pace_fast_enough


def needed_interval_s(stale_after_s: float) -> int:
    """The Measurement Interval (whole seconds) to ask for: the longest one shorter than the
    stale limit, so a measurement always arrives before the last one goes stale; at least 1 s
    (the characteristic's resolution).
    """
    return max(1, math.ceil(stale_after_s) - 1)


@dataclass(frozen=True, slots=True)
class ThermometerInfo:
    """What one connection to a Health Thermometer found.

    ``interval_s`` is the Measurement Interval in force after any write (None: the thermometer
    has no such characteristic, so its pace is unknown); ``interval_was_s`` the value it had
    before SoleGuard wrote it down (None when nothing was written).
    """

    address: str
    encrypted: bool
    temperature_type: TemperatureType | int | None
    interval_s: int | None
    interval_was_s: int | None
    stale_after_s: float
    # Seconds between the first two measurements of this connection (None until both arrived):
    # the pace of a thermometer that states no Measurement Interval.
    first_gap_s: float | None = None

    @property
    def pace_s(self) -> float | None:
        """Seconds between its measurements, as far as known: the Measurement Interval (0: not
        periodically), else the gap between its first two readings (None: not known yet, or
        two readings delivered together, which prove no pace)."""
        if self.interval_s is not None:
            return float(self.interval_s)
        if self.first_gap_s is not None and self.first_gap_s > 0.0:
            return self.first_gap_s
        return None

    @property
    def too_slow(self) -> bool:
        """True when the thermometer measures too rarely for the heater to be safe: by its
        Measurement Interval, or, when it states none, by the gap between its first readings."""
        pace = self.pace_s
        return pace is not None and not fast_enough(pace, self.stale_after_s)

    @property
    def skin_site(self) -> bool:
        """False only when the thermometer states a site that is not skin (ear, mouth, ...)."""
        return self.temperature_type is None or is_skin_site(self.temperature_type)

    def too_slow_line(self) -> str:
        """One line for the user: why heating stays off with this thermometer."""
        if self.interval_s is None:
            pace = (
                f"states no Measurement Interval and sent its first two readings "
                f"{self.first_gap_s or 0.0:.1f} s apart"
                if (self.first_gap_s or 0.0) < PACE_LISTEN_S
                else f"states no Measurement Interval and sent fewer than two readings in "
                f"{PACE_LISTEN_S:g} s"
            )
        elif self.interval_s == 0:
            pace = "does not measure periodically and its Measurement Interval cannot be set"
        else:
            pace = (
                f"measures every {self.interval_s} s and its Measurement Interval cannot be set "
                "shorter"
            )
        return (
            f"sensor {self.address} {pace}: "
            f"too slow for heat. Heating stays off, because a skin reading older than "
            f"{self.stale_after_s:g} s (sensor.stale_after_s) cannot be trusted; pressure works."
        )

    def site_line(self) -> str:
        """One line for the user: this thermometer measures somewhere other than the skin."""
        assert self.temperature_type is not None
        return (
            f"sensor {self.address} reports temperature type "
            f'"{describe_temperature_type(self.temperature_type)}", not a skin site: its readings '
            'may not show what the heater does to the foot (sensor.non_skin_site = "refuse" '
            "refuses such sensors)"
        )

    def site_refusal_line(self) -> str:
        """One line for the user: why the settings refuse this thermometer."""
        assert self.temperature_type is not None
        return (
            f"sensor {self.address} reports temperature type "
            f'"{describe_temperature_type(self.temperature_type)}", not a skin site, and '
            'sensor.non_skin_site = "refuse"'
        )

    def lines(self) -> list[str]:
        """Every line the user should read before a session with this thermometer."""
        lines = []
        if self.too_slow:
            lines.append(self.too_slow_line())
        if not self.skin_site:
            lines.append(self.site_line())
        return lines

    def describe(self) -> str:
        """A short description for ``soleguard pair``: link security, site, pace."""
        parts = ["bonded, encrypted" if self.encrypted else "not bonded (it refused pairing)"]
        if self.temperature_type is not None:
            parts.append(f"site {describe_temperature_type(self.temperature_type)}")
        if self.interval_s is None and self.first_gap_s is not None:
            parts.append(
                f"measurement interval not stated; measures every {self.first_gap_s:.1f} s"
            )
        elif self.interval_s is None:
            parts.append("measurement interval not stated")
        elif self.interval_was_s is not None:
            parts.append(
                f"measurement interval set to {self.interval_s} s (was {self.interval_was_s} s)"
            )
        else:
            parts.append(f"measures every {self.interval_s} s")
        return "; ".join(parts)


# How long `pair` listens for a thermometer's first two readings when it states no Measurement
# Interval: long enough for the 5 s pace of many consumer thermometers, short enough to wait for.
PACE_LISTEN_S = 12.0


async def measure_pace(client: BleakClient, info: ThermometerInfo) -> ThermometerInfo:
    """For a thermometer that states no Measurement Interval: the gap between its first two
    readings, heard within ``PACE_LISTEN_S`` (None if fewer than two came). Raises BleakError,
    TimeoutError or OSError only when the link itself fails.
    """
    loop = asyncio.get_running_loop()
    arrivals: list[float] = []
    second = asyncio.Event()

    def received(_char: object, _data: bytearray) -> None:
        arrivals.append(loop.time())
        if len(arrivals) >= 2:
            second.set()

    await client.start_notify(TEMPERATURE_MEASUREMENT_UUID, received)
    try:
        async with asyncio.timeout(PACE_LISTEN_S):
            await second.wait()
    except TimeoutError:
        # One reading or none in the whole window: far slower than any stale limit.
        gap = PACE_LISTEN_S
    else:
        gap = arrivals[1] - arrivals[0]
    finally:
        if client.is_connected:
            await client.stop_notify(TEMPERATURE_MEASUREMENT_UUID)
    return dataclasses.replace(info, first_gap_s=gap)


async def inspect(
    client: BleakClient, address: str, *, encrypted: bool, stale_after_s: float
) -> ThermometerInfo:
    """Read the type and the interval; write the interval down when it is too slow and writable.

    A characteristic that is missing, unreadable or malformed counts as not stated (a warning is
    logged); a refused write leaves the interval as it was. Raises BleakError, TimeoutError or
    OSError only when the link itself fails.
    """
    temperature_type = None
    type_char = client.services.get_characteristic(TEMPERATURE_TYPE_UUID)
    if type_char is not None and "read" in type_char.properties:
        try:
            raw = await client.read_gatt_char(type_char)
            temperature_type = decode_temperature_type(bytes(raw))
        except ProtocolError as exc:
            _LOGGER.warning("sensor %s: unreadable Temperature Type: %s", address, exc)
    interval_s = interval_was_s = None
    interval_char = client.services.get_characteristic(MEASUREMENT_INTERVAL_UUID)
    if interval_char is not None and "read" in interval_char.properties:
        try:
            interval_s = decode_measurement_interval(
                bytes(await client.read_gatt_char(interval_char))
            )
        except ProtocolError as exc:
            _LOGGER.warning("sensor %s: unreadable Measurement Interval: %s", address, exc)
    if (
        interval_char is not None
        and interval_s is not None
        and not fast_enough(interval_s, stale_after_s)
        and "write" in interval_char.properties
    ):
        wanted = needed_interval_s(stale_after_s)
        try:
            await client.write_gatt_char(interval_char, encode_measurement_interval(wanted), True)
            # Read back: a thermometer may accept the write and clamp it to its Valid Range.
            now_s = decode_measurement_interval(bytes(await client.read_gatt_char(interval_char)))
        except BleakError as exc:
            # An ATT error (Out of Range, Write Not Permitted) is the thermometer's answer, not a
            # lost link: the interval stays as it was and the session keeps heat off.
            if not client.is_connected:
                raise
            _LOGGER.info("sensor %s: Measurement Interval write refused (%s)", address, exc)
        except ProtocolError as exc:
            _LOGGER.warning("sensor %s: unreadable Measurement Interval: %s", address, exc)
        else:
            interval_was_s, interval_s = interval_s, now_s
            _LOGGER.info(
                "sensor %s: Measurement Interval %d s -> %d s", address, interval_was_s, now_s
            )
    return ThermometerInfo(
        address=address,
        encrypted=encrypted,
        temperature_type=temperature_type,
        interval_s=interval_s,
        interval_was_s=interval_was_s,
        stale_after_s=stale_after_s,
    )
