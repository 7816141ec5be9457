"""The Python facade over the compiled C target: the only interface the suite uses.

A :class:`Transport` owns one C transport.  The harness drives everything through it:
host capsule submission and response reaping, wire delivery, poll-group polling,
block-device completion, faults, and every introspection counter.  Errors from the target
raise :class:`TargetError` carrying the target's own message.

Another implementation of ``nrt.h`` wrapped the same way can stand in for this one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from impl._nrt import ffi, lib
from impl.nvme import (
    MAX_SGL_DESC,
    NUM_REQ_STATES,
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

_ERRLEN = 256


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

    @classmethod
    def from_any(cls, value: Any = None, **overrides: Any) -> "Options":
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

    def _to_c(self) -> Any:
        c = ffi.new("struct nrt_opts *")
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or value < 0 or value >= 1 << 32:
                raise OptionsRefused(lib.NRT_EINVAL,
                                     f"{f.name} = {value!r} is not a 32-bit unsigned integer")
            setattr(c, f.name, value)
        return c

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
    """One SGL descriptor.  Keyed: ``addr`` is the offset in the host region ``key``;
    in-capsule: ``addr`` is the offset in the capsule's data."""

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
    """A command capsule (``struct nrt_capsule``)."""

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
    def with_data(cls, opcode: int, cid: int, descs: Sequence[SglDesc], **kw: Any) -> "Capsule":
        """One descriptor goes in SGL1; several go in a last-segment list."""
        if len(descs) == 1:
            return cls(opcode, cid, sgl=descs[0], **kw)
        return cls(opcode, cid, sgl=last_segment(len(descs)), descriptors=tuple(descs), **kw)

    def _fill(self, c: Any) -> None:
        if len(self.descriptors) > MAX_SGL_DESC:
            raise ValueError(f"a capsule carries at most {MAX_SGL_DESC} descriptors")
        c.opcode, c.cid, c.nsid = self.opcode, self.cid, self.nsid
        c.slba, c.nlb, c.fctype, c.cdw10 = self.slba, self.nlb, self.fctype, self.cdw10
        c.value, c.qid, c.cntlid = self.value, self.qid, self.cntlid
        c.subsystem, c.sqsize, c.kato = self.subsystem, self.sqsize, self.kato
        _fill_desc(c.sgl, self.sgl)
        c.ndesc = len(self.descriptors)
        for i, d in enumerate(self.descriptors):
            _fill_desc(c.list[i], d)


def _fill_desc(c: Any, d: SglDesc) -> None:
    c.addr, c.length, c.key, c.type, c.subtype = d.addr, d.length, d.key, d.type, d.subtype


def connect_capsule(cid: int, subsystem: int, qid: int = 0, cntlid: int = 0,
                    sqsize: int = 1, kato: int = 0) -> Capsule:
    return Capsule(Opcode.FABRICS, cid, fctype=lib.NRT_FCTYPE_CONNECT, subsystem=subsystem,
                   qid=qid, cntlid=cntlid, sqsize=sqsize, kato=kato)


# ---------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class Response:
    cid: int
    status: int
    sqhd: int
    result: int
    unexpected: bool


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

    def _to_c(self) -> Any:
        c = ffi.new("struct nrt_workload *")
        for f in dataclasses.fields(self):
            setattr(c, f.name, getattr(self, f.name))
        return c


_FIELDS: dict[type, tuple[str, ...]] = {}


def _struct(cls: type, c: Any) -> Any:
    """A frozen result dataclass from a C struct with the same field names."""
    names = _FIELDS.get(cls)
    if names is None:
        names = _FIELDS[cls] = tuple(f.name for f in dataclasses.fields(cls))
    values = [getattr(c, n) for n in names]
    if cls is QpairInfo:
        values[-1] = tuple(values[-1])
    elif cls is DestroyReport:
        values[-1] = ffi.string(values[-1]).decode()
    return cls(*values)


def event(kind: int, arg: int) -> int:
    """Encode one micro-event for :meth:`Transport.run`."""
    return (int(kind) << 24) | (arg & 0xFFFFFF)


# ---------------------------------------------------------------------------------------
# Transport


