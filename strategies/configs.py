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

from strategies.options import Scale, accepted_options
from strategies.topology import topologies
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
    small = st.integers(0, 15)
    depth = st.integers(2, 32)
    return st.builds(ControllerSpec, small, small, depth,
                     st.lists(st.tuples(small, small, depth), min_size=1,
                              max_size=max_io).map(tuple), small)


#: Table sizes pinned for gate runs so drawn topologies always fit.
GATE_PINS = {"max_qpairs": 64, "max_ports": 4, "max_subsystems": 8, "max_namespaces": 2,
             "max_memory_regions": 4, "keep_alive_ticks": 0}


def gate_configs(scale: Scale = "ci", **pins: object) -> SearchStrategy[GateConfig]:
    """Accepted options (biased to contention) and a topology with at least one IO qpair.

    ``pins`` fix option fields (values or strategies), as for ``accepted_options``."""
    return _gate_config(scale, {**GATE_PINS, **pins})


@st.composite
def _gate_config(draw: DrawFn, scale: Scale, pins: dict[str, object]) -> GateConfig:
    opts = draw(accepted_options(scale, **pins))  # type: ignore[arg-type]
    most_subs = 4 if scale == "ci" else 32
    topo = draw(topologies(opts, max_subsystems=most_subs, max_controllers=2,
                           max_io_qpairs=3, max_depth=16 if scale == "ci" else 128))
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
