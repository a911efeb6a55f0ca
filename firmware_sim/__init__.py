"""Simulated massager firmware and skin sensor, with physics and fault injection."""