class Transport:
    """One target transport.  Use as a context manager, or call :meth:`destroy`."""

    HANDLE_SLOTS = 4096

    def __init__(self, opts: Any = None, **overrides: Any):
        self.options = Options.from_any(opts, **overrides)
        err = ffi.new("char[]", _ERRLEN)
        handle = lib.nrt_transport_create(self.options._to_c(), err, _ERRLEN)
        if handle == ffi.NULL:
            raise OptionsRefused(lib.NRT_EINVAL, ffi.string(err).decode())
        self._t = handle
        self._resp = ffi.new("struct nrt_response[]", 256)
        self._info = ffi.new("struct nrt_qpair_info *")
        self._pool = ffi.new("struct nrt_pool_counts *")
        self._qp_buf = ffi.new("int32_t[]", self.options.max_qpairs)
        self._reqs: Any = None
        self.report: DestroyReport | None = None

    # -- plumbing -------------------------------------------------------------------
    def _handle(self) -> Any:
        if self._t is None:
            raise TargetError(lib.NRT_ESTATE, "transport already destroyed")
        return self._t

    def _check(self, rc: int) -> int:
        if rc < 0:
            raise TargetError(rc, ffi.string(lib.nrt_transport_error(self._t)).decode())
        return rc

    def __enter__(self) -> "Transport":
        return self

    def __exit__(self, *exc: object) -> None:
        if self._t is not None:
            self.destroy()

    def __del__(self) -> None:
        # at interpreter exit the module globals may already be gone: nothing to free then
        if getattr(self, "_t", None) is not None and lib is not None:
            lib.nrt_transport_destroy(self._t, ffi.NULL)
            self._t = None

    @property
    def alive(self) -> bool:
        return self._t is not None

    @property
    def effective_options(self) -> Options:
        """What the target actually runs with (``max_send_depth`` resolved)."""
        c = ffi.new("struct nrt_opts *")
        lib.nrt_transport_get_opts(self._handle(), c)
        return Options(**{f.name: getattr(c, f.name) for f in dataclasses.fields(Options)})

    def destroy(self) -> DestroyReport:
        """Abrupt destroy with IO in any state; returns the target's own pool report."""
        rep = ffi.new("struct nrt_destroy_report *")
        lib.nrt_transport_destroy(self._handle(), rep)
        self._t = None
        self.report = _struct(DestroyReport, rep)
        return self.report

    # -- topology -------------------------------------------------------------------
    def add_port(self) -> int:
        return self._check(lib.nrt_port_add(self._handle()))

    def port_down(self, port: int) -> None:
        self._check(lib.nrt_port_down(self._handle(), port))

    def port_up(self, port: int) -> None:
        self._check(lib.nrt_port_up(self._handle(), port))

    def add_subsystem(self) -> int:
        return self._check(lib.nrt_subsystem_add(self._handle()))

    def add_namespace(self, subsystem: int, block_size: int, num_blocks: int) -> int:
        return self._check(lib.nrt_namespace_add(self._handle(), subsystem, block_size,
                                                 num_blocks))

    def set_namespace_ready(self, subsystem: int, nsid: int, ready: bool) -> None:
        self._check(lib.nrt_namespace_set_ready(self._handle(), subsystem, nsid, int(ready)))

    def read_namespace(self, subsystem: int, nsid: int, offset: int, length: int) -> bytes:
        buf = ffi.new("uint8_t[]", length)
        self._check(lib.nrt_namespace_read(self._handle(), subsystem, nsid, offset, buf, length))
        return bytes(ffi.buffer(buf, length))

    def register_memory(self, size: int) -> int:
        return self._check(lib.nrt_mr_register(self._handle(), size))

    def deregister_memory(self, key: int) -> None:
        self._check(lib.nrt_mr_deregister(self._handle(), key))

    def write_memory(self, key: int, offset: int, data: bytes) -> None:
        self._check(lib.nrt_mr_write(self._handle(), key, offset, data, len(data)))

    def read_memory(self, key: int, offset: int, length: int) -> bytes:
        buf = ffi.new("uint8_t[]", length)
        self._check(lib.nrt_mr_read(self._handle(), key, offset, buf, length))
        return bytes(ffi.buffer(buf, length))

    # -- qpairs ---------------------------------------------------------------------
    def create_qpair(self, port: int, group: int, depth: int) -> int:
        return self._check(lib.nrt_qpair_create(self._handle(), port, group, depth))

    def disconnect_qpair(self, qpair: int) -> None:
        self._check(lib.nrt_qpair_disconnect(self._handle(), qpair))

    def host_disconnect(self, qpair: int) -> None:
        self._check(lib.nrt_host_disconnect(self._handle(), qpair))

    def inject_qpair_error(self, qpair: int) -> None:
        self._check(lib.nrt_qpair_inject_error(self._handle(), qpair))

    def fail_posts(self, qpair: int, count: int) -> None:
        self._check(lib.nrt_qpair_fail_posts(self._handle(), qpair, count))

    def qpairs(self) -> list[int]:
        n = lib.nrt_qpairs(self._handle(), self._qp_buf, self.options.max_qpairs)
        return [self._qp_buf[i] for i in range(n)]

    def qpair_info(self, qpair: int) -> QpairInfo | None:
        """``None`` once the qpair has been destroyed."""
        if lib.nrt_qpair_info(self._handle(), qpair, self._info) < 0:
            return None
        return _struct(QpairInfo, self._info)

    def requests(self, qpair: int) -> list[RequestInfo]:
        cap = self.options.max_queue_depth
        if self._reqs is None:
            self._reqs = ffi.new("struct nrt_request_info[]", cap)
        buf = self._reqs
        n = lib.nrt_qpair_requests(self._handle(), qpair, buf, cap)
        if n < 0:
            return []
        return [_struct(RequestInfo, buf[i]) for i in range(min(n, cap))]

    # -- host side -------------------------------------------------------------------
    def submit(self, qpair: int, capsule: Capsule, icd: bytes = b"") -> None:
        c = ffi.new("struct nrt_capsule *")
        capsule._fill(c)
        self._check(lib.nrt_host_submit(self._handle(), qpair, c, icd or ffi.NULL, len(icd)))

    def reap(self, qpair: int) -> list[Response]:
        out: list[Response] = []
        while True:
            n = lib.nrt_host_reap(self._handle(), qpair, self._resp, 256)
            if n <= 0:
                return out
            out.extend(Response(r.cid, r.status, r.sqhd, r.result, bool(r.unexpected))
                       for r in (self._resp[i] for i in range(n)))

    # -- progress --------------------------------------------------------------------
    def deliver_h2t(self, qpair: int) -> bool:
        return lib.nrt_deliver_h2t(self._handle(), qpair) > 0

    def deliver_t2h(self, qpair: int) -> bool:
        return lib.nrt_deliver_t2h(self._handle(), qpair) > 0

    def poll(self, group: int) -> int:
        return self._check(lib.nrt_poll_group(self._handle(), group))

    def bdev_pending(self) -> int:
        return int(lib.nrt_bdev_pending(self._handle()))

    def bdev_complete(self, index: int = 0, status: int = 0) -> bool:
        return lib.nrt_bdev_complete(self._handle(), index, status) > 0

    def set_bdev_auto(self, on: bool) -> None:
        lib.nrt_bdev_set_auto(self._handle(), int(on))

    def bdev_inject_error(self, count: int, status: int) -> None:
        self._check(lib.nrt_bdev_inject_error(self._handle(), count, status))

    def advance_time(self, ticks: int) -> None:
        lib.nrt_advance_time(self._handle(), ticks)

    def run(self, events: Iterable[int]) -> int:
        """Execute encoded micro-events (see :func:`event` and :meth:`qpair_event`) in C;
        returns how many changed something."""
        evs = list(events)
        if not evs:
            return 0
        arr = ffi.new("uint32_t[]", evs)
        return self._check(int(lib.nrt_run(self._handle(), arr, len(evs))))

    def qpair_event(self, kind: Event, qpair: int) -> int:
        """Encode a delivery micro-event for a qpair handle."""
        return event(kind, qpair % self.HANDLE_SLOTS)

    def drain(self, max_rounds: int = 1000) -> DrainResult:
        """Liveness mode: deliver everything, complete every IO, poll every group, in rounds,
        until nothing is left (quiescent) or a round changes nothing (stalled)."""
        out = ffi.new("struct nrt_drain_result *")
        lib.nrt_drain(self._handle(), max_rounds, out)
        return DrainResult(out.rounds, bool(out.quiescent), bool(out.stalled), out.progress)

    @property
    def progress(self) -> int:
        return int(lib.nrt_progress_counter(self._handle()))

    # -- introspection ---------------------------------------------------------------
    def wr_pool(self) -> PoolCounts:
        lib.nrt_wr_pool_counts(self._handle(), self._pool)
        return _struct(PoolCounts, self._pool)

    def buf_pool(self) -> PoolCounts:
        lib.nrt_buf_pool_counts(self._handle(), self._pool)
        return _struct(PoolCounts, self._pool)

    def group_stats(self, group: int) -> GroupStats:
        c = ffi.new("struct nrt_group_stats *")
        self._check(lib.nrt_group_stats(self._handle(), group, c))
        return _struct(GroupStats, c)

    def transitions(self) -> dict[tuple[int, int], int]:
        """Cumulative request state transitions ``(from, to) -> count``."""
        n = NUM_REQ_STATES * NUM_REQ_STATES
        buf = ffi.new("uint64_t[]", n)
        self._check(lib.nrt_state_transitions(self._handle(), buf, n))
        return {(i // NUM_REQ_STATES, i % NUM_REQ_STATES): buf[i] for i in range(n) if buf[i]}

    def async_events(self) -> list[AsyncEvent]:
        buf = ffi.new("struct nrt_async_event[]", 256)
        n = lib.nrt_async_events(self._handle(), buf, 256)
        return [AsyncEvent(buf[i].type, buf[i].object) for i in range(n)]

    # -- C-native workloads -----------------------------------------------------------
    def workload_run(self, qpair: int, w: Workload) -> int:
        return self._check(int(lib.nrt_workload_run(self._handle(), qpair, w._to_c())))

    def memcpy_baseline(self, qpair: int, w: Workload) -> int:
        return self._check(int(lib.nrt_memcpy_baseline(self._handle(), qpair, w._to_c())))
