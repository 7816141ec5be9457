"""Rule-based state machines: the conformance gate.

Each example builds a target from a drawn configuration, then interleaves coarse rules:
submit a batch of IO shapes, run a drawn schedule of micro-events in C (hundreds per
step), inject a fault, probe the admin queue, connect another controller, or destroy the
transport abruptly.  Invariants run after every step; teardown enters liveness mode
(faults stop, everything is delivered and completed), checks that nothing stalled and
every live capsule was answered, compares every namespace with the model, destroys the
transport and checks that the pool came back exactly.

A failing example prints as a reproducer such as::

    state = TransportMachine()
    state.start(config=GateConfig(options=TransportOptions(...), topology=Topology(...)))
    state.submit(shapes=(IoShape(op='write', ...),))
    state.progress(schedule=Schedule(steps=(...)))
    state.teardown()

Paste it after ``from conformance.reproduce import *`` to run it again.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from hypothesis.strategies import SearchStrategy

from conformance.harness import Harness, contained
from conformance.profiles import defects_under_test
from strategies.configs import GateConfig, controller_specs, gate_configs
from strategies.faults import fault_plans, faults
from strategies.scale import FIELD, active_scale
from strategies.schedules import schedules
from strategies.shapes import IoShape, io_shapes
from strategies.types import Fault, FaultPlan, Schedule

#: Faults that leave the example running (destroy has its own rule).
RUN_FAULTS = ("qpair_error", "port_down", "port_up", "post_fail", "bdev_error",
              "host_disconnect", "qpair_disconnect")


def _contained(fn: Callable[..., None]) -> Callable[..., None]:
    """The rule, with a target crash, abort, sanitizer report or hang during it failing
    CRASH-1 (naming the rule and the step) instead of breaking the run."""

    @functools.wraps(fn)
    def rule_body(self: Any, *args: Any, **kwargs: Any) -> None:
        h = getattr(self, "h", None)
        with contained(f"{fn.__name__} (step {h.steps if h is not None else 0})"):
            fn(self, *args, **kwargs)

    return rule_body


def machine_class(name: str, configs: SearchStrategy[GateConfig], doc: str,
                  storm_faults: tuple[str, ...] = RUN_FAULTS, max_burst: int = 8,
                  faults_on: bool = True,
                  io_ops: tuple[str, ...] = ("write", "read", "write", "read", "flush"),
                  io: SearchStrategy[IoShape] | None = None) -> type:
    """A gate machine whose examples start from ``configs``; the rules are shared.
    ``storm_faults`` weights the faults a storm draws (repeat a kind to favour it) and
    ``max_burst`` bounds the IO a storm submits.  ``faults_on=False`` leaves out every
    rule that injects a fault (storms, injections, bad keys): a stall found then has no
    error path in it.  ``io_ops`` are the IO kinds the submit rule draws, ``io`` (if given)
    the shapes it draws."""
    submit_shapes = io if io is not None else io_shapes(ops=io_ops)

    class Machine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.h: Harness | None = None
            self.restarts = 0

        def _alive(self) -> bool:
            return self.h is not None and self.h.alive

        def _may_restart(self) -> bool:
            """At ci scale whenever the target is alive.  At field scale
            (``strategies.scale``) a restart rebuilds up to a few hundred qpairs - tens of
            other steps' time - and its destroy leaves every IO in flight unanswered, so
            there it is taken only with IO in flight (what SHUT-1 judges) and at most
            ``FIELD.restarts`` times an example.  Hypothesis's simplest step is this rule,
            the one without arguments: without the bound, the examples Hypothesis starts
            each run with were nothing but restarts."""
            if not self._alive():
                return False
            if active_scale() != "field":
                return True
            assert self.h is not None
            return self.restarts < FIELD.restarts and self.h.in_flight() > 0

        @initialize(config=configs)
        @_contained
        def start(self, config: GateConfig) -> None:
            self.h = Harness(config, defects=defects_under_test())

        @precondition(lambda self: self._alive())
        @rule(shapes=st.lists(submit_shapes, min_size=1, max_size=8).map(tuple))
        @_contained
        def submit(self, shapes: tuple[IoShape, ...]) -> None:
            assert self.h is not None
            for shape in shapes:
                self.h.submit_io(shape)

        @precondition(lambda self: self._alive())
        @rule(schedule=schedules(min_size=2, max_size=24), passes=st.integers(1, 8))
        @_contained
        def progress(self, schedule: Schedule, passes: int) -> None:
            assert self.h is not None
            self.h.run_schedule(schedule, passes)

        if faults_on:
            @precondition(lambda self: self._alive())
            @rule(shapes=st.lists(io_shapes(), min_size=1, max_size=max_burst).map(tuple),
                  schedule=schedules(min_size=2, max_size=24),
                  plan=fault_plans(max_faults=2, max_step=32, kinds=storm_faults))
            @_contained
            def storm(self, shapes: tuple[IoShape, ...], schedule: Schedule,
                      plan: FaultPlan) -> None:
                """IO, then an interleaving with faults striking mid-transfer, in one step."""
                assert self.h is not None
                for shape in shapes:
                    self.h.submit_io(shape)
                self.h.run_schedule(schedule, 2, plan)

            @precondition(lambda self: self._alive())
            @rule(fault=faults(kinds=RUN_FAULTS))
            @_contained
            def inject(self, fault: Fault) -> None:
                assert self.h is not None
                self.h.fault(fault)

            @precondition(lambda self: self._alive())
            @rule(shape=io_shapes(ops=("write", "read")))
            @_contained
            def bad_key(self, shape: IoShape) -> None:
                """A keyed descriptor with a wrong key: remote access error, qpair to
                error."""
                assert self.h is not None
                self.h.submit_io(shape, bad_key=True)

        @precondition(lambda self: self._alive())
        @rule(which=st.integers(0, 7))
        @_contained
        def admin_probe(self, which: int) -> None:
            assert self.h is not None
            self.h.admin_probe(which)

        @precondition(lambda self: self._alive())
        @rule(spec=controller_specs())
        @_contained
        def connect(self, spec) -> None:  # type: ignore[no-untyped-def]
            assert self.h is not None
            self.h.connect_controller(spec)

        @precondition(lambda self: self._may_restart())
        @rule()
        @_contained
        def restart_transport(self) -> None:
            """Abrupt destroy with IO in flight (SHUT-1), then a fresh target on the same
            configuration, as a restarted process would build."""
            assert self.h is not None
            self.restarts += 1
            self.h.shutdown()
            self.h = Harness(self.h.config, defects=defects_under_test())

        @invariant()
        @_contained
        def step_invariants(self) -> None:
            if self._alive():
                assert self.h is not None
                self.h.steps += 1
                self.h.timeline.append(self.h.pool_row())
                self.h.check_step()

        @_contained
        def teardown(self) -> None:
            if not self._alive():
                return
            assert self.h is not None
            if sys.exc_info()[1] is not None:
                # The example already ended in an exception: a rule's failure, which is
                # its verdict, or Hypothesis abandoning it (its choices ran out).  Judging
                # the rest would chain a second failure onto the first (another failure
                # for Hypothesis to shrink) or be thrown away with the abandoned example,
                # so the target is only released.
                self.h.release()
                return
            self.h.finish()

    Machine.__name__ = Machine.__qualname__ = name
    Machine.__doc__ = doc
    return Machine


#: The general gate: every accepted configuration, every rule.
TransportMachine = machine_class(
    "TransportMachine", gate_configs(),
    "Qpair lifecycles, multi-SGE IO under harness-chosen interleavings, and faults.")

#: Contention first: several poll groups, read depth 1-2, one or two SGEs per WR, tiny
#: caches and pools at their minimum, so split reads, WR starvation across groups and
#: faults mid-transfer happen in most examples.
ContentionMachine = machine_class(
    "ContentionMachine",
    gate_configs(num_poll_groups=st.integers(2, 4), max_read_depth=st.integers(1, 2),
                 max_sge=st.integers(1, 2), wr_cache_size=st.integers(0, 2),
                 buf_cache_size=st.integers(0, 2), max_queue_depth=st.integers(4, 16)),
    "The gate's rules on configurations built for contention: split reads, WR "
    "starvation across poll groups, faults while transfers are partly posted.")

#: Starvation without faults: more poll groups than the data-WR pool can feed at once
#: (shallow queues, so the pool - depth x multiplier - is small for the groups), writes
#: with lists of many descriptors (each one RDMA READ, so a WR chain from the pool, split
#: across the read depth), nothing failing: a request waiting for WRs on one group while
#: the last completions land on another is the shape of SPDK issue 3328 (a 100% write
#: load there), and with no fault in the example a stall found here has no error path
#: behind it.  Reads, whose data goes out in one unsplit chain of RDMA WRITEs, are the
#: other machines' to judge.
StarvationMachine = machine_class(
    "StarvationMachine",
    gate_configs(num_poll_groups=st.integers(3, 4), max_queue_depth=st.integers(2, 6),
                 max_read_depth=st.integers(1, 4), wr_cache_size=st.integers(0, 2),
                 buf_cache_size=st.integers(0, 2)),
    "The gate's write and lifecycle rules, without faults, on configurations whose "
    "data-WR pool is small for their poll groups.",
    faults_on=False,
    io=io_shapes(ops=("write",), layouts=("keyed_list",), min_descriptors=8, max_blocks=16))

#: Faults on quiet qpairs: short IO bursts and storms dominated by post failures and
#: qpair/port faults, so a qpair often has nothing else in flight when a post fails or a
#: flush lands - the shape of SPDK issue 3646 (a failed post retried only on a CQE).
FaultMachine = machine_class(
    "FaultMachine", gate_configs(),
    "The gate's rules with short IO bursts and fault-heavy storms: post failures, qpair "
    "errors and port flaps on qpairs with little else in flight.",
    storm_faults=("post_fail", "post_fail", "post_fail", "qpair_error", "port_down",
                  "port_up", "bdev_error", "host_disconnect"),
    max_burst=2)
