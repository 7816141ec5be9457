"""The stress figures count what the harness did (``conformance/figures.py``), and the
nightly's time budget stops a machine between examples (``stress/test_nightly.py``)."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import settings
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.errors import FlakyStrategyDefinition

from conformance.figures import COLLECTOR, merge
from conformance.harness import Harness
from conformance.machines import StarvationMachine
from strategies.configs import GateConfig
from strategies.scale import at_scale
from strategies.shapes import IoShape
from strategies.types import (
    Controller,
    Fault,
    Namespace,
    QpairPlacement,
    Subsystem,
    Topology,
    TransportOptions,
)
from stress import nightly
from stress.test_nightly import BudgetSpent, interrupted_by_budget, run_machine

OPTIONS = TransportOptions(max_queue_depth=16, num_poll_groups=2, max_read_depth=2,
                           max_qpairs=8, max_subsystems=2, max_namespaces=1,
                           max_memory_regions=4)
CONFIG = GateConfig(OPTIONS, Topology(1, (Subsystem(
    (Namespace(512, 256),),
    (Controller(QpairPlacement(4, 0, 0), (QpairPlacement(8, 1, 0),)),)),)))


@pytest.fixture
def figures() -> dict:
    COLLECTOR.take()
    yield COLLECTOR
    COLLECTOR.take()


def test_figures_count_ios_faults_steps_and_drains(figures) -> None:  # type: ignore[no-untyped-def]
    h = Harness(CONFIG)
    shapes = (IoShape("write", blocks=4), IoShape("write", blocks=8, layout="keyed_list",
                                                    cuts=(500,)), IoShape("read", blocks=2))
    for shape in shapes:
        assert h.submit_io(shape)
    h.steps += 1   # as the machines' step invariant does
    h.timeline.append(h.pool_row())
    h.check_step()
    h.fault(Fault("port_up"))
    h.fault(Fault("port_up", target=1))
    h.finish()
    got = figures.take()
    assert got["examples"] == 1 and got["restarts"] == 0
    assert got["ios_submitted"] == 3 and got["ios"] == 3
    assert got["io_bytes"] == (4 + 8 + 2) * 512
    assert got["faults"] == {"port_up": 2}
    assert got["steps"] == 1 and got["max_outstanding"] == 3
    assert got["drains"] == 1 and got["drains_stalled"] == 0 and got["drain_rounds_max"] >= 1
    row = h.timeline[0]
    assert got["wr_low_water"] == row["wr_ring"] + row["wr_cached"]
    assert got["wr_low_water_fraction"] == round(got["wr_low_water"] /
                                                 OPTIONS.max_queue_depth /
                                                 OPTIONS.wr_pool_multiplier, 4)
    assert (got["max_subsystems"], got["max_qpairs"], got["max_queue_depth_configured"]) == (
        1, 2, 16)


def test_a_restart_after_an_abrupt_destroy_is_not_an_example(figures) -> None:  # type: ignore[no-untyped-def]
    h = Harness(CONFIG)
    assert h.submit_io(IoShape("write", blocks=1), bad_key=True)
    h.shutdown()
    Harness(CONFIG).finish()
    got = figures.take()
    assert (got["examples"], got["restarts"]) == (1, 1)
    assert got["faults"] == {"bad_key": 1}


def test_merge_adds_counts_keeps_highs_and_low_water_marks() -> None:
    a = {"examples": 2, "ios": 5, "faults": {"post_fail": 1}, "max_outstanding": 7,
         "wr_low_water": 10, "buf_low_water": None}
    b = {"examples": 1, "ios": 1, "faults": {"post_fail": 2, "qpair_error": 1},
         "max_outstanding": 3, "wr_low_water": 4, "buf_low_water": 9, "unknown": 1}
    got = merge([a, b])
    assert (got["examples"], got["ios"], got["max_outstanding"]) == (3, 6, 7)
    assert got["faults"] == {"post_fail": 3, "qpair_error": 1}
    assert (got["wr_low_water"], got["buf_low_water"]) == (4, 9)
    assert got["drain_rounds_max"] == 0 and "unknown" not in got


def test_the_budget_stops_a_machine_between_examples(tmp_path, figures) -> None:  # type: ignore[no-untyped-def]
    """A machine given 3 s stops about one example after them, having run examples, with
    progress written and nothing stored in the example database (no finding)."""
    db = tmp_path / "db"
    base = settings(settings.get_profile("nightly"), database=DirectoryBasedExampleDatabase(db))
    run = nightly.NightlyRun(deadline=0.0, seed=5, machines=(StarvationMachine,),
                             out=tmp_path)
    progress = nightly.Progress(tmp_path, "shard-0-of-1")
    start = time.time()
    with at_scale("ci"):
        result = run_machine(StarvationMachine, start + 3.0, run, progress, base=base)
    took = time.time() - start
    assert result["findings"] == []
    assert result["figures"]["examples"] > 0 and result["rounds"] >= 1
    assert took <= 3.0 + result["longest_example_s"] + 1.0, (took, result["longest_example_s"])
    saved = json.loads((tmp_path / "progress" / "shard-0-of-1.json").read_text())
    assert saved["StarvationMachine"]["examples"] == result["figures"]["examples"]
    assert not db.exists() or not any(p.is_file() for p in db.rglob("*"))
    assert getattr(StarvationMachine, "_hypothesis_internal_use_seed", None) is None


def _raised_while_handling(exc: BaseException, context: BaseException | None) -> BaseException:
    """``exc`` as Python leaves it when raised while ``context`` (if any) was handled."""
    exc.__context__ = context
    return exc


def test_hypothesis_flaky_complaint_about_the_interrupted_case_is_the_budget() -> None:
    """With observability on, Hypothesis may answer the budget's interrupt with
    FlakyStrategyDefinition about the case it interrupted: no finding.  The same complaint
    without the interrupt, or any other failure raised while it was handled, is one."""
    flaky = "Inconsistent data generation! The second run stopped drawing earlier"
    assert interrupted_by_budget(_raised_while_handling(FlakyStrategyDefinition(flaky),
                                                        BudgetSpent()))
    assert not interrupted_by_budget(_raised_while_handling(FlakyStrategyDefinition(flaky),
                                                            None))
    assert not interrupted_by_budget(_raised_while_handling(AssertionError("SHUT-1"),
                                                            BudgetSpent()))
    assert not interrupted_by_budget(_raised_while_handling(
        FlakyStrategyDefinition(flaky), ValueError("a target error")))
