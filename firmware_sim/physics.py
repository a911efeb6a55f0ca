"""Lumped physics of a heated, air-bladder foot massager on a foot. Pure and deterministic.

Two thermal nodes (the heater pad, the plantar skin/tissue layer under it), one pressure node (the
air bladder), a battery, and noisy sensors. ``Physics.step(dt)`` integrates with explicit Euler in
sub-steps of at most ``MAX_SUBSTEP_S``; the only randomness is the sensor noise, drawn from a
``random.Random(seed)``, so a run is reproducible from its seed. Equations, parameter values and
their sources are in docs/simulator.md.

Thermal model (Pennes bioheat equation reduced to one lumped tissue node)::

    C_pad  dT_pad/dt  = u * P_heater - G_ps (T_pad - T_skin) - G_pa (T_pad - T_amb)
    C_skin dT_skin/dt = G_ps (T_pad - T_skin) + G_b(T_skin) (T_core - T_skin)
                        - G_sa (T_skin - T_amb)
    G_b(T) = w_b(T) * rho_b * c_b * V_tissue
    w_b(T) = w_b0 * (1 + k_vd * max(0, T - T_vd))      (local-heating hyperaemia)

A neuropathic foot (``FootParams.neuropathic()``) has a blunted local-heating hyperaemia (small
``k_vd``): it heats faster, overshoots higher and cools back more slowly.
"""

from __future__ import annotations

import dataclasses
import math
import random
from dataclasses import dataclass, field

__all__ = [
    "MAX_SUBSTEP_S",
    "BatteryParams",
    "FootParams",
    "PadParams",
    "PhysicalState",
    "Physics",
    "PhysicsParams",
    "PressureParams",
    "SensorParams",
]

# Euler is stable for dt < 2 * the shortest time constant (pad node, ~30 s) and accurate to well
# under 0.01 °C at 0.1 s; the tick of the world is 0.1 s too, so one sub-step per tick.
MAX_SUBSTEP_S = 0.1

# A vent stuck closed still leaks through the bladder's seams: about 1 mmHg a minute, so a bladder
# left at ~57 mmHg after STOP stays there for the length of any session (issue 10).
VENT_STUCK_LEAK_MMHG_PER_S = 0.02

# Blood: density 1060 kg/m^3 and specific heat 3770 J/(kg K) (IT'IS tissue properties database).
RHO_B_C_B = 1060.0 * 3770.0


@dataclass(frozen=True, slots=True)
class FootParams:
    """The plantar tissue layer under the pad and its blood perfusion.

    Units are in the field names (degC, J/K, m^3, 1/s, 1/K, W/K); each value's source is in its
    comment and in docs/simulator.md, "Physics" (Pennes 1948, IT'IS tissue database, Minson et al.
    2001).
    """

    core_c: float = 37.0  # arterial blood temperature (Pennes T_a)
    tissue_capacity_j_per_k: float = 420.0  # ~0.12 kg of soft tissue x 3500 J/(kg K)
    tissue_volume_m3: float = 1.1e-4  # the same 0.12 kg at 1090 kg/m^3
    perfusion_w_b0_per_s: float = 1.0e-3  # resting skin/fat perfusion, m^3 blood/(m^3 tissue s)
    vasodilation_gain_per_k: float = 0.45  # relative rise of w_b per K above vasodilation_onset_c
    vasodilation_onset_c: float = 34.0  # local-heating hyperaemia starts around thermoneutral skin
    skin_to_ambient_w_per_k: float = 0.06  # foot surface outside the pad (h ~ 6 W/m^2K x 0.01 m^2)
    initial_skin_c: float = 32.0  # a foot at rest in a 24 °C room

    @classmethod
    def neuropathic(cls) -> FootParams:
        """Diabetic neuropathy: nerve-mediated hyperaemia blunted to about a third, lower flow."""
        return cls(perfusion_w_b0_per_s=0.8e-3, vasodilation_gain_per_k=0.15)

    def perfusion_conductance(self, skin_c: float) -> float:
        """G_b in W/K: heat carried away per kelvin of skin above core (Pennes w_b rho_b c_b V)."""
        rise = max(0.0, skin_c - self.vasodilation_onset_c)
        w_b = self.perfusion_w_b0_per_s * (1.0 + self.vasodilation_gain_per_k * rise)
        return w_b * RHO_B_C_B * self.tissue_volume_m3


