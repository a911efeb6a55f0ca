"""The bridge and its thread proxy are one interface to the session.

mypy proves it statically (the end of controller/caregiver/port.py); this checks the same names
at run time, so a carrier built another way (a fake in a test) is held to it too.
"""

from __future__ import annotations

import inspect

from controller.caregiver.bridge import CaregiverBridge
from controller.caregiver.port import CaregiverPort
from controller.caregiver.threaded import CaregiverLink


def test_both_carriers_have_every_method_of_the_port_with_its_parameters() -> None:
    names = ("update_state", "telemetry", "alerts_stored", "command_result", "commands")
    for name in names:
        wanted = list(inspect.signature(getattr(CaregiverPort, name)).parameters)
        for carrier in (CaregiverBridge, CaregiverLink):
            assert list(inspect.signature(getattr(carrier, name)).parameters) == wanted, (
                carrier,
                name,
            )
