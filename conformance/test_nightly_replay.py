"""The nightly's finds as regressions: the gate's machines replay the examples the nightly
stress job stored in its example database (see :mod:`conformance.profiles`) as they were
found, and generate nothing new.

The gate's own test (``conformance/test_gate.py``) replays the same database under the ci
profile too, in its reuse phase, but with the ci profile's shape: 12 steps an example
(the nightly's run to 50, and a replay cut short passes) and ci-scale strategies (a
field-scale value is not one a ci-scale strategy can take, so such an example is drawn as
another).  Here every stored example is replayed at each scale with the nightly's step
count, so a find fails at the scale it was found at.  Without the database directory there
is nothing to replay, and the tests say so.
"""

from __future__ import annotations

import unittest

import pytest
from hypothesis import Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from conformance import profiles
from conformance.gate import GATE_MACHINES
from conformance.test_gate import ALL_RUNTIME_PROPERTIES
from reports import attach
from strategies.scale import SCALES, at_scale


@pytest.mark.spec(*ALL_RUNTIME_PROPERTIES)
@pytest.mark.parametrize("machine", GATE_MACHINES, ids=lambda m: m.__name__)
@pytest.mark.parametrize("scale", SCALES)
def test_machine_replays_nightly_finds(scale: str, machine: type) -> None:
    db = profiles.replay_database()
    if db is None:
        pytest.skip(f"no nightly example database at {profiles.nightly_database_path()} "
                    f"(NRT_NIGHTLY_DB): nothing to replay")
    replay_only = settings(
        settings.default, database=db, phases=(Phase.explicit, Phase.reuse, Phase.explain),
        stateful_step_count=settings.get_profile("nightly").stateful_step_count)
    with at_scale(scale):  # type: ignore[arg-type]
        try:
            run_state_machine_as_test(machine, settings=replay_only)
        except unittest.SkipTest:
            # Hypothesis skips a test it was told to run no cases for: nothing stored
            pytest.skip(f"no nightly find of {machine.__name__} stored in "
                        f"{profiles.nightly_database_path()}: nothing to replay")
        except BaseException as exc:
            notes = getattr(exc, "__notes__", [])
            if notes:
                attach.reproducer("from conformance.reproduce import *\n\n"
                                  + "\n".join(notes))
            raise
