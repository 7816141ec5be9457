"""The nightly's finds as regressions: the gate's machines replay, at field scale, the
examples the nightly stress job stored in its example database (see
:mod:`conformance.profiles`), and generate nothing new.

The gate's own test (``conformance/test_gate.py``) replays the same database at ci scale
under the ci profile; an example found at field scale draws field-scale values, which a
ci-scale strategy cannot take, so it is replayed here, with the scale it was found at.
Without the database directory there is nothing to replay, and the tests say so.
"""

from __future__ import annotations

import pytest
from hypothesis import Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from conformance import profiles
from conformance.gate import GATE_MACHINES
from conformance.test_gate import ALL_RUNTIME_PROPERTIES
from reports import attach
from strategies.scale import at_scale


@pytest.mark.spec(*ALL_RUNTIME_PROPERTIES)
@pytest.mark.parametrize("machine", GATE_MACHINES, ids=lambda m: m.__name__)
def test_machine_replays_nightly_finds_at_field_scale(machine: type) -> None:
    db = profiles.replay_database()
    if db is None:
        pytest.skip(f"no nightly example database at {profiles.nightly_database_path()} "
                    f"(NRT_NIGHTLY_DB): nothing to replay")
    replay_only = settings(settings.default, database=db,
                           phases=(Phase.explicit, Phase.reuse, Phase.explain))
    with at_scale("field"):
        try:
            run_state_machine_as_test(machine, settings=replay_only)
        except BaseException as exc:
            notes = getattr(exc, "__notes__", [])
            if notes:
                attach.reproducer("from conformance.reproduce import *\n\n"
                                  + "\n".join(notes))
            raise
