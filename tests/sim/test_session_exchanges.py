"""Session-level golden exchanges: whole sessions as the massager sees them on the wire.

Each file in tests/golden/sessions/ is one exchange (format in tests/golden/README.md): the
Command writes of a session, in order and at their times, and the Status the firmware must
report between them. Each is replayed twice:

- against the simulated firmware (`MassagerFirmware` on `Physics`, stepped at its 10 Hz loop):
  every write is accepted or refused with the file's ATT error, and every Status frame the
  firmware encodes decodes to the file's flags, sequence, target, lease and fault;
- against the controller: its codec writes exactly the file's bytes for each command, and it
  reads each of the file's statuses (a frame packed here with `struct` from docs/protocol.md,
  independently of `controller.protocol`) as the supervisor's `MassagerReport` with the same
  heater, lease, latch and fault.

The measured values (pressure, pad temperature, battery) depend on the physics and are not part
of an exchange. A status with ``start_presses`` is the 15-byte frame with the start-button counter;
the controller's `StartPressTracker` must count ``new_presses`` from it (docs/protocol.md, "Start
button"); a ``replay`` status is an older frame delivered again, which the firmware does not send
at that moment and the controller must count as nothing.
"""

from __future__ import annotations

import json
import pathlib
import struct
from typing import Any

import pytest

from controller.protocol import (
    AttErrorCode,
    Command,
    FaultCode,
    RenewLease,
    SetHeater,
    SetPressure,
    StartPressTracker,
    StatusFlags,
    Stop,
    decode_command,
    decode_status,
)
from controller.service.runner import report_from_status
from firmware_sim.massager import CommandRefused, MassagerFirmware
from firmware_sim.physics import Physics

SESSIONS_DIR = pathlib.Path(__file__).parent.parent / "golden" / "sessions"
CASE_FILES = sorted(SESSIONS_DIR.glob("*.json"))
TICK_S = 0.1  # the firmware's control loop (firmware_sim.world.DEFAULT_TICK_S)
# Status frame (docs/protocol.md, "Status"): version, flags, last sequence, pressure (0.1 mmHg),
# target (0.1 mmHg), pad temperature (0.01 °C, signed), battery %, lease remaining ms, fault.
STATUS_FORMAT = "<BBHHHhBHB"
PROTOCOL_VERSION = 1


def _load(path: pathlib.Path) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["steps"]
    return steps


def _command(value: dict[str, Any]) -> Command:
    fields = {k: v for k, v in value.items() if k != "type"}
    kinds: dict[str, type[Command]] = {
        "SetPressure": SetPressure,
        "SetHeater": SetHeater,
        "Stop": Stop,
        "RenewLease": RenewLease,
    }
    command: Command = kinds[value["type"]](**fields)
    return command


def _flags(names: list[str]) -> StatusFlags:
    flags = StatusFlags(0)
    for name in names:
        flags |= StatusFlags[name]
    return flags


def _expected_view(status: dict[str, Any]) -> dict[str, object]:
    view: dict[str, object] = {
        "flags": _flags(status["flags"]),
        "last_sequence": status["last_sequence"],
        "pressure_target_mmhg": status["pressure_target_mmhg"],
        "lease_remaining_ms": status["lease_remaining_ms"],
        "fault": FaultCode[status["fault"]],
    }
    if "start_presses" in status:
        view["start_presses"] = status["start_presses"]
    return view


def test_every_required_exchange_is_there() -> None:
    """Issue 16: at least the normal session, a cut-off, a latch and a lease expiry; issue 15:
    the start button."""
    names = {path.stem for path in CASE_FILES}
    assert {"normal_session", "cutoff", "latch", "lease_expiry", "start_button"} <= names


@pytest.mark.parametrize("path", CASE_FILES, ids=lambda p: p.stem)
def test_the_simulated_firmware_plays_its_side_of_the_exchange(path: pathlib.Path) -> None:
    physics = Physics(seed=1)
    firmware = MassagerFirmware(physics)
    ticks = 0
    for index, step in enumerate(_load(path)):
        # Whole ticks from t = 0, so a step's time is exact rather than a running float sum.
        while (ticks + 1) * TICK_S <= step["at_s"] + 1e-9:
            ticks += 1
            physics.step(TICK_S)
            firmware.tick(ticks * TICK_S)
        now = ticks * TICK_S
        where = f"{path.stem} step {index} at {step['at_s']} s"
        if "pad_c" in step:
            physics.pad_c = step["pad_c"]  # the pad heats or cools past a threshold
        elif "press" in step:
            firmware.press_start()  # the user's finger on the start button
        elif step.get("replay"):
            continue  # the radio delivering an older frame again: not the firmware's doing
        elif "write" in step:
            frame = bytes.fromhex(step["bytes"])
            if "att_error" in step:
                with pytest.raises(CommandRefused) as refused:
                    firmware.handle_write(frame, now)
                assert refused.value.att_error == step["att_error"], where
            else:
                assert firmware.handle_write(frame, now) == _command(step["write"]), where
        else:
            # What goes on the wire, read back through the controller's decoder.
            status = decode_status(firmware.status(now).encode())
            seen = {key: getattr(status, key) for key in _expected_view(step["status"])}
            assert seen == _expected_view(step["status"]), where


@pytest.mark.parametrize("path", CASE_FILES, ids=lambda p: p.stem)
def test_the_controller_writes_and_reads_the_exchange_as_the_file_says(
    path: pathlib.Path,
) -> None:
    tracker = StartPressTracker()  # one connection: the exchange's first status is its first
    for index, step in enumerate(_load(path)):
        where = f"{path.stem} step {index} at {step['at_s']} s"
        if "write" in step:
            command = _command(step["write"])
            frame = bytes.fromhex(step["bytes"])
            assert command.encode() == frame, where
            assert decode_command(frame) == command, where
            if "att_error" in step:
                # The only refusal a well-formed command meets is the latched cut-out.
                assert AttErrorCode(step["att_error"]) is AttErrorCode.CUTOUT_LATCHED, where
        elif "status" in step:
            view = _expected_view(step["status"])
            frame = struct.pack(
                STATUS_FORMAT,
                PROTOCOL_VERSION,
                int(_flags(step["status"]["flags"])),
                step["status"]["last_sequence"],
                300,  # 30.0 mmHg measured: any in-range value; not part of the exchange
                round(step["status"]["pressure_target_mmhg"] * 10),
                3400,  # 34.00 °C pad
                80,  # battery %
                step["status"]["lease_remaining_ms"],
                int(FaultCode[step["status"]["fault"]]),
            )
            if "start_presses" in step["status"]:
                frame += struct.pack("<B", step["status"]["start_presses"])
            status = decode_status(frame)
            new_presses = tracker.observe(status)
            assert new_presses == step["status"].get("new_presses", 0), where
            report = report_from_status(status, 1_000_000.0)
            flags = view["flags"]
            assert isinstance(flags, StatusFlags)
            assert report.heater_energised == (StatusFlags.HEATER_ENERGISED in flags), where
            assert report.lease_active == (StatusFlags.LEASE_ACTIVE in flags), where
            assert report.cutout_latched == (StatusFlags.CUTOUT_LATCHED in flags), where
            assert report.fault == view["fault"], where
            assert report.pressure_target_mmhg == view["pressure_target_mmhg"], where
