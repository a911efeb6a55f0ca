"""Every safety number SoleGuard uses, in one place, each with its source.

Nothing else in the code base may write one of these numbers down: the settings schema reads its
defaults and bounds from here, and the supervisor reads the validated settings. Sources are
abbreviated in the comments and listed in full in docs/safety.md:

- [IEC41]  IEC 60601-1 2nd ed.: applied parts in contact with skin <= 41 degC.
- [IEC43]  IEC 60601-1 3rd ed. Table 24: 43 degC for >= 10 min skin contact.
- [MH47]   Moritz & Henriques 1947: burn at 44 degC after about 6 h, time halving per degC above.
- [BOOT]   air-boot compression study: <= 70 mmHg leaves toe arterial pulse unchanged,
           > 140 mmHg halves it.
- [APS]    OpenAPS / Loop / AndroidAPS: stale data forces the safe action; hard vs recommended
           bounds; commands as leases.
- [SEED]   the product's source article (shared/seed): light to moderate pressure only,
           caution with heat because temperature is not felt.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Bound:
    """A configurable safety number: its default, and the range a user or clinician may choose.

    ``default``, ``minimum`` and ``maximum`` are in ``unit``; ``stricter`` says which way is
    safer ("lower" or "higher"), so profiles can only tighten; ``source`` names the sources
    listed in this module's docstring (in full in docs/safety.md). Raises ValueError when the
    default lies outside the range or ``stricter`` is neither.
    """

    default: float
    minimum: float
    maximum: float
    unit: str
    stricter: str
    source: str

    def __post_init__(self) -> None:
        if not self.minimum <= self.default <= self.maximum:
            raise ValueError(f"default {self.default} outside {self.minimum}..{self.maximum}")
        if self.stricter not in ("lower", "higher"):
            raise ValueError(f"stricter must be 'lower' or 'higher', not {self.stricter!r}")

    @property
    def hard_limit(self) -> float:
        """The loosest value allowed: the one no setting or profile may pass."""
        return self.maximum if self.stricter == "lower" else self.minimum


# --- pressure -------------------------------------------------------------------------------
# [SEED] light-to-moderate only; [BOOT] 70 mmHg leaves toe perfusion unchanged.
PRESSURE_CAP_MMHG = Bound(60.0, 0.0, 70.0, "mmHg", "lower", "BOOT, SEED")
# "light" pressure as the allodynia profile uses it [SEED].
LIGHT_PRESSURE_CAP_MMHG = 30.0
# A slow rise gives a person with reduced sensation time to stop the session [SEED].
PRESSURE_RAMP_MMHG_PER_S = Bound(10.0, 0.5, 10.0, "mmHg/s", "lower", "SEED, APS")

# --- heat (skin temperature) -----------------------------------------------------------------
HEATER_TARGET_C = Bound(38.0, 30.0, 40.0, "°C", "lower", "IEC41")
HEATER_CUTOFF_C = Bound(40.0, 32.0, 41.0, "°C", "lower", "IEC41")
# Hysteresis: re-enable only below cut-off minus this margin ...
HEATER_REENABLE_MARGIN_C = Bound(2.0, 2.0, 10.0, "°C", "higher", "IEC41")
# ... and after at least this long off, so the heater cannot chatter around the cut-off.
HEATER_MIN_OFF_S = Bound(30.0, 30.0, 600.0, "s", "higher", "IEC41")
# Over-temperature latch: stop, latch, high alarm; only an explicit acknowledgement clears it.
LATCH_C = Bound(43.0, 38.0, 43.0, "°C", "lower", "IEC43, MH47")
# Total heater-on time per session.
MAX_HEAT_MIN = Bound(20.0, 0.0, 20.0, "min", "lower", "IEC43, MH47")
# How far ahead the predictive cut-off extrapolates the measured rate of rise: the skin keeps
# warming for a while after the pad is switched off (see docs/safety.md, "predictive cut-off").
PREDICTION_HORIZON_S = Bound(40.0, 0.0, 300.0, "s", "higher", "model, docs/safety.md")

# --- skin sensor trust -------------------------------------------------------------------------
STALE_AFTER_S = Bound(2.0, 0.5, 3.0, "s", "lower", "APS")
# Physiologically plausible skin temperatures; anything outside is a sensor fault.
VALID_SKIN_MIN_C = Bound(15.0, 15.0, 30.0, "°C", "higher", "APS")
# Kept above the latch so a real over-temperature reading latches instead of reading as a fault.
VALID_SKIN_MAX_C = Bound(50.0, 45.0, 50.0, "°C", "lower", "APS")
# Skin cannot physically change faster than this under a heating pad: a faster jump is a spike.
MAX_SKIN_RATE_C_PER_S = Bound(2.0, 0.1, 2.0, "°C/s", "lower", "APS")

# --- session -----------------------------------------------------------------------------------
SESSION_MIN = Bound(20.0, 1.0, 30.0, "min", "lower", "SEED, IEC43")

# --- actuator lease ----------------------------------------------------------------------------
# A dead controller stops the massager within the lease: the firmware switches off on its own.
LEASE_S = Bound(3.0, 0.5, 3.0, "s", "lower", "APS")
# Renewal must come well inside the lease so one lost write never stops a session.
LEASE_RENEW_S = 1.0

# --- supervisor tolerances (not user-configurable; see docs/safety.md) -------------------------
# Measured bladder pressure may exceed the cap in force by this much before it is a fault: the
# pump's pressure switch overshoots by a few mmHg and a cuff-grade sensor is accurate to +/-3 mmHg
# (ISO 81060-2 style), so 5 mmHg is above measurement noise and below anything perfusion notices
# [BOOT]. The simulated firmware vents at the same margin above its own 70 mmHg ceiling.
PRESSURE_OVER_CAP_TOLERANCE_MMHG = 5.0
# ... for this long (5 status reports at 5 Hz): a foot shifting on the bladder is a transient.
PRESSURE_OVER_CAP_S = 1.0
# After the ceiling is lowered the bladder needs time to vent (about 20 mmHg/s), so the old
# ceiling is the reference for this long.
PRESSURE_SETTLE_S = 3.0
# The second over-pressure in one session ends it: a pump that overshoots twice is not trusted.
PRESSURE_OVER_CAP_MAX_EVENTS = 2
# The heater commanded off but still energised after this long is a stuck relay [APS]: one write
# with its retry (< 0.2 s), one lease renewal period (1 s) and two 5 Hz status reports fit in it.
HEATER_RESPONSE_GRACE_S = 2.0
# The massager reports at 5 Hz: five missing reports in a row while the link stays up mean its
# firmware is hung or its status is garbage, and nothing it does can be seen: everything off.
MASSAGER_SILENT_AFTER_S = 1.0
# Below-target band for the heater's thermostat: on below target - band, off at target, so the
# pad does not chatter on sensor noise (0.05 degC).
HEATER_TARGET_BAND_C = 0.5
# The rate of rise for the predictive cut-off is a least-squares slope over this window: long
# enough to average sensor noise, short enough to follow a heater switching on.
PREDICTION_WINDOW_S = 20.0
# Fewer valid readings than this in the window: no slope (a rise of zero is assumed).
PREDICTION_MIN_READINGS = 3
# Consecutive invalid skin readings before the SENSOR_INVALID alarm: one NaN is a glitch.
SENSOR_INVALID_ALARM_COUNT = 3
# --- sensor follows heater (docs/safety.md, "Sensor follows heater") ---------------------------
# Derived from firmware_sim/physics.py: pad time constant C_pad / (G_ps + G_pa) = 45 / 1.5 = 30 s,
# skin time constant C_skin / (G_ps + G_b + G_sa) = 420 / 1.8..2.6 = 160..230 s. Klipper's
# verify_heater defaults (2 degC within 20 s; 60 s for a bed) scaled to these slow constants.
# While heat has been commanded for a whole window, and the pad stayed at least SENSOR_FOLLOW_GAP_C
# above the reading at the window's start, the reading must rise by SENSOR_FOLLOW_MIN_RISE_C: the
# model's slowest honest rise under these conditions is 0.57 degC in 30 s and 0.64 degC in 60 s
# (typical and neuropathic foot, pad 39-40.5 degC, skin starting at 26 or 32 degC); the required
# rise is about half of it, for a foot that couples to the pad half as well as the model's, and
# six standard deviations of the difference of two noisy readings (0.05 degC each).
SENSOR_FOLLOW_WINDOW_S = 60.0
SENSOR_FOLLOW_GAP_C = 4.0
SENSOR_FOLLOW_MIN_RISE_C = 0.3
# Two independent sensors cross-check each other: in the model the pad is never more than 6.6 degC
# above the skin reading (warm-up from a 26 degC foot); a sensor lying 10 degC below a pad pressed
# on the sole is not on the sole (a detached sensor in boot air reads ~25 degC under a 40 degC pad).
SENSOR_PAD_GAP_MAX_C = 10.0
# Once the reading has reached the target, falling this far below it after a whole window of
# heating is a sensor that left the skin or drifts (Klipper's default hysteresis is 5 degC; the
# skin's band is narrower: the thermostat holds it within 0.5 degC and the model's skin drops less
# than 1 degC in the 30 s of the longest heater block).
SENSOR_TARGET_BAND_C = 3.0
# Equilibrium rule (a sensor stuck, offset or drifting low while warm, less than
# SENSOR_FOLLOW_GAP_C under the pad). In the model the honest skin under a pad steady at T_pad
# settles at (G_ps T_pad + G_b T_core + G_sa T_air) / (G_ps + G_b + G_sa): the pad is then at most
# 0.79/1.28/1.81/2.09/2.37 degC above it at T_pad = 38/39/40/40.5/41 degC (typical foot; the
# neuropathic foot's lower blood flow gives less), under the line 0.3 + 0.55 (T_pad - T_core);
# SENSOR_EQ_GAP_C adds 0.4 degC for the pad's +-0.2 degC regulation and noise. Below its
# equilibrium the honest skin rises at (gap - equilibrium gap) / tau, tau = C_skin / G_total at
# most 250 s (neuropathic foot at rest, 245 s): a reading held a gap E above the line while
# rising slower than E / SENSOR_EQ_TAU_S (half the physics' rate) over a window of heat is not
# on the skin. Margins measured by integrating the model: docs/safety.md, "Sensor follows heater".
SENSOR_EQ_GAP_C = 0.7
SENSOR_EQ_GAP_PER_K = 0.55
SENSOR_EQ_CORE_C = 37.0
SENSOR_EQ_TAU_S = 500.0
# Each of these rules counts its bad time over a sliding window: this much bad time within
# SENSOR_FOLLOW_BAD_WINDOW_S disables heat for the session (15 readings: noise never lasts that
# long, a detached sensor is caught within 60 + 15 s of the heater coming on).
SENSOR_FOLLOW_BAD_S = 15.0
SENSOR_FOLLOW_BAD_WINDOW_S = 60.0
# Heat counts as continuous through pauses this short (FAULTS.md class 4): one invalid or late
# reading switches the heater off until the next valid one (1-3 s), and a window of heat that
# restarted at each such pause never completed, so a stuck or detached sensor that sent a NaN or
# an 85 degC power-on value every 30 readings, or went quiet for 2 s every 45 s, was never judged
# (the independent breaker, 2026-11-30). 5 s of no heat moves the skin less than 2 % of its way
# (skin time constant >= 160 s, above), so the rules' expectations still hold across the pause;
# a longer pause (the 30 s minimum off-time after a cut-off) starts the window again.
SENSOR_FOLLOW_HEAT_GAP_S = 5.0

# --- actuators follow commands ---------------------------------------------------------------
# Every actuator detector (heater energised when commanded off, pressure over the cap, pressure
# above the commanded envelope) counts its bad time over this window, so a fault that comes and
# goes adds up instead of being reset by one good sample (FAULTS.md class 4). 10 s holds several
# periods of any flapping relay or a 1 Hz dip, and less than one legitimate heater switch-off.
ACTUATOR_FAULT_WINDOW_S = 10.0
# The vent's documented rate is 20 mmHg/s (firmware_sim/physics.py PressureParams.deflate,
# docs/simulator.md); measured pressure must fall at least half as fast after a lower command or
# STOP (a foot's weight on the bladder slows it), starting after one write and one 5 Hz report.
PRESSURE_VENT_MIN_MMHG_PER_S = 10.0
PRESSURE_COMMAND_LATENCY_S = 0.5
# Measured pressure above the commanded envelope (by PRESSURE_OVER_CAP_TOLERANCE_MMHG) for this
# long within ACTUATOR_FAULT_WINDOW_S: the bladder does not follow its commands (vent stuck, pump
# stuck on or overshooting). With a stuck vent after STOP from 60 mmHg this fires within 2.5 s.
PRESSURE_NOT_FOLLOWING_S = 1.0

# --- hard limits as measured values --------------------------------------------------------
# The pad is an applied part: <= 41 degC measured [IEC41], whatever cut-off is configured. The
# firmware regulates the pad bang-bang with a 0.2 degC band and overshoots it (the simulator
# measured 41.23 degC with a 41 degC target: 0.23 degC), so the pad target sent never exceeds
# 41 - 0.5 degC.
PAD_TARGET_MAX_C = 40.5
# Measured bladder pressure <= 70 mmHg [BOOT], not only the command: the command stays below the
# hard limit by the overshoot the bladder has shown in this session (measured above the commanded
# envelope), and at least by this margin: 3 sigma of the sensor's 0.3 mmHg noise, rounded up.
PRESSURE_MEASURED_MARGIN_MMHG = 1.0

# --- massager sensors --------------------------------------------------------------------------
# A full-scale (pegged) or out-of-range value is a sensor fault, not a measurement: the protocol's
# ranges (docs/protocol.md, Status.pressure 0..300 mmHg, Status.pad_temperature -40..120 degC).
PRESSURE_SENSOR_FULL_SCALE_MMHG = 300.0
PAD_SENSOR_MIN_C = -40.0
PAD_SENSOR_MAX_C = 120.0

# --- time --------------------------------------------------------------------------------------
# The skin sensor's nominal measurement interval (HTS Measurement Interval, 1 s): the spike check
# judges a rate over at least this long, so readings a BLE stack delivers in a burst are not
# spikes (RxAndroidBle notification bursts; FAULTS.md class 5).
SKIN_NOMINAL_PERIOD_S = 1.0
# The supervisor is stepped at 10 Hz or faster: a gap longer than this is a stall (a blocked event
# loop, a suspend) and readings delivered in the first step after it are aged to its start.
STEP_STALL_S = 0.5

# --- after the session -------------------------------------------------------------------------
# After any session end the massager must report heater de-energised, pressure below the floor
# and lease released within the bound: STOP ends the lease at once, and even a lost STOP lets the
# 3 s lease expire; the vent empties 70 mmHg at 20 mmHg/s in 3.5 s; two 5 Hz reports and margin.
POST_SESSION_BOUND_S = 10.0
# Below this the bladder rests on the foot without pressing (sensor noise 0.3 mmHg, [BOOT]).
POST_SESSION_PRESSURE_FLOOR_MMHG = 5.0
# ... and the massager must show all three for this long without a break (ten 5 Hz reports): one
# good report between two bad ones (a relay that sticks most of each second) is not "safe".
POST_SESSION_CONFIRM_S = 2.0

# A caregiver's "lower pressure" without an amount.
CAREGIVER_LOWER_DEFAULT_MMHG = 10.0
# The massager's battery-low flag threshold (docs/protocol.md, status flag bit 5).
BATTERY_LOW_PERCENT = 15.0
# The BATTERY_LOW alarm clears only once the pack is charged past this, so a pack hovering around
# 15 % does not raise it again on every report.
BATTERY_OK_PERCENT = 25.0
