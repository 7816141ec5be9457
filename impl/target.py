"""The Python facade over the compiled C target and its rig: the only interface the suite
uses.

A :class:`Transport` owns one rig (``nrt_rig_*`` in ``impl/csrc/nrt.h``): a simverbs
fabric, the built-in transport running on it as a verbs program, and the host.  The
harness drives everything through it: RDMA CM connects with the NVMe/RDMA private data,
capsules encoded to wire bytes (:mod:`impl.wire`: 64-byte SQE, keyed SGLs, in-capsule
data) and sent as host SENDs, 16-byte CQEs received and decoded, executions of posted work
requests, poll-group polling, block-device completion, faults, and every introspection
counter.  Errors raise :class:`TargetError` carrying the target's or the rig's message.

"qpair" handles here are the rig's connection handles: each names one host QP and the
target qpair it is connected to.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from impl import wire
from impl._nrt import ffi, lib
from impl.nvme import (
    MAX_SGL_DESC,
    SGL_SUBTYPE_ADDRESS,
    SGL_SUBTYPE_OFFSET,
    SGL_TYPE_DATA_BLOCK,
    SGL_TYPE_KEYED_DATA,
    SGL_TYPE_LAST_SEGMENT,
    Defect,
    ErrorCode,
    Event,
    Opcode,
)

#: The NQN the facade gives subsystem ``i`` and the host it connects as.
SUBSYSTEM_NQN = "nqn.2026-12.io.nrt-conformance:subsystem-{}"
HOST_NQN = "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-4000-8000-6e7274686f73"
HOST_ID = bytes.fromhex("000000000000400080006e7274686f73")

_ERRLEN = 256
#: Seconds one call into an isolated target may take before it counts as a hang.
WATCHDOG_S = float(os.environ.get("NRT_WATCHDOG_S", "30"))


class TargetError(Exception):
    """A call the target refused; ``code`` is the negative ``NRT_E*`` value."""

    def __init__(self, code: int, message: str):
        self.code = code
        try:
            name = ErrorCode(code).name
        except ValueError:
            name = str(code)
        super().__init__(f"{name}: {message}")
        self.message = message


class OptionsRefused(TargetError):
    """Transport options the target will not accept; the message says why."""


# ---------------------------------------------------------------------------------------
# Options


@dataclass(frozen=True)
class Options:
    """Transport options (``struct nrt_opts``).  Defaults match ``nrt_opts_default``."""

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
    srq: int = 0              # 1: a poll group's qpairs on a device share a receive queue
    max_srq_depth: int = 0    # receive WRs per shared receive queue (0: the target's default)

    @classmethod
    def from_any(cls, value: Any = None, **overrides: Any) -> Options:
        """Options from ``None``, an ``Options``, a mapping, or any object with the fields
        (for example a strategies dataclass), then ``overrides``."""
        if value is None:
            base: dict[str, Any] = {}
        elif isinstance(value, Options):
            base = dataclasses.asdict(value)
        elif isinstance(value, dict):
            base = dict(value)
        else:
            base = {f.name: getattr(value, f.name) for f in dataclasses.fields(cls)
                    if hasattr(value, f.name)}
        base.update(overrides)
        unknown = set(base) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown transport options: {', '.join(sorted(unknown))}")
        if isinstance(base.get("defects"), str):
            base["defects"] = int(Defect.by_name(base["defects"]))
        return cls(**base)

    def _to_c(self, ffi: Any = ffi) -> Any:
        c = ffi.new("struct nrt_opts *")
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or value < 0 or value >= 1 << 32:
                raise OptionsRefused(lib.NRT_EINVAL,
                                     f"{f.name} = {value!r} is not a 32-bit unsigned integer")
            setattr(c, f.name, value)
        return c

    def fitted(self, backend: Any = None) -> Options:
        """These options moved into the space the target honours exactly as asked (the
        nearest values; the built-in target keeps them all)."""
        from impl import backends

        b = backend if backend is not None else backends.default()
        c = self._to_c(b.ffi)
        if int(b.lib.nrt_opts_fit(c)) == 0:
            return self
        return Options(**{f.name: int(getattr(c, f.name)) for f in dataclasses.fields(Options)})

    def takes_srq(self, backend: Any = None) -> bool:
        """True if the target keeps ``srq=1`` when fitting (it has a shared receive queue
        mode); a target without one moves it to 0 (and refuses it at creation)."""
        return self.__class__.from_any(self, srq=1).fitted(backend).srq == 1

    @property
    def max_wrs_per_request(self) -> int:
        return int(lib.nrt_opts_max_wrs_per_request(self._to_c()))

    @property
    def min_wr_pool(self) -> int:
        return int(lib.nrt_opts_min_wr_pool(self._to_c()))

    @property
    def min_buffers(self) -> int:
        return int(lib.nrt_opts_min_buffers(self._to_c()))

    @property
    def wr_pool_capacity(self) -> int:
        """The capacity the configuration asks for: explicit size, else depth x multiplier."""
        return self.wr_pool_size or self.max_queue_depth * self.wr_pool_multiplier

    def refusal(self) -> str | None:
        """Why the target would refuse these options, or ``None`` if it accepts them."""
        err = ffi.new("char[]", _ERRLEN)
        try:
            c = self._to_c()
        except OptionsRefused as exc:
            return exc.message
        if lib.nrt_opts_validate(c, err, _ERRLEN) == 0:
            return None
        return ffi.string(err).decode()


# ---------------------------------------------------------------------------------------
# Capsules


@dataclass(frozen=True)
class SglDesc:
    """One SGL descriptor.  Keyed: ``addr`` is the offset in the host region ``key`` (the
    wire carries the region's IO virtual address plus it); in-capsule data and last
    segments: ``addr`` is the offset in the capsule's in-capsule bytes."""

    addr: int = 0
    length: int = 0
    key: int = 0
    type: int = SGL_TYPE_KEYED_DATA
    subtype: int = SGL_SUBTYPE_ADDRESS


def keyed(addr: int, length: int, key: int) -> SglDesc:
    return SglDesc(addr, length, key, SGL_TYPE_KEYED_DATA, SGL_SUBTYPE_ADDRESS)


def in_capsule(length: int, offset: int = 0) -> SglDesc:
    return SglDesc(offset, length, 0, SGL_TYPE_DATA_BLOCK, SGL_SUBTYPE_OFFSET)


def last_segment(count: int) -> SglDesc:
    """SGL1 pointing at ``count`` descriptors carried in the capsule (16 bytes each)."""
    return SglDesc(0, count * 16, 0, SGL_TYPE_LAST_SEGMENT, SGL_SUBTYPE_OFFSET)


@dataclass(frozen=True)
class Capsule:
    """A command, in the terms the harness thinks in; :meth:`to_wire` makes the NVMe-oF
    bytes (:class:`impl.wire.Capsule`).  IO: ``slba``/``nlb`` go to CDW10-12; admin:
    ``cdw10``; Property Get/Set: ``cdw10`` is OFST, ``value`` VALUE; Connect: ``qid``,
    ``sqsize``, ``kato`` in the SQE and ``subsystem`` (its NQN), ``cntlid`` in the connect
    data."""

    opcode: int
    cid: int
    nsid: int = 0
    slba: int = 0
    nlb: int = 0
    fctype: int = 0
    cdw10: int = 0
    value: int = 0
    qid: int = 0
    cntlid: int = 0
    subsystem: int = 0
    sqsize: int = 0
    kato: int = 0
    sgl: SglDesc = field(default_factory=SglDesc)
    descriptors: tuple[SglDesc, ...] = ()

    @classmethod
    def with_data(cls, opcode: int, cid: int, descs: Sequence[SglDesc], **kw: Any) -> Capsule:
        """One descriptor goes in SGL1; several go in a last-segment list."""
        if len(descs) == 1:
            return cls(opcode, cid, sgl=descs[0], **kw)
        return cls(opcode, cid, sgl=last_segment(len(descs)), descriptors=tuple(descs), **kw)

    def to_wire(self, iova: Any = lambda key: 0, icd: bytes = b"",
                connect_sgl: wire.SglDescriptor | None = None) -> wire.Capsule:
        """The capsule's bytes: ``iova(key)`` gives a host region's IO virtual address
        (0 for an unknown key: the address is then the offset itself)."""
        if len(self.descriptors) > MAX_SGL_DESC:
            raise ValueError(f"a capsule carries at most {MAX_SGL_DESC} descriptors")

        def desc(d: SglDesc) -> wire.SglDescriptor:
            if d.type == SGL_TYPE_KEYED_DATA:
                return wire.SglDescriptor(iova(d.key) + d.addr, d.length, d.key, d.type,
                                          d.subtype)
            return wire.SglDescriptor(d.addr, d.length, 0, d.type, d.subtype)

        if self.opcode == wire.OPC_FABRICS and self.fctype == wire.FCTYPE_CONNECT:
            data = wire.ConnectData(HOST_ID, 0xFFFF if self.qid == 0 else self.cntlid,
                                    SUBSYSTEM_NQN.format(self.subsystem).encode(),
                                    HOST_NQN.encode())
            sqe = wire.ConnectSqe(self.cid, self.qid, self.sqsize, 0, self.kato, 0,
                                  connect_sgl or wire.data_block_offset(
                                      0, wire.CONNECT_DATA_SIZE))
            return wire.Capsule(sqe.sqe(), b"" if connect_sgl else data.encode())
        if self.opcode == wire.OPC_FABRICS:
            size = 1 if self.cdw10 == 0 else 0   # CAP is the one 8-byte register read here
            prop = wire.PropertySqe(self.fctype, self.cid, self.cdw10, size, self.value)
            return wire.Capsule(prop.sqe())
        listed = b"".join(desc(d).encode() for d in self.descriptors)
        io = self.opcode in (Opcode.READ, Opcode.WRITE, Opcode.FLUSH)
        sgl1 = desc(self.sgl) if (self.opcode & 3 or self.descriptors) else wire.NULL_SGL
        sqe = wire.Sqe(opc=self.opcode, cid=self.cid, nsid=self.nsid, sgl1=sgl1,
                       cdw10=(self.slba & 0xFFFFFFFF) if io else self.cdw10,
                       cdw11=(self.slba >> 32) if io else 0,
                       cdw12=self.nlb if io else 0)
        return wire.Capsule(sqe, listed + bytes(icd))

    def connect_data(self) -> bytes:
        """The 1024-byte connect data of a Connect capsule."""
        return wire.ConnectData(HOST_ID, 0xFFFF if self.qid == 0 else self.cntlid,
                                SUBSYSTEM_NQN.format(self.subsystem).encode(),
                                HOST_NQN.encode()).encode()


def connect_capsule(cid: int, subsystem: int, qid: int = 0, cntlid: int = 0,
                    sqsize: int = 1, kato: int = 0) -> Capsule:
    return Capsule(Opcode.FABRICS, cid, fctype=lib.NRT_FCTYPE_CONNECT, subsystem=subsystem,
                   qid=qid, cntlid=cntlid, sqsize=sqsize, kato=kato)


#: CC with EN = 1, IOSQES = 6 (64-byte SQEs), IOCQES = 4 (16-byte CQEs), NVM command set,
#: 4 KiB pages, round robin (NVMe base 2.0 3.1.3.5).  A host enables the controller this
#: way after the admin Connect and before connecting IO queues (base 3.5.1).
CC_ENABLE = 0x00460001
REG_CC = 0x14


def enable_capsule(cid: int) -> Capsule:
    """Property Set CC = :data:`CC_ENABLE` (NVMe-oF 1.1 3.5)."""
    return Capsule(Opcode.FABRICS, cid, fctype=lib.NRT_FCTYPE_PROPERTY_SET, cdw10=REG_CC,
                   value=CC_ENABLE)


# ---------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class Response:
    cid: int
    status: int
    sqhd: int
    result: int
    unexpected: bool
    sqid: int = 0
    raw_status: int = 0
    byte_len: int = 16


@dataclass(frozen=True)
class ConnInfo:
    """What the host's RDMA CM connect came to (``struct nrt_conn_info``)."""

    conn: int
    state: int          # 1 connecting, 2 established, 3 rejected, 4 disconnected
    qpair: int
    reject_sts: int
    reject_recfmt: int
    crqsize: int
    accept_recfmt: int
    accept_len: int
    initiator_depth: int
    responder_resources: int
    reserved: int
    host_qp_num: int
    target_qp_num: int
    host_qp_state: int
    target_qp_state: int

    ESTABLISHED = 2
    REJECTED = 3
    QPS_ERR = 6   # enum ibv_qp_state

    @property
    def failed(self) -> bool:
        """What the fabric says: the connection can carry nothing any more."""
        return (self.state != self.ESTABLISHED or self.host_qp_state == self.QPS_ERR
                or self.target_qp_state in (0, self.QPS_ERR))


@dataclass(frozen=True)
class GroupView:
    polls: int
    idle_polls: int
    reaped: int


@dataclass(frozen=True)
class FabricStats:
    """What simverbs did (``struct nrt_fabric_stats``)."""

    executed: int
    sends: int
    rdma_reads: int
    rdma_writes: int
    bytes_moved: int
    completions: int
    flushed: int
    remote_access_errors: int
    rnr_waits: int
    rnr_errors: int
    failed_posts: int
    cm_events: int
    async_events: int
    dropped_events: int
    cq_overruns: int
    live_objects: int
    leaked_objects: int


@dataclass(frozen=True)
class PoolCounts:
    capacity: int
    ring_free: int
    cached: int
    held: int
    duplicates: int
    missing: int
    get_failures: int

    @property
    def accounted(self) -> int:
        return self.ring_free + self.cached + self.held


@dataclass(frozen=True)
class GroupStats:
    polls: int
    idle_polls: int
    completions: int
    requests: int
    pending_data_buffer: int
    num_qpairs: int
    cq_entries: int
    wr_cached: int
    buf_cached: int


@dataclass(frozen=True)
class QpairInfo:
    id: int
    qid: int
    group: int
    port: int
    state: int
    cntlid: int
    depth: int
    max_read_depth: int
    max_send_depth: int
    cur_read_depth: int
    cur_send_depth: int
    slots_free: int
    slots_used: int
    recv_posted: int
    recv_in_cq: int
    recv_held: int
    recv_idle: int
    pending_read: int
    pending_write: int
    pending_send: int
    wire_h2t: int
    wire_t2h: int
    host_outstanding: int
    host_unreaped: int
    max_read_depth_seen: int
    max_send_depth_seen: int
    req_states: tuple[int, ...]
    qp_num: int = 0
    signaled_outstanding: int = 0


@dataclass(frozen=True)
class RequestInfo:
    slot: int
    cid: int
    opcode: int
    state: int
    queue: int
    xfer: int
    length: int
    num_bufs: int
    num_wrs: int
    wrs_posted: int
    wrs_outstanding: int


@dataclass(frozen=True)
class DestroyReport:
    wr_expected: int
    wr_returned: int
    buf_expected: int
    buf_returned: int
    requests_released: int
    message: str


@dataclass(frozen=True)
class DrainResult:
    rounds: int
    quiescent: bool
    stalled: bool
    progress: int


@dataclass(frozen=True)
class AsyncEvent:
    type: int
    object: int


@dataclass(frozen=True)
class Workload:
    """A C-driven workload: ``ios`` IOs of ``io_bytes`` at ``queue_depth``."""

    opcode: int
    nsid: int
    io_bytes: int
    ndesc: int
    queue_depth: int
    ios: int
    mkey: int

    def _to_c(self, ffi: Any = ffi) -> Any:
        c = ffi.new("struct nrt_workload *")
        for f in dataclasses.fields(self):
            setattr(c, f.name, getattr(self, f.name))
        return c


_FIELDS: dict[type, tuple[str, ...]] = {}


def _struct(cls: type, c: Any, num_states: int | None = None) -> Any:
    """A frozen result dataclass from a C struct with the same field names (``num_states``:
    how many of ``req_states`` the target's description says are its states)."""
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls))
    values = [getattr(c, n) for n in names]
    if cls is QpairInfo:
        values[names.index("req_states")] = tuple(c.req_states)[:num_states]
    elif cls is DestroyReport:
        values[-1] = ffi.string(values[-1]).decode()
    return cls(*values)


