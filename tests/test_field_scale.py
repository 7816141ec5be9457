"""Field scale draws what field scale promises, in a choice sequence that does not grow with
it, and its examples spend their steps on IO rather than on restarts.

Hypothesis stops a state machine's steps once its choice buffer is 80% full
(``hypothesis.internal.conjecture.engine.BUFFER_SIZE``) and caps its first examples at
five times the choices of the simplest one; a topology that draws every qpair's group,
port and depth took about a thousand choices at 32 subsystems, so early examples overran
after their target was built, and the simplest example - one argument-free
``restart_transport`` after another - set the pace.
"""

from __future__ import annotations

from random import Random

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st
from hypothesis.control import BuildContext
from hypothesis.errors import StopTest, UnsatisfiedAssumption
from hypothesis.internal.conjecture.data import ConjectureData
from hypothesis.internal.conjecture.engine import BUFFER_SIZE
from hypothesis.stateful import run_state_machine_as_test

from conformance.figures import COLLECTOR
from conformance.machines import ContentionMachine
from strategies.configs import GateConfig, gate_configs
from strategies.scale import FIELD, at_scale
from strategies.shapes import IoShape
from strategies.topology import PLACEMENTS, field_topologies
from strategies.types import (
    Controller,
    Namespace,
    QpairPlacement,
    Subsystem,
    Topology,
    TransportOptions,
)

FAST = settings(max_examples=40, derandomize=True, database=None, deadline=None,
                suppress_health_check=list(HealthCheck))
#: Choices a field-scale configuration (options and topology) may take, whatever its size.
MOST_CONFIG_CHOICES = 80
BIG = TransportOptions(max_qpairs=576, max_subsystems=32, num_poll_groups=16, max_ports=4,
                       max_queue_depth=128, max_namespaces=2)


def _draw_fresh(strategy, i: int):  # type: ignore[no-untyped-def]
    """One draw of ``strategy`` from random choices (seeded by ``i``), as Hypothesis's
    generation phase makes them: (value, choices, choice bytes), or None if it overran or
    was rejected."""
    data = ConjectureData(random=Random(i))
    try:
        with BuildContext(data, wrapped_test=None):
            value = data.draw(strategy)
    except (StopTest, UnsatisfiedAssumption):
        return None
    return value, len(data.choices), data.length


def _sample(strategy, n: int):  # type: ignore[no-untyped-def]
    return [d for d in (_draw_fresh(strategy, i) for i in range(n)) if d is not None]


def test_a_field_config_takes_the_same_few_choices_at_any_size() -> None:
    with at_scale("field"):
        drawn = _sample(gate_configs(), 120)
    assert len(drawn) >= 100
    big = [(c, n, size) for c, n, size in drawn
           if len(c.topology.subsystems) >= FIELD.many_subsystems
           and c.topology.num_qpairs >= 100]
    assert big, "no field config reached 24 subsystems and 100 qpairs"
    most = max(n for _, n, _ in drawn)
    assert most <= MOST_CONFIG_CHOICES, f"a field config took {most} choices"
    assert max(size for _, _, size in drawn) * 20 <= BUFFER_SIZE


def test_the_ci_config_is_drawn_as_before() -> None:
    """The ci scale keeps its per-qpair topology (its derandomized gate must not move)."""
    with at_scale("ci"):
        drawn = _sample(gate_configs(), 60)
    per_qpair = [n for c, n, _ in drawn if c.topology.num_qpairs >= 6]
    assert per_qpair and max(per_qpair) > min(n for _, n, _ in drawn)


@FAST
@given(st.data(), st.integers(1, 16), st.integers(1, 4), st.integers(8, 576),
       st.integers(2, 128), st.one_of(st.none(), st.integers(2, 2000)))
def test_field_topologies_respect_every_bound(data, groups: int, ports: int,  # type: ignore[no-untyped-def]
                                              qpairs: int, depth: int,
                                              total: int | None) -> None:
    opts = TransportOptions(max_qpairs=qpairs, max_subsystems=32, num_poll_groups=groups,
                            max_ports=ports, max_queue_depth=depth, max_namespaces=2)
    least = data.draw(st.integers(1, min(8, qpairs)))
    if total is not None:
        total = max(total, 2 * least)
    topo = data.draw(field_topologies(opts, min_subsystems=least, max_subsystems=32,
                                      max_depth=128, max_total_depth=total))
    assert least <= len(topo.subsystems) <= 32 and 1 <= topo.num_ports <= ports
    assert topo.num_qpairs <= qpairs
    if total is not None:
        assert sum(q.depth for q in topo.qpairs()) <= total
    for sub in topo.subsystems:
        assert 1 <= len(sub.namespaces) <= 2 and len(sub.controllers) <= 4
        for c in sub.controllers:
            assert len(c.io) <= 3 and len({q.port for q in (c.admin, *c.io)}) == 1
    for q in topo.qpairs():
        assert 2 <= q.depth <= depth
        assert 0 <= q.group < groups and 0 <= q.port < topo.num_ports