@dataclass(frozen=True, slots=True)
class PadParams:
    """The heater pad: a resistive element in a thin gel/fabric pad pressed against the sole.

    Units are in the field names (W, J/K, W/K, degC); rationale in the comments and in
    docs/simulator.md, "Physics".
    """

    heater_power_w: float = 12.0  # element rating; regulated to ~8 W mean at a 42 °C pad
    capacity_j_per_k: float = 45.0  # ~30 g of pad (gel, fabric, copper) x ~1500 J/(kg K)
    pad_to_skin_w_per_k: float = 1.3  # contact conductance, ~0.01 m^2 x 130 W/(m^2 K)
    pad_to_ambient_w_per_k: float = 0.2  # through the boot's insulated shell
    ambient_c: float = 24.0  # room air inside the boot


@dataclass(frozen=True, slots=True)
class PressureParams:
    """The air bladder, its pump, its solenoid vent and its mechanical relief valve.

    Rates in mmHg/s, pressures in mmHg; rationale in docs/simulator.md, "Physics". The relief
    valve opens above the controller's 70 mmHg hard limit on purpose: it is the last mechanical
    guard, not the limit.
    """

    inflate_mmhg_per_s: float = 12.0  # small diaphragm pump into a ~0.3 l bladder
    deflate_mmhg_per_s: float = 20.0  # solenoid vent, open while the target is below the pressure
    overshoot_bleed_mmhg_per_s: float = 1.5  # leak back down after the pump stopped late
    relief_open_mmhg: float = 80.0  # mechanical relief valve cracking pressure
    relief_close_mmhg: float = 55.0  # it reseats well below, as spring valves do
    relief_flow_mmhg_per_s: float = 60.0


@dataclass(frozen=True, slots=True)
class BatteryParams:
    """2S Li-ion pack, 7.4 V x 2.5 Ah = 18.5 Wh.

    ``capacity_wh`` in Wh, draws in W (the heater's draw is ``PadParams.heater_power_w``),
    ``initial_percent`` in % of capacity.
    """

    capacity_wh: float = 18.5
    idle_w: float = 0.15  # MCU, BLE radio, sensors
    pump_w: float = 3.0  # while the pump runs
    initial_percent: float = 85.0


@dataclass(frozen=True, slots=True)
class SensorParams:
    """Noise (1 sigma) and lag of the sensors the firmware and the skin sensor read.

    Noise in degC or mmHg (Gaussian, from the run's seeded ``random.Random``), lag in s (first
    order time constant); rationale in docs/simulator.md, "Physics".
    """

    skin_noise_c: float = 0.05  # clinical contact thermistor
    skin_lag_s: float = 2.0  # thermistor bead in a silicone housing
    pad_noise_c: float = 0.05
    pressure_noise_mmhg: float = 0.3


@dataclass(frozen=True, slots=True)
class PhysicsParams:
    """All physical parameters of the simulated foot, pad, bladder, battery and sensors."""

    foot: FootParams = field(default_factory=FootParams)
    pad: PadParams = field(default_factory=PadParams)
    pressure: PressureParams = field(default_factory=PressureParams)
    battery: BatteryParams = field(default_factory=BatteryParams)
    sensors: SensorParams = field(default_factory=SensorParams)

    @classmethod
    def neuropathic(cls) -> PhysicsParams:
        """Parameters of a neuropathic foot (`FootParams.neuropathic`), the rest as default."""
        return cls(foot=FootParams.neuropathic())


@dataclass(frozen=True, slots=True)
class PhysicalState:
    """The true physical state (what no sensor shows exactly)."""

    time_s: float
    skin_c: float
    pad_c: float
    sensor_c: float  # the skin sensor's own (lagging) temperature, before noise
    pressure_mmhg: float
    pressure_target_mmhg: float
    heater_on: bool
    pump_running: bool
    relief_open: bool
    battery_percent: float
    perfusion_w_per_k: float


