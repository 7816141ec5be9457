"""What the conformance gate runs: the list of state machines every gate run (the pytest
gate, the self-check, stress) executes under the active profile."""

from __future__ import annotations

from conformance.machines import (
    ContentionMachine,
    FaultMachine,
    StarvationMachine,
    TransportMachine,
)

#: Contention first: it finds resource bugs soonest.
GATE_MACHINES: tuple[type, ...] = (ContentionMachine, TransportMachine, FaultMachine,
                                   StarvationMachine)
