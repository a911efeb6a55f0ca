"""The simulated skin sensor: a standard Health Thermometer (0x1809) on the foot.

`SkinSensorFirmware` decides what each measurement says (pure, seeded); `SensorPeripheral` serves
it: Temperature Measurement (0x2A1C) indicated every `period_s` (1 s by default), Temperature Type
(0x2A1D) readable, Battery and Device Information. Subscribing needs no pairing: HTS 1.0 leaves
security to the implementation, and a thermometer that only reports is harmless to read.

The thermometers people already own differ; `SensorPeripheral` plays them too: one that refuses
pairing (``refuses_pairing``; ``drops_on_pairing`` also disconnects), one that notifies instead
of indicating (``notify``), and one with a Measurement Interval characteristic (0x2A21,
``interval="fixed"`` read-only or ``interval="writable"``) that reports ``period_s`` and, when
writable, changes it.

When the Temperature Type characteristic is present the measurements leave the type field out
(HTS 1.0 §3.1: the type is in one place or the other); ``type_in_measurement=True`` puts it in
every measurement instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import logging
import math
import random
from typing import TYPE_CHECKING, Any, Literal

from bumble import att, gatt
from bumble.pairing import PairingConfig, PairingDelegate
from bumble.profiles.battery_service import BatteryService
from bumble.profiles.device_information_service import DeviceInformationService

from controller.protocol import (
    HEALTH_THERMOMETER_SERVICE_UUID,
    MEASUREMENT_INTERVAL_UUID,
    TEMPERATURE_MEASUREMENT_UUID,
    TEMPERATURE_TYPE_UUID,
    TemperatureMeasurement,
    TemperatureType,
    TemperatureUnit,
)
from controller.protocol.hts import decode_measurement_interval, encode_measurement_interval
from firmware_sim.peripheral import Peripheral, advertising_payloads

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = [
    "DEFAULT_PERIOD_S",
    "IntervalCharacteristic",
    "SensorFaults",
    "SensorPeripheral",
    "SkinSensorFirmware",
]

_LOGGER = logging.getLogger(__name__)

DEFAULT_PERIOD_S = 1.0  # HTS Measurement Interval default of wearable thermometers
# A 2032 coin cell lasts months at 1 Hz; over a session it does not move.
SENSOR_BATTERY_PERCENT = 92
# A detached sensor's bead relaxes towards the boot air with a ~10 s time constant: the share of
# the remaining difference covered per 1 s measurement, 1 - exp(-1/10).
DETACHED_STEP_SHARE = 0.095
DETACHED_NOISE_C = 0.05  # the thermistor's usual noise (physics.SensorParams.skin_noise_c)
# The timestamp of the first measurement when the world is given none: fixed for determinism.
DEFAULT_START = datetime.datetime(2025, 1, 6, 9, 0, 0)
# An indication waits for the central's confirmation; one that does not arrive within the ATT
# transaction timeout (30 s, Core spec Vol 3 Part F 3.3.3) is a lost link, not a slow one.
_INDICATE_ERRORS = (att.ATT_Error, asyncio.TimeoutError, ConnectionError)
# The Measurement Interval a writable simulated thermometer accepts (its Valid Range, HTS 1.0
# §3.4.1): one second to one hour.
INTERVAL_MIN_S = 1
INTERVAL_MAX_S = 3600

# Whether the thermometer has a Measurement Interval characteristic, and whether it is writable.
IntervalCharacteristic = Literal["none", "fixed", "writable"]


class _RefusingDelegate(PairingDelegate):
    """A thermometer that does not bond: every pairing request gets Pairing Not Supported.

    With ``drop``, it also disconnects, as some stacks do after a refused pairing.
    """

    def __init__(self, connection: Any = None, *, drop: bool = False) -> None:
        super().__init__(io_capability=PairingDelegate.IoCapability.NO_OUTPUT_NO_INPUT)
        self._connection = connection
        self._drop = drop

    async def accept(self) -> bool:
        if self._drop and self._connection is not None:
            # After the refusal has gone out: the disconnect follows the Pairing Failed PDU.
            loop = asyncio.get_running_loop()
            loop.call_later(0.01, _disconnect_later, self._connection)
        return False


def _disconnect_later(connection: Any) -> None:
    task = asyncio.ensure_future(connection.disconnect())
    _DROPS.add(task)  # kept until done: a task nobody holds can vanish mid-way
    task.add_done_callback(_DROPS.discard)


_DROPS: set[asyncio.Future[Any]] = set()


def _refuse_pairing(connection: Any, *, drop: bool = False) -> PairingConfig:
    return PairingConfig(
        sc=True,
        mitm=False,
        bonding=False,
        delegate=_RefusingDelegate(connection, drop=drop),
    )


@dataclasses.dataclass(slots=True)
class SensorFaults:
    """Fault injection switches (set by firmware_sim.scenarios); all off by default.

    Temperatures in degC; probabilities and shares in 0..1.
    """

    silent: bool = False  # measures but does not indicate (dropout)
    stuck: bool = False  # repeats the last value
    spike_probability: float = 0.0  # per measurement: a spike or a NaN
    spike_nan_share: float = 0.3  # share of the faulty readings that are NaN, not spikes
    # Slid off the sole: reads the air in the boot, relaxing towards it (None: attached).
    detached_air_c: float | None = None
    # Frozen at a value (the ADC or its reference stuck) but still with its usual noise, so the
    # exact-repeat test cannot see it (None: follows the skin).
    frozen_c: float | None = None
    # The BLE stack batches: measures twice per period and indicates both back to back.
    burst_pairs: bool = False


class SkinSensorFirmware:
    """What the sensor measures and how it encodes it.

    ``read_skin_c``: the thermistor (degC, e.g. ``Physics.read_skin_c``); ``seed`` seeds the
    fault noise and spikes; ``unit``, ``timestamps``, ``temperature_type`` and
    ``type_in_measurement`` choose the Temperature Measurement fields (HTS 1.0, 0x2A1C);
    ``start`` is the timestamp of elapsed time 0 (naive local time, as HTS Date Time carries no
    zone).
    """

    def __init__(
        self,
        read_skin_c: Callable[[], float],
        *,
        seed: int = 0,
        unit: TemperatureUnit = TemperatureUnit.CELSIUS,
        timestamps: bool = True,
        temperature_type: TemperatureType = TemperatureType.TOE,
        type_in_measurement: bool = False,
        start: datetime.datetime = DEFAULT_START,
    ) -> None:
        self._read = read_skin_c
        self._rng = random.Random(seed)
        self.unit = unit
        self.timestamps = timestamps
        self.temperature_type = temperature_type
        self.type_in_measurement = type_in_measurement
        self.start = start
        self.faults = SensorFaults()
        self._last_c: float | None = None
        self._air_c: float | None = None
        self.measurements = 0

    def measure(self, elapsed_s: float) -> TemperatureMeasurement:
        """One measurement taken `elapsed_s` seconds after ``start``.

        The value is in ``unit`` (degC, or degF converted), rounded to 0.01, NaN for an injected
        NaN fault; the timestamp (when ``timestamps``) is ``start`` plus the whole seconds of
        `elapsed_s`, truncated. Raises nothing of its own.
        """
        self.measurements += 1
        celsius = self._read()
        air = self.faults.detached_air_c
        if air is not None:
            # A thermistor bead in still air: ~10 s time constant, its usual noise.
            base = self._air_c if self._air_c is not None else (self._last_c or celsius)
            self._air_c = base + (air - base) * min(1.0, DETACHED_STEP_SHARE)
            celsius = self._air_c + self._rng.gauss(0.0, DETACHED_NOISE_C)
        else:
            self._air_c = None
        if self.faults.frozen_c is not None:
            celsius = self.faults.frozen_c + self._rng.gauss(0.0, DETACHED_NOISE_C)
        if self.faults.stuck and self._last_c is not None:
            celsius = self._last_c
        self._last_c = celsius
        if self.faults.spike_probability and self._rng.random() < self.faults.spike_probability:
            if self._rng.random() < self.faults.spike_nan_share:
                celsius = math.nan
            else:
                # A loose contact or ESD: a few to fifteen degrees off, either way.
                celsius += self._rng.choice((-1.0, 1.0)) * self._rng.uniform(3.0, 15.0)
        value = celsius
        if self.unit is TemperatureUnit.FAHRENHEIT and math.isfinite(value):
            value = celsius * 9.0 / 5.0 + 32.0
        stamp = None
        if self.timestamps:
            stamp = self.start + datetime.timedelta(seconds=int(elapsed_s))
        return TemperatureMeasurement(
            value=value if not math.isfinite(value) else round(value, 2),
            unit=self.unit,
            timestamp=stamp,
            temperature_type=self.temperature_type if self.type_in_measurement else None,
        )


class SensorPeripheral(Peripheral):
    """The simulated skin sensor on the air.

    ``now``: the clock (s) measurement timestamps count from; ``period_s``: seconds between
    measurements, changed by a write to a writable Measurement Interval (whole seconds,
    `INTERVAL_MIN_S`..`INTERVAL_MAX_S`, else ATT Out Of Range; a read reports it rounded to whole
    seconds). ``radio``: passed to `Peripheral` (the bumble transport). Pairing and interval
    options: see the module docstring.
    """

    def __init__(
        self,
        firmware: SkinSensorFirmware,
        now: Callable[[], float],
        *,
        name: str,
        address: str,
        serial_number: str,
        period_s: float = DEFAULT_PERIOD_S,
        refuses_pairing: bool = False,
        drops_on_pairing: bool = False,
        notify: bool = False,
        interval: IntervalCharacteristic = "none",
        **radio: Any,
    ) -> None:
        super().__init__(
            name=name,
            address=address,
            advertising=advertising_payloads(name, uuids_16=[0x1809]),
            **radio,
        )
        self.firmware = firmware
        self.period_s = period_s
        self._now = now
        self._t0 = now()
        self.indications = 0
        self.notify = notify
        # Pairing attempts made on this thermometer (bumble asks the factory once per attempt).
        self.pairing_requests = 0
        if refuses_pairing or drops_on_pairing:

            def refuse(connection: Any) -> PairingConfig:
                self.pairing_requests += 1
                return _refuse_pairing(connection, drop=drops_on_pairing)

            self.device.pairing_config_factory = refuse
        self.measurement = gatt.Characteristic(
            TEMPERATURE_MEASUREMENT_UUID,
            gatt.Characteristic.Properties.NOTIFY
            if notify
            else gatt.Characteristic.Properties.INDICATE,
            att.Attribute.Permissions(0),
            b"",
        )
        services = [self.measurement]
        self._period_changed = asyncio.Event()
        if interval != "none":
            writable = interval == "writable"
            properties = gatt.Characteristic.Properties.READ
            permissions = att.Attribute.READABLE
            if writable:
                properties |= gatt.Characteristic.Properties.WRITE
                permissions |= att.Attribute.WRITEABLE
            services.append(
                gatt.Characteristic(
                    MEASUREMENT_INTERVAL_UUID,
                    properties,
                    permissions,
                    gatt.CharacteristicValue(
                        read=self._read_interval,
                        write=self._write_interval if writable else None,
                    ),
                )
            )
        if not firmware.type_in_measurement:
            services.append(
                gatt.Characteristic(
                    TEMPERATURE_TYPE_UUID,
                    gatt.Characteristic.Properties.READ,
                    att.Attribute.READABLE,
                    bytes((int(firmware.temperature_type),)),
                )
            )
        self.device.add_services(
            [
                gatt.Service(HEALTH_THERMOMETER_SERVICE_UUID, services),
                BatteryService(read_battery_level=lambda _connection: SENSOR_BATTERY_PERCENT),
                DeviceInformationService(
                    manufacturer_name="SoleGuard Simulated Devices",
                    model_number="SG-T1 skin thermometer",
                    serial_number=serial_number,
                    firmware_revision="sim-1.0",
                ),
            ]
        )

    def _read_interval(self, _connection: Any) -> bytes:
        return encode_measurement_interval(round(self.period_s))

    def _write_interval(self, _connection: Any, value: bytes) -> None:
        try:
            seconds = decode_measurement_interval(bytes(value))
        except ValueError as exc:
            raise att.ATT_Error(att.ErrorCode.INVALID_ATTRIBUTE_LENGTH) from exc
        if not INTERVAL_MIN_S <= seconds <= INTERVAL_MAX_S:
            raise att.ATT_Error(att.ErrorCode.OUT_OF_RANGE)
        _LOGGER.info("%s: measurement interval %g s -> %d s", self.name, self.period_s, seconds)
        self.period_s = float(seconds)
        self._period_changed.set()

    async def indicate_measurements(self) -> None:
        """Measure every `period_s` (s) and indicate (or notify) each subscriber, forever.

        Runs until cancelled; a failed indication (ATT error, timeout, lost connection) is logged
        at DEBUG and skipped, never raised. A new interval takes effect at once.
        """
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            self._period_changed.clear()
            # A new Measurement Interval takes effect at once, not after the old wait.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, due - loop.time())):
                    await self._period_changed.wait()
            due = (loop.time() if self._period_changed.is_set() else due) + self.period_s
            frames = []
            if self.firmware.faults.burst_pairs:
                # Measured half a period ago, held by the stack, sent with the next one.
                frames.append(self.firmware.measure(self._now() - self._t0 - self.period_s / 2))
            frames.append(self.firmware.measure(self._now() - self._t0))
            if self.firmware.faults.silent:
                continue
            for measurement in frames:
                await self._indicate(measurement.encode())

    async def _indicate(self, frame: bytes) -> None:
        for connection in self.connections:
            try:
                if self.notify:
                    await self.device.notify_subscriber(connection, self.measurement, frame)
                else:
                    await self.device.indicate_subscriber(connection, self.measurement, frame)
            except _INDICATE_ERRORS as exc:
                _LOGGER.debug("%s: indication failed: %s", self.name, exc)
            else:
                self.indications += 1
