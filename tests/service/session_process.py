"""A controller session in its own process, against a radio another process exposes.

    python tests/service/session_process.py TRANSPORT MASSAGER_ADDRESS SENSOR_ADDRESS MINUTES

What ``soleguard session`` does with settings ``ble.transport = "tcp-client:HOST:PORT"``, minus
the prompts and the journal: the same ``open_ble`` and ``run_session`` on a real-time loop, and
the session commands' own reporting of Ctrl-C and SIGTERM (``controller.cli.errors.reported``).
Prints ``running`` once the supervisor commands heat and pressure (the test's cue to signal or
kill it), and the outcome at the end.
"""

from __future__ import annotations

import logging
import sys
import tempfile
from pathlib import Path

import typer

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from typing import TYPE_CHECKING

from controller import shutdown
from controller.ble.access import open_ble
from controller.cli.errors import reported
from controller.errors import Interrupted
from controller.service.app import Journal, run_session
from controller.service.runner import SessionObserver, SessionPlan
from controller.settings import Settings, effective_limits
from controller.shutdown import ended_by_signal
from controller.treatment.checklist import NO_CONTRAINDICATIONS
from controller.treatment.programs import PROGRAMS
from firmware_sim.clock import run

if TYPE_CHECKING:
    from controller.safety import Decision


class _Cue(SessionObserver):
    def __init__(self) -> None:
        self.told = False

    def on_decision(self, now: float, decision: Decision) -> None:
        command = decision.command
        if not self.told and command.heater_on and command.pressure_mmhg > 0.0:
            self.told = True
            print("running", flush=True)


async def _session(transport: str, massager: str, sensor: str, minutes: float) -> str:
    # Bonds of this run only: never the user's bond file, never a bond from another test.
    keystore = Path(tempfile.mkdtemp(prefix="soleguard-test-")) / "bonds.json"
    settings = Settings.model_validate(
        {
            "ble": {"transport": transport, "keystore": str(keystore)},
            "session": {"max_minutes": minutes},
        }
    )
    limits = effective_limits(settings)
    async with open_ble(settings.ble) as ble:
        plan = SessionPlan(
            limits=limits,
            program=PROGRAMS[settings.session.program],
            checklist=NO_CONTRAINDICATIONS.result(inspection_required=True),
            massager_address=massager,
            sensor_address=sensor,
        )
        outcome = await run_session(plan, ble, journal=Journal(None), observers=(_Cue(),))
    return outcome.ended_by


def main() -> int:
    # The command line's own signal handling (also when started with SIGINT ignored, as a test
    # runner in the background hands it down): Ctrl-C, SIGTERM and SIGHUP, and the watchdog.
    shutdown.install()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("controller").setLevel(logging.INFO)
    logging.getLogger("bumble").setLevel(logging.ERROR)
    transport, massager, sensor, minutes = sys.argv[1:5]
    try:
        with reported():
            ended_by = run(_session(transport, massager, sensor, float(minutes)), speed=None)
            signum = ended_by_signal(ended_by)
            if signum is not None:
                raise Interrupted(signum)
    except typer.Exit as exc:
        return int(exc.exit_code)
    print(f"ended by {ended_by}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