def event(kind: int, arg: int) -> int:
    """Encode one micro-event for :meth:`Transport.run`."""
    return (int(kind) << 24) | (arg & 0xFFFFFF)


# ---------------------------------------------------------------------------------------
# The target's description (the target protocol: what a target declares about itself)

#: Capability name ("WR_POOL", ...) -> its NRT_CAP_* bit, from the contract's header.
CAPABILITIES: Mapping[str, int] = MappingProxyType({
    name[len("NRT_CAP_"):]: getattr(lib, name) for name in sorted(dir(lib))
    if name.startswith("NRT_CAP_") and isinstance(getattr(lib, name), int)})
#: Capabilities that say how the target runs rather than what introspection it offers: a
#: target declares them in the mode they describe (SHARED_RECEIVES: with ``srq``), and the
#: judging leaves out what that mode makes meaningless.
MODE_CAPABILITIES: frozenset[str] = frozenset({"SHARED_RECEIVES"})


@dataclass(frozen=True)
class TargetDescription:
    """What a target declares (``struct nrt_target_desc``): its name and version, the
    introspection it offers (``caps``, names of :data:`CAPABILITIES`), and its request
    states by its own numbering and names, with the legal transition graph (``legal``:
    ``(from, to)`` pairs) and the ``NRT_QUEUE_*`` queue a request in each state sits on
    (``queue_of_state``: every state, 0 for none).  Checks judge a target against this, not
    against any one target's private numbering."""

    name: str
    version: str
    caps: frozenset[str]
    num_states: int
    free_state: int
    state_names: tuple[str, ...]
    queue_of_state: Mapping[int, int]
    legal: frozenset[tuple[int, int]]
    also_on_queue: Mapping[int, int] = field(default_factory=dict)   # a second queue allowed

    def has(self, *caps: str) -> bool:
        """True if the target declares every one of ``caps``."""
        unknown = set(caps) - set(CAPABILITIES)
        if unknown:
            raise ValueError(f"unknown capabilities {sorted(unknown)}; known: "
                             f"{', '.join(CAPABILITIES)}")
        return set(caps) <= self.caps

    def state_name(self, state: int) -> str:
        """The target's own name for ``state``, or the raw value for one it never declared."""
        if 0 <= state < len(self.state_names):
            return self.state_names[state]
        return f"state {state} (undeclared)"

    def states_on(self, queue: int) -> tuple[int, ...]:
        """The states whose requests sit on ``queue``."""
        return tuple(s for s, q in self.queue_of_state.items() if q == queue)

    def queues_allowed(self, state: int) -> tuple[int, ...]:
        """The queues a request in ``state`` may sit on: the one it implies, and a second
        one the target declares for it (``also_on_queue``)."""
        first = self.queue_of_state.get(state, 0)
        second = self.also_on_queue.get(state, 0)
        return (first, second) if second and second != first else (first,)

    @property
    def label(self) -> str:
        """``name version`` for headers and reports."""
        return f"{self.name} {self.version}".strip()

    @classmethod
    def from_c(cls, c: Any) -> TargetDescription:
        n = int(c.num_states)
        if not 0 < n <= lib.NRT_MAX_STATES:
            raise TargetError(lib.NRT_EINVAL, f"target describes {n} request states "
                                              f"(1..{lib.NRT_MAX_STATES} allowed)")
        caps = frozenset(name for name, bit in CAPABILITIES.items() if c.caps & bit)
        names = tuple(ffi.string(c.state_names[i]).decode(errors="replace") or f"state {i}"
                      for i in range(n))
        legal = frozenset((i, j) for i in range(n) for j in range(n)
                          if c.legal[i] >> j & 1)
        return cls(ffi.string(c.name).decode(errors="replace"),
                   ffi.string(c.version).decode(errors="replace"), caps, n,
                   int(c.free_state), names,
                   MappingProxyType({i: int(c.queue_of_state[i]) for i in range(n)}), legal,
                   MappingProxyType({i: int(c.also_on_queue[i]) for i in range(n)
                                     if c.also_on_queue[i]}))


