"""Settings: the schema, the loader, profiles and the effective safety limits."""

from controller.settings.effective import SafetyLimits
from controller.settings.loader import (
    default_config_path,
    effective_limits,
    load_settings,
    resolve_config_path,
)
from controller.settings.models import PROFILE_NAMES, Settings

__all__ = [
    "PROFILE_NAMES",
    "SafetyLimits",
    "Settings",
    "default_config_path",
    "effective_limits",
    "load_settings",
    "resolve_config_path",
]
