"""The ERR-1 driver: send one malformed capsule, as bytes on the wire, to a fresh target and
record what happened.

:func:`run_malformed` builds a small transport (one port, one subsystem with the namespace
under test, host memory for keyed descriptors) and connects to it as a host does: the admin
queue (RDMA CM connect with QID 0, Fabrics Connect), Property Set CC.EN = 1 (NVMe Base 2.0
3.5.1), Get Features Number of Queues and Identify Controller (what the host learns: the
I/O queues it may create, NN), then two I/O queues (CM connect with their QID, Connect with
the controller's CNTLID).  Kinds sent to an unconnected queue get one more CM connection at
the target's maximum queue depth (QID 0 for ``admin_unconnected``, the next free QID for
``io_unconnected``), left without a Fabrics Connect.

Then it asks its caller for the malformed capsule (``strategies.malformed`` draws it from
what the host now knows, :class:`~strategies.malformed.ErrContext`), sends its bytes as one
host SEND (a Connect whose 1024 bytes of data do not fit the in-capsule area goes with a
keyed SGL to the data in host memory, as a host sends it), drains the target, and shows it
keeps serving: a well-formed command on the same qpair (a valid Connect first if the queue
is still unconnected) and a write + read round trip on the *other* I/O queue.  Finally it
destroys the transport.

It returns an :class:`Outcome` and decides nothing: ``conformance/test_err.py`` hands the
outcome to :mod:`conformance.checks`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from conformance import judging, profiles
from conformance.model import pattern
from impl import (
    Capsule,
    DestroyReport,
    DrainResult,
    Opcode,
    Options,
    OptionsRefused,
    PoolCounts,
    QpairInfo,
    QpState,
    Response,
    SglDesc,
    Status,
    Transport,
    connect_capsule,
    enable_capsule,
    keyed,
)
from impl import wire as W
from impl.nvme import SGL_SUBTYPE_OFFSET, SGL_TYPE_DATA_BLOCK, ErrorCode
from impl.target import HOST_ID, HOST_NQN, SUBSYSTEM_NQN, TargetDescription
from strategies.malformed import CONNECTS, KINDS, SETUP, ErrContext, feasible_kinds
from strategies.types import Namespace, TransportOptions
from strategies.wire import MalformedCapsule, Region, WireLimits

#: Bytes of the identify data the host reads at setup.
IDENTIFY_BYTES = 4096
#: Drain bound per phase; every phase here is a handful of commands.
DRAIN_ROUNDS = 200
#: What the ERR-1 tests judge, the checks of the pools and liveness included.
PROPERTIES = ("ERR-1", "POOL-1", "POOL-2", "POOL-3", "LIVE-1", "DATA-1", "CRASH-1")
#: Get Features feature identifier: Number of Queues (NVMe Base 2.0 5.21.1.7).
FID_NUMBER_OF_QUEUES = 0x07
#: Identify Controller: NN, the number of namespaces (bytes 519:516).
NN_OFFSET = 516
#: A command with FUSE 01b is the first of a fused operation (NVMe Base 2.0 3.4.2).  The two
#: commands of a fused operation are submitted next to each other, and whether the first is
#: part of a valid pair is known only from the command after it, so a target may hold a
#: first command until the next capsule of its queue arrives (SPDK's rdma.c does:
#: ``nvmf_rdma_check_fused_ordering``).  Its answer is judged once that next command (a
#: well-formed one, not FUSE 10b) has been sent.
FUSE_FIRST = W.FUSE_FIRST
#: SGL1 of a command whose opcode has a direction but which moves no data (Get Features
#: Number of Queues): a keyed data block of length 0, as Linux's host sends it.
NO_DATA = W.SglDescriptor(0, 0, 0, W.SGL_TYPE_KEYED_DATA, W.SGL_SUBTYPE_ADDRESS)

CapsuleSource = Callable[[ErrContext], MalformedCapsule] | MalformedCapsule

#: kind -> statuses as right as the catalogue's (``strategies.malformed.KINDS``) for it,
#: each with the reason, where the base specification describes the same fault under two
#: codes and orders neither before the other.
ALSO_RIGHT: dict[str, tuple[tuple[int, str], ...]] = {
    # a last segment of length 0 describes no data, so the data SGL is shorter than the
    # NLB blocks the command moves: NVMe Base 2.0 4.6.1.2 gives 0Dh for the descriptor ("may
    # occur when ... a length of zero") and 0Fh for an SGL too short for its data
    "last_segment_zero_length": ((W.SC_DATA_SGL_LENGTH_INVALID,
                                  "the data SGL (0 bytes) is shorter than the data"),),
}


@dataclass(frozen=True)
class Placement:
    """Poll groups of the four qpairs (admin, IO for ``io`` kinds, the other IO qpair for
    the "keeps serving" check, the unconnected one for ``*_unconnected`` kinds) and the
    depths of the first three; the unconnected one has the target's maximum depth, so the
    only bound on a Connect's SQSIZE is CAP.MQES."""

    groups: tuple[int, int, int, int] = (0, 0, 0, 0)
    depths: tuple[int, int, int] = (4, 4, 4)


