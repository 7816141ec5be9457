"""Topologies: ports, subsystems, namespaces, controllers and where their qpairs live.

Placement matters more than size: SPDK issue 3328 stayed hidden because the admin qpair
(and so keep-alive) ran on a different core from the stalled IO qpairs.  Each controller
therefore draws one of three placements:

* ``packed`` - admin and IO qpairs on one poll group;
* ``spread`` - every qpair on an independently drawn group;
* ``admin_apart`` - no IO qpair shares the admin qpair's group.

All qpairs of a controller use one port, as a host reaches one controller through one
listener address; a port fault therefore takes whole controllers down.
"""

from __future__ import annotations

from dataclasses import replace

from hypothesis import strategies as st
from hypothesis.strategies import DrawFn, SearchStrategy

from strategies.types import (
    Controller,
    Namespace,
    QpairPlacement,
    Subsystem,
    Topology,
    TransportOptions,
)

__all__ = ["PLACEMENTS", "field_topologies", "namespaces", "topologies"]

PLACEMENTS = ("packed", "spread", "admin_apart")
MAX_TOPOLOGY_SUBSYSTEMS = 32


def namespaces(min_blocks: int = 8, max_blocks: int = 256,
               max_bytes: int | None = None) -> SearchStrategy[Namespace]:
    """A small RAM namespace: block size 512 or 4096, ``min_blocks..max_blocks`` blocks, or
    with ``max_bytes`` up to that many bytes (often exactly: field scale's 1 MiB IO needs a
    namespace that holds it)."""
    if max_bytes is None:
        return st.builds(Namespace, st.sampled_from([512, 4096]),
                         st.integers(min_blocks, max_blocks))
    return _sized_namespace(min_blocks, max_bytes)