def test_field_topologies_place_every_kind_and_reach_field_size() -> None:
    drawn = [t for t, _, _ in _sample(field_topologies(BIG), 150)]
    ctrlrs = [c for t in drawn for s in t.subsystems for c in s.controllers]
    with_io = [c for c in ctrlrs if len(c.io) >= 2]
    assert sum(c.admin_apart for c in ctrlrs) >= len(ctrlrs) // 10
    assert any(all(q.group == c.admin.group for q in c.io) for c in with_io)   # packed
    assert any(len({q.group for q in c.io}) >= 2 for c in with_io)             # spread
    assert any(len({c.admin_apart for s in t.subsystems for c in s.controllers
                    if c.io}) == 2 for t in drawn), "no topology mixed placements"
    assert any(len(t.subsystems) >= 24 and t.num_qpairs >= 150 for t in drawn)
    assert any(len({q.depth for q in t.qpairs()}) >= 3 for t in drawn)
    assert any(len({q.port for q in t.qpairs()}) >= 2 for t in drawn)
    assert len(PLACEMENTS) == 3


def test_field_topologies_shrink_to_one_controller_without_io() -> None:
    found: list[Topology] = []

    @settings(max_examples=1, database=None, deadline=None, phases=[Phase.generate])
    @given(field_topologies(BIG))
    def simplest(t: Topology) -> None:
        found.append(t)

    simplest()
    (t,) = found
    assert len(t.subsystems) == 1 and t.num_qpairs == 1 and t.num_ports == 1
    assert len(t.subsystems[0].namespaces) == 1


# ------------------------------------------------------------------------- restarts

SMALL = GateConfig(
    TransportOptions(max_queue_depth=16, num_poll_groups=2, max_read_depth=2, max_qpairs=8,
                     max_subsystems=2, max_namespaces=1, max_memory_regions=4),
    Topology(1, (Subsystem((Namespace(512, 256),),
                           (Controller(QpairPlacement(4, 0, 0), (QpairPlacement(8, 1, 0),)),)),)))


@pytest.fixture
def machine():  # type: ignore[no-untyped-def]
    m = ContentionMachine()
    m.start(config=SMALL)
    yield m
    m.teardown()


def test_a_field_example_restarts_only_with_io_in_flight_and_at_most_once(machine) -> None:  # type: ignore[no-untyped-def]
    with at_scale("ci"):
        assert machine._may_restart()          # ci scale: whenever the target is alive
    with at_scale("field"):
        assert not machine._may_restart()      # nothing in flight
        assert machine.h.submit_io(IoShape("write", blocks=4))
        assert machine._may_restart()
        for _ in range(FIELD.restarts):
            machine.restart_transport()
            assert machine.h.submit_io(IoShape("write", blocks=4))
        assert not machine._may_restart()      # the example's restarts are spent
    with at_scale("ci"):
        assert machine._may_restart()


def test_a_field_round_spends_its_steps_on_io_not_restarts() -> None:
    """A short round of a gate machine at field scale: a restart at most once an example,
    and IO submitted and answered in a good share of the steps."""
    COLLECTOR.take()
    seed(20261202)(ContentionMachine)
    try:
        with at_scale("field"):
            run_state_machine_as_test(ContentionMachine, settings=settings(
                max_examples=6, stateful_step_count=20, database=None, deadline=None,
                phases=[Phase.generate], suppress_health_check=list(HealthCheck)))
    finally:
        ContentionMachine._hypothesis_internal_use_seed = None  # type: ignore[attr-defined]
    got = COLLECTOR.take()
    assert got["examples"] >= 6 and got["steps"] >= 60
    assert got["restarts"] <= got["examples"] * FIELD.restarts
    assert got["ios_submitted"] * 2 >= got["steps"], got
    assert got["ios"] * 4 >= got["ios_submitted"], got
