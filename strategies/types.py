"""Plain frozen dataclasses produced by the strategies.

Nothing here draws, validates or talks to a target: these are the *values* a harness
receives.  They are frozen so a drawn example cannot be mutated by the test that uses it
(Hypothesis replays examples; a mutated one would replay differently).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from strategies import nvme

# ---------------------------------------------------------------------------- options


@dataclass(frozen=True)
class TransportOptions:
    """Mirror of ``struct nrt_opts`` (same fields, same order, same defaults as
    ``nrt_opts_default``).  See ``strategies.limits`` for the acceptance rule."""

    max_queue_depth: int = 128
    max_io_size: int = 131072
    io_unit_size: int = 8192
    in_capsule_data_size: int = 4096
    num_shared_buffers: int = 4095
    buf_cache_size: int = 32
    wr_pool_multiplier: int = 16
    wr_pool_size: int = 0
    wr_cache_size: int = 32
    num_poll_groups: int = 4
    max_read_depth: int = 16
    max_send_depth: int = 0
    max_sge: int = 16
    max_sgl_descriptors: int = 16
    keep_alive_ticks: int = 0
    max_qpairs: int = 256
    max_ports: int = 4
    max_subsystems: int = 64
    max_namespaces: int = 4
    max_memory_regions: int = 64
    defects: int = 0
    srq: int = 0
    max_srq_depth: int = 0

    def as_dict(self) -> dict[str, int]:
        """Field name -> value, in struct order (ready for ``ffi.new("struct nrt_opts *")``)."""
        return dataclasses.asdict(self)

    def replace(self, **changes: int) -> TransportOptions:
        """A copy with some fields changed (unknown names raise ``TypeError``)."""
        return dataclasses.replace(self, **changes)


#: Field names of ``struct nrt_opts`` in declaration order.
OPTION_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(TransportOptions))


@dataclass(frozen=True)
class Refusal:
    """Why ``strategies.limits`` says the target must refuse some options.

    ``kind`` is a stable rule name (one of ``strategies.limits.REFUSAL_KINDS``);
    ``message`` is human-readable and names the field, its value and the bound (for pool
    rules, the minimum and how it is computed)."""

    kind: str
    field: str
    message: str


@dataclass(frozen=True)
class RefusedOptions:
    """Options the target must refuse, tagged with the rule they break.

    ``reason_kind`` is the first rule ``strategies.limits.refusals`` reports for ``opts``;
    ``variant`` says how it was broken (e.g. ``"zero"``, ``"too_large"``) for coverage
    reports only."""

    opts: TransportOptions
    reason_kind: str
    variant: str = ""


# --------------------------------------------------------------------------- topology


@dataclass(frozen=True)
class Namespace:
    """A RAM namespace: ``num_blocks`` blocks of ``block_size`` bytes."""

    block_size: int
    num_blocks: int

    @property
    def size_bytes(self) -> int:
        return self.block_size * self.num_blocks


@dataclass(frozen=True)
class QpairPlacement:
    """Where a qpair lives: queue ``depth`` (request slots; CONNECT sqsize = depth - 1),
    poll ``group`` index and ``port`` index."""

    depth: int
    group: int
    port: int


@dataclass(frozen=True)
class Controller:
    """One host controller: an admin qpair (qid 0) plus IO qpairs (qid 1..len(io))."""

    admin: QpairPlacement
    io: tuple[QpairPlacement, ...]

    @property
    def admin_apart(self) -> bool:
        """True if the admin qpair shares a poll group with none of its IO qpairs (the
        SPDK issue 3328 placement: keep-alive runs on a core that cannot see the stall)."""
        return bool(self.io) and all(q.group != self.admin.group for q in self.io)


@dataclass(frozen=True)
class Subsystem:
    """A subsystem: namespaces (nsid = index + 1) and the controllers connected to it."""

    namespaces: tuple[Namespace, ...]
    controllers: tuple[Controller, ...]


@dataclass(frozen=True)
class Topology:
    """Ports, subsystems, namespaces and qpair placements for one transport."""

    num_ports: int
    subsystems: tuple[Subsystem, ...]

    def qpairs(self) -> Iterator[QpairPlacement]:
        """Every qpair, admin first within each controller, in creation order."""
        for sub in self.subsystems:
            for ctrlr in sub.controllers:
                yield ctrlr.admin
                yield from ctrlr.io

    @property
    def num_qpairs(self) -> int:
        return sum(1 for _ in self.qpairs())

    @property
    def num_controllers(self) -> int:
        return sum(len(s.controllers) for s in self.subsystems)


# ------------------------------------------------------------------------ SGL, commands

SglKind = Literal["in_capsule", "keyed", "keyed_list"]
Direction = Literal["h2c", "c2h"]


@dataclass(frozen=True)
class SglLayout:
    """How a command's data is described.

    * ``in_capsule``: SGL1 is a data-block descriptor (subtype offset); ``offsets[0]`` is the
      offset inside the in-capsule data area, so the host attaches
      ``offsets[0] + lengths[0]`` bytes.
    * ``keyed``: SGL1 is one keyed data-block descriptor at host address ``offsets[0]``.
    * ``keyed_list``: SGL1 is a last-segment descriptor (subtype offset) pointing at
      ``len(lengths)`` keyed descriptors carried in the capsule; descriptor ``i`` covers
      transfer bytes ``[sum(lengths[:i]), sum(lengths[:i+1]))`` and sits at host address
      ``offsets[i]`` (offsets may leave gaps and need not be ascending: SGE order is
      transfer order, not address order).
    """

    kind: SglKind
    lengths: tuple[int, ...]
    offsets: tuple[int, ...]

    @property
    def length(self) -> int:
        """Total transfer length in bytes."""
        return sum(self.lengths)

    @property
    def count(self) -> int:
        return len(self.lengths)

    @property
    def host_span(self) -> int:
        """Bytes of host memory (or in-capsule area) the layout touches, from offset 0."""
        return max(o + n for o, n in zip(self.offsets, self.lengths, strict=True))

    def transfer_ranges(self) -> tuple[tuple[int, int], ...]:
        """``(start, end)`` of each descriptor in transfer-byte space."""
        out, pos = [], 0
        for n in self.lengths:
            out.append((pos, pos + n))
            pos += n
        return tuple(out)

    def crosses_unit_boundary(self, io_unit_size: int) -> bool:
        """True if some descriptor straddles a data-buffer boundary (an ``io_unit_size``
        multiple strictly inside it) - the case where one SGE maps to two buffers."""
        return any(
            (start // io_unit_size) != ((end - 1) // io_unit_size)
            for start, end in self.transfer_ranges()
        )


IoOp = Literal["read", "write", "flush"]
_IO_OPCODES: dict[str, int] = {"read": nvme.OPC_READ, "write": nvme.OPC_WRITE,
                               "flush": nvme.OPC_FLUSH}


@dataclass(frozen=True)
class IoCommand:
    """An NVM command. ``nlb`` is 0-based as in NVMe; ``layout`` is None for flush."""

    op: IoOp
    nsid: int
    slba: int
    nlb: int
    layout: SglLayout | None

    @property
    def opcode(self) -> int:
        return _IO_OPCODES[self.op]

    @property
    def direction(self) -> Direction | None:
        return {"write": "h2c", "read": "c2h"}.get(self.op)  # type: ignore[return-value]

    def transfer_length(self, block_size: int) -> int:
        return 0 if self.op == "flush" else (self.nlb + 1) * block_size


AdminKind = Literal["identify", "keep_alive", "abort", "property_get", "property_set"]


@dataclass(frozen=True)
class AdminCommand:
    """A well-formed admin-queue command.

    ``cdw10`` holds the identify CNS, abort's ``sqid << 16 | cid`` or the property offset;
    ``value`` is the Property Set value; ``layout`` describes identify's controller-to-host
    data (None for commands without data)."""

    kind: AdminKind
    opcode: int
    fctype: int = 0
    nsid: int = 0
    cdw10: int = 0
    value: int = 0
    layout: SglLayout | None = None


# -------------------------------------------------------------------- schedules, faults

ScheduleKind = Literal["h2t", "t2h", "poll", "bdev", "tick"]


@dataclass(frozen=True)
class ScheduleStep:
    """One drawn element: micro-event ``kind`` on object ``index``, ``repeat`` times."""

    kind: ScheduleKind
    index: int
    repeat: int = 1


@dataclass(frozen=True)
class Schedule:
    """A short list of drawn steps a harness expands into micro-events.

    ``index`` is a small integer the harness reduces modulo the number of live objects of
    that kind (qpairs for h2t/t2h, poll groups for poll, pending block-device IOs for bdev,
    which ``nrt_run`` reduces itself); for ``tick`` it is the number of ticks to advance."""

    steps: tuple[ScheduleStep, ...]

    @property
    def events(self) -> tuple[tuple[ScheduleKind, int], ...]:
        """The micro-events, bursts expanded: ``(kind, index)`` pairs."""
        return tuple((s.kind, s.index) for s in self.steps for _ in range(s.repeat))

    def to_words(self, resolve: Callable[[ScheduleKind, int], int | None]) -> list[int]:
        """Encode for ``nrt_run``: ``(NRT_EV_* << 24) | arg`` per micro-event.

        ``resolve(kind, index)`` maps a drawn index to the target's argument (e.g. a live
        qpair handle) or returns None to skip the event (nothing of that kind is live)."""
        words = []
        for kind, index in self.events:
            arg = resolve(kind, index)
            if arg is not None:
                words.append((nvme.EVENT_KINDS[kind] << 24) | (arg & nvme.EV_ARG_MASK))
        return words


FaultKind = Literal["qpair_error", "port_down", "port_up", "post_fail", "bdev_error",
                    "host_disconnect", "qpair_disconnect", "transport_destroy"]


@dataclass(frozen=True)
class Fault:
    """One injected fault.

    ``target`` is a small index the harness reduces modulo the live qpairs (qpair kinds) or
    ports (port kinds); unused for ``bdev_error`` and ``transport_destroy``.  ``count`` is
    the number of failing posts (``post_fail``) or failing block-device IOs
    (``bdev_error``); ``status`` is the injected NVMe status for ``bdev_error``."""

    kind: FaultKind
    target: int = 0
    count: int = 0
    status: int = 0


#: A fault plan: ``(at_step, fault)`` pairs sorted by step; a harness fires each fault
#: before executing step ``at_step`` of its rule sequence / schedule.
FaultPlan = tuple[tuple[int, Fault], ...]


# -------------------------------------------------------------------------- malformed

MalformedQueue = Literal["io", "admin", "io_unconnected", "admin_unconnected"]


@dataclass(frozen=True)
class Malformed:
    """One malformed input and the status the target must answer with (ERR-1).

    The harness builds the well-formed command named by ``base`` (see the table in
    ``strategies.malformed``) on a qpair in state ``queue``, performs ``setup`` actions,
    applies ``capsule_overrides`` and submits it with ``icd_len`` in-capsule bytes (None:
    whatever the base attaches).  ``expected_status`` is the status the target must
    return; ``alternatives`` lists other statuses the spec leaves room for."""

    kind: str
    base: str
    queue: MalformedQueue
    capsule_overrides: Mapping[str, Any] = field(default_factory=dict, hash=False)
    expected_status: int = nvme.SC_SUCCESS
    alternatives: tuple[int, ...] = ()
    icd_len: int | None = None
    setup: tuple[str, ...] = ()

    def accepts(self, status: int) -> bool:
        """True if ``status`` is the expected one or an allowed alternative."""
        return status == self.expected_status or status in self.alternatives
