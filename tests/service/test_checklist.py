"""A contraindication refuses the session before anything reaches the massager."""

from __future__ import annotations

from typing import get_args

import pytest

from controller.safety import BLOCKING_FINDINGS, Finding
from controller.store import FINDINGS
from controller.treatment.checklist import (
    FINDING_QUESTIONS,
    NO_CONTRAINDICATIONS,
    AskedFinding,
    ChecklistAnswers,
    ChecklistNeeds,
    ask,
)
from tests.service.support import make_settings, simulated

# What the refusal must name so the person understands it (docs/safety.md: "naming which").
CASES = {
    "open_wound": "open_wound",
    "ulcer": "ulcer",
    "infection": "infection",
    "severe_inflammation": "severe_inflammation",
}


def answers(**changes: object) -> ChecklistAnswers:
    return NO_CONTRAINDICATIONS.model_copy(update=changes)


@pytest.mark.parametrize(
    ("given", "named"),
    [
        *[pytest.param({name: True}, [word], id=name) for name, word in CASES.items()],
        pytest.param({"ulcer": True, "infection": True}, ["ulcer", "infection"], id="two"),
        pytest.param({"findings": ("blister",)}, ["blister"], id="inspection-blister"),
        pytest.param({"inspected_today": False}, ["inspect"], id="no-inspection"),
    ],
)
async def test_refused_session_never_actuates(given: dict[str, object], named: list[str]) -> None:
    session = await simulated(
        make_settings(**{"session.max_minutes": 5.0}), answers=answers(**given)
    )
    assert session.run is not None
    assert session.tap is not None
    assert session.world is not None
    assert session.runner is not None
    summary = session.run.summary()
    assert summary["ended_by"] == "checklist"
    assert summary["duration_s"] == 0.0
    assert [(a["code"], a["priority"]) for a in summary["alarms"]] == [
        ("CONTRAINDICATION", "medium")
    ]
    [alarm] = session.log.new_alarms()
    for word in named:
        assert word in alarm.message.lower()
    # Nothing was ever actuated: the firmware accepted (or refused) no command at all, the
    # controller never even connected to it, and the heater element never switched on.
    assert session.tap.received == []
    assert session.tap.refused == 0
    assert session.world.firmware.last_sequence == 0
    assert session.runner.massager.connections == 0
    assert session.world.massager.status_notifications == 0
    assert session.world.snapshot().max_pad_c <= session.world.physics.pad_c + 0.5


async def test_same_answers_without_the_contraindication_do_start() -> None:
    """The control case: the refusal above comes from the answer, not from the set-up."""
    session = await simulated(make_settings(**{"session.max_minutes": 1.0}))
    assert session.run is not None
    assert session.tap is not None
    assert session.run.summary()["ended_by"] == "timer"
    assert session.tap.received


def test_each_finding_asked_is_accepted_and_blocks_in_one_spelling() -> None:
    """The checklist's questions, its answer file, the diary and the supervisor agree on names.

    A person who answers yes to "a blister" gets a session the supervisor refuses, and the
    answer reads back as the journal's and the diary's `Finding`.
    """
    assert set(FINDING_QUESTIONS) == set(get_args(AskedFinding))
    assert set(FINDING_QUESTIONS) <= FINDINGS
    needs = ChecklistNeeds(daily_inspection=True, provider_acknowledgement=False)
    given = ask(needs, lambda question: "inspected" in question or "blister" in question)
    assert given.findings == (Finding.BLISTER,)
    result = given.result(inspection_required=True)
    assert result.inspection_findings & BLOCKING_FINDINGS == {Finding.BLISTER}
