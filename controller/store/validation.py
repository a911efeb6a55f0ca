"""Checks of values given to the store; each error names the field and what is allowed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from controller.errors import shown
from controller.safety import Finding
from controller.store.errors import InvalidValueError
from controller.store.records import FINDINGS

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["check_choice", "check_findings", "check_int_range"]


def check_int_range(field: str, value: object, low: int, high: int) -> int:
    """``value`` if an int (not bool) in ``low..high``; else `InvalidValueError` names ``field``."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidValueError(
            f"{field}: {shown(value)} is outside the allowed range {low}..{high}"
        )
    return value


def check_choice(field: str, value: object, allowed: Iterable[str]) -> str:
    """``value`` if one of ``allowed``; else `InvalidValueError` names ``field`` and the choices."""
    choices = sorted(allowed)
    if not isinstance(value, str) or value not in choices:
        raise InvalidValueError(f"{field}: {shown(value)} is not one of {', '.join(choices)}")
    return value


def check_findings(findings: Iterable[str]) -> frozenset[str]:
    """Validate an inspection's findings: known names, at least one, and "none" only alone."""
    found = frozenset(findings)
    unknown = found - FINDINGS
    if unknown:
        raise InvalidValueError(
            f"findings: {shown(', '.join(sorted(unknown)), quoted=False)} not known "
            f"(allowed: {', '.join(sorted(FINDINGS))})"
        )
    if not found:
        raise InvalidValueError("findings: give at least one finding, or 'none'")
    if Finding.NONE in found and len(found) > 1:
        raise InvalidValueError("findings: 'none' cannot be combined with other findings")
    return found
