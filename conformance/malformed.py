"""The ERR-1 driver: send one malformed capsule to a fresh target and record what happened.

:func:`run_malformed` builds a small transport (one port, one subsystem with the namespace
under test, one host memory region, a connected admin qpair and two connected IO qpairs, plus
a fresh unconnected qpair for the ``*_unconnected`` queue states), builds the well-formed base
command a :class:`~strategies.types.Malformed` names (the table in
:mod:`strategies.malformed`), applies its ``setup`` and ``capsule_overrides``, submits it and
drains the target.  Then it shows the target keeps serving: a well-formed command on the
same qpair (if it is still live; a valid CONNECT first if it was never connected) and a
write + read round trip on the *other* IO qpair.  Finally it destroys the transport.

It returns an :class:`Outcome` and decides nothing: ``conformance/test_err.py`` hands the
outcome to :mod:`conformance.checks`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from conformance import profiles
from conformance.model import pattern
from impl import (
    Capsule,
    DestroyReport,
    DrainResult,
    FabricsType,
    Opcode,
    Options,
    PoolCounts,
    QpairInfo,
    QpState,
    Response,
    SglDesc,
    Status,
    Transport,
    connect_capsule,
    keyed,
)
from impl.nvme import (
    SGL_SUBTYPE_ADDRESS,
    SGL_SUBTYPE_OFFSET,
    SGL_TYPE_DATA_BLOCK,
    SGL_TYPE_KEYED_DATA,
    SGL_TYPE_LAST_SEGMENT,
    ErrorCode,
)
from strategies.types import Malformed, Namespace, TransportOptions

#: Bytes of the identify data the ``identify`` base asks for.
IDENTIFY_BYTES = 4096
#: CC with EN=1, IOSQES=6, IOCQES=4 (``strategies.nvme.CC_ENABLE``).
CC_ENABLE = 0x0046_0001
#: Drain bound per phase; every phase here is a handful of commands.
DRAIN_ROUNDS = 200

_CONNECT_BASES = ("connect_admin", "connect_io")
_CAPSULE_FIELDS = ("opcode", "cid", "nsid", "slba", "nlb", "fctype", "cdw10", "value", "qid",
                   "cntlid", "subsystem", "sqsize", "kato")


@dataclass(frozen=True)
class ClaimedCapsule(Capsule):
    """A capsule whose ``ndesc`` may claim more list entries than it carries.

    The facade derives ``ndesc`` from ``descriptors`` and a capsule holds at most 16; the
    ``list_too_many_descriptors`` kind claims up to 255, which only the raw field can say."""

    ndesc: int | None = None

    def _fill(self, c: Any) -> None:
        super()._fill(c)
        if self.ndesc is not None:
            c.ndesc = self.ndesc


@dataclass(frozen=True)
class Placement:
    """Poll group and depth of the four qpairs: admin, IO (``io`` kinds), the other IO
    qpair (the "keeps serving" check) and the unconnected one (``*_unconnected`` kinds)."""

    groups: tuple[int, int, int, int] = (0, 0, 0, 0)
    depths: tuple[int, int, int, int] = (4, 4, 4, 4)


@dataclass(frozen=True)
class Snapshot:
    """Pools and every qpair, at a quiescent point."""

    wr: PoolCounts
    buf: PoolCounts
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

    malformed: Malformed
    capsule: Capsule
    icd_len: int
    qpair: int                      # handle the malformed capsule went to
    cid: int
    before: QpairInfo               # that qpair just before the submit
    responses: tuple[Response, ...]  # everything reaped from it after the drain
    after: QpairInfo | None          # that qpair after the drain (None: destroyed)
    drain: DrainResult
    released: Snapshot               # right after the malformed command was answered
    expected_wrs: int
    expected_bufs: int
    same_qpair: list[FollowUp] = field(default_factory=list)
    other_qpair: list[FollowUp] = field(default_factory=list)
    drains: list[DrainResult] = field(default_factory=list)
    final: Snapshot | None = None
    report: DestroyReport | None = None

    @property
    def allowed(self) -> tuple[int, ...]:
        return (self.malformed.expected_status, *self.malformed.alternatives)

    def describe(self) -> str:
        m = self.malformed
        return f"{m.kind} ({m.base} on {m.queue} qpair {self.qpair}, CID {self.cid})"


def target_options(opts: TransportOptions) -> Options:
    """The facade options for ``opts``, with the defect switches under test (self-check
    only) passed through untouched."""
    return Options.from_any(opts, defects=opts.defects | profiles.defects_under_test())


class _Driver:
    """One transport set up for one malformed capsule."""

    def __init__(self, opts: TransportOptions, ns: Namespace, place: Placement):
        self.t = Transport(target_options(opts))
        self.ns = ns
        self.place = place
        t = self.t
        groups = [g % t.options.num_poll_groups for g in place.groups]
        depths = [max(2, min(d, t.options.max_queue_depth)) for d in place.depths]
        self.port = t.add_port()
        self.sub = t.add_subsystem()
        self.nsid = t.add_namespace(self.sub, ns.block_size, ns.num_blocks)
        # the malformed bases use [0, 2 * span); the follow-ups use the pages after it
        self.span = max(t.options.max_io_size, IDENTIFY_BYTES)
        self.scratch = 2 * self.span
        self.key = t.register_memory(self.scratch + 8 * max(ns.block_size, 4096))
        self._cid = 0
        self.drains: list[DrainResult] = []
        self.admin = t.create_qpair(self.port, groups[0], depths[0])
        self.io = t.create_qpair(self.port, groups[1], depths[1])
        self.other = t.create_qpair(self.port, groups[2], depths[2])
        self.fresh = t.create_qpair(self.port, groups[3], depths[3])
        self.cntlid = self._must_connect(self.admin, qid=0, cntlid=0xFFFF)
        self._must_connect(self.io, qid=1, cntlid=self.cntlid)
        self._must_connect(self.other, qid=2, cntlid=self.cntlid)
        self.next_qid = 3

    # -- plumbing -------------------------------------------------------------------
    def cid(self) -> int:
        self._cid = (self._cid + 1) & 0xFFFF
        return self._cid

    def settle(self) -> DrainResult:
        r = self.t.drain(DRAIN_ROUNDS)
        self.drains.append(r)
        return r

    def one(self, qp: int, cap: Capsule, icd: bytes = b"") -> Response | None:
        """Submit, drain, and return the response for the capsule's CID (None if none)."""
        self.t.submit(qp, cap, icd)
        self.settle()
        if self.t.qpair_info(qp) is None:
            return None
        return next((r for r in self.t.reap(qp) if r.cid == cap.cid), None)

    def connect(self, qp: int, qid: int, cntlid: int) -> FollowUp:
        depth = self.t.qpair_info(qp).depth
        cap = connect_capsule(self.cid(), self.sub, qid=qid, cntlid=cntlid, sqsize=depth - 1)
        rsp = self.one(qp, cap)
        return FollowUp(f"CONNECT qid {qid}", qp, cap.cid, None if rsp is None else rsp.status,
                        result=0 if rsp is None else rsp.result)

    def _must_connect(self, qp: int, qid: int, cntlid: int) -> int:
        done = self.connect(qp, qid, cntlid)
        if done.status != Status.SUCCESS:
            raise RuntimeError(f"setup: CONNECT qid {qid} on qpair {qp} answered {done}")
        return done.result

    def flush(self) -> Capsule:
        return Capsule(Opcode.FLUSH, self.cid(), nsid=self.nsid)

    def snapshot(self) -> Snapshot:
        t = self.t
        infos = tuple(i for i in (t.qpair_info(q) for q in t.qpairs()) if i is not None)
        return Snapshot(t.wr_pool(), t.buf_pool(), infos)

    def qpair_for(self, queue: str) -> int:
        return {"admin": self.admin, "io": self.io, "admin_unconnected": self.fresh,
                "io_unconnected": self.fresh}[queue]

    # -- the malformed capsule ------------------------------------------------------
    def build(self, m: Malformed, qp: int) -> tuple[Capsule, bytes]:
        """The base command of ``m`` with its overrides, and the in-capsule bytes."""
        over = dict(m.capsule_overrides)
        unknown = set(over) - {*_CAPSULE_FIELDS, "sgl", "list", "ndesc"}
        if unknown:
            raise ValueError(f"{m.kind}: unknown capsule override(s) {sorted(unknown)}")
        bs = self.ns.block_size
        nlb = int(over.get("nlb", 0))
        fields: dict[str, Any] = {}
        sgl = SglDesc()
        icd_len = 0
        entries: tuple[SglDesc, ...] = ()
        ndesc: int | None = None
        if m.base in ("read", "write", "read_list", "write_list", "write_icd", "flush"):
            op = {"read": Opcode.READ, "read_list": Opcode.READ, "flush": Opcode.FLUSH}.get(
                m.base, Opcode.WRITE)
            fields = {"opcode": op, "nsid": self.nsid, "slba": 0, "nlb": nlb}
            length = (nlb + 1) * bs
            if m.base in ("read", "write"):
                sgl = keyed(0, length, self.key)
            elif m.base.endswith("_list"):
                listed = tuple(over.get("list", ()))
                entries = tuple(self._entry(e) for e in listed)
                ndesc = int(over.get("ndesc", len(entries)))
                sgl = SglDesc(0, ndesc * 16, 0, SGL_TYPE_LAST_SEGMENT, SGL_SUBTYPE_OFFSET)
            elif m.base == "write_icd":
                sgl = SglDesc(0, length, 0, SGL_TYPE_DATA_BLOCK, SGL_SUBTYPE_OFFSET)
                icd_len = length
        elif m.base == "identify":
            fields = {"opcode": Opcode.IDENTIFY, "cdw10": 1}
            sgl = keyed(0, IDENTIFY_BYTES, self.key)
        elif m.base == "keep_alive":
            fields = {"opcode": Opcode.KEEP_ALIVE}
        elif m.base == "property_get":
            fields = {"opcode": Opcode.FABRICS, "fctype": FabricsType.PROPERTY_GET, "cdw10": 0}
        elif m.base == "property_set":
            fields = {"opcode": Opcode.FABRICS, "fctype": FabricsType.PROPERTY_SET,
                      "cdw10": 0x14, "value": CC_ENABLE}
        elif m.base in _CONNECT_BASES:
            depth = self.t.qpair_info(qp).depth
            admin = m.base == "connect_admin"
            fields = {"opcode": Opcode.FABRICS, "fctype": FabricsType.CONNECT,
                      "subsystem": self.sub, "sqsize": depth - 1, "kato": 0,
                      "qid": 0 if admin else self.next_qid,
                      "cntlid": 0xFFFF if admin else self.cntlid}
            if "duplicate_qid" in m.setup:
                fields["qid"] = 1       # the live IO qpair ``self.io`` of this controller
        else:
            raise ValueError(f"{m.kind}: unknown base command {m.base!r}")
        if m.icd_len is not None:
            icd_len = m.icd_len
        fields.update({k: v for k, v in over.items() if k in _CAPSULE_FIELDS})
        if "sgl" in over:
            sgl = _merge(sgl, over["sgl"])
        cap = ClaimedCapsule(cid=self.cid(), sgl=sgl, descriptors=entries,
                             ndesc=ndesc if ndesc != len(entries) else None,
                             **{k: v for k, v in fields.items() if k != "cid"})
        return cap, bytes((7 * i + 3) & 0xFF for i in range(icd_len))

    def _entry(self, e: Mapping[str, int]) -> SglDesc:
        return SglDesc(int(e.get("addr", 0)), int(e.get("length", 0)),
                       int(e.get("key", self.key)), int(e.get("type", SGL_TYPE_KEYED_DATA)),
                       int(e.get("subtype", SGL_SUBTYPE_ADDRESS)))

    # -- the commands after it ------------------------------------------------------
    def round_trip(self, qp: int, slba: int, host: int, tag: int) -> list[FollowUp]:
        """Write one block at ``slba`` from host offset ``host`` and read it back into the
        page after; the read's bytes are compared by the caller."""
        bs = self.ns.block_size
        data = pattern(tag, slba, bs, bs)
        self.t.write_memory(self.key, host, data)
        wcap = Capsule(Opcode.WRITE, self.cid(), nsid=self.nsid, slba=slba, nlb=0,
                       sgl=keyed(host, bs, self.key))
        w = self.one(qp, wcap)
        out = [FollowUp("write", qp, wcap.cid, None if w is None else w.status)]
        back = host + max(bs, 4096)
        self.t.write_memory(self.key, back, b"\xee" * bs)   # stale bytes cannot pass
        rcap = Capsule(Opcode.READ, self.cid(), nsid=self.nsid, slba=slba, nlb=0,
                       sgl=keyed(back, bs, self.key))
        r = self.one(qp, rcap)
        got = self.t.read_memory(self.key, back, bs) if r is not None else b""
        out.append(FollowUp("read", qp, rcap.cid, None if r is None else r.status, got, data))
        return out

    def keep_alive(self, qp: int) -> list[FollowUp]:
        cap = Capsule(Opcode.KEEP_ALIVE, self.cid())
        rsp = self.one(qp, cap)
        return [FollowUp("keep-alive", qp, cap.cid, None if rsp is None else rsp.status)]

    def follow_same(self, m: Malformed, qp: int) -> list[FollowUp]:
        """A well-formed command on the qpair that got the malformed one, if it is live."""
        info = self.t.qpair_info(qp)
        if info is None or info.state not in (QpState.ACTIVE, QpState.CONNECTING):
            return []
        page = self.scratch
        out: list[FollowUp] = []
        is_admin = m.queue.startswith("admin")
        if info.state == QpState.CONNECTING:
            qid = 0 if is_admin else self.next_qid
            done = self.connect(qp, qid, 0xFFFF if is_admin else self.cntlid)
            out.append(done)
            if done.status != Status.SUCCESS:
                return out
        if is_admin:
            return out + self.keep_alive(qp)
        return out + self.round_trip(qp, 1 % self.ns.num_blocks, page, 0x5A3E)


