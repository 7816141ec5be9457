"""Whole-example configurations for a gate run: options plus a topology that fits them.

A state machine's ``initialize`` step draws one :class:`GateConfig`; later rules may add
controllers described by :class:`ControllerSpec` (indices the harness reduces modulo what
exists).  Both print as plain constructor calls, so a failing example's reproducer can be
pasted as it is.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, replace

from hypothesis import strategies as st
from hypothesis.strategies import DrawFn, SearchStrategy

from strategies.options import Scale, accepted_options
from strategies.scale import FIELD, ScaleName, by_scale, depth_budget
from strategies.topology import field_topologies, topologies
from strategies.types import Controller, QpairPlacement, Topology, TransportOptions

__all__ = ["ControllerSpec", "GateConfig", "controller_specs", "gate_configs", "srq_modes"]


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


#: Receive WRs per shared receive queue the gate draws (ci): from a couple, so that the
#: qpairs of a poll group compete for receives (hosts wait in RNR), to a few per qpair.
SRQ_DEPTHS = {"ci": (2, 64), "nightly": (2, 512)}


@functools.cache
def _active_target_takes_srq() -> bool:
    """Whether the target the environment selects has a shared receive queue mode: it keeps
    ``srq=1`` when fitting options (a target without one moves it to 0)."""
    from impl import Options

    return Options().takes_srq()


#: ``NRT_SRQ``: ``on`` draws shared receive queues in every example (for a target that takes
#: them), ``off`` in none; unset, either is drawn.
SRQ_ENV = "NRT_SRQ"


def srq_choice() -> str:
    """``NRT_SRQ`` as ``"on"``, ``"off"`` or ``"drawn"`` (unset); anything else is refused."""
    raw = os.environ.get(SRQ_ENV, "").strip().lower()
    if raw in ("", "drawn"):
        return "drawn"
    if raw in ("on", "off"):
        return raw
    raise ValueError(f"{SRQ_ENV}={raw!r}: choose on, off or leave it unset (drawn)")


def srq_modes(scale: Scale = "ci", takes_srq: Callable[[], bool] = _active_target_takes_srq,
              choice: Callable[[], str] = srq_choice) -> SearchStrategy[tuple[int, int]]:
    """``(srq, max_srq_depth)``: receive queues per qpair ``(0, 0)`` first (what shrinking
    heads for), or shared ones of a drawn depth - the latter only for a target that takes
    them (``takes_srq()``, asked when the first example is drawn); ``NRT_SRQ`` (``choice``)
    forces one or the other."""
    lo, hi = SRQ_DEPTHS[scale]
    shared = st.integers(lo, hi).map(lambda depth: (1, depth))

    def modes() -> SearchStrategy[tuple[int, int]]:
        how = choice()
        if how == "off" or not takes_srq():
            return st.just((0, 0))
        if how == "on":
            return shared
        return st.one_of(st.just((0, 0)), shared)

    return st.deferred(modes)


def gate_configs(scale: ScaleName | None = None, **pins: object) -> SearchStrategy[GateConfig]:
    """Accepted options (biased to contention) and a topology with at least one IO qpair.

    ``scale`` is ``ci`` or ``field`` (``strategies.scale``); None (the default) reads the
    active scale, ``NRT_SCALE``, at each draw.  ``pins`` fix option fields (values or
    strategies), as for ``accepted_options``, at either scale; ``srq`` and
    ``max_srq_depth`` are drawn by :func:`srq_modes` unless pinned."""
    if scale not in (None, "ci", "field"):
        raise ValueError(f"scale must be 'ci' or 'field', not {scale!r}")
    srq_pins = {k: pins.pop(k) for k in ("srq", "max_srq_depth") if k in pins}
    at_ci = _gate_config("ci", accepted_options("ci", **{**GATE_PINS, **pins}), srq_pins)
    at_field = _field_config(accepted_options("nightly", **{**FIELD_PINS, **pins}), srq_pins)
    if scale is not None:
        return at_ci if scale == "ci" else at_field
    return by_scale(at_ci, at_field)


def _with_srq(draw: DrawFn, opts: TransportOptions, options_scale: Scale,
              srq_pins: dict[str, object]) -> TransportOptions:
    """``opts`` with its receive-queue mode: pinned, or drawn by :func:`srq_modes`."""
    if srq_pins:
        srq = draw(_pinned(srq_pins.get("srq", 0)))
        depth = draw(_pinned(srq_pins.get("max_srq_depth", 0)))
    else:
        srq, depth = draw(srq_modes(options_scale))
    return opts.replace(srq=srq, max_srq_depth=depth)


def _pinned(value: object) -> SearchStrategy[int]:
    return value if isinstance(value, SearchStrategy) else st.just(value)  # type: ignore[return-value]


@st.composite
def _gate_config(draw: DrawFn, scale: ScaleName,
                 options: SearchStrategy[TransportOptions],
                 srq_pins: dict[str, object]) -> GateConfig:
    opts = _with_srq(draw, draw(options), "ci", srq_pins)
    topo = draw(topologies(opts, max_subsystems=4, max_controllers=2, max_io_qpairs=3,
                           max_depth=16))
    return GateConfig(opts, _with_io_qpair(topo, opts))


@st.composite
def _field_config(draw: DrawFn, options: SearchStrategy[TransportOptions],
                  srq_pins: dict[str, object]) -> GateConfig:
    """Field scale: up to 32 subsystems (at least 24 in about half the examples) with up to
    4 controllers each, queue depths to 128 within the host-memory depth budget, namespaces
    up to 2 MiB.  The topology is drawn from a fixed number of choices
    (:func:`~strategies.topology.field_topologies`), so a 200-qpair example leaves
    Hypothesis's choice buffer to its steps."""
    opts = _with_srq(draw, draw(options), "nightly", srq_pins)
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
