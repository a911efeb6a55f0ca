"""Bad option values end as one short line naming the option and what is allowed (issue 11).

A 3000-character value (a paste gone wrong) used to be echoed whole on one ~3 KB line, and a
``--speed`` written as a number too large for a float (``1e400``, 500 nines) parsed to infinity
and ran flat out as if the user had typed ``max``. Each case runs the real ``soleguard``
process in a home of its own, as a user would.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from controller.cli import exit_codes
from controller.journal.export import FORMAT, FORMAT_VERSION
from firmware_sim import clock
from tests.cli.test_one_line_errors import soleguard

if TYPE_CHECKING:
    from pathlib import Path

# Far longer than anything worth echoing; the breaker pasted 3000 characters.
LONG = "a" * 3000
# Short enough to read at a glance, long enough for the longest allowed list (demo's scenarios).
READABLE_LINE_CHARS = 400

CASES = [
    pytest.param(("demo", "--speed", "1e400"), {}, "must be at most 100000", id="speed-1e400"),
    pytest.param(("demo", "--speed", "9" * 500), {}, "must be at most 100000", id="speed-nines"),
    pytest.param(("demo", "--speed", "yyy"), {}, "0.01..100000, 'real' or 'max'", id="speed-word"),
    pytest.param(("demo", "--speed", LONG), {}, "0.01..100000, 'real' or 'max'", id="speed-long"),
    pytest.param(("demo", "--scenario", LONG), {}, "is not one of normal,", id="scenario-long"),
    pytest.param(("sim", "--scenario", LONG), {}, "--list-scenarios", id="sim-scenario-long"),
    pytest.param(("sim", "--speed", "1e400"), {}, "must be at most 100000", id="sim-speed-1e400"),
    pytest.param(
        ("diary", "inspect", "--finding", LONG), {}, "allowed: blister,", id="finding-long"
    ),
    pytest.param(("pair", LONG), {}, "expected six hex pairs", id="pair-address-long"),
    pytest.param(
        ("demo", "--broker", LONG, "--minutes", "1", "--speed", "max", "--json", "--no-journal"),
        {},
        "host name too long (at most 253 characters",
        id="broker-long",
    ),
    # click's own messages echo the value too (cut at 500 by the last guard, not at 60).
    pytest.param(("demo", "--minutes", LONG), {}, "'--minutes'", id="click-float-long"),
    pytest.param(("demo", "--" + LONG), {}, "No such option", id="click-option-long"),
    pytest.param(
        ("config", "check"),
        {"SOLEGUARD__" + "Z" * 2000: "1"},
        "SOLEGUARD__SECTION__KEY",
        id="env-name-long",
    ),
]


@pytest.mark.parametrize(("args", "env", "allowed"), CASES)
def test_a_bad_value_is_one_short_line_with_what_is_allowed(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str], allowed: str
) -> None:
    result = soleguard(tmp_path, *args, **env)
    err = result.stderr.strip()
    assert "Traceback" not in result.stderr, result.stderr[:3000]
    assert result.returncode == exit_codes.USAGE, result.stderr[:3000]
    assert err.startswith("error: "), err[:3000]
    assert "\n" not in err, err[:3000]
    assert allowed in err, err[:3000]
    assert len(err) <= READABLE_LINE_CHARS, f"{len(err)} characters: {err[:600]}"


@pytest.mark.parametrize("word", ["max", "MAX", "inf", "infinity"])
def test_the_words_for_flat_out_still_mean_max(word: str) -> None:
    assert clock.parse_speed(word) == "max"


@pytest.mark.parametrize(
    "document",
    [
        pytest.param({"format": FORMAT, "version": LONG, "tables": {}}, id="version-long"),
        pytest.param(
            {"format": FORMAT, "version": FORMAT_VERSION, "tables": {LONG: 1}}, id="table"
        ),
        pytest.param(
            {
                "format": FORMAT,
                "version": FORMAT_VERSION,
                "tables": {"sleep": [{"date": LONG, "quality": 3, "recorded_at": 1.7e9}]},
            },
            id="row-value-long",
        ),
    ],
)
def test_an_import_file_with_a_long_bad_value_is_one_short_line(
    tmp_path: Path, document: dict[str, object]
) -> None:
    export = tmp_path / "export.json"
    export.write_text(json.dumps(document), encoding="utf-8")
    result = soleguard(tmp_path, "journal", "import", str(export), "--db", str(tmp_path / "j.db"))
    err = result.stderr.strip()
    assert "Traceback" not in result.stderr, result.stderr[:3000]
    assert result.returncode == exit_codes.USAGE, result.stderr[:3000]
    assert "\n" not in err, err[:3000]
    assert len(err) <= READABLE_LINE_CHARS, f"{len(err)} characters: {err[:600]}"