def _merge(d: SglDesc, changes: Mapping[str, int]) -> SglDesc:
    unknown = set(changes) - {"addr", "length", "key", "type", "subtype"}
    if unknown:
        raise ValueError(f"unknown SGL descriptor field(s) {sorted(unknown)}")
    vals = {"addr": d.addr, "length": d.length, "key": d.key, "type": d.type,
            "subtype": d.subtype, **changes}
    return SglDesc(**{k: int(v) for k, v in vals.items()})


def run_malformed(opts: TransportOptions, ns: Namespace, m: Malformed,
                  place: Placement = Placement()) -> Outcome:
    """Send ``m`` to a fresh target built from ``opts`` with namespace ``ns``, then
    well-formed commands on the same and on another IO qpair; destroy; report everything.

    ``TargetError`` from a facade call propagates: the driver only makes calls a host may
    make, so a refusal there is itself a finding."""
    d = _Driver(opts, ns, place)
    t = d.t
    try:
        qp = d.qpair_for(m.queue)
        cap, icd = d.build(m, qp)
        if "namespace_not_ready" in m.setup:
            t.set_namespace_ready(d.sub, d.nsid, False)
        before = t.qpair_info(qp)
        t.submit(qp, cap, icd)
        drain = d.settle()
        responses = tuple(t.reap(qp)) if t.qpair_info(qp) is not None else ()
        after = t.qpair_info(qp)
        released = d.snapshot()
        if "namespace_not_ready" in m.setup:
            t.set_namespace_ready(d.sub, d.nsid, True)
        out = Outcome(m, cap, len(icd), qp, cap.cid, before, responses, after, drain,
                      released, t.options.wr_pool_capacity, t.options.num_shared_buffers)
        out.same_qpair = d.follow_same(m, qp)
        return _finish(d, ns, out)
    finally:
        if t.alive:
            t.destroy()