@dataclass(frozen=True)
class Snapshot:
    """Pools (None where the target does not declare them) and every qpair, at a quiescent
    point."""

    wr: PoolCounts | None
    buf: PoolCounts | None
    qpairs: tuple[QpairInfo, ...]


@dataclass(frozen=True)
class FollowUp:
    """One well-formed command sent after the malformed one.  ``status`` is None if no
    response came; for reads, ``got`` is what landed in host memory and ``want`` what
    was written before."""

    what: str
    qpair: int
    cid: int
    status: int | None
    got: bytes = b""
    want: bytes = b""
    result: int = 0


@dataclass
class Outcome:
    """What happened to one malformed capsule and to the commands after it."""

    malformed: MalformedCapsule
    queue: str
    raw: bytes                       # the bytes sent (the capsule, as the host sent it)
    qpair: int                       # handle the malformed capsule went to
    cid: int
    before: QpairInfo                # that qpair just before the submit
    responses: tuple[Response, ...]  # everything reaped from it after the drain
    after: QpairInfo | None          # that qpair after the drain (None: destroyed)
    state_after: int                 # the state it must be in after the answer
    drain: DrainResult
    released: Snapshot               # right after the malformed command was answered
    expected_wrs: int
    expected_bufs: int
    same_qpair: list[FollowUp] = field(default_factory=list)
    other_qpair: list[FollowUp] = field(default_factory=list)
    drains: list[DrainResult] = field(default_factory=list)
    final: Snapshot | None = None
    report: DestroyReport | None = None
    desc: TargetDescription | None = None    # what the target declares

    @property
    def kind(self) -> str:
        return self.malformed.kind

    @property
    def allowed(self) -> tuple[int, ...]:
        return (self.malformed.expected_status, *KINDS[self.kind].alternatives,
                *(status for status, _ in ALSO_RIGHT.get(self.kind, ())))

    def describe(self) -> str:
        m = self.malformed
        got = ", ".join(f"0x{r.status:04x}" for r in self.responses) or "no response"
        return (f"{m.kind} on the {self.queue} qpair {self.qpair}, CID {self.cid}: answered "
                f"{got}, expected {' or '.join(f'0x{s:04x}' for s in self.allowed)} "
                f"({m.citation}); {len(self.raw)} bytes sent: {self.raw.hex()}")


def target_options(opts: TransportOptions) -> Options:
    """The facade options for ``opts``, with the defect switches under test (self-check
    only) passed through untouched, moved to the nearest ones the target honours exactly
    as asked (the built-in target keeps them all)."""
    return Options.from_any(opts, defects=opts.defects | profiles.defects_under_test()).fitted()


