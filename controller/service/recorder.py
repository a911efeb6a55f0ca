"""What a session leaves behind: running figures, alarms, and 1 Hz readings in the journal.

Fed synchronously from the supervisor loop; the journal writes are small WAL inserts batched
once a second, which keeps the loop's worst case well under a millisecond.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from controller.errors import StoreError

if TYPE_CHECKING:
    from controller.protocol import MassagerStatus
    from controller.safety import Alarm, Decision
    from controller.store import Store

_LOGGER = logging.getLogger(__name__)

# The design asks for readings downsampled to 1 Hz: enough for a report, small on a Pi's SD card.
SAMPLE_PERIOD_S = 1.0


@dataclass(slots=True)
class Recorder:
    cutoff_c: float
    store: Store | None = None
    session_id: int | None = None
    wall_offset: float = 0.0  # add to loop time to get epoch seconds for the journal
    max_skin_c: float | None = None
    time_above_cutoff_s: float = 0.0
    max_pressure_mmhg: float = 0.0
    max_measured_pressure_mmhg: float = 0.0
    heat_s: float = 0.0
    alarms: list[Alarm] = field(default_factory=list)
    _last_time: float | None = None
    _last_skin: float | None = None
    _last_heater_on: bool = False
    _next_sample: float = -math.inf
    _measured_pressure: float | None = None
    _pad_c: float | None = None

    def massager_status(self, status: MassagerStatus) -> None:
        self._measured_pressure = status.pressure_mmhg
        self._pad_c = status.pad_temperature_c
        self.max_measured_pressure_mmhg = max(self.max_measured_pressure_mmhg, status.pressure_mmhg)

    def decision(self, now: float, decision: Decision) -> None:
        if self._last_time is not None:
            dt = max(0.0, now - self._last_time)
            if self._last_heater_on:
                self.heat_s += dt
            if self._last_skin is not None and self._last_skin >= self.cutoff_c:
                self.time_above_cutoff_s += dt
        self._last_time = now
        skin = decision.skin_c
        self._last_skin = skin
        self._last_heater_on = decision.command.heater_on
        if skin is not None:
            self.max_skin_c = skin if self.max_skin_c is None else max(self.max_skin_c, skin)
        self.max_pressure_mmhg = max(self.max_pressure_mmhg, decision.command.pressure_mmhg)
        for alarm in decision.new_alarms:
            self.alarms.append(alarm)
            self._store_alarm(alarm)
            if alarm.code == "OVER_TEMPERATURE_LATCH":
                self._store_latch(alarm, decision)
        # Readings are the session's: the watch after it records its alarms, not samples.
        if decision.after_session is None and now >= self._next_sample:
            self._next_sample = now + SAMPLE_PERIOD_S
            self._sample(now, decision)

    def _sample(self, now: float, decision: Decision) -> None:
        if self.store is None or self.session_id is None:
            return
        from controller.store import ReadingRow  # noqa: PLC0415 (optional part)

        row = ReadingRow(
            time=now + self.wall_offset,
            skin_c=decision.skin_c,
            pressure_mmhg=decision.command.pressure_mmhg,
            pressure_cap_mmhg=decision.pressure_cap_mmhg,
            heater_on=decision.command.heater_on,
            pad_c=self._pad_c,
        )
        try:
            self.store.add_readings(self.session_id, [row])
        except StoreError as exc:
            # The journal is a record, not a safety function: a full disk must not stop the
            # supervisor. The failure is logged and the session goes on.
            _LOGGER.error("journal: cannot record readings: %s", exc)

    def _store_latch(self, alarm: Alarm, decision: Decision) -> None:
        """The latch outlives the session and the process: it is kept in the journal."""
        if self.store is None:
            return
        from controller.store.latch import record_latch  # noqa: PLC0415 (optional part)

        skin = decision.skin_c if decision.skin_c is not None else math.nan
        try:
            record_latch(
                self.store,
                latched_at=alarm.time + self.wall_offset,
                skin_c=skin if math.isfinite(skin) else self.cutoff_c,
                session_id=self.session_id,
                message=alarm.message,
            )
        except StoreError as exc:
            # The supervisor holds the latch for this process whatever happens to the journal.
            _LOGGER.error("journal: cannot record the over-temperature latch: %s", exc)

    def _store_alarm(self, alarm: Alarm) -> None:
        if self.store is None:
            return
        try:
            self.store.add_alarm(
                self.session_id,
                time=alarm.time + self.wall_offset,
                code=alarm.code,
                priority=str(alarm.priority),
                message=alarm.message,
            )
        except StoreError as exc:
            _LOGGER.error("journal: cannot record alarm %s: %s", alarm.code, exc)
