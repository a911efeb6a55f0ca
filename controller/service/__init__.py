"""The running service: one supervised session wired to its radio, journal and caregivers.

`runner` runs a session (the supervisor loop over the links, the actuator and the recorder);
`app` and `simulated` start it against real devices or the simulated world; `caregiver` relays
its state and alerts to the MQTT bridge. Not to be confused with `controller.treatment` (what
must hold before a session: the foot-care checklist; which program it runs) or the
``soleguard session`` command.
"""