_O = TypeVar("_O", "Outcome", "CallOutcome")


def _finish(d: _Driver, ns: Namespace, out: _O) -> _O:
    """The end both drivers share: another qpair still serves a write+read round trip,
    then the final counters and the destroy report."""
    out.other_qpair = d.round_trip(d.other, 2 % ns.num_blocks,
                                   d.scratch + 2 * max(ns.block_size, 4096), 0x07E4)
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


def run_call_order(opts: TransportOptions, ns: Namespace, kind: str,
                   place: Placement = Placement()) -> CallOutcome:
    """Make the out-of-order call ``kind`` (see :data:`CALL_ORDER_ERRORS`) on the IO qpair
    of a fresh target, record what it raised, drain, then run a write + read round trip on
    the other IO qpair; destroy."""
    code_name, _ = CALL_ORDER_ERRORS[kind]
    d = _Driver(opts, ns, place)
    t = d.t
    qp = d.io
    mentions: tuple[str, ...] = (str(qp),)
    sent: list[int] = []
    try:
        error: BaseException | None = None
        try:
            if kind == "submit_after_disconnect":
                t.disconnect_qpair(qp)
                t.submit(qp, d.flush())
            elif kind == "second_disconnect":
                t.disconnect_qpair(qp)
                t.disconnect_qpair(qp)
            elif kind in ("submit_on_destroyed_qpair", "disconnect_destroyed_qpair"):
                t.disconnect_qpair(qp)
                d.settle()
                if t.qpair_info(qp) is not None:
                    raise RuntimeError(f"qpair {qp} still exists after disconnect + drain")
                if kind == "submit_on_destroyed_qpair":
                    t.submit(qp, d.flush())
                else:
                    t.disconnect_qpair(qp)
            elif kind == "submit_on_unknown_qpair":
                unknown = max(t.qpairs()) + 1
                mentions = (str(unknown),)
                t.submit(unknown, d.flush())
            elif kind == "submit_past_queue_depth":
                for _ in range(t.qpair_info(qp).depth):
                    cap = d.flush()
                    t.submit(qp, cap)
                    sent.append(cap.cid)
                t.submit(qp, d.flush())
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