def region_span(opts: Any) -> int:
    """Bytes each malformed capsule's host memory region holds: two of the largest transfer
    (an identify page at least)."""
    return 2 * max(opts.max_io_size, IDENTIFY_BYTES)


def wire_limits(opts: Any, ns: Namespace, region: Region, max_qid: int,
                subsystem: int = 0) -> WireLimits:
    """What the target under test advertises, as ``strategies.wire`` takes it, with the one
    namespace (nsid 1) and host memory region of the driver and the NQNs it connects with.
    ``max_queue_depth`` is CAP.MQES + 1 (the unconnected queue is that deep); ``max_qid`` is
    the number of I/O queues the controller grants."""
    return WireLimits(opts.in_capsule_data_size, opts.max_io_size, opts.max_sgl_descriptors,
                      opts.max_queue_depth, max_qid, (ns,), (region,),
                      SUBSYSTEM_NQN.format(subsystem), HOST_NQN)


def planned_context(opts: TransportOptions, ns: Namespace) -> ErrContext:
    """The context :func:`run_malformed` will have for ``opts`` and ``ns``, up to what only
    the live target says (taken here as: CNTLID 1, ``max_qpairs`` I/O queues, NN =
    ``max_namespaces``); for feasibility questions asked before any target exists."""
    max_qid = max(opts.max_qpairs, 3)
    lim = wire_limits(opts, ns, Region(1, 0, region_span(opts)), max_qid)
    return ErrContext(lim, 1, HOST_ID, (1, 2), 3, max_qid, opts.max_namespaces)


def capsule_bytes(t: Transport, cap: Any, key: int, offset: int = 0) -> bytes:
    """``cap`` (an ``impl.wire.Capsule``) as a host sends it: its bytes when they fit the
    in-capsule area; a Connect whose data does not fit goes with SGL1 a keyed data block
    pointing at the data, written to host memory region ``key`` at ``offset``."""
    raw = cap.encode()
    if len(raw) - W.SQE_SIZE <= t.options.in_capsule_data_size:
        return raw
    sqe, s = cap.sqe, cap.sqe.sgl1
    if (sqe.opc == W.OPC_FABRICS and sqe.fctype == W.FCTYPE_CONNECT
            and s.type == W.SGL_TYPE_DATA_BLOCK and s.subtype == W.SGL_SUBTYPE_OFFSET
            and s.address + s.length <= len(cap.data)):
        data = cap.data[s.address:s.address + s.length]
        t.write_memory(key, offset, data)
        sgl = W.keyed(t.memory_iova(key) + offset, len(data), key)
        return W.Capsule(sqe.replace(sgl1=sgl)).encode()
    return raw   # the rig refuses it, naming the size: a harness error, not the target's


