"""The gate still catches every defect switch the target has, through generic properties,
and passes on the correct target (``python -m conformance.selfcheck --no-shrink``)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from impl import DEFECT_NAMES

GENERIC_PROPERTIES = {"POOL-1", "POOL-2", "POOL-3", "LIVE-1", "LIVE-2", "CQE-1", "DATA-1",
                      "SM-1", "DEPTH-1", "CFG-1", "SHUT-1", "ERR-1", "CONN-1", "STATS-1"}


@pytest.fixture(scope="module")
def selfcheck() -> dict[str, object]:
    done = subprocess.run([sys.executable, "-m", "conformance.selfcheck", "--no-shrink"],
                          capture_output=True, text=True, timeout=900)
    last = done.stdout.strip().splitlines()[-1]
    return json.loads(last)


@pytest.mark.spec("POOL-1", "LIVE-1", "CFG-1")
def test_gate_passes_on_the_correct_target(selfcheck: dict[str, object]) -> None:
    assert selfcheck["clean_passed"] is True


@pytest.mark.spec("POOL-1", "LIVE-1", "CFG-1")
@pytest.mark.parametrize("switch", DEFECT_NAMES)
def test_gate_catches_defect_switch(selfcheck: dict[str, object], switch: str) -> None:
    result = selfcheck["switches"][switch]  # type: ignore[index]
    assert result["caught"], f"the ci gate missed defect switch {switch}"
    assert result["property"] in GENERIC_PROPERTIES, result