class Physics:
    """The integrator. Actuator inputs are plain attributes the firmware sets.

    ``Physics(params, seed=...)``: ``params`` defaults to :class:`PhysicsParams` (a normal foot);
    ``seed`` seeds the only randomness, the sensor noise. Time ``time_s`` is simulated seconds
    from 0, advanced only by :meth:`step`. Actuator inputs: ``heater_on`` and
    :meth:`set_pressure_target`; fault inputs (``overshoot_mmhg``, ``vent_stuck``,
    ``hold_offset_mmhg``, ``pressure_dip_*``) are set by scenarios.
    """

    def __init__(self, params: PhysicsParams | None = None, *, seed: int = 0) -> None:
        self.params = params if params is not None else PhysicsParams()
        self._rng = random.Random(seed)
        foot, pad = self.params.foot, self.params.pad
        self.time_s = 0.0
        self.skin_c = foot.initial_skin_c
        # The passive pad settles between skin and ambient.
        self.pad_c = (
            pad.pad_to_skin_w_per_k * foot.initial_skin_c
            + pad.pad_to_ambient_w_per_k * pad.ambient_c
        ) / (pad.pad_to_skin_w_per_k + pad.pad_to_ambient_w_per_k)
        self.sensor_c = foot.initial_skin_c
        self.pressure_mmhg = 0.0
        self.relief_open = False
        self.pump_running = False
        self.energy_wh = self.params.battery.capacity_wh * self.params.battery.initial_percent / 100
        # Actuator inputs.
        self.heater_on = False
        self.pressure_target_mmhg = 0.0
        # Fault inputs.
        self.overshoot_mmhg = 0.0
        # The solenoid vent sticks closed: the bladder only leaks (scenario vent-stuck).
        self.vent_stuck = False
        # The pump's pressure switch holds the bladder this far above every target, and the
        # pressure sensor dips by pressure_dip_mmhg for pressure_dip_s of every second
        # (scenario pressure-intermittent).
        self.hold_offset_mmhg = 0.0
        self.pressure_dip_mmhg = 0.0
        self.pressure_dip_s = 0.2
        self._overshoot_armed = False
        self._bleeding = False

    # -- inputs ---------------------------------------------------------------------------------

    def set_pressure_target(self, target_mmhg: float) -> None:
        """The pump and vent drive the bladder towards ``target_mmhg`` (mmHg, negative means 0)."""
        target_mmhg = max(0.0, target_mmhg)
        if target_mmhg > self.pressure_mmhg and self.overshoot_mmhg > 0:
            # A pump whose pressure switch is late stops only past the new target.
            self._overshoot_armed = True
        if target_mmhg < self.pressure_target_mmhg:
            # A lower target opens the vent: the firmware deflates on purpose.
            self._overshoot_armed = False
            self._bleeding = False
        self.pressure_target_mmhg = target_mmhg

    def set_battery_percent(self, percent: float) -> None:
        """Set the battery charge to ``percent`` (clamped to 0..100 %)."""
        self.energy_wh = self.params.battery.capacity_wh * min(100.0, max(0.0, percent)) / 100

    # -- integration ----------------------------------------------------------------------------

    def step(self, dt: float) -> None:
        """Advance the physics by ``dt`` seconds (nothing for ``dt`` <= 0)."""
        if dt <= 0:
            return
        substeps = max(1, math.ceil(dt / MAX_SUBSTEP_S - 1e-9))
        h = dt / substeps
        for _ in range(substeps):
            self._step_thermal(h)
            self._step_pressure(h)
            self._step_battery(h)
            self.time_s += h

    def _step_thermal(self, h: float) -> None:
        foot, pad = self.params.foot, self.params.pad
        heating = pad.heater_power_w if self.heater_on and self.energy_wh > 0 else 0.0
        to_skin = pad.pad_to_skin_w_per_k * (self.pad_c - self.skin_c)
        pad_loss = pad.pad_to_ambient_w_per_k * (self.pad_c - pad.ambient_c)
        perfusion = foot.perfusion_conductance(self.skin_c) * (foot.core_c - self.skin_c)
        skin_loss = foot.skin_to_ambient_w_per_k * (self.skin_c - pad.ambient_c)
        self.pad_c += h * (heating - to_skin - pad_loss) / pad.capacity_j_per_k
        self.skin_c += h * (to_skin + perfusion - skin_loss) / foot.tissue_capacity_j_per_k
        lag = self.params.sensors.skin_lag_s
        self.sensor_c += (self.skin_c - self.sensor_c) * (h / lag if lag > h else 1.0)

    def _step_pressure(self, h: float) -> None:
        p = self.params.pressure
        target = self.pressure_target_mmhg
        if target > 0.0:
            target += self.hold_offset_mmhg
        stop_at = target + self.overshoot_mmhg if self._overshoot_armed else target
        self.pump_running = self.pressure_mmhg < stop_at - 1e-9 and self.energy_wh > 0
        if self.pump_running:
            self.pressure_mmhg = min(stop_at, self.pressure_mmhg + p.inflate_mmhg_per_s * h)
        elif self.pressure_mmhg > target:
            if self._overshoot_armed:
                # The pump stopped late; the vent stays shut (the firmware thinks it is still
                # inflating) and the excess only leaks out slowly.
                self._bleeding = True
                self._overshoot_armed = False
            rate = p.overshoot_bleed_mmhg_per_s if self._bleeding else p.deflate_mmhg_per_s
            if self.vent_stuck:
                rate = VENT_STUCK_LEAK_MMHG_PER_S
            self.pressure_mmhg = max(target, self.pressure_mmhg - rate * h)
        if self.pressure_mmhg <= target + 1e-9:
            self._bleeding = False
        if self.pressure_mmhg >= p.relief_open_mmhg:
            self.relief_open = True
            self._overshoot_armed = False  # the dump resets the pump's pressure switch
        if self.relief_open:
            self.pressure_mmhg = max(0.0, self.pressure_mmhg - p.relief_flow_mmhg_per_s * h)
            if self.pressure_mmhg <= p.relief_close_mmhg:
                self.relief_open = False

    def _step_battery(self, h: float) -> None:
        b = self.params.battery
        watts = b.idle_w
        if self.heater_on:
            watts += self.params.pad.heater_power_w
        if self.pump_running:
            watts += b.pump_w
        self.energy_wh = max(0.0, self.energy_wh - watts * h / 3600.0)

    # -- observation ----------------------------------------------------------------------------

    @property
    def battery_percent(self) -> float:
        """The battery charge (%)."""
        return 100.0 * self.energy_wh / self.params.battery.capacity_wh

    def read_pad_c(self) -> float:
        """The firmware's pad thermistor (degC): the pad's temperature plus Gaussian noise."""
        return self.pad_c + self._rng.gauss(0.0, self.params.sensors.pad_noise_c)

    def read_pressure_mmhg(self) -> float:
        """The firmware's bladder pressure sensor (mmHg, never negative): noise, and any dip."""
        noisy = self.pressure_mmhg + self._rng.gauss(0.0, self.params.sensors.pressure_noise_mmhg)
        if self.pressure_dip_mmhg and self.time_s % 1.0 < self.pressure_dip_s:
            noisy -= self.pressure_dip_mmhg
        return max(0.0, noisy)

    def read_skin_c(self) -> float:
        """The skin sensor's thermistor (degC): lagging the skin by ``skin_lag_s``, plus noise."""
        return self.sensor_c + self._rng.gauss(0.0, self.params.sensors.skin_noise_c)

    def snapshot(self) -> PhysicalState:
        """The true physical state now (no sensor noise): temperatures in °C, pressure in mmHg."""
        return PhysicalState(
            time_s=self.time_s,
            skin_c=self.skin_c,
            pad_c=self.pad_c,
            sensor_c=self.sensor_c,
            pressure_mmhg=self.pressure_mmhg,
            pressure_target_mmhg=self.pressure_target_mmhg,
            heater_on=self.heater_on,
            pump_running=self.pump_running,
            relief_open=self.relief_open,
            battery_percent=self.battery_percent,
            perfusion_w_per_k=self.params.foot.perfusion_conductance(self.skin_c),
        )

    def replace_params(self, **changes: object) -> None:
        """Swap parameter groups mid-run (fault injection), e.g. ``foot=FootParams(...)``.

        Raises TypeError for a name that is not a :class:`PhysicsParams` field.
        """
        self.params = dataclasses.replace(self.params, **changes)  # type: ignore[arg-type]
