"""Remote commands from caregivers: parsed strictly, reduce-only, rate limited.

A caregiver may only make a session safer: stop it, turn the heater off, or lower the pressure.
Everything else that arrives on the ``command`` topic is refused here, with a reason that names the
field and the allowed values, before anything reaches the service. The supervisor still judges
every accepted command (for example, a lower pressure that is not lower than the current one).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeGuard

from pydantic import BaseModel, ConfigDict, Field, StrictFloat, StrictInt, ValidationError

__all__ = [
    "ALLOWED_ACTIONS",
    "MAX_COMMAND_BYTES",
    "MAX_LOWER_PRESSURE_MMHG",
    "RATE_LIMIT_BURST",
    "RATE_LIMIT_PER_S",
    "CaregiverCommand",
    "CommandRefused",
    "TokenBucket",
    "is_bounded_text",
    "parse_command",
]

_LOGGER = logging.getLogger(__name__)

# Why 1024: the largest valid command (longest action, 64-char id, an amount) is under 150 bytes;
# anything far bigger is a mistake or an attack and is refused before JSON parsing touches it.
MAX_COMMAND_BYTES = 1024
# Why 5/s with a burst of 10: a person pressing stop repeatedly, or a few caregivers at once, stays
# well inside; a runaway script is cut off before it can flood the service's command queue.
RATE_LIMIT_PER_S = 5.0
RATE_LIMIT_BURST = 10
# The hard pressure limit (DESIGN.md section 3): lowering by more than the whole range is nonsense.
MAX_LOWER_PRESSURE_MMHG = 70.0
MAX_REQUEST_ID_CHARS = 64

ALLOWED_ACTIONS = ("stop", "heater_off", "lower_pressure")
_ALLOWED_TEXT = ", ".join(repr(a) for a in ALLOWED_ACTIONS)
# Actions people (or Home Assistant automations) plausibly try that would raise heat or pressure;
# named in the refusal so the caregiver learns why rather than reading "unknown action".
_RAISING_ACTIONS = frozenset(
    {"raise_pressure", "increase_pressure", "set_pressure", "heater_on", "set_heater", "start"}
)

Action = Literal["stop", "heater_off", "lower_pressure"]


class CaregiverCommand(BaseModel):
    """A validated command. Map it to the supervisor's ``CaregiverRequest`` one field each."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    action: Action
    request_id: Annotated[str, Field(min_length=1, max_length=MAX_REQUEST_ID_CHARS)]
    # Strict numbers: JSON `true` or "10" is refused rather than coerced into an amount.
    amount_mmhg: (
        Annotated[
            StrictFloat | StrictInt, Field(gt=0, le=MAX_LOWER_PRESSURE_MMHG, allow_inf_nan=False)
        ]
        | None
    ) = None


@dataclass(frozen=True, slots=True)
class CommandRefused:
    """Why a message on the command topic was refused; published on ``command/result``."""

    request_id: str | None
    reason: str


class TokenBucket:
    """Rate limiter on a caller-supplied clock (the event loop's), so tests drive it exactly."""

    def __init__(self, rate_per_s: float, burst: int, now: float) -> None:
        self._rate = rate_per_s
        self._burst = float(burst)
        self._tokens = float(burst)
        self._last = now

    def take(self, now: float) -> bool:
        """Take a token at ``now`` (the constructor's clock); False when the bucket is empty."""
        elapsed = max(0.0, now - self._last)
        self._last = now
        self._tokens = min(self._burst, self._tokens + elapsed * self._rate)
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


def is_bounded_text(value: object, max_chars: int) -> TypeGuard[str]:
    r"""Whether ``value`` is a str of 1-``max_chars`` characters that encodes as UTF-8.

    JSON lets ``"\ud800"`` (a lone UTF-16 surrogate) through ``json.loads`` as a Python str that
    no UTF-8 encoder, SQLite's included, accepts; every text field from the network is checked
    with this before it is stored, logged as a key or echoed back.
    """
    if not isinstance(value, str) or not 0 < len(value) <= max_chars:
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_REQUEST_ID_RULE = f"request_id must be valid UTF-8 text of 1-{MAX_REQUEST_ID_CHARS} characters"


def _request_id_of(data: Any) -> str | None:
    if isinstance(data, dict):
        rid = data.get("request_id")
        if is_bounded_text(rid, MAX_REQUEST_ID_CHARS):
            return rid
    return None


def _reason(exc: ValidationError) -> str:
    parts: list[str] = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"] if not isinstance(p, int)) or "payload"
        # Union members show up as extra location parts; the first name is the field.
        field = loc.split(".")[0]
        kind = err["type"]
        if field == "action":
            parts.append(f"action must be one of {_ALLOWED_TEXT}")
        elif field == "request_id":
            parts.append(_REQUEST_ID_RULE)
        elif field == "amount_mmhg":
            parts.append(f"amount_mmhg must be a number > 0 and <= {MAX_LOWER_PRESSURE_MMHG:g}")
        elif kind == "extra_forbidden":
            parts.append(
                f"unknown field {field!r}: allowed fields are 'action', 'request_id', 'amount_mmhg'"
            )
        else:
            parts.append(f"{field}: {err['msg']}")
    # Deduplicate while keeping order: a union failure reports one field several times.
    return "; ".join(dict.fromkeys(parts))


def parse_command(payload: bytes, *, retained: bool) -> CaregiverCommand | CommandRefused:
    """Judge one message from the command topic. Never raises on any input."""
    if retained:
        # A retained command would run again on every reconnect, long after it was meant.
        return CommandRefused(None, "retained commands are ignored: publish with retain=false")
    if len(payload) > MAX_COMMAND_BYTES:
        return CommandRefused(
            None, f"payload is {len(payload)} bytes: at most {MAX_COMMAND_BYTES} allowed"
        )
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return CommandRefused(None, "payload must be UTF-8 JSON")
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        return CommandRefused(None, f"payload is not valid JSON: {exc.__class__.__name__}")
    if not isinstance(data, dict):
        return CommandRefused(None, "payload must be a JSON object with 'action' and 'request_id'")
    request_id = _request_id_of(data)
    if "request_id" in data and request_id is None:
        # Checked here, not by the model: pydantic accepts a lone surrogate as a str.
        return CommandRefused(None, _REQUEST_ID_RULE)
    action = data.get("action")
    if isinstance(action, str) and action in _RAISING_ACTIONS:
        return CommandRefused(
            request_id,
            f"action {action!r} would raise heat or pressure: caregivers may only reduce; "
            f"action must be one of {_ALLOWED_TEXT}",
        )
    if action != "lower_pressure" and "amount_mmhg" in data:
        return CommandRefused(request_id, "amount_mmhg is only allowed with 'lower_pressure'")
    try:
        command = CaregiverCommand.model_validate(data)
    except ValidationError as exc:
        return CommandRefused(request_id, _reason(exc))
    return command