class _Driver:
    """One transport set up, as a host would, for one malformed capsule."""

    def __init__(self, opts: TransportOptions, ns: Namespace, place: Placement, queue: str):
        options = target_options(opts)
        try:
            self.t = t = Transport(options)
        except OptionsRefused:
            # how each property is judged is recorded (and impossible asks refused) first
            judging.start(judging.describe_target(), PROPERTIES, options.defects)
            raise
        self.desc = t.describe()
        try:
            judging.start(self.desc, PROPERTIES, t.options.defects)
        except judging.CannotJudge:
            t.destroy()
            raise
        o = t.options
        self.ns = ns
        self.queue = queue
        groups = [g % o.num_poll_groups for g in place.groups]
        depths = [max(2, min(d, o.max_queue_depth)) for d in place.depths]
        self.port = t.add_port()
        self.sub = t.add_subsystem()
        self.nsid = t.add_namespace(self.sub, ns.block_size, ns.num_blocks)
        span = region_span(o)
        # The malformed capsules' region, plus room past its end for a keyed length up to
        # max_io_size (a length the target must refuse before moving data still stays in
        # host memory when it does not); the follow-ups and setup reads use their own.
        self.key = t.register_memory(span + span // 2)
        self.region = Region(self.key, t.memory_iova(self.key), span)
        self.unit = max(ns.block_size, IDENTIFY_BYTES)
        self.fkey = t.register_memory(4 * self.unit)
        self.ckey = t.register_memory(2 * W.CONNECT_DATA_SIZE)
        self._cid = 0
        self.avoid: set[int] = set()
        self.drains: list[DrainResult] = []
        # the admin queue, then enable the controller, then learn its limits
        self.admin = t.create_qpair(self.port, groups[0], depths[0], qid=0)
        self.cntlid = self._must(self.connect(self.admin, 0, W.CONNECT_CNTLID_DYNAMIC)) & 0xFFFF
        self._must(self.enable(self.admin))
        queues = self._must(self.command(self.admin, W.Capsule(W.Sqe(
            opc=W.OPC_GET_FEATURES, cid=self.cid(), cdw10=FID_NUMBER_OF_QUEUES,
            sgl1=NO_DATA)), "Get Features"))
        self.max_qid = min(queues & 0xFFFF, (queues >> 16) & 0xFFFF) + 1
        self._must(self.command(self.admin, W.Capsule(W.Sqe(
            opc=W.OPC_IDENTIFY, cid=self.cid(), cdw10=1,
            sgl1=W.keyed(t.memory_iova(self.fkey), IDENTIFY_BYTES, self.fkey))), "Identify"))
        ident = t.read_memory(self.fkey, 0, IDENTIFY_BYTES)
        self.nn = int.from_bytes(ident[NN_OFFSET:NN_OFFSET + 4], "little")
        # then the I/O queues
        self.io = t.create_qpair(self.port, groups[1], depths[1], qid=1)
        self._must(self.connect(self.io, 1, self.cntlid))
        self.other = t.create_qpair(self.port, groups[2], depths[2], qid=2)
        self._must(self.connect(self.other, 2, self.cntlid))
        self.next_qid = 3
        self.fresh = -1
        if queue.endswith("_unconnected"):
            self.fresh = t.create_qpair(self.port, groups[3], o.max_queue_depth,
                                        qid=0 if queue.startswith("admin") else self.next_qid)

    # -- plumbing -------------------------------------------------------------------
    def cid(self) -> int:
        self._cid = (self._cid + 1) & 0xFFFF
        while self._cid in self.avoid:
            self._cid = (self._cid + 1) & 0xFFFF
        return self._cid

    def settle(self) -> DrainResult:
        r = self.t.drain(DRAIN_ROUNDS)
        self.drains.append(r)
        return r

    def send(self, qp: int, cap: Capsule | Any) -> int:
        """Submit a facade ``Capsule`` or an ``impl.wire.Capsule``; returns its CID."""
        if isinstance(cap, Capsule):
            self.t.submit(qp, cap)
            return cap.cid
        self.t.submit_bytes(qp, capsule_bytes(self.t, cap, self.ckey))
        return cap.sqe.cid

    def command(self, qp: int, cap: Capsule | Any, what: str = "") -> FollowUp:
        """Submit, drain, and collect the response for the capsule's CID."""
        cid = self.send(qp, cap)
        self.settle()
        rsp = None
        if self.t.qpair_info(qp) is not None:
            rsp = next((r for r in self.t.reap(qp) if r.cid == cid), None)
        return FollowUp(what or f"opcode 0x{getattr(cap, 'opcode', 0):02x}", qp, cid,
                        None if rsp is None else rsp.status,
                        result=0 if rsp is None else rsp.result)

    def next_command(self, qp: int) -> tuple[FollowUp, list[Response]]:
        """A well-formed Flush (IO) or Keep Alive (admin) as the command after a held one:
        its follow-up, and every response the queue then had."""
        cid = self.cid()
        if qp == self.admin:
            cap, what = Capsule(Opcode.KEEP_ALIVE, cid), "keep-alive after it"
        else:
            cap, what = Capsule(Opcode.FLUSH, cid, nsid=self.nsid), "flush after it"
        self.send(qp, cap)
        self.settle()
        got = self.t.reap(qp) if self.t.qpair_info(qp) is not None else []
        rsp = next((r for r in got if r.cid == cid), None)
        return FollowUp(what, qp, cid, None if rsp is None else rsp.status), got

    def connect(self, qp: int, qid: int, cntlid: int) -> FollowUp:
        depth = self.t.qpair_info(qp).depth
        cap = connect_capsule(self.cid(), self.sub, qid=qid, cntlid=cntlid, sqsize=depth - 1)
        return self.command(qp, cap, f"CONNECT qid {qid}")

    def enable(self, qp: int) -> FollowUp:
        return self.command(qp, enable_capsule(self.cid()), "Property Set CC.EN=1")

    @staticmethod
    def _must(done: FollowUp) -> int:
        if done.status != Status.SUCCESS:
            raise RuntimeError(f"setup: {done.what} on qpair {done.qpair} answered {done}")
        return done.result

    def snapshot(self) -> Snapshot:
        t = self.t
        infos = tuple(i for i in (t.qpair_info(q) for q in t.qpairs()) if i is not None)
        return Snapshot(t.wr_pool() if self.desc.has("WR_POOL") else None,
                        t.buf_pool() if self.desc.has("BUF_POOL") else None, infos)

    def qpair_for(self, queue: str) -> int:
        return {"admin": self.admin, "io": self.io, "admin_unconnected": self.fresh,
                "io_unconnected": self.fresh}[queue]

    def context(self) -> ErrContext:
        """What this host knows, for ``strategies.malformed``."""
        lim = wire_limits(self.t.options, self.ns, self.region, self.max_qid, self.sub)
        return ErrContext(lim, self.cntlid, HOST_ID, (1, 2), self.next_qid, self.max_qid,
                          self.nn)

    # -- the commands after it ------------------------------------------------------
    def round_trip(self, qp: int, slba: int, host: int, tag: int) -> list[FollowUp]:
        """Write one block at ``slba`` from follow-up memory offset ``host`` and read it back
        into the unit after; the read's bytes are compared by the caller."""
        bs = self.ns.block_size
        data = pattern(tag, slba, bs, bs)
        self.t.write_memory(self.fkey, host, data)
        w = self.command(qp, Capsule(Opcode.WRITE, self.cid(), nsid=self.nsid, slba=slba,
                                     nlb=0, sgl=keyed(host, bs, self.fkey)), "write")
        back = host + self.unit
        self.t.write_memory(self.fkey, back, b"\xee" * bs)   # stale bytes cannot pass
        r = self.command(qp, Capsule(Opcode.READ, self.cid(), nsid=self.nsid, slba=slba,
                                     nlb=0, sgl=keyed(back, bs, self.fkey)), "read")
        got = self.t.read_memory(self.fkey, back, bs) if r.status is not None else b""
        return [w, FollowUp("read", qp, r.cid, r.status, got, data)]

    def keep_alive(self, qp: int) -> list[FollowUp]:
        return [self.command(qp, Capsule(Opcode.KEEP_ALIVE, self.cid()), "keep-alive")]

    def follow_same(self, qp: int) -> list[FollowUp]:
        """A well-formed command on the qpair that got the malformed one, if it is live; a
        queue still unconnected gets a valid Connect first (and a new admin queue, CC.EN)."""
        info = self.t.qpair_info(qp)
        if info is None or info.state not in (QpState.ACTIVE, QpState.CONNECTING):
            return []
        out: list[FollowUp] = []
        is_admin = self.queue.startswith("admin")
        if info.state == QpState.CONNECTING:
            qid = 0 if is_admin else self.next_qid
            done = self.connect(qp, qid, W.CONNECT_CNTLID_DYNAMIC if is_admin else self.cntlid)
            out.append(done)
            if done.status != Status.SUCCESS:
                return out
        if is_admin:
            if qp == self.fresh:   # a new association: the host enables it before using it
                out.append(self.enable(qp))
            return out + self.keep_alive(qp)
        return out + self.round_trip(qp, 1 % self.ns.num_blocks, 0, 0x5A3E)


def run_malformed(opts: TransportOptions, ns: Namespace, kind: str, source: CapsuleSource,
                  place: Placement = Placement()) -> Outcome:
    """Connect to a fresh target built from ``opts`` with namespace ``ns``, send the
    malformed capsule of ``kind`` that ``source`` gives for the connected host (a
    ``MalformedCapsule``, or a function of the :class:`ErrContext` returning one), then
    well-formed commands on the same and on another IO qpair; destroy; report everything.

    ``TargetError`` from a facade call propagates: the driver only makes calls a host may
    make, so a refusal there is itself a finding."""
    queue = KINDS[kind].queue
    d = _Driver(opts, ns, place, queue)
    t = d.t
    try:
        qp = d.qpair_for(queue)
        ctx = d.context()
        if kind not in feasible_kinds(ctx):
            raise ValueError(f"{kind} cannot be built for this target: {ctx}")
        m = source(ctx) if callable(source) else source
        if m.kind != kind:
            raise ValueError(f"asked for {kind}, got a {m.kind} capsule")
        raw = capsule_bytes(t, m.capsule, d.ckey)
        cid = m.capsule.sqe.cid
        d.avoid.add(cid)
        setup = SETUP.get(kind, ())
        if "namespace_not_ready" in setup:
            t.set_namespace_ready(d.sub, d.nsid, False)
        before = t.qpair_info(qp)
        t.submit_bytes(qp, raw)
        drain = d.settle()
        responses = tuple(t.reap(qp)) if t.qpair_info(qp) is not None else ()
        partner: list[FollowUp] = []
        if (m.capsule.sqe.fuse == FUSE_FIRST and not any(r.cid == cid for r in responses)
                and t.qpair_info(qp) is not None):
            # the round that left it waiting made no progress by design: not a stall
            d.drains.remove(drain)
            nxt, got = d.next_command(qp)
            partner.append(nxt)
            responses += tuple(r for r in got if r.cid != nxt.cid)
        after = t.qpair_info(qp)
        released = d.snapshot()
        if "namespace_not_ready" in setup:
            t.set_namespace_ready(d.sub, d.nsid, True)
        state_after = QpState.ACTIVE if kind in CONNECTS else before.state
        out = Outcome(m, queue, raw, qp, cid, before, responses, after, state_after, drain,
                      released, t.options.wr_pool_capacity, t.options.num_shared_buffers)
        out.same_qpair = partner + d.follow_same(qp)
        return _finish(d, ns, out)
    finally:
        if t.alive:
            t.destroy()


_O = TypeVar("_O", "Outcome", "CallOutcome")


def _finish(d: _Driver, ns: Namespace, out: _O) -> _O:
    """The end both drivers share: another qpair still serves a write+read round trip,
    then the final counters and the destroy report."""
    out.other_qpair = d.round_trip(d.other, 2 % ns.num_blocks, 2 * d.unit, 0x07E4)
    out.desc = d.desc
    out.drains = list(d.drains)
    out.final = d.snapshot()
    out.report = d.t.destroy()
    return out


# ---------------------------------------------------------------------- call-order errors

#: Calls a host makes out of order or beyond a limit, each refused with a TargetError:
#: kind -> (error code name in ``impl.nvme.ErrorCode``, what the message must name).
CALL_ORDER_ERRORS: dict[str, tuple[str, str]] = {
    "submit_after_disconnect": ("NOTCONN", "the qpair"),
    "second_disconnect": ("STATE", "the qpair"),
    "submit_on_destroyed_qpair": ("NOENT", "the qpair"),
    "disconnect_destroyed_qpair": ("NOENT", "the qpair"),
    "submit_on_unknown_qpair": ("NOENT", "the handle"),
    "submit_past_queue_depth": ("BUSY", "the qpair"),
    "icd_beyond_receive_buffer": ("MSGSIZE", "in_capsule_data_size"),
}
CALL_ORDER_KINDS: tuple[str, ...] = tuple(CALL_ORDER_ERRORS)


@dataclass
class CallOutcome:
    """What one out-of-order call did, and whether the target kept serving after it."""

    kind: str
    qpair: int                              # the IO qpair the call was aimed at
    error: BaseException | None
    code: int
    mentions: tuple[str, ...]
    released: Snapshot
    expected_wrs: int
    expected_bufs: int
    answered: tuple[Response, ...] = ()     # responses to the well-formed capsules sent
    sent: tuple[int, ...] = ()              # CIDs of those capsules
    other_qpair: list[FollowUp] = field(default_factory=list)
    drains: list[DrainResult] = field(default_factory=list)
    final: Snapshot | None = None
    report: DestroyReport | None = None
    desc: TargetDescription | None = None


def run_call_order(opts: TransportOptions, ns: Namespace, kind: str,
                   place: Placement = Placement()) -> CallOutcome:
    """Make the out-of-order call ``kind`` (see :data:`CALL_ORDER_ERRORS`) on the IO qpair
    of a fresh target, record what it raised, drain, then run a write + read round trip on
    the other IO qpair; destroy."""
    code_name, _ = CALL_ORDER_ERRORS[kind]
    d = _Driver(opts, ns, place, "io")
    t = d.t
    qp = d.io
    mentions: tuple[str, ...] = (str(qp),)
    sent: list[int] = []

    def flush() -> Capsule:
        return Capsule(Opcode.FLUSH, d.cid(), nsid=d.nsid)

    try:
        error: BaseException | None = None
        try:
            if kind == "submit_after_disconnect":
                t.disconnect_qpair(qp)
                t.submit(qp, flush())
            elif kind == "second_disconnect":
                # refused by the target itself, which names its own qpair (QpairInfo.id),
                # not the connection handle the host passed
                mentions = (str(t.qpair_info(qp).id),)
                t.disconnect_qpair(qp)
                t.disconnect_qpair(qp)
            elif kind in ("submit_on_destroyed_qpair", "disconnect_destroyed_qpair"):
                t.disconnect_qpair(qp)
                d.settle()
                if t.qpair_info(qp) is not None:
                    raise RuntimeError(f"qpair {qp} still exists after disconnect + drain")
                if kind == "submit_on_destroyed_qpair":
                    t.submit(qp, flush())
                else:
                    t.disconnect_qpair(qp)
            elif kind == "submit_on_unknown_qpair":
                unknown = max(t.qpairs()) + 1
                mentions = (str(unknown),)
                t.submit(unknown, flush())
            elif kind == "submit_past_queue_depth":
                for _ in range(t.qpair_info(qp).depth):
                    cap = flush()
                    t.submit(qp, cap)
                    sent.append(cap.cid)
                t.submit(qp, flush())
            elif kind == "icd_beyond_receive_buffer":
                size = t.options.in_capsule_data_size
                n = size + 512
                mentions = (str(size),)
                t.submit(qp, Capsule(Opcode.WRITE, d.cid(), nsid=d.nsid,
                                     nlb=n // ns.block_size,
                                     sgl=SglDesc(0, n, 0, SGL_TYPE_DATA_BLOCK,
                                                 SGL_SUBTYPE_OFFSET)), bytes(n))
            else:
                raise ValueError(f"unknown call-order kind {kind!r}")
        except Exception as exc:  # noqa: BLE001 - any exception: the verdict is the caller's
            error = exc
        d.settle()
        answered = tuple(t.reap(qp)) if t.qpair_info(qp) is not None else ()
        out = CallOutcome(kind, qp, error, int(ErrorCode[code_name]), mentions, d.snapshot(),
                          t.options.wr_pool_capacity, t.options.num_shared_buffers,
                          answered, tuple(sent))
        return _finish(d, ns, out)
    finally:
        if t.alive:
            t.destroy()
