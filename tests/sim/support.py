"""Helpers for the simulator's end-to-end tests: a world, a radio, a bleak client, logs."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bleak import BleakClient

from controller.ble.bumble_backend import BumbleRadio
from controller.protocol import (
    MASSAGER_COMMAND_UUID,
    MASSAGER_STATUS_UUID,
    TEMPERATURE_MEASUREMENT_UUID,
    Command,
    RenewLease,
    TemperatureMeasurement,
    decode_status,
)
from firmware_sim.world import SimWorld

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

# Generous on virtual time: a wait that runs out means the thing never happened, and it costs
# no wall time.
WAIT_S = 60.0
CONNECT_TIMEOUT_S = 10.0


@dataclass
class Log:
    """Timestamped decoded values from notifications or indications (loop time)."""

    items: list[tuple[float, Any]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def add(self, value: Any) -> None:
        self.items.append((asyncio.get_running_loop().time(), value))
        self.changed.set()

    @property
    def values(self) -> list[Any]:
        return [value for _, value in self.items]

    @property
    def last(self) -> Any:
        return self.items[-1][1]

    def mark(self) -> int:
        return len(self.items)

    async def wait_for(
        self, predicate: Callable[[Any], bool], within_s: float = WAIT_S, *, since: int = 0
    ) -> Any:
        """The first value logged at index `since` or later that satisfies `predicate`."""
        start = since
        async with asyncio.timeout(within_s):
            while True:
                for _, value in self.items[start:]:
                    if predicate(value):
                        return value
                start = len(self.items)
                self.changed.clear()
                await self.changed.wait()


@contextlib.asynccontextmanager
async def world_and_radio(**world_kwargs: Any) -> AsyncIterator[tuple[SimWorld, BumbleRadio]]:
    async with SimWorld(**world_kwargs) as world, BumbleRadio(world.link) as radio:
        yield world, radio


@contextlib.asynccontextmanager
async def massager(
    world: SimWorld, radio: BumbleRadio, *, pair: bool = True
) -> AsyncIterator[tuple[BleakClient, Log]]:
    """A connected (and paired, subscribed) BleakClient to the massager, and its Status log."""
    log = Log()
    async with BleakClient(
        world.massager_address, backend=radio.client_backend(), timeout=CONNECT_TIMEOUT_S
    ) as client:
        if pair:
            await client.pair()
            await client.start_notify(
                # decode_status: a frame with an out-of-range field still shows its flags.
                MASSAGER_STATUS_UUID,
                lambda _c, data: log.add(decode_status(bytes(data))),
            )
        yield client, log


@contextlib.asynccontextmanager
async def sensor(world: SimWorld, radio: BumbleRadio) -> AsyncIterator[tuple[BleakClient, Log]]:
    log = Log()
    async with BleakClient(
        world.sensor_address, backend=radio.client_backend(), timeout=CONNECT_TIMEOUT_S
    ) as client:
        await client.start_notify(
            TEMPERATURE_MEASUREMENT_UUID,
            lambda _c, data: log.add(TemperatureMeasurement.decode(bytes(data))),
        )
        yield client, log


async def send(client: BleakClient, command: Command | bytes) -> None:
    frame = command if isinstance(command, bytes) else command.encode()
    await client.write_gatt_char(MASSAGER_COMMAND_UUID, frame, response=True)


class Renewer:
    """Renews the lease every second, as the controller does, until stopped."""

    def __init__(self, client: BleakClient, first_sequence: int = 1000) -> None:
        self.client = client
        self.sequence = first_sequence
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            self.sequence = (self.sequence + 1) & 0xFFFF
            with contextlib.suppress(Exception):  # a refusal or a lost link is what tests watch
                await send(self.client, RenewLease(self.sequence, 3000))
            await asyncio.sleep(1.0)

    async def __aenter__(self) -> Renewer:
        self._task = asyncio.create_task(self._run(), name="lease renewer")
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