# ---------------------------------------------------------------------------------------
# Transport


class Transport:
    """One target transport on its own simverbs fabric, with the host.  Use as a context
    manager, or call :meth:`destroy`."""

    HANDLE_SLOTS = 1 << 24   # connection handles are small: micro-event args take them as is
    CONNECT_SCRATCH = 64     # connect data slots, when it cannot ride in-capsule

    def __init__(self, opts: Any = None, *, backend: Any = None, **overrides: Any):
        from impl import backends

        self.backend = backend if backend is not None else backends.default()
        self._ffi = self.backend.ffi
        self._child: Any = None
        if self.backend.isolate:
            # a child of its own per transport: a crash ends this transport only
            from impl.isolation import IsolatedLib

            self._child = IsolatedLib(self.backend.library, watchdog_s=WATCHDOG_S)
        self._lib = self._child if self._child is not None else self.backend.lib
        self.options = Options.from_any(opts, **overrides)
        err = self._ffi.new("char[]", _ERRLEN)
        handle = self._lib.nrt_rig_create(self.options._to_c(self._ffi), err, _ERRLEN)
        if handle == self._ffi.NULL:
            self._close_child()
            raise OptionsRefused(lib.NRT_EINVAL, self._ffi.string(err).decode())
        self._t = handle
        self._tp = self._lib.nrt_rig_transport(handle)   # fixed for the rig's life
        self._resp = self._ffi.new("struct nrt_response[]", 256)
        self._info = self._ffi.new("struct nrt_qpair_info *")
        self._pool = self._ffi.new("struct nrt_pool_counts *")
        self._qp_buf = self._ffi.new("int32_t[]", self.options.max_qpairs + 64)
        self._reqs: Any = None
        self._iova: dict[int, int] = {}
        self._connect_key: int | None = None
        self._connect_slot = 0
        self._subsystems = 0
        self.report: DestroyReport | None = None

    # -- plumbing -------------------------------------------------------------------
    def _handle(self) -> Any:
        if self._t is None:
            raise TargetError(lib.NRT_ESTATE, "transport already destroyed")
        return self._t

    def _check(self, rc: int) -> int:
        if rc < 0:
            raise TargetError(rc, self._ffi.string(self._lib.nrt_rig_error(self._t)).decode())
        return rc

    @property
    def _target(self) -> Any:
        self._handle()
        return self._tp

    def __enter__(self) -> Transport:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._t is not None:
            self.destroy()

    def __del__(self) -> None:
        # at interpreter exit the module globals may already be gone: nothing to free then
        if getattr(self, "_t", None) is not None and getattr(self, "_lib", None) is not None:
            try:
                self._lib.nrt_rig_destroy(self._t, self._ffi.NULL)
            except Exception:  # noqa: BLE001, S110 - a dead isolated target has nothing to free
                pass
            self._t = None
        if getattr(self, "_child", None) is not None:
            self._close_child()

    @property
    def alive(self) -> bool:
        return self._t is not None

    @property
    def effective_options(self) -> Options:
        """What the target actually runs with (``max_send_depth`` resolved)."""
        c = self._ffi.new("struct nrt_opts *")
        self._lib.nrt_transport_get_opts(self._target, c)
        return Options(**{f.name: getattr(c, f.name) for f in dataclasses.fields(Options)})

    def destroy(self) -> DestroyReport:
        """Abrupt destroy with IO in any state; returns the target's own pool report."""
        rep = self._ffi.new("struct nrt_destroy_report *")
        try:
            self._lib.nrt_rig_destroy(self._handle(), rep)
        finally:
            self._t = None
            self._close_child()
        self.report = _struct(DestroyReport, rep)
        return self.report

    def _close_child(self) -> None:
        if self._child is not None:
            self._child.close()
            self._child = None

    # -- topology -------------------------------------------------------------------
    def add_port(self) -> int:
        """A simverbs device with the target listening on it."""
        return self._check(self._lib.nrt_rig_port_add(self._handle()))

    def port_down(self, port: int) -> None:
        self._check(self._lib.nrt_rig_port_down(self._handle(), port))

    def port_up(self, port: int) -> None:
        self._check(self._lib.nrt_rig_port_up(self._handle(), port))

    def remove_device(self, port: int) -> None:
        self._check(self._lib.nrt_rig_device_remove(self._handle(), port))

    def _target_check(self, rc: int) -> int:
        if rc < 0:
            raise TargetError(rc, self._ffi.string(self._lib.nrt_transport_error(self._target)).decode())
        return rc

    def add_subsystem(self) -> int:
        """A subsystem named ``SUBSYSTEM_NQN.format(index)``; returns its index."""
        nqn = SUBSYSTEM_NQN.format(self._subsystems).encode()
        index = self._target_check(self._lib.nrt_subsystem_add(self._target, nqn))
        self._subsystems += 1
        return index

    def add_namespace(self, subsystem: int, block_size: int, num_blocks: int) -> int:
        return self._target_check(self._lib.nrt_namespace_add(self._target, subsystem, block_size,
                                                        num_blocks))

    def set_namespace_ready(self, subsystem: int, nsid: int, ready: bool) -> None:
        self._target_check(self._lib.nrt_namespace_set_ready(self._target, subsystem, nsid,
                                                       int(ready)))

    def read_namespace(self, subsystem: int, nsid: int, offset: int, length: int) -> bytes:
        buf = self._ffi.new("uint8_t[]", length)
        self._target_check(self._lib.nrt_namespace_read(self._target, subsystem, nsid, offset, buf,
                                                  length))
        return bytes(self._ffi.buffer(buf, length))

    def register_memory(self, size: int) -> int:
        """Host memory the target may RDMA READ and WRITE; returns its key (the rkey)."""
        key = self._check(self._lib.nrt_rig_mr_register(self._handle(), size))
        self._iova[key] = int(self._lib.nrt_rig_mr_iova(self._handle(), key))
        return key

    def deregister_memory(self, key: int) -> None:
        self._check(self._lib.nrt_rig_mr_deregister(self._handle(), key))
        self._iova.pop(key, None)

    def memory_iova(self, key: int) -> int:
        """The IO virtual address keyed SGLs carry for offset 0 of region ``key``."""
        return self._iova.get(key, 0)

    def invalid_key(self) -> int:
        """A key no host region has: a keyed SGL with it is a remote access error."""
        key = 0x7FFF0000
        while key in self._iova:
            key += 1
        return key

    def write_memory(self, key: int, offset: int, data: bytes) -> None:
        self._check(self._lib.nrt_rig_mr_write(self._handle(), key, offset, data, len(data)))

    def read_memory(self, key: int, offset: int, length: int) -> bytes:
        buf = self._ffi.new("uint8_t[]", length)
        self._check(self._lib.nrt_rig_mr_read(self._handle(), key, offset, buf, length))
        return bytes(self._ffi.buffer(buf, length))

    # -- connections ------------------------------------------------------------------
    def connect(self, port: int, group: int, *, qid: int = 0, hrqsize: int = 0,
                hsqsize: int | None = None, recfmt: int = 0, cntlid: int | None = None,
                private_data: bytes | None = None, private_data_len: int | None = None,
                initiator_depth: int = 16, responder_resources: int = 16) -> int:
        """RDMA CM connect with the NVMe/RDMA private data (or ``private_data`` as given);
        returns the connection handle whether the target accepted or rejected it (see
        :meth:`conn_info`)."""
        if not 0 <= port < 1 << 32 or not 0 <= group < 1 << 32:
            raise TargetError(lib.NRT_ENOENT, f"no port {port} or poll group {group}")
        p = self._ffi.new("struct nrt_connect_params *")
        self._lib.nrt_connect_params_default(p, port, group, qid, hrqsize or 2)
        if hsqsize is not None:
            p.hsqsize = hsqsize
        p.recfmt = recfmt
        if cntlid is not None:
            p.cntlid = cntlid
        p.initiator_depth = initiator_depth
        p.responder_resources = responder_resources
        if private_data is not None:
            p.raw = 1
            data = bytes(private_data)[:56]
            self._ffi.memmove(p.raw_private_data, data, len(data))
            p.private_data_len = len(data)
        if private_data_len is not None:
            p.private_data_len = private_data_len
        return self._check(self._lib.nrt_rig_connect(self._handle(), p))

    def conn_info(self, conn: int) -> ConnInfo:
        c = self._ffi.new("struct nrt_conn_info *")
        self._check(self._lib.nrt_rig_conn_info(self._handle(), conn, c))
        return _struct(ConnInfo, c)

    def create_qpair(self, port: int, group: int, depth: int, qid: int = 0) -> int:
        """An accepted connection of ``depth`` (HRQSIZE = depth, HSQSIZE = depth - 1)."""
        if depth < 1 or depth > self.options.max_queue_depth:
            raise TargetError(lib.NRT_EINVAL, f"qpair depth {depth}: must be 1..max_queue_depth "
                                              f"({self.options.max_queue_depth})")
        # the host offers as many incoming RDMA READs as the options allow the target
        # (the built-in target takes the smaller of the two; other targets only see this)
        ird = max(1, min(255, self.options.max_read_depth or 16))
        conn = self.connect(port, group, qid=qid, hrqsize=max(2, depth),
                            hsqsize=max(1, depth - 1), responder_resources=ird)
        info = self.conn_info(conn)
        if info.state != ConnInfo.ESTABLISHED or info.qpair < 0:
            raise TargetError(lib.NRT_ENETDOWN if info.state == ConnInfo.REJECTED
                              else lib.NRT_ENOTCONN,
                              f"connection refused on port {port}: reject status "
                              f"{info.reject_sts:#x}")
        return conn

    def disconnect_qpair(self, qpair: int) -> None:
        self._check(self._lib.nrt_rig_qpair_disconnect(self._handle(), qpair))

    def host_disconnect(self, qpair: int) -> None:
        self._check(self._lib.nrt_rig_host_disconnect(self._handle(), qpair))

    def inject_qpair_error(self, qpair: int) -> None:
        self._check(self._lib.nrt_rig_qpair_error(self._handle(), qpair))

    def fail_posts(self, qpair: int, count: int) -> None:
        self._check(self._lib.nrt_rig_fail_posts(self._handle(), qpair, count))

    def remote_access_error(self, qpair: int, count: int = 1) -> None:
        self._check(self._lib.nrt_rig_remote_access_error(self._handle(), qpair, count))

    def rnr(self, qpair: int, count: int = 1) -> None:
        self._check(self._lib.nrt_rig_rnr(self._handle(), qpair, count))

    def qpairs(self) -> list[int]:
        """Connections whose target qpair still exists."""
        n = self._lib.nrt_rig_conns(self._handle(), self._qp_buf, self.options.max_qpairs + 64)
        return [self._qp_buf[i] for i in range(min(n, self.options.max_qpairs + 64))]

    def qpair_info(self, qpair: int) -> QpairInfo | None:
        """``None`` once the target has destroyed the connection's qpair."""
        if self._lib.nrt_rig_qpair_info(self._handle(), qpair, self._info) < 0:
            return None
        return _struct(QpairInfo, self._info, self.describe().num_states)

    def requests(self, qpair: int) -> list[RequestInfo]:
        cap = self.options.max_queue_depth
        if self._reqs is None:
            self._reqs = self._ffi.new("struct nrt_request_info[]", cap)
        buf = self._reqs
        n = self._lib.nrt_rig_requests(self._handle(), qpair, buf, cap)
        if n < 0:
            return []
        return [_struct(RequestInfo, buf[i]) for i in range(min(n, cap))]

    # -- host side -------------------------------------------------------------------
    def encode(self, capsule: Capsule, icd: bytes = b"") -> bytes:
        """The wire bytes :meth:`submit` sends for ``capsule``."""
        connect_sgl = None
        if (capsule.opcode == Opcode.FABRICS and capsule.fctype == lib.NRT_FCTYPE_CONNECT
                and self.options.in_capsule_data_size < wire.CONNECT_DATA_SIZE):
            # no room in the capsule: the connect data goes by keyed SGL from host memory
            if self._connect_key is None:
                self._connect_key = self.register_memory(
                    self.CONNECT_SCRATCH * wire.CONNECT_DATA_SIZE)
            off = (self._connect_slot % self.CONNECT_SCRATCH) * wire.CONNECT_DATA_SIZE
            self._connect_slot += 1
            self.write_memory(self._connect_key, off, capsule.connect_data())
            connect_sgl = wire.keyed(self.memory_iova(self._connect_key) + off,
                                     wire.CONNECT_DATA_SIZE, self._connect_key)
        return capsule.to_wire(self.memory_iova, icd, connect_sgl).encode()

    def submit(self, qpair: int, capsule: Capsule, icd: bytes = b"") -> None:
        self.submit_bytes(qpair, self.encode(capsule, icd))

    def submit_bytes(self, qpair: int, data: bytes) -> None:
        """Send ``data`` (a capsule's bytes, well formed or not) as one host SEND."""
        self._check(self._lib.nrt_rig_submit(self._handle(), qpair, data, len(data)))

    def reap(self, qpair: int) -> list[Response]:
        out: list[Response] = []
        while True:
            n = self._lib.nrt_rig_reap(self._handle(), qpair, self._resp, 256)
            if n <= 0:
                return out
            out.extend(Response(r.cid, r.status, r.sqhd, r.result, bool(r.unexpected), r.sqid,
                                r.raw_status, r.byte_len)
                       for r in (self._resp[i] for i in range(n)))

    # -- progress --------------------------------------------------------------------
    def deliver_h2t(self, qpair: int) -> bool:
        """Execute the host QP's next posted SEND (a capsule lands in a target receive)."""
        return self._lib.nrt_rig_deliver_h2t(self._handle(), qpair) > 0

    def deliver_t2h(self, qpair: int) -> bool:
        """Execute the target QP's next posted work request (READ, WRITE or SEND)."""
        return self._lib.nrt_rig_deliver_t2h(self._handle(), qpair) > 0

    def poll(self, group: int) -> int:
        return self._check(self._lib.nrt_rig_poll(self._handle(), group))

    def accept(self) -> int:
        """The target processes its CM and async events."""
        return int(self._lib.nrt_accept_poll(self._target))

    def bdev_pending(self) -> int:
        return int(self._lib.nrt_bdev_pending(self._target))

    def bdev_complete(self, index: int = 0, status: int = 0) -> bool:
        return self._lib.nrt_bdev_complete(self._target, index, status) > 0

    def set_bdev_auto(self, on: bool) -> None:
        self._lib.nrt_bdev_set_auto(self._target, int(on))

    def bdev_inject_error(self, count: int, status: int) -> None:
        self._target_check(self._lib.nrt_bdev_inject_error(self._target, count, status))

    def advance_time(self, ticks: int) -> None:
        self._lib.nrt_advance_time(self._target, ticks)

    def run(self, events: Iterable[int]) -> int:
        """Execute encoded micro-events (see :func:`event` and :meth:`qpair_event`) in C;
        returns how many changed something."""
        evs = list(events)
        if not evs:
            return 0
        arr = self._ffi.new("uint32_t[]", evs)
        return self._check(int(self._lib.nrt_rig_run(self._handle(), arr, len(evs))))

    def qpair_event(self, kind: Event, qpair: int) -> int:
        """Encode a delivery micro-event for a connection handle."""
        return event(kind, qpair % self.HANDLE_SLOTS)

    def drain(self, max_rounds: int = 1000) -> DrainResult:
        """Liveness mode: deliver everything, complete every IO, poll every group, in rounds,
        until nothing is left (quiescent) or a round changes nothing (stalled)."""
        out = self._ffi.new("struct nrt_drain_result *")
        self._lib.nrt_rig_drain(self._handle(), max_rounds, out)
        return DrainResult(out.rounds, bool(out.quiescent), bool(out.stalled), out.progress)

    @property
    def progress(self) -> int:
        return int(self._lib.nrt_rig_progress(self._handle()))

    # -- introspection ---------------------------------------------------------------
    def wr_pool(self) -> PoolCounts:
        self._lib.nrt_wr_pool_counts(self._target, self._pool)
        return _struct(PoolCounts, self._pool)

    def buf_pool(self) -> PoolCounts:
        self._lib.nrt_buf_pool_counts(self._target, self._pool)
        return _struct(PoolCounts, self._pool)

    def group_stats(self, group: int) -> GroupStats:
        c = self._ffi.new("struct nrt_group_stats *")
        self._target_check(self._lib.nrt_group_stats(self._target, group, c))
        return _struct(GroupStats, c)

    def group_view(self, group: int) -> GroupView:
        """What the rig asked of ``group`` and what the polls returned (STATS-1)."""
        c = self._ffi.new("struct nrt_group_view *")
        self._check(self._lib.nrt_rig_group_view(self._handle(), group, c))
        return GroupView(c.polls, c.idle_polls, c.reaped)

    def target_completions(self) -> int:
        """Work completions the fabric generated for the target's QPs."""
        return int(self._lib.nrt_rig_target_completions(self._handle()))

    def fabric_stats(self) -> FabricStats:
        c = self._ffi.new("struct nrt_fabric_stats *")
        self._check(self._lib.nrt_rig_fabric_stats(self._handle(), c))
        return _struct(FabricStats, c)

    def describe(self) -> TargetDescription:
        """What the target declares about itself (read once per transport: a target's
        description does not change while it runs)."""
        desc: TargetDescription | None = self.__dict__.get("_description")
        if desc is None:
            c = self._ffi.new("struct nrt_target_desc *")
            self._target_check(self._lib.nrt_target_describe(self._target, c))
            desc = self.__dict__["_description"] = TargetDescription.from_c(c)
        return desc

    def transitions(self) -> dict[tuple[int, int], int]:
        """Cumulative request state transitions ``(from, to) -> count``, in the target's own
        state numbering (:meth:`describe`)."""
        ns = self.describe().num_states
        n = ns * ns
        buf = self.__dict__.get("_transitions_buf")
        if buf is None:
            buf = self.__dict__["_transitions_buf"] = self._ffi.new("uint64_t[]", n)
        self._target_check(self._lib.nrt_state_transitions(self._target, buf, n))
        return {(i // ns, i % ns): buf[i] for i in range(n) if buf[i]}

    def async_events(self) -> list[AsyncEvent]:
        buf = self._ffi.new("struct nrt_async_event[]", 256)
        n = self._lib.nrt_async_events(self._target, buf, 256)
        return [AsyncEvent(buf[i].type, buf[i].object) for i in range(n)]

    # -- C-native workloads -----------------------------------------------------------
    def workload_run(self, qpair: int, w: Workload) -> int:
        return self._check(int(self._lib.nrt_rig_workload_run(self._handle(), qpair, w._to_c(self._ffi))))

    def memcpy_baseline(self, qpair: int, w: Workload) -> int:
        return self._check(int(self._lib.nrt_rig_memcpy_baseline(self._handle(), qpair, w._to_c(self._ffi))))

    def memcpy_batched(self, qpair: int, w: Workload) -> int:
        return self._check(int(self._lib.nrt_rig_memcpy_batched(self._handle(), qpair, w._to_c(self._ffi))))
