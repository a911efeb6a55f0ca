"""The pre-session foot-care checklist: questions, answers from a person or a file.

The questions come from the seed article's contraindications (never over open wounds; avoid
ulcers, active infection and severe inflammation), its daily foot inspection (minor cuts or
blisters found before they become infections), and its advice to consult a healthcare provider
before starting. Answers are only collected here; whether a session may start is the
supervisor's decision.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from controller.errors import ConfigError
from controller.safety.events import CONTRAINDICATIONS, ChecklistResult, Finding

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

# The question for each contraindication the supervisor knows (one set, in controller.safety).
CONTRAINDICATION_QUESTIONS: dict[str, str] = {
    "open_wound": "an open wound on either foot",
    "ulcer": "a skin ulcer on either foot",
    "infection": "an active infection of the foot or skin",
    "severe_inflammation": "severe inflammation (red, hot, swollen skin)",
}
# The findings the checklist asks about (`Finding` spells them; open wounds and ulcers are asked
# as contraindications). A Literal, not the enum: a strict model takes an enum field only as an
# enum instance, and answers come from a file as text.
AskedFinding = Literal["cut", "blister", "redness", "swelling"]
FINDING_QUESTIONS: dict[Finding, str] = {
    Finding.CUT: "a cut",
    Finding.BLISTER: "a blister",
    Finding.REDNESS: "redness",
    Finding.SWELLING: "swelling",
}


class ChecklistAnswers(BaseModel):
    """What the person answered (also the schema of a ``--checklist FILE``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    open_wound: bool
    ulcer: bool
    infection: bool
    severe_inflammation: bool
    # Only needed at the first session of the day.
    inspected_today: bool | None = None
    findings: tuple[AskedFinding, ...] = ()
    provider_consulted: bool | None = None
    pain_before: int | None = Field(default=None, ge=0, le=10)

    @property
    def contraindications(self) -> frozenset[str]:
        """Names of the answered contraindications that are true (empty: none)."""
        return frozenset(name for name in CONTRAINDICATIONS if getattr(self, name))

    def result(self, *, inspection_required: bool) -> ChecklistResult:
        """The answers as the supervisor judges them."""
        return ChecklistResult(
            contraindications=self.contraindications,
            inspection_findings=frozenset(self.findings),
            inspection_required=inspection_required,
            inspection_done=bool(self.inspected_today),
            provider_consulted=bool(self.provider_consulted),
        )


NO_CONTRAINDICATIONS = ChecklistAnswers(
    open_wound=False,
    ulcer=False,
    infection=False,
    severe_inflammation=False,
    inspected_today=True,
    findings=(),
    provider_consulted=True,
)


@dataclass(frozen=True, slots=True)
class ChecklistNeeds:
    """Which of the occasional questions apply to this session."""

    daily_inspection: bool
    provider_acknowledgement: bool


def load_answers(path: Path) -> ChecklistAnswers:
    """Answers from a TOML or JSON file (by suffix; TOML otherwise), for scripted use.

    Raises `ConfigError` in one line naming the file and each offending field: unreadable,
    not valid TOML/JSON, an unknown key, a finding other than cut, blister, redness or swelling,
    a pain score outside 0-10.
    """
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read checklist: {exc.strerror}") from exc
    try:
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text.decode())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not valid {path.suffix.lstrip('.') or 'TOML'}: {exc}") from exc
    try:
        if isinstance(data, dict) and isinstance(data.get("findings"), list):
            data["findings"] = tuple(data["findings"])
        return ChecklistAnswers.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        raise ConfigError(f"{path}: checklist: {problems}") from exc


def ask(needs: ChecklistNeeds, confirm: Callable[[str], bool]) -> ChecklistAnswers:
    """Ask a person, one yes/no question at a time (``confirm`` is e.g. ``typer.confirm``).

    The four contraindications always; the daily inspection and what it found, and the
    provider's agreement, only when ``needs`` says so. Returns the answers; never judges them.
    """
    answers: dict[str, object] = {
        name: confirm(f"Do you have {text} today?")
        for name, text in CONTRAINDICATION_QUESTIONS.items()
    }
    if needs.daily_inspection:
        answers["inspected_today"] = confirm(
            "Have you inspected both feet today, soles and between the toes?"
        )
        if answers["inspected_today"]:
            # Only an inspection can find something; without one the session is refused anyway,
            # and asking what it found would be asking the person to guess.
            answers["findings"] = tuple(
                name.value
                for name, text in FINDING_QUESTIONS.items()
                if confirm(f"Did you find {text}?")
            )
    if needs.provider_acknowledgement:
        answers["provider_consulted"] = confirm(
            "Has a healthcare provider agreed that you may use a heated foot massager?"
        )
    return ChecklistAnswers.model_validate(answers)
