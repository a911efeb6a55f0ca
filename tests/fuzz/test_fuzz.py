"""Fuzz every decoder, the caregiver command parser and the settings loader (see fuzz_targets).

``SOLEGUARD_FUZZ_EXAMPLES`` sets the examples per target (default 1000, for CI);
``python bench/fuzz.py --examples 100000`` runs the same targets at campaign scale.
"""

from __future__ import annotations

import os

import pytest

from tests.fuzz.fuzz_targets import run, targets

EXAMPLES = int(os.environ.get("SOLEGUARD_FUZZ_EXAMPLES", "1000"))


@pytest.mark.parametrize("target", targets(), ids=lambda t: t.name)
def test_only_typed_errors_and_no_limit_loosened(target: object) -> None:
    run(target, EXAMPLES)  # type: ignore[arg-type]
