"""The running service: one supervised session wired to its radio, journal and caregivers.

`session` runs a session (the supervisor loop over the links, the actuator and the recorder);
`app` and `simulated` start it against real devices or the simulated world; `caregiver` relays
its state and alerts to the MQTT bridge. Not to be confused with `controller.session` (the
foot-care checklist and session programs) or the ``soleguard session`` command.
"""
