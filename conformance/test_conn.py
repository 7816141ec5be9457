"""CONN-1: RDMA CM connect and the Fabrics Connect, as the NVMe/RDMA and NVMe-oF specs say.

Each example builds a fresh target and plays a host against it through the facade
(``Transport.connect`` / ``conn_info`` for the CM, wire bytes for the Connect command); the
verdicts are the CONN-1 checks of :mod:`conformance.checks` only.

* ``test_cm_private_data_is_answered`` (one test id per ``strategies.wire.CM_KINDS`` kind):
  the RDMA_CM_REQUEST private data ``cm_private_data`` draws, reserved bytes clean or not,
  is accepted with CRQSIZE = the negotiated depth, or rejected with the STS of NVMe/RDMA
  1.0 3.3 figure 6.
* ``test_host_read_resources_are_honoured``: the IRD the host offers (its responder
  resources) and its ORD; IRD 0 is rejected (STS 07h Invalid IRD), otherwise the target asks
  for no more outstanding RDMA READs than the host offered.
* ``test_queue_sizes_negotiate_the_smaller``: HRQSIZE and HSQSIZE drawn apart.
* Sizes above what the target supports (``hrqsize_too_large``, ``hsqsize_too_large``) may
  be rejected (05h / 04h) or accepted with the smaller depth as CRQSIZE: see
  :data:`OVERSIZE_RULING`.
* ``test_unknown_subnqn_is_refused`` and ``test_io_connect_joins_the_named_controller``:
  the Connect data is honoured (SUBNQN, CNTLID).

What a host knows of the target it learns as a host does: CAP.MQES from Property Get, the
number of I/O queues (so the largest QID) from Get Features Number of Queues.

Short private data: simverbs, like RDMA CM on InfiniBand and RoCE, hands the passive side
its whole private data area (56 bytes for a REQ) zero padded, so a target cannot see how
many bytes the host sent.  A request shorter than 32 bytes is therefore answered either STS
01h (where the CM reports the length, iWARP) or as the zero-padded 32-byte record it
becomes (``cm_outcomes``); ``strategies.wire``'s ``short`` kind expects 01h only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Self

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from conformance import checks, judging, profiles
from conformance.harness import crash_contained
from conformance.malformed import NO_DATA, capsule_bytes, target_options
from impl import ConnInfo, OptionsRefused, Response, Status, Transport, enable_capsule
from impl import wire as W
from impl.target import HOST_ID, HOST_NQN, SUBSYSTEM_NQN
from strategies import accepted_options
from strategies.types import TransportOptions
from strategies.wire import CM_KINDS, WireLimits, cm_private_data

_SCALE = "nightly" if profiles.active_profile() == "nightly" else "ci"
#: Examples per kind: 10 under ci, a tenth of the profile otherwise (as ``test_err``).
PER_KIND_EXAMPLES = profiles.capped(10 if profiles.active_profile() == "ci" else max(
    10, settings.default.max_examples // 10))
#: What these tests judge.
PROPERTIES = ("CONN-1", "CRASH-1")
#: The read resources the rig's host offers unless a test draws them (RDMA CM's usual 16).
HOST_IRD = HOST_ORD = 16
#: The most a simverbs device takes (max_qp_rd_atom).
MAX_RD_ATOM = 16
#: Connect data byte offsets (NVMe-oF 1.1 3.3, figure 20) an IPO names.
IPO_CNTLID, IPO_SUBNQN = 16, 256
INVALID_IRD = W.RDMA_STS_INVALID_IRD
#: How CONN-1 judges a queue size above the target's maximum (HRQSIZE > CAP.MQES + 1 or
#: HSQSIZE >= CAP.MQES + 1), decided on the transport binding's own terms:
#:
#: * NVMe/RDMA Transport 1.0, 3.3 (RDMA_CM_ACCEPT private data): the controller answers an
#:   accepted request with CRQSIZE, the number of receive queue entries *it allocated* for
#:   the host's command capsules - a field that would carry nothing if the controller had
#:   to allocate exactly what HSQSIZE asked.  The reject status codes of the same section
#:   name Invalid HSQSIZE (04h) and Invalid HRQSIZE (05h) but give no rule that a size
#:   above the controller's limit must be rejected rather than accepted smaller.
#: * What bounds the queue a host may use is the Fabrics Connect: an SQSIZE above CAP.MQES
#:   is refused with Connect Invalid Parameters (NVMe-oF 1.1, 3.3), which the suite judges
#:   separately (ERR-1 ``connect_sqsize_too_large``).
#:
#: So lowering is no violation: an oversize request is right if it is rejected with its STS
#: or accepted with CRQSIZE = min(HRQSIZE, HSQSIZE + 1, CAP.MQES + 1) and a qpair that deep.
#: A zero size is different: a queue of 0 (HRQSIZE 0) or 1 entry (HSQSIZE 0) cannot exist
#: (NVMe Base 2.0 4.1.3: a queue has 2 entries at least) and must be rejected.
OVERSIZE_RULING = ("oversize HRQSIZE/HSQSIZE: rejected 05h/04h or accepted with the lowered "
                   "depth as CRQSIZE (NVMe/RDMA 1.0 3.3: CRQSIZE is what the controller "
                   "allocated; no rule demands a reject)")
PROP_CAP = 0x00
FID_NUMBER_OF_QUEUES = 0x07


def conn_options() -> SearchStrategy[TransportOptions]:
    return accepted_options(_SCALE)


# ---------------------------------------------------------------------------- the host


class _Host:
    """One target on its own fabric, and what a host learns of it: CAP.MQES + 1 (Property
    Get CAP) and the largest I/O queue QID (Get Features Number of Queues), through an
    admin queue of its own."""

    def __init__(self, opts: TransportOptions):
        options = target_options(opts)
        try:
            self.t = t = Transport(options)
        except OptionsRefused:
            # how each property is judged is recorded (and impossible asks refused) first
            judging.start(judging.describe_target(), PROPERTIES, options.defects)
            raise
        try:
            judging.start(t.describe(), PROPERTIES, t.options.defects)
        except judging.CannotJudge:
            t.destroy()
            raise
        self.opts = opts
        self.port = t.add_port()
        self.sub = t.add_subsystem()
        self.subnqn = SUBSYSTEM_NQN.format(self.sub)
        self.key = t.register_memory(W.CONNECT_DATA_SIZE)   # Connect data that does not fit
        self._cid = 0
        admin = t.create_qpair(self.port, 0, 2, qid=0)
        self.cntlid = self._ok(self.connect(admin, 0, W.CONNECT_CNTLID_DYNAMIC, 1),
                               "admin Connect") & 0xFFFF
        self._ok(self.command(admin, enable_capsule(self.cid())), "Property Set CC.EN=1")
        cap = self._ok(self.command(admin, W.Capsule(W.PropertySqe(
            W.FCTYPE_PROPERTY_GET, self.cid(), PROP_CAP, 1).sqe())), "Property Get CAP")
        queues = self._ok(self.command(admin, W.Capsule(W.Sqe(
            opc=W.OPC_GET_FEATURES, cid=self.cid(), cdw10=FID_NUMBER_OF_QUEUES,
            sgl1=NO_DATA))), "Get Features")
        self.max_queue_depth = (cap & 0xFFFF) + 1
        self.max_qid = min(queues & 0xFFFF, (queues >> 16) & 0xFFFF) + 1

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.t.alive:
            self.t.destroy()

    @property
    def limits(self) -> WireLimits:
        """What ``cm_private_data`` needs: the queue depth and QID bounds the host learnt."""
        return WireLimits(max_queue_depth=self.max_queue_depth, max_qid=self.max_qid)

    def cid(self) -> int:
        self._cid = (self._cid + 1) & 0xFFFF
        return self._cid

    def command(self, conn: int, cap: object) -> Response | None:
        """Send a facade or ``impl.wire`` capsule, drain, return its response (or None)."""
        if isinstance(cap, W.Capsule):
            self.t.submit_bytes(conn, capsule_bytes(self.t, cap, self.key))
            cid = cap.sqe.cid
        else:
            self.t.submit(conn, cap)   # type: ignore[arg-type]
            cid = cap.cid              # type: ignore[attr-defined]
        self.t.drain(200)
        if self.t.qpair_info(conn) is None:
            return None
        return next((r for r in self.t.reap(conn) if r.cid == cid), None)

    def connect(self, conn: int, qid: int, cntlid: int, sqsize: int,
                subnqn: str | None = None) -> Response | None:
        """A Fabrics Connect of this host (HOSTID, HOSTNQN) on ``conn``."""
        sq = W.ConnectSqe(cid=self.cid(), qid=qid, sqsize=sqsize, kato=0)
        data = W.ConnectData(HOST_ID, cntlid, (subnqn or self.subnqn).encode(),
                             HOST_NQN.encode())
        return self.command(conn, W.connect_capsule(sq, data))

    @staticmethod
    def _ok(rsp: Response | None, what: str) -> int:
        if rsp is None or rsp.status != Status.SUCCESS:
            raise RuntimeError(f"setup: {what} answered {rsp}")
        return rsp.result

    def answered(self, kind: str, conn: int, allowed: tuple[int | str, ...], depth: int,
                 ird: int, log: Callable[[str], None] = note) -> None:
        info = self.t.conn_info(conn)
        log(f"connection: {info}")
        qpair = self.t.qpair_info(conn) if info.qpair >= 0 else None
        checks.connect_answered(kind, allowed, info, depth, ird, qpair)


# ------------------------------------------------------------- what a request may get


def _padded(record: bytes) -> W.CmRequestPrivateData:
    """The 32-byte record a target sees: the bytes sent, zero padded (RDMA CM on IB/RoCE)."""
    return W.CmRequestPrivateData.decode((bytes(record) + bytes(W.CM_REQUEST_SIZE))
                                         [:W.CM_REQUEST_SIZE])


def negotiated_depth(record: bytes, lim: WireLimits) -> int:
    """min(HRQSIZE, HSQSIZE + 1, the target's maximum queue depth) of ``record``."""
    r = _padded(record)
    return min(r.hrqsize, r.hsqsize + 1, lim.max_queue_depth)


def _record_outcomes(r: W.CmRequestPrivateData, lim: WireLimits) -> set[int | str]:
    """What a 32-byte record gets (NVMe/RDMA 1.0 3.3): every STS one of its fields earns
    (the spec orders no check before another), or acceptance.  A queue holds 2 entries at
    least (NVMe Base 2.0: HRQSIZE >= 2, HSQSIZE >= 1); a size above CAP.MQES + 1 may also
    be accepted with the depth lowered (:data:`OVERSIZE_RULING`)."""
    out: set[int | str] = set()
    if r.recfmt != 0:
        out.add(W.RDMA_STS_INVALID_RECFMT)
    if r.qid > lim.max_qid:
        out.add(W.RDMA_STS_INVALID_QID)
    if r.hrqsize < 2:
        out.add(W.RDMA_STS_INVALID_HRQSIZE)
    if r.hsqsize < 1:
        out.add(W.RDMA_STS_INVALID_HSQSIZE)
    if out:
        return out
    oversize: set[int | str] = set()
    if r.hrqsize > lim.max_queue_depth:
        oversize.add(W.RDMA_STS_INVALID_HRQSIZE)
    if r.hsqsize > lim.max_queue_depth - 1:
        oversize.add(W.RDMA_STS_INVALID_HSQSIZE)
    return oversize | {"accept"}


def cm_outcomes(record: bytes, expected: int | str, lim: WireLimits,
                ird: int) -> tuple[int | str, ...]:
    """The answers ``record`` may get: ``expected`` (from ``cm_private_data``); for a record
    shorter than 32 bytes also what its zero-padded form gets (see the module docstring);
    for a 32-byte record whose only fault is a size above the target's maximum, also
    acceptance with the lowered depth (:data:`OVERSIZE_RULING`); with IRD 0, STS 07h
    Invalid IRD (alone if the record is otherwise valid)."""
    out: set[int | str] = {expected}
    sizes = (W.RDMA_STS_INVALID_HRQSIZE, W.RDMA_STS_INVALID_HSQSIZE)
    if len(record) < W.CM_REQUEST_SIZE or expected in sizes:
        out |= _record_outcomes(_padded(record), lim)
    if ird == 0:
        out = {INVALID_IRD} if out == {"accept"} else out | {INVALID_IRD}
    return tuple(sorted(out, key=str))


# ----------------------------------------------------------------------------- tests


@pytest.mark.spec("CONN-1")
@pytest.mark.parametrize("kind", tuple(CM_KINDS))
@settings(max_examples=PER_KIND_EXAMPLES)
@given(data=st.data())
@crash_contained
def test_cm_private_data_is_answered(kind: str, data: st.DataObject) -> None:
    """Each kind of RDMA_CM_REQUEST private data, reserved bytes clean or not, gets its
    answer: accepted with CRQSIZE = the negotiated depth, or rejected with its STS."""
    opts = data.draw(conn_options(), label="options")
    with _Host(opts) as h:
        dirty = data.draw(st.booleans(), label="dirty reserved bytes")
        record, expected, _ = data.draw(cm_private_data(h.limits, (kind,), tagged=True,
                                                        dirty_reserved=dirty),
                                        label="private data")
        group = data.draw(st.integers(0, opts.num_poll_groups - 1), label="poll group")
        note(f"private data ({len(record)} bytes): {record.hex()}")
        conn = h.t.connect(h.port, group, private_data=record, initiator_depth=HOST_ORD,
                           responder_resources=HOST_IRD)
        h.answered(kind, conn, cm_outcomes(record, expected, h.limits, HOST_IRD),
                   negotiated_depth(record, h.limits), HOST_IRD)


@pytest.mark.spec("CONN-1")
@given(data=st.data())
@crash_contained
def test_host_read_resources_are_honoured(data: st.DataObject) -> None:
    """The host's responder resources (the IRD it offers for the target's RDMA READs) and
    its initiator depth (ORD; an NVMe/RDMA host issues no RDMA READs, Linux offers 0): IRD 0
    is rejected with STS 07h Invalid IRD; any other IRD is accepted, the target asking for
    no more outstanding RDMA READs than offered, whatever the ORD."""
    opts = data.draw(conn_options(), label="options")
    with _Host(opts) as h:
        record = data.draw(cm_private_data(h.limits, ("valid",)), label="private data")[0]
        ird = data.draw(st.integers(0, MAX_RD_ATOM), label="host responder resources (IRD)")
        ord_ = data.draw(st.integers(0, MAX_RD_ATOM), label="host initiator depth (ORD)")
        conn = h.t.connect(h.port, 0, private_data=record, initiator_depth=ord_,
                           responder_resources=ird)
        h.answered("valid", conn, cm_outcomes(record, "accept", h.limits, ird),
                   negotiated_depth(record, h.limits), ird)


@pytest.mark.spec("CONN-1")
@pytest.mark.parametrize("ord_,ird", [(0, MAX_RD_ATOM), (MAX_RD_ATOM, 0), (MAX_RD_ATOM, 1)],
                         ids=["linux-host", "no-ird", "ird-1"])
def test_host_read_resources_cases(ord_: int, ird: int) -> None:
    """The same, for three hosts by hand: Linux's (ORD 0, IRD = the device's maximum), one
    offering no read resources, one offering a single one."""
    with _Host(TransportOptions(num_shared_buffers=256, max_queue_depth=16,
                                max_io_size=65536, io_unit_size=4096, buf_cache_size=8,
                                wr_cache_size=8, num_poll_groups=2)) as h:
        record = W.CmRequestPrivateData(0, 1, 8, 7, 1).encode()
        conn = h.t.connect(h.port, 0, private_data=record, initiator_depth=ord_,
                           responder_resources=ird)
        h.answered("valid", conn, cm_outcomes(record, "accept", h.limits, ird), 8, ird,
                   log=print)


@pytest.mark.spec("CONN-1")
@given(data=st.data())
@crash_contained
def test_queue_sizes_negotiate_the_smaller(data: st.DataObject) -> None:
    """HRQSIZE and HSQSIZE drawn apart: CRQSIZE is min(HRQSIZE, HSQSIZE + 1, CAP.MQES + 1)."""
    opts = data.draw(conn_options(), label="options")
    with _Host(opts) as h:
        mqd = h.max_queue_depth
        hrq = data.draw(st.integers(2, mqd), label="HRQSIZE")
        hsq = data.draw(st.integers(1, mqd - 1), label="HSQSIZE")
        qid = data.draw(st.integers(0, h.max_qid), label="QID")
        conn = h.t.connect(h.port, 0, qid=qid, hrqsize=hrq, hsqsize=hsq,
                           initiator_depth=HOST_ORD, responder_resources=HOST_IRD)
        h.answered("valid", conn, ("accept",), min(hrq, hsq + 1, mqd), HOST_IRD)


def unknown_nqns(real: str) -> SearchStrategy[str]:
    """Well-formed NQN fields (1..223 printable bytes) that name no subsystem of the target:
    near misses of ``real`` and anything else (the discovery NQN is left out: it names the
    discovery controller)."""
    printable = st.characters(min_codepoint=0x21, max_codepoint=0x7E)
    return st.one_of(
        st.sampled_from([real + "x", real[:-1], real.upper(), SUBSYSTEM_NQN.format(999)]),
        st.text(printable, min_size=1, max_size=223),
    ).filter(lambda n: n != real and n != "nqn.2014-08.org.nvmexpress.discovery")


@pytest.mark.spec("CONN-1")
@given(data=st.data())
@crash_contained
def test_unknown_subnqn_is_refused(data: st.DataObject) -> None:
    """An admin Connect to a SUBNQN the target does not have: Connect Invalid Parameters
    naming SUBNQN (IATTR 1, IPO 256); the queue then connects to the right one."""
    opts = data.draw(conn_options(), label="options")
    with _Host(opts) as h:
        nqn = data.draw(unknown_nqns(h.subnqn), label="SUBNQN")
        depth = data.draw(st.integers(2, min(8, h.max_queue_depth)), label="depth")
        conn = h.t.create_qpair(h.port, 0, depth, qid=0)
        rsp = h.connect(conn, 0, W.CONNECT_CNTLID_DYNAMIC, depth - 1, subnqn=nqn)
        checks.connect_refused(f"admin Connect to SUBNQN {nqn!r}", rsp, True, IPO_SUBNQN)
        rsp = h.connect(conn, 0, W.CONNECT_CNTLID_DYNAMIC, depth - 1)
        checks.connect_joined(f"admin Connect to {h.subnqn} after it", rsp, None,
                              h.t.qpair_info(conn))


@pytest.mark.spec("CONN-1")
@given(data=st.data())
@crash_contained
def test_io_connect_joins_the_named_controller(data: st.DataObject) -> None:
    """Controllers of the dynamic model, each on its admin queue (enabled), then I/O queues
    each naming one of them: each joins the controller its CNTLID names; one naming the
    CNTLID of no live controller gets Connect Invalid Parameters naming CNTLID (IATTR 1,
    IPO 16) and then connects with the right one."""
    opts = data.draw(conn_options(), label="options")
    with _Host(opts) as h:
        depth = data.draw(st.integers(2, min(8, h.max_queue_depth)), label="depth")
        cntlids: list[int] = []
        for i in range(data.draw(st.integers(1, 3), label="controllers")):
            conn = h.t.create_qpair(h.port, 0, depth, qid=0)
            rsp = h.connect(conn, 0, W.CONNECT_CNTLID_DYNAMIC, depth - 1)
            checks.connect_joined(f"admin Connect {i}", rsp, None, h.t.qpair_info(conn))
            assert rsp is not None
            cntlids.append(rsp.result & 0xFFFF)
            h._ok(h.command(conn, enable_capsule(h.cid())), "Property Set CC.EN=1")
        live = {h.cntlid, *cntlids}   # the host's own admin queue has a controller too
        next_qid = [1] * len(cntlids)
        groups = st.integers(0, opts.num_poll_groups - 1)
        for j in range(data.draw(st.integers(1, 4), label="I/O queues")):
            owner = data.draw(st.integers(0, len(cntlids) - 1), label=f"queue {j} controller")
            qid = next_qid[owner]
            next_qid[owner] += 1
            conn = h.t.create_qpair(h.port, data.draw(groups), depth, qid=qid)
            if data.draw(st.booleans(), label=f"queue {j} tries an unknown CNTLID first"):
                bad = data.draw(st.integers(0, checks.CNTLID_MAX).filter(
                    lambda c: c not in live), label="unknown CNTLID")
                rsp = h.connect(conn, qid, bad, depth - 1)
                checks.connect_refused(f"I/O Connect qid {qid} naming CNTLID {bad:#06x}",
                                       rsp, True, IPO_CNTLID)
            rsp = h.connect(conn, qid, cntlids[owner], depth - 1)
            checks.connect_joined(f"I/O Connect qid {qid} naming CNTLID "
                                  f"{cntlids[owner]:#06x}", rsp, cntlids[owner],
                                  h.t.qpair_info(conn))


def test_outcomes_of_a_short_record() -> None:
    """The suite's own model of what a short record may get (no target)."""
    lim = WireLimits(max_queue_depth=16, max_qid=8)
    full = W.CmRequestPrivateData(0, 1, 8, 7, 1).encode()
    assert cm_outcomes(full, "accept", lim, 16) == ("accept",)
    assert cm_outcomes(full, "accept", lim, 0) == (INVALID_IRD,)
    # 7 bytes: HSQSIZE's high byte is lost, and was 0: the padded record is the same request
    assert set(cm_outcomes(full[:7], 1, lim, 16)) == {1, "accept"}
    # 5 bytes: HSQSIZE is lost
    assert set(cm_outcomes(full[:5], 1, lim, 16)) == {1, W.RDMA_STS_INVALID_HSQSIZE}
    assert set(cm_outcomes(b"", 1, lim, 16)) == {1, W.RDMA_STS_INVALID_HRQSIZE,
                                                W.RDMA_STS_INVALID_HSQSIZE}
    assert negotiated_depth(W.CmRequestPrivateData(0, 0, 4, 9).encode(), lim) == 4
    assert negotiated_depth(W.CmRequestPrivateData(0, 0, 40, 30).encode(), lim) == 16
    # oversize sizes may be lowered (OVERSIZE_RULING); zero sizes must be rejected
    big = W.CmRequestPrivateData(0, 1, 40, 7, 1).encode()
    assert set(cm_outcomes(big, W.RDMA_STS_INVALID_HRQSIZE, lim, 16)) == {
        W.RDMA_STS_INVALID_HRQSIZE, "accept"}
    wide = W.CmRequestPrivateData(0, 1, 8, 300, 1).encode()
    assert set(cm_outcomes(wide, W.RDMA_STS_INVALID_HSQSIZE, lim, 16)) == {
        W.RDMA_STS_INVALID_HSQSIZE, "accept"}
    assert negotiated_depth(wide, lim) == 8
    zero = W.CmRequestPrivateData(0, 1, 0, 7, 1).encode()
    assert cm_outcomes(zero, W.RDMA_STS_INVALID_HRQSIZE, lim, 16) == (
        W.RDMA_STS_INVALID_HRQSIZE,)
    assert cm_outcomes(W.CmRequestPrivateData(0, 1, 8, 0, 1).encode(),
                       W.RDMA_STS_INVALID_HSQSIZE, lim, 16) == (W.RDMA_STS_INVALID_HSQSIZE,)
    assert ConnInfo.REJECTED == 3 and ConnInfo.ESTABLISHED == 2
