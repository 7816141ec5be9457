"""Whole-example configurations for a gate run: options plus a topology that fits them.

A state machine's ``initialize`` step draws one :class:`GateConfig`; later rules may add
controllers described by :class:`ControllerSpec` (indices the harness reduces modulo what
exists).  Both print as plain constructor calls, so a failing example's reproducer can be
pasted as it is.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from hypothesis import strategies as st
from hypothesis.strategies import DrawFn, SearchStrategy

from strategies.options import accepted_options
from strategies.scale import FIELD, ScaleName, by_scale, depth_budget
from strategies.topology import field_topologies, topologies
from strategies.types import Controller, QpairPlacement, Topology, TransportOptions

__all__ = ["ControllerSpec", "GateConfig", "controller_specs", "gate_configs"]


@dataclass(frozen=True)
class GateConfig:
    """Transport options and the topology built on them at the start of an example."""

    options: TransportOptions
    topology: Topology


@dataclass(frozen=True)
class ControllerSpec:
    """A controller connected mid-run: admin (port, group, depth) and IO qpairs as
    ``(port, group, depth)`` triples.  Indices are reduced modulo what exists."""

    admin_port: int
    admin_group: int
    admin_depth: int
    io: tuple[tuple[int, int, int], ...]
    subsystem: int = 0


def controller_specs(max_io: int = 3) -> SearchStrategy[ControllerSpec]:
    """At field scale (``strategies.scale``) depths reach 128; the harness clips them."""
    small = st.integers(0, 15)
    depth = by_scale(st.integers(2, 32),
                     st.one_of(st.integers(2, 32), st.integers(2, FIELD.queue_depth)))
    return st.builds(ControllerSpec, small, small, depth,
                     st.lists(st.tuples(small, small, depth), min_size=1,
                              max_size=max_io).map(tuple), small)


#: Table sizes pinned for gate runs so drawn topologies always fit.
GATE_PINS = {"max_qpairs": 64, "max_ports": 4, "max_subsystems": 8, "max_namespaces": 2,
             "max_memory_regions": 4, "keep_alive_ticks": 0}
#: The same at field scale: every subsystem, controller and qpair of ``FIELD`` fits, with
#: room for controllers connected mid-run; SGEs per WR within what the device offers (the
#: target accepts up to 32, but a QP with more SGEs than the device's max_sge cannot be
#: created, so every connection would be refused).
FIELD_PINS = {**GATE_PINS, "max_subsystems": FIELD.subsystems,
              "max_qpairs": FIELD.subsystems * FIELD.controllers * (1 + FIELD.io_qpairs) + 64,
              "max_sge": st.integers(1, FIELD.device_sge)}
#: Host-memory slack per CID window the harness adds to max_io_size (at least its
#: ``GAP_SLACK``), and the queue entries it keeps for controllers connected mid-run.
WINDOW_SLACK = 4096
RESERVED_DEPTH = 64


def gate_configs(scale: ScaleName | None = None, **pins: object) -> SearchStrategy[GateConfig]:
    """Accepted options (biased to contention) and a topology with at least one IO qpair.

    ``scale`` is ``ci`` or ``field`` (``strategies.scale``); None (the default) reads the
    active scale, ``NRT_SCALE``, at each draw.  ``pins`` fix option fields (values or
    strategies), as for ``accepted_options``, at either scale."""
    if scale not in (None, "ci", "field"):
        raise ValueError(f"scale must be 'ci' or 'field', not {scale!r}")
    at_ci = _gate_config("ci", accepted_options("ci", **{**GATE_PINS, **pins}))
    at_field = _field_config(accepted_options("nightly", **{**FIELD_PINS, **pins}))
    if scale is not None:
        return at_ci if scale == "ci" else at_field
    return by_scale(at_ci, at_field)


@st.composite
def _gate_config(draw: DrawFn, scale: ScaleName,
                 options: SearchStrategy[TransportOptions]) -> GateConfig:
    opts = draw(options)
    topo = draw(topologies(opts, max_subsystems=4, max_controllers=2, max_io_qpairs=3,
                           max_depth=16))
    return GateConfig(opts, _with_io_qpair(topo, opts))


@st.composite
def _field_config(draw: DrawFn, options: SearchStrategy[TransportOptions]) -> GateConfig:
    """Field scale: up to 32 subsystems (at least 24 in about half the examples) with up to
    4 controllers each, queue depths to 128 within the host-memory depth budget, namespaces
    up to 2 MiB.  The topology is drawn from a fixed number of choices
    (:func:`~strategies.topology.field_topologies`), so a 200-qpair example leaves
    Hypothesis's choice buffer to its steps."""
    opts = draw(options)
    budget = depth_budget(opts.max_io_size, WINDOW_SLACK, RESERVED_DEPTH)
    most = min(FIELD.subsystems, opts.max_subsystems, opts.max_qpairs, budget // 2)
    least = draw(st.sampled_from([1, min(FIELD.many_subsystems, most)]))
    topo = draw(field_topologies(opts, min_subsystems=least, max_subsystems=most,
                                 max_controllers=FIELD.controllers,
                                 max_io_qpairs=FIELD.io_qpairs, max_depth=FIELD.queue_depth,
                                 max_total_depth=budget,
                                 namespace_bytes=FIELD.namespace_bytes))
    return GateConfig(opts, _with_io_qpair(topo, opts))


def _with_io_qpair(topo: Topology, opts: TransportOptions) -> Topology:
    """The gate needs IO: give the first controller an IO qpair if no controller has one,
    on a different poll group from its admin qpair when there is more than one group."""
    if any(c.io for s in topo.subsystems for c in s.controllers):
        return topo
    sub = topo.subsystems[0]
    first = sub.controllers[0]
    group = (first.admin.group + 1) % opts.num_poll_groups
    io = QpairPlacement(max(2, first.admin.depth), group, first.admin.port)
    fixed = replace(sub, controllers=(Controller(first.admin, (io,)), *sub.controllers[1:]))
    return replace(topo, subsystems=(fixed, *topo.subsystems[1:]))
