"""Every alarm code that any part of controller/ can raise is documented in docs/safety.md.

The codes come from three kinds of source: the supervisor's :class:`AlarmCode` enum, the BLE
bond-loss codes (`bond_lost_alarm_code`, one per device kind) and the caregiver-alert constants.
A scan of controller/ for every ``code=`` keyword and every ``Alarm(...)`` built outside the
supervisor makes sure no other source exists: a new one fails here until it is added to the set
below and to the doc's tables. The tables must not list a code nothing raises either.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from controller.ble.bonds import bond_lost_alarm_code
from controller.caregiver.fallback import JOURNAL_FAULT
from controller.cli.session import NOT_STARTED_CODE
from controller.journal.diary import INSPECTION_FINDING
from controller.safety import AlarmCode, DeviceKind
from controller.service.alarm_reset import LATCH_RESET_CODE

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "safety.md"

# Where a code outside the supervisor comes from, as written in the source (ast.unparse), and the
# codes each can give. Pass-throughs (a code read from an alarm, an event or a journal row that
# already holds one of the others) give no new code.
KNOWN_SOURCES: dict[str, frozenset[str]] = {
    "JOURNAL_FAULT": frozenset({JOURNAL_FAULT}),
    "LATCH_RESET_CODE": frozenset({LATCH_RESET_CODE}),
    "INSPECTION_FINDING": frozenset({INSPECTION_FINDING}),
    "NOT_STARTED_CODE": frozenset({NOT_STARTED_CODE}),
    "bond_lost_alarm_code(exc.kind)": frozenset(bond_lost_alarm_code(k) for k in DeviceKind),
    "alarm.code": frozenset(),
    "event.code": frozenset(),
    "row[3]": frozenset(),
}


def raised_codes() -> set[str]:
    return {str(code) for code in AlarmCode} | set().union(*KNOWN_SOURCES.values())


def code_expressions() -> dict[str, list[str]]:
    """Every expression given as an alarm code in controller/ outside the supervisor: the value
    of a ``code=`` keyword, and the code argument of ``Alarm(priority, code, ...)``."""
    found: dict[str, list[str]] = {}
    for path in sorted((ROOT / "controller").rglob("*.py")):
        if path.parent.name == "safety":
            continue  # the supervisor raises AlarmCode members only (typed by AlarmBook.raise_)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            exprs = [kw.value for kw in node.keywords if kw.arg == "code"]
            name = node.func.id if isinstance(node.func, ast.Name) else None
            if name == "Alarm" and len(node.args) >= 2:
                exprs.append(node.args[1])
            for expr in exprs:
                where = f"{path.relative_to(ROOT)}:{node.lineno}"
                found.setdefault(ast.unparse(expr), []).append(where)
    return found


def documented_codes() -> set[str]:
    """The first cell of every table row in docs/safety.md's "Alarm codes" section."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("\n## Alarm codes\n", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| ([A-Z][A-Z0-9_]+) \|", section, flags=re.MULTILINE))


def test_no_code_comes_from_an_unknown_source() -> None:
    unknown = {e: where for e, where in code_expressions().items() if e not in KNOWN_SOURCES}
    assert not unknown, f"alarm codes from sources this test does not know: {unknown}"


def test_every_known_source_still_exists() -> None:
    # A source renamed away would leave its codes in the set below with nothing raising them.
    assert set(code_expressions()) == set(KNOWN_SOURCES)


def test_every_raised_code_is_documented() -> None:
    missing = raised_codes() - documented_codes()
    assert not missing, f"raised but not in docs/safety.md's alarm tables: {sorted(missing)}"


def test_every_documented_code_is_raised() -> None:
    stale = documented_codes() - raised_codes()
    assert not stale, f"in docs/safety.md's alarm tables but raised nowhere: {sorted(stale)}"


def test_each_supervisor_code_is_documented_with_its_priority() -> None:
    text = DOC.read_text(encoding="utf-8")
    for code in AlarmCode:
        row = re.search(rf"^\| {code} \| ([^|]+) \|", text, flags=re.MULTILINE)
        assert row is not None, code
        assert str(code.priority) in row.group(1).split(), (code, row.group(1))
