"""What a session leaves behind: running figures, alarms, and 1 Hz readings in the journal.

Fed synchronously from the supervisor loop. With a ``writer`` (`controller.store.writer`), the
journal writes happen on the writer's thread and the loop only queues them: a database locked by
another process, or a slow disk, never delays a supervisor step.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from controller.errors import StoreError

if TYPE_CHECKING:
    from collections.abc import Callable

    from controller.protocol import MassagerStatus
    from controller.safety import Alarm, Decision
    from controller.store import Store
    from controller.store.writer import JournalWriter

_LOGGER = logging.getLogger(__name__)

# The design asks for readings downsampled to 1 Hz: enough for a report, small on a Pi's SD card.
SAMPLE_PERIOD_S = 1.0


@dataclass(slots=True)
class Recorder:
    """Keeps a session's figures (maxima in °C and mmHg, seconds of heat and above the cut-off).

    With a ``store`` it also journals samples, alarms and the latch; a journal failure is logged
    and the session goes on (the journal is a record, not a safety function).
    """

    cutoff_c: float
    store: Store | None = None
    session_id: int | None = None
    wall_offset: float = 0.0  # add to loop time to get epoch seconds for the journal
    writer: JournalWriter | None = None
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
        """Note the measured pressure (mmHg) and pad temperature (°C) of one Status."""
        self._measured_pressure = status.pressure_mmhg
        self._pad_c = status.pad_temperature_c
        self.max_measured_pressure_mmhg = max(self.max_measured_pressure_mmhg, status.pressure_mmhg)

    def decision(self, now: float, decision: Decision) -> None:
        """Account one supervisor decision at ``now`` (monotonic s): time, maxima, alarms."""
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
        store = self.store
        # With a writer the session's record may not exist yet: the writer creates it first, in
        # order, and each job reads the id when it runs. Without one the id is known already.
        if store is None or (self.writer is None and self.session_id is None):
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

        def write() -> None:
            if self.session_id is not None:
                store.add_readings(self.session_id, [row])

        self._write(write, "readings")

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
        store = self.store
        if store is None:
            return
        when = alarm.time + self.wall_offset

        def write() -> None:
            # The session id as it is when the write runs: the writer started the session's
            # record before it (in order), so an alarm raised at once is not left without one.
            store.add_alarm(
                self.session_id,
                time=when,
                code=alarm.code,
                priority=str(alarm.priority),
                message=alarm.message,
            )

        self._write(write, f"alarm {alarm.code}")

    def _write(self, job: Callable[[], object], what: str) -> None:
        if self.writer is not None:
            self.writer.submit(job)
            return
        try:
            job()
        except StoreError as exc:
            # The journal is a record, not a safety function: a full disk must not stop the
            # supervisor. The failure is logged and the session goes on.
            _LOGGER.error("journal: cannot record %s: %s", what, exc)
