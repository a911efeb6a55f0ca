"""Property proofs: one supervisor, any interleaving of events, invariants after every step.

A RuleBasedStateMachine feeds readings (normal, NaN, ±inf, spikes, out of range, huge), massager
reports (over-pressure, heater energised, cut-out, faults), user and caregiver requests (any
values), link changes, acknowledgements, session starts with random checklists and time steps
(backwards, tiny, huge, NaN). The invariants are checked against an independent, deliberately
simple model of what the test fed in, never against the supervisor's own bookkeeping.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
from dataclasses import dataclass

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from controller.safety import (
    CONTRAINDICATIONS,
    Acknowledge,
    AlarmCode,
    CaregiverAction,
    CaregiverRequest,
    ChecklistResult,
    Decision,
    DeviceKind,
    EndReason,
    Event,
    LatchInForce,
    LinkChanged,
    MassagerReport,
    SensorPace,
    SessionState,
    SkinReading,
    StartSession,
    Supervisor,
    UserRequest,
    UserStop,
)
from controller.safety.events import BLOCKING_FINDINGS
from controller.settings import SafetyLimits, Settings, effective_limits

EPS = 1e-9

# `make test` runs a quick proof; `make proofs` (HYPOTHESIS_PROFILE=proof, its own CI step) runs at
# least 10,000 state-machine examples. Profiles themselves live in tests/conftest.py.
PROOF = os.environ.get("HYPOTHESIS_PROFILE") == "proof"
STATE_MACHINE_SETTINGS = settings(
    max_examples=10_000 if PROOF else 200,
    stateful_step_count=30 if PROOF else 40,
    # Each generated step runs the supervisor, so generation is legitimately slow (it is the code
    # under test working, not a costly strategy): the health check would time the supervisor.
    suppress_health_check=[HealthCheck.too_slow],
)

# --- strategies --------------------------------------------------------------------------------

profile_names = st.sampled_from([None, "allodynia", "reduced-heat-sensation", "diabetic"])


@st.composite
def random_limits(draw: st.DrawFn) -> SafetyLimits:
    cutoff = draw(st.floats(32.0, 41.0))
    margin = draw(st.floats(2.0, 10.0))
    data = {
        "profile": {"name": draw(profile_names)},
        "pressure": {
            "cap_mmhg": draw(st.floats(0.0, 70.0)),
            "ramp_mmhg_per_s": draw(st.floats(0.5, 10.0)),
        },
        "heater": {
            "enabled": draw(st.booleans()),
            "clinician_approved": draw(st.booleans()),
            "cutoff_c": cutoff,
            "target_c": draw(st.floats(30.0, min(40.0, cutoff - 0.1))),
            "reenable_margin_c": margin,
            "min_off_s": draw(st.floats(30.0, 120.0)),
            "latch_c": draw(st.floats(max(38.0, cutoff + 0.1), 43.0)),
            "max_heat_minutes": draw(st.sampled_from([0.0, 0.2, 1.0, 20.0])),
            "prediction_horizon_s": draw(st.floats(0.0, 300.0)),
        },
        "sensor": {
            "stale_after_s": draw(st.floats(0.5, 3.0)),
            "max_rate_c_per_s": draw(st.floats(0.1, 2.0)),
        },
        "session": {"max_minutes": draw(st.sampled_from([1.0, 2.0, 20.0, 30.0]))},
        "lease": {"duration_s": draw(st.floats(0.5, 3.0))},
    }
    return effective_limits(Settings.model_validate(data))


limits_strategy = st.one_of(
    st.just(SafetyLimits.defaults()),
    st.sampled_from(["allodynia", "reduced-heat-sensation", "diabetic"]).map(
        lambda name: effective_limits(Settings.model_validate({"profile": {"name": name}}))
    ),
    random_limits(),
    # The loader keeps the target below cut-off - margin, so the thermostat alone would keep the
    # heater off near the cut-off and hide a broken cut-off rule: the supervisor must be safe for
    # any SafetyLimits record, so also try a target above the cut-off.
    random_limits().map(
        lambda lim: dataclasses.replace(lim, heater_target_c=lim.heater_cutoff_c + 1.0)
    ),
)

nasty_floats = st.sampled_from([math.nan, math.inf, -math.inf, -1.0, 0.0, 1e308, -1e308])
time_steps = st.one_of(
    st.sampled_from([0.1, 0.1, 0.1, 0.2, 0.5, 1.0]),
    st.floats(0.0, 5.0),
    st.sampled_from([0.0, 3.0, 31.0, 120.0, 2000.0, -5.0]),
)
skin_values = st.one_of(
    st.floats(30.0, 45.0),
    nasty_floats,
    st.floats(-300.0, 300.0),
)
checklists = st.builds(
    ChecklistResult,
    contraindications=st.frozensets(st.sampled_from([*CONTRAINDICATIONS, "other"]), max_size=2)
    | st.just(frozenset()),
    inspection_findings=st.frozensets(st.sampled_from(["cut", "blister", "dry_skin", "callus"]))
    | st.just(frozenset()),
    inspection_required=st.booleans(),
    inspection_done=st.booleans(),
    provider_consulted=st.booleans(),
)
caregiver_actions = st.one_of(
    st.sampled_from(list(CaregiverAction)),
    st.sampled_from(["stop", "heater_off", "lower_pressure", "raise_pressure", "", "STOP"]),
)
amounts = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True), nasty_floats)


def blocked(checklist: ChecklistResult) -> bool:
    return bool(
        checklist.contraindications
        or checklist.inspection_findings & BLOCKING_FINDINGS
        or (checklist.inspection_required and not checklist.inspection_done)
    )


# --- the independent model of what was fed -------------------------------------------------------


@dataclass
class Model:
    massager_up: bool = False
    sensor_up: bool = False
    sensor_up_at: float = -math.inf
    last_reading: tuple[float, float] | None = None  # (time, celsius) of the latest fed reading
    session_start: float | None = None
    caregiver_heater_off: bool = False
    heat_on_s: float = 0.0
    # The latest SensorPace period as the supervisor must read it (garbage: unknown, inf).
    pace_s: float | None = None
    # A too slow pace was in force at some step of this session: heat off for all of it.
    slow_this_session: bool = False
    too_slow_raised: int = 0  # SENSOR_TOO_SLOW raised this session


class SupervisorMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.sup: Supervisor
        self.twin: Supervisor | None = None
        self.limits: SafetyLimits
        self.now = 0.0
        self.model = Model()
        self.decision: Decision | None = None
        self.skin = 34.0

    @initialize(
        limits=limits_strategy,
        connect=st.booleans(),
        # A realistic monotonic clock: seconds since boot, up to days; a clock starting at 0
        # hides every `now - t` / `now + t` mistake.
        offset=st.floats(60.0, 5 * 86400.0),
    )
    def setup(self, limits: SafetyLimits, connect: bool, offset: float) -> None:
        self.limits = limits
        self.now = offset
        self.sup = Supervisor(limits)
        events: list[Event] = []
        if connect:
            events = [
                LinkChanged(DeviceKind.MASSAGER, True),
                LinkChanged(DeviceKind.SENSOR, True),
            ]
        self.advance(0.0, events)

    # -- the one place events go in ----------------------------------------------------------

    def advance(self, dt: float, events: list[Event]) -> None:
        previous = self.decision
        previous_now = self.now
        if math.isfinite(dt):
            self.now = max(self.now, self.now + dt)
        caregiver = [e for e in events if isinstance(e, CaregiverRequest)]
        if caregiver:
            self.twin = copy.deepcopy(self.sup)
        step_now = self.now if math.isfinite(dt) else math.nan
        self.model_before(events)
        decision = self.sup.step(step_now, events)
        self.check(previous, previous_now, decision, events, step_now)
        if caregiver and self.twin is not None:
            twin_decision = self.twin.step(
                step_now, [e for e in events if not isinstance(e, CaregiverRequest)]
            )
            if twin_decision.session_id == decision.session_id:
                assert decision.command.pressure_mmhg <= twin_decision.command.pressure_mmhg + EPS
                assert not decision.command.heater_on or twin_decision.command.heater_on
                assert decision.pressure_cap_mmhg <= twin_decision.pressure_cap_mmhg + EPS
        self.twin = None
        self.decision = decision

    def model_before(self, events: list[Event]) -> None:
        m = self.model
        for e in events:
            if isinstance(e, LinkChanged):
                if e.device is DeviceKind.MASSAGER:
                    m.massager_up = e.connected
                else:
                    m.sensor_up = e.connected
                    m.sensor_up_at = self.now
                    m.last_reading = None
            elif isinstance(e, SensorPace):
                p = e.period_s
                finite = isinstance(p, (int, float)) and not isinstance(p, bool)
                m.pace_s = float(p) if finite and math.isfinite(p) and p >= 0.0 else math.inf
            elif (
                isinstance(e, SkinReading)
                and m.sensor_up
                and math.isfinite(e.time)
                and e.time >= m.sensor_up_at
            ):
                m.last_reading = (min(e.time, self.now), e.celsius)

    # -- invariants -----------------------------------------------------------------------------

    def check(
        self,
        previous: Decision | None,
        previous_now: float,
        d: Decision,
        events: list[Event],
        step_now: float,
    ) -> None:
        lim = self.limits
        m = self.model
        cmd = d.command
        running = d.state is SessionState.RUNNING
        # Session bookkeeping of the model.
        if running and (previous is None or previous.session_id != d.session_id):
            m.session_start = self.now
            m.caregiver_heater_off = False
            m.heat_on_s = 0.0
            m.slow_this_session = False
            m.too_slow_raised = 0
        slow = m.pace_s is not None and not 0.0 < m.pace_s < lim.stale_after_s
        if running and slow and not math.isnan(step_now):
            m.slow_this_session = True
        if previous is not None and previous.command.heater_on:
            # The firmware keeps a heater on for at most one lease after the last command: a
            # longer gap between steps (a stall) heats for one lease, not for the whole gap.
            m.heat_on_s += min(self.now - previous_now, lim.lease_s)
        same_session = previous is not None and previous.session_id == d.session_id
        was_running = previous is not None and previous.state is SessionState.RUNNING
        if (
            same_session
            and was_running
            and any(isinstance(e, CaregiverRequest) and e.action == "heater_off" for e in events)
        ):
            m.caregiver_heater_off = True

        # Pressure: within every cap, within the ramp, zero whenever it must be.
        assert 0.0 <= cmd.pressure_mmhg <= min(lim.pressure_cap_mmhg, 70.0) + EPS
        assert cmd.pressure_mmhg <= d.pressure_cap_mmhg + EPS
        if previous is not None:
            rise = cmd.pressure_mmhg - previous.command.pressure_mmhg
            assert rise <= lim.pressure_ramp_mmhg_per_s * (self.now - previous_now) + 1e-6
        if not running or not m.massager_up or math.isnan(step_now):
            assert cmd.pressure_mmhg == 0.0
            assert not cmd.heater_on

        # Heater: every condition of the rule, from the model of what was fed.
        if cmd.heater_on:
            assert running
            assert lim.heater_allowed
            assert not m.caregiver_heater_off
            assert m.massager_up
            assert m.sensor_up
            assert m.last_reading is not None
            t, c = m.last_reading
            assert math.isfinite(c)
            assert lim.valid_min_c <= c <= lim.valid_max_c
            assert c < lim.heater_cutoff_c
            assert self.now - t < lim.stale_after_s
            assert m.heat_on_s < lim.max_heat_s
            assert d.heat_used_s < lim.max_heat_s
            # A sensor too slow for heat disables it for the whole session.
            assert not m.slow_this_session
        # A too slow sensor: one information signal per session, never SENSOR_STALE instead.
        new_codes = [a.code for a in d.new_alarms]
        if running and slow:
            assert AlarmCode.SENSOR_STALE not in new_codes
        if running:
            m.too_slow_raised += new_codes.count(AlarmCode.SENSOR_TOO_SLOW)
            assert m.too_slow_raised <= 1
        starts = [e for e in events if isinstance(e, StartSession)]
        # Latch: nothing while latched, and it holds until an acknowledgement.
        if d.state is SessionState.LATCHED:
            assert cmd.stop
            assert cmd.pressure_mmhg == 0.0
            assert not cmd.heater_on
        if previous is not None and previous.state is SessionState.LATCHED:
            if not any(isinstance(e, Acknowledge) for e in events):
                assert d.state is SessionState.LATCHED
            elif not starts:
                assert d.state in (SessionState.LATCHED, SessionState.ENDED)
        # A latch kept in the journal latches, whatever state the supervisor was in.
        if any(isinstance(e, LatchInForce) for e in events) and not math.isnan(step_now):
            assert d.state is SessionState.LATCHED
        # The watch after the session: only after one, and a post-session fault is the ending.
        if running:
            assert d.after_session is None
        if d.after_session == "fault":
            assert d.ended_by is EndReason.FAULT
        # Measured limits anticipated: the pad target keeps the pad <= 41 °C, the pressure
        # command stays under the hard limit by at least the measurement margin.
        assert cmd.pad_target_c <= lim.pad_target_max_c
        assert cmd.pressure_mmhg <= (
            lim.pressure_hard_max_mmhg - lim.pressure_measured_margin_mmhg + EPS
        )
        # A reading the supervisor accepted as valid at or above the latch has latched it.
        if d.skin_c is not None and d.skin_c >= lim.latch_c:
            assert d.state is SessionState.LATCHED
        # A session never outlives its maximum.
        if running:
            assert m.session_start is not None
            assert self.now - m.session_start < lim.max_session_s
            assert d.elapsed_s < lim.max_session_s
        # A refused checklist never actuates.
        if (
            starts
            and previous is not None
            and previous.state in (SessionState.IDLE, SessionState.ENDED)
            and d.state is not SessionState.LATCHED
            and all(blocked(s.checklist) for s in starts)
        ):
            assert d.ended_by is EndReason.CHECKLIST
        if d.ended_by is EndReason.CHECKLIST:
            assert cmd.stop
            assert cmd.pressure_mmhg == 0.0
            assert not cmd.heater_on
        # Alarms: an active alarm is raised once; new ones are active unless cleared at once.
        # Coverage, shown by --hypothesis-show-statistics: the proofs mean little if these are rare.
        event(f"state {d.state}")
        if cmd.heater_on:
            event("heater on")
        if cmd.pressure_mmhg > 0.0:
            event("pressure on")
        for alarm in d.new_alarms:
            event(f"alarm {alarm.code}")
        codes = [a.code for a in d.active_alarms]
        assert len(codes) == len(set(codes))
        assert cmd.lease_s == lim.lease_s

    # -- rules ----------------------------------------------------------------------------------

    @rule(dt=time_steps, delta=st.floats(-0.3, 0.3))
    def normal_reading(self, dt: float, delta: float) -> None:
        self.skin = min(44.0, max(30.0, self.skin + delta))
        self.advance(dt, [SkinReading(self.now + dt, self.skin)])

    @rule(goal=st.floats(30.0, 46.0), rate=st.sampled_from([0.02, 0.2, 1.0, 1.9]))
    def warm_towards(self, goal: float, rate: float) -> None:
        """A plausible skin trajectory, one reading and one report a second, up to the latch."""
        for _ in range(12):
            if abs(self.skin - goal) < 1e-6:
                break
            self.skin += max(-rate, min(rate, goal - self.skin))
            pressure = self.decision.command.pressure_mmhg if self.decision else 0.0
            heater = self.decision.command.heater_on if self.decision else False
            report = MassagerReport(self.now + 1.0, pressure, heater, False, 0, 80)
            self.advance(1.0, [SkinReading(self.now + 1.0, self.skin), report])

    @rule(dt=time_steps, celsius=skin_values, age=st.sampled_from([0.0, 0.0, 1.0, 10.0, -1.0]))
    def any_reading(self, dt: float, celsius: float, age: float) -> None:
        self.advance(dt, [SkinReading(self.now + dt - age, celsius)])

    @rule(dt=time_steps, when=nasty_floats)
    def reading_with_garbage_time(self, dt: float, when: float) -> None:
        self.advance(dt, [SkinReading(when, self.skin)])

    @rule(
        dt=time_steps,
        pressure=st.one_of(st.floats(0.0, 80.0), st.floats(0.0, 300.0), nasty_floats),
        energised=st.booleans(),
        cutout=st.booleans().filter(lambda b: True),
        fault=st.sampled_from([0, 0, 0, 0, 1, 2, 3, 4, 77, -1]),
        battery=st.one_of(st.integers(0, 100), nasty_floats),
        pad=st.one_of(st.none(), st.floats(20.0, 45.0), st.just(120.0), nasty_floats),
        lease=st.one_of(st.none(), st.booleans()),
        invalid=st.sampled_from([(), (), ("pressure",), ("pad_temperature",), ("battery",)]),
    )
    def massager_report(
        self,
        dt: float,
        pressure: float,
        energised: bool,
        cutout: bool,
        fault: int,
        battery: float,
        pad: float | None,
        lease: bool | None,
        invalid: tuple[str, ...],
    ) -> None:
        cutout = cutout and fault == 1
        report = MassagerReport(
            self.now + dt, pressure, energised, cutout, fault, battery, pad, lease, None, invalid
        )
        self.advance(dt, [report])

    @rule(dt=time_steps, celsius=st.one_of(st.floats(30.0, 50.0), nasty_floats))
    def latch_from_the_journal(self, dt: float, celsius: float) -> None:
        self.advance(dt, [LatchInForce(celsius)])

    @rule(dt=time_steps)
    def calm_report(self, dt: float) -> None:
        previous = self.decision.command.pressure_mmhg if self.decision else 0.0
        heater = self.decision.command.heater_on if self.decision else False
        self.advance(dt, [MassagerReport(self.now + dt, previous, heater, False, 0, 80)])

    @rule(
        dt=time_steps,
        pressure=st.one_of(st.floats(0.0, 80.0), st.just(1000.0), nasty_floats),
        heat=st.booleans(),
    )
    def user_request(self, dt: float, pressure: float, heat: bool) -> None:
        self.advance(dt, [UserRequest(pressure, heat)])

    @rule(dt=time_steps)
    def user_stop(self, dt: float) -> None:
        self.advance(dt, [UserStop()])

    @rule(dt=time_steps, action=caregiver_actions, amount=amounts, rid=st.text(max_size=5))
    def caregiver(self, dt: float, action: str, amount: float | None, rid: str) -> None:
        self.advance(dt, [CaregiverRequest(action, amount, rid)])

    @rule(dt=time_steps, device=st.sampled_from(list(DeviceKind)), connected=st.booleans())
    def link(self, dt: float, device: DeviceKind, connected: bool) -> None:
        self.advance(dt, [LinkChanged(device, connected)])

    @rule(dt=time_steps)
    def acknowledge(self, dt: float) -> None:
        self.advance(dt, [Acknowledge()])

    @rule(dt=time_steps, checklist=checklists, pressure=st.floats(0.0, 100.0))
    def start_session(self, dt: float, checklist: ChecklistResult, pressure: float) -> None:
        self.advance(dt, [StartSession(checklist), UserRequest(pressure, True)])

    @rule(dt=time_steps, pressure=st.floats(0.0, 100.0))
    def start_good_session(self, dt: float, pressure: float) -> None:
        events: list[Event] = [
            StartSession(ChecklistResult(inspection_done=True)),
            UserRequest(pressure, True),
            SkinReading(self.now + dt, self.skin),
        ]
        self.advance(dt, events)

    @rule(dt=time_steps, period=st.one_of(st.sampled_from([0.5, 1.0, 2.0, 5.0]), nasty_floats))
    def sensor_pace(self, dt: float, period: float) -> None:
        self.advance(dt, [SensorPace(period)])

    @rule(dt=time_steps)
    def tick(self, dt: float) -> None:
        self.advance(dt, [])

    @rule()
    def broken_clock(self) -> None:
        self.advance(math.nan, [])

    @rule(
        dt=time_steps,
        events=st.lists(
            st.one_of(
                st.builds(CaregiverRequest, caregiver_actions, amounts, st.just("burst")),
                st.builds(UserRequest, st.floats(0.0, 100.0), st.booleans()),
                st.just(UserStop()),
                st.just(Acknowledge()),
                st.builds(StartSession, checklists),
            ),
            max_size=4,
        ),
    )
    def burst(self, dt: float, events: list[Event]) -> None:
        self.advance(dt, [SkinReading(self.now + dt, self.skin), *events])

    @invariant()
    def latest_decision_is_well_formed(self) -> None:
        if self.decision is not None:
            assert self.decision.remaining_s >= 0.0


TestSupervisorProperties = SupervisorMachine.TestCase
TestSupervisorProperties.settings = STATE_MACHINE_SETTINGS
