"""SoleGuard: a safety-first controller for heated smart foot massagers."""

__version__ = "0.1.0"