@st.composite
def _sized_namespace(draw: DrawFn, min_blocks: int, max_bytes: int) -> Namespace:
    bs = draw(st.sampled_from([512, 4096]))
    most = max(min_blocks, max_bytes // bs)
    return Namespace(bs, draw(st.one_of(st.integers(min_blocks, most), st.just(most))))


def topologies(opts: TransportOptions, *, min_subsystems: int = 1, max_subsystems: int = 4,
               max_namespaces: int = 2, max_controllers: int = 2, max_io_qpairs: int = 4,
               max_depth: int | None = None, max_total_depth: int | None = None,
               namespace_bytes: int | None = None) -> SearchStrategy[Topology]:
    """Topologies ``opts`` can hold.

    Subsystems ``min_subsystems..min(max_subsystems, 32, opts.max_subsystems)``, each with
    ``1..min(max_namespaces, opts.max_namespaces)`` namespaces and 1..``max_controllers``
    controllers; a controller has an admin qpair and ``0..max_io_qpairs`` IO qpairs.  The
    total qpair count never exceeds ``opts.max_qpairs`` (later subsystems get fewer
    controllers when the budget runs out), ports stay below ``opts.max_ports``, groups below
    ``opts.num_poll_groups`` and depths in ``2..min(max_depth, opts.max_queue_depth)`` (a
depth of 1 would mean CONNECT sqsize 0, which NVMe forbids).
    ``max_total_depth`` bounds the sum of all qpair depths (each subsystem's admin qpair
    keeps at least depth 2; later qpairs are shallower or left out when it runs out), and
    ``namespace_bytes`` draws namespaces by size (:func:`namespaces`).
    Shrinks toward one subsystem, one namespace, one controller with no IO qpairs."""
    most_subs = min(max_subsystems, MAX_TOPOLOGY_SUBSYSTEMS, opts.max_subsystems)
    if not 1 <= min_subsystems <= most_subs or min_subsystems > opts.max_qpairs:
        raise ValueError(f"cannot place {min_subsystems}..{most_subs} subsystems with "
                         f"max_qpairs={opts.max_qpairs}")
    depth = min(max_depth or opts.max_queue_depth, opts.max_queue_depth)
    return _topology(opts, min_subsystems, most_subs, min(max_namespaces, opts.max_namespaces),
                     max_controllers, max_io_qpairs, depth, max_total_depth, namespace_bytes)


def field_topologies(opts: TransportOptions, *, min_subsystems: int = 1,
                     max_subsystems: int = MAX_TOPOLOGY_SUBSYSTEMS, max_namespaces: int = 2,
                     max_controllers: int = 4, max_io_qpairs: int = 3,
                     max_depth: int | None = None, max_total_depth: int | None = None,
                     namespace_bytes: int | None = None) -> SearchStrategy[Topology]:
    """Topologies within the same bounds as :func:`topologies`, built from a fixed
    number of drawn integers whatever their size.

    :func:`topologies` draws every qpair's group, port and depth: a field-scale topology
    of 32 subsystems then takes about a thousand choices, which leaves little of
    Hypothesis's choice buffer to the steps after it, and no room at all under the
    smaller size cap Hypothesis puts on its first examples (they overrun and are thrown
    away after the target is built).  Here one draw says how many of each thing there
    are, and a start and a stride say how counts, placements, groups and ports vary from
    one subsystem or controller to the next; two namespaces and three depths are drawn
    and cycled.  Every placement kind (``packed``, ``spread``, ``admin_apart``) still
    occurs, mixed within one topology when the placement stride is not 0.  The qpair
    budget (``opts.max_qpairs``) and the depth budget (``max_total_depth``) are spent
    as :func:`topologies` spends them.  Shrinks toward one subsystem, one namespace and
    one controller with no IO qpairs, everything on group 0 and port 0."""
    most_subs = min(max_subsystems, MAX_TOPOLOGY_SUBSYSTEMS, opts.max_subsystems)
    if not 1 <= min_subsystems <= most_subs or min_subsystems > opts.max_qpairs:
        raise ValueError(f"cannot place {min_subsystems}..{most_subs} subsystems with "
                         f"max_qpairs={opts.max_qpairs}")
    depth = min(max_depth or opts.max_queue_depth, opts.max_queue_depth)
    return _patterned_topology(opts, min_subsystems, most_subs,
                               min(max_namespaces, opts.max_namespaces), max_controllers,
                               max_io_qpairs, depth, max_total_depth, namespace_bytes)


@st.composite
def _patterned_topology(draw: DrawFn, opts: TransportOptions, min_subs: int,
                        most_subs: int, most_ns: int, most_ctrlrs: int, most_io: int,
                        most_depth: int, total_depth: int | None,
                        ns_bytes: int | None) -> Topology:
    groups = opts.num_poll_groups
    ports = draw(st.integers(1, opts.max_ports))
    n_subs = draw(st.integers(min_subs, most_subs))
    spaces = (draw(namespaces(max_bytes=ns_bytes)), draw(namespaces(max_bytes=ns_bytes)))
    ns_first = draw(st.integers(0, most_ns - 1))
    ctrl_first, ctrl_stride = (draw(st.integers(0, most_ctrlrs - 1)),
                               draw(st.integers(0, most_ctrlrs - 1)))
    io_first, io_stride = draw(st.integers(0, most_io)), draw(st.integers(0, most_io))
    place_first, place_stride = ((draw(st.integers(0, len(PLACEMENTS) - 1)),
                                  draw(st.integers(0, len(PLACEMENTS) - 1)))
                                 if groups > 1 else (0, 0))
    group_first, group_stride, io_group_stride = (draw(st.integers(0, groups - 1))
                                                  for _ in range(3))
    port_first, port_stride = (draw(st.integers(0, ports - 1)) for _ in range(2))
    # depth >= 2: CONNECT's 0-based sqsize must be >= 1 (an NVMe queue holds >= 2 entries)
    depth = st.one_of(st.integers(min(2, most_depth), most_depth), st.just(most_depth))
    admin_depth, *io_depths = (draw(depth) for _ in range(3))

    budget = opts.max_qpairs
    depth_left = total_depth
    k = 0   # controllers placed so far: the index every stride multiplies
    q = 0   # IO qpairs placed so far: which of the IO depths comes next
    subsystems = []
    for s in range(n_subs):
        # keep one admin qpair per remaining mandatory subsystem
        reserve = max(0, min_subs - s - 1)
        room = budget - reserve
        if room < 1 or (depth_left is not None and depth_left - 2 * reserve < 2):
            break
        nss = tuple(spaces[(s + i) % 2] for i in range(1 + (ns_first + s) % most_ns))
        ctrlrs = []
        for _ in range(min(1 + (ctrl_first + s * ctrl_stride) % most_ctrlrs, room)):
            n_io = min((io_first + k * io_stride) % (most_io + 1), room - 1)
            placement = PLACEMENTS[(place_first + k * place_stride) % len(PLACEMENTS)]
            admin_group = (group_first + k * group_stride) % groups
            port = (port_first + k * port_stride) % ports
            io = []
            for j in range(n_io):
                if placement == "packed":
                    group = admin_group
                elif placement == "spread":
                    group = (admin_group + (j + 1) * io_group_stride) % groups
                else:  # admin_apart: any group but the admin's
                    group = (admin_group + 1 + (j * io_group_stride) % (groups - 1)) % groups
                io.append(QpairPlacement(io_depths[(q + j) % 2], group, port))
            ctrlr = Controller(QpairPlacement(admin_depth, admin_group, port), tuple(io))
            k += 1
            q += n_io
            fitted, depth_left = _charge_depth(ctrlr, depth_left, reserve)
            if fitted is None:
                break
            room -= 1 + len(fitted.io)
            budget -= 1 + len(fitted.io)
            ctrlrs.append(fitted)
            if room < 1:
                break
        subsystems.append(Subsystem(nss, tuple(ctrlrs)))
    return Topology(ports, tuple(subsystems))


@st.composite
def _topology(draw: DrawFn, opts: TransportOptions, min_subs: int, most_subs: int,
              most_ns: int, most_ctrlrs: int, most_io: int, most_depth: int,
              total_depth: int | None = None, ns_bytes: int | None = None) -> Topology:
    ports = draw(st.integers(1, opts.max_ports))
    budget = opts.max_qpairs
    depth_left = total_depth
    subsystems = []
    for s in range(draw(st.integers(min_subs, most_subs))):
        # keep one admin qpair per remaining mandatory subsystem
        reserve = max(0, min_subs - s - 1)
        room = budget - reserve
        if room < 1 or (depth_left is not None and depth_left - 2 * reserve < 2):
            break
        nss = tuple(draw(st.lists(namespaces(max_bytes=ns_bytes), min_size=1,
                                  max_size=most_ns)))
        ctrlrs = []
        for _ in range(draw(st.integers(1, min(most_ctrlrs, room)))):
            if room < 1:
                break
            ctrlr = draw(_controller(opts.num_poll_groups, ports, min(most_io, room - 1),
                                     most_depth))
            fitted, depth_left = _charge_depth(ctrlr, depth_left, reserve)
            if fitted is None:
                break
            room -= 1 + len(fitted.io)
            budget -= 1 + len(fitted.io)
            ctrlrs.append(fitted)
        subsystems.append(Subsystem(nss, tuple(ctrlrs)))
    return Topology(ports, tuple(subsystems))


def _charge_depth(ctrlr: Controller, depth_left: int | None,
                  reserve: int) -> tuple[Controller | None, int | None]:
    """``ctrlr`` cut to the queue entries left (two kept for each of the ``reserve``
    mandatory subsystems still to come) and what is left after it; None (and the entries
    unchanged) if it does not fit.  Without a bound (``depth_left`` None) it is kept whole."""
    if depth_left is None:
        return ctrlr, None
    cut = _within_depth(ctrlr, depth_left - 2 * reserve)
    if cut is None:
        return None, depth_left
    return cut, depth_left - cut.admin.depth - sum(q.depth for q in cut.io)


def _within_depth(ctrlr: Controller, left: int) -> Controller | None:
    """``ctrlr`` with its qpairs made shallower (never below 2) and trailing IO qpairs left
    out until their depths sum to at most ``left``; None if not even its admin qpair fits."""
    if left < 2:
        return None
    admin = replace(ctrlr.admin, depth=min(ctrlr.admin.depth, left))
    left -= admin.depth
    io = []
    for q in ctrlr.io:
        if left < 2:
            break
        io.append(replace(q, depth=min(q.depth, left)))
        left -= io[-1].depth
    return Controller(admin, tuple(io))


@st.composite
def _controller(draw: DrawFn, groups: int, ports: int, most_io: int,
                most_depth: int) -> Controller:
    # depth >= 2: CONNECT's 0-based sqsize must be >= 1 (an NVMe queue holds >= 2 entries)
    depth = st.one_of(st.integers(min(2, most_depth), most_depth), st.just(most_depth))
    n_io = draw(st.integers(0, most_io))
    port = draw(st.integers(0, ports - 1))
    placement = draw(st.sampled_from(PLACEMENTS)) if groups > 1 else "packed"
    admin_group = draw(st.integers(0, groups - 1))
    io = []
    for _ in range(n_io):
        if placement == "packed":
            group = admin_group
        elif placement == "spread":
            group = draw(st.integers(0, groups - 1))
        else:  # admin_apart: any group but the admin's
            group = (admin_group + 1 + draw(st.integers(0, groups - 2))) % groups
        io.append(QpairPlacement(draw(depth), group, port))
    return Controller(QpairPlacement(draw(depth), admin_group, port), tuple(io))
