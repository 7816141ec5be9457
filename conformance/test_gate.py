"""The conformance gate: the state machines of :mod:`conformance.machines` under the active
Hypothesis profile.  Every property is checked by the machines' invariants and teardown."""

from __future__ import annotations

import pytest
from hypothesis.stateful import run_state_machine_as_test

from conformance.gate import GATE_MACHINES
from reports import attach

ALL_RUNTIME_PROPERTIES = ("POOL-1", "POOL-2", "POOL-3", "LIVE-1", "LIVE-2", "CQE-1",
                          "DATA-1", "SM-1", "DEPTH-1", "CFG-1", "SHUT-1", "STATS-1",
                          "CRASH-1")


def run_with_reproducer(machine: type) -> None:
    """Run a machine; on failure keep Hypothesis's printed reproducer for the report."""
    try:
        run_state_machine_as_test(machine)
    except BaseException as exc:
        notes = getattr(exc, "__notes__", [])
        if notes:
            attach.reproducer("from conformance.reproduce import *\n\n" + "\n".join(notes))
        raise


@pytest.mark.spec(*ALL_RUNTIME_PROPERTIES)
@pytest.mark.parametrize("machine", GATE_MACHINES, ids=lambda m: m.__name__)
def test_machine_holds_every_property(machine: type) -> None:
    run_with_reproducer(machine)
