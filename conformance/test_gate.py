"""The conformance gate: the state machines of :mod:`conformance.machines` under the active
Hypothesis profile.  Every property is checked by the machines' invariants and teardown.

Each machine's run judges every runtime property at once; it is reported one result per
property (``per_property``): a failure of one property fails that property only.  On a
failure Hypothesis prints the failing steps (its notes on the exception); the reports
plugin turns them into a pasteable reproducer."""

from __future__ import annotations

import pytest
from hypothesis.stateful import run_state_machine_as_test

from conformance.gate import GATE_MACHINES
from conformance.harness import PROPERTIES

#: What the gate's machines judge (ERR-1 and CONN-1 have their own drivers).
ALL_RUNTIME_PROPERTIES = PROPERTIES


@pytest.mark.spec(*ALL_RUNTIME_PROPERTIES)
@pytest.mark.parametrize("machine", [
    pytest.param(m, id=m.__name__, marks=pytest.mark.per_property(subject=m.__name__))
    for m in GATE_MACHINES])
def test_machine_holds_every_property(machine: type) -> None:
    run_state_machine_as_test(machine)
