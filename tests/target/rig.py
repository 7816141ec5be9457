"""Helpers for the target's own tests (``tests/target``): the :class:`Rig` and checks.

A :class:`Rig` is one transport with a port, a subsystem, one namespace, one host memory
region, and a connected admin and IO qpair.  Tests drive it by hand (``deliver_h2t``,
``poll``...) when a phase matters, or with :meth:`Rig.settle` (drain, then reap) when it
does not.  Every helper asserts on what it relies on, so a broken target fails loudly
where it breaks rather than later.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from impl import (
    Capsule,
    DrainResult,
    Opcode,
    Options,
    PoolCounts,
    QpState,
    ReqState,
    Response,
    SglDesc,
    Status,
    Transport,
    connect_capsule,
    enable_capsule,
    in_capsule,
    keyed,
)

# A small transport every test can afford: 2 poll groups, 16-deep queues, 64 KiB IO in
# 4 KiB units (so lists of descriptors cross io_unit_size boundaries), room for everything.
BASE_OPTIONS: dict[str, Any] = {
    "num_poll_groups": 2,
    "max_queue_depth": 16,
    "max_io_size": 65536,
    "io_unit_size": 4096,
    "in_capsule_data_size": 4096,
    "num_shared_buffers": 256,
    "buf_cache_size": 8,
    "wr_cache_size": 8,
    "wr_pool_multiplier": 16,
    "max_read_depth": 16,
}

MR_SIZE = 1 << 20
LAYOUTS = ("in_capsule", "keyed", "list")


@dataclass
class Rig:
    t: Transport
    port: int
    sub: int
    ns: int
    key: int
    admin: int
    io: int
    cntlid: int
    block_size: int
    num_blocks: int
    _cid: int = 100
    rng: random.Random = field(default_factory=lambda: random.Random(1234))

    # -- small conveniences ------------------------------------------------------------
    def cid(self) -> int:
        self._cid = (self._cid + 1) % 0xFFFF
        return self._cid

    def settle(self, max_rounds: int = 1000) -> DrainResult:
        """Liveness mode: drain must reach quiescence without stalling."""
        r = self.t.drain(max_rounds)
        assert r.quiescent and not r.stalled, r
        return r

    def run_one(self, qp: int, capsule: Capsule, icd: bytes = b"") -> Response:
        """Submit, settle, and return the single response for the capsule's CID."""
        self.t.submit(qp, capsule, icd)
        self.settle()
        rsps = self.t.reap(qp)
        assert [r.cid for r in rsps] == [capsule.cid], rsps
        assert not rsps[0].unexpected
        return rsps[0]

    def data(self, n: int) -> bytes:
        return self.rng.randbytes(n)

    # -- NVM IO through a chosen SGL layout -------------------------------------------------
    def write(self, slba: int, data: bytes, layout: str = "keyed", ndesc: int = 3,
              host_base: int = 0, qp: int | None = None) -> Response:
        """Write ``data`` at ``slba`` through ``layout``; the host buffers are scattered
        (see :func:`scatter`) and filled first."""
        qp = self.io if qp is None else qp
        nlb = len(data) // self.block_size - 1
        if layout == "in_capsule":
            cap = Capsule.with_data(Opcode.WRITE, self.cid(), [in_capsule(len(data))],
                                    nsid=self.ns, slba=slba, nlb=nlb)
            return self.run_one(qp, cap, data)
        descs = self.place(data, layout, ndesc, host_base)
        cap = Capsule.with_data(Opcode.WRITE, self.cid(), descs, nsid=self.ns, slba=slba,
                                nlb=nlb)
        return self.run_one(qp, cap)

    def read(self, slba: int, length: int, layout: str = "keyed", ndesc: int = 3,
             host_base: int = 0, qp: int | None = None) -> tuple[Response, bytes]:
        """Read ``length`` bytes at ``slba`` into scattered host buffers; returns the
        response and the bytes gathered back in descriptor order."""
        qp = self.io if qp is None else qp
        nlb = length // self.block_size - 1
        descs = scatter(length, layout, ndesc, host_base, self.key, self.t.options.io_unit_size)
        for d in descs:   # poison, so stale host bytes cannot pass for read data
            self.t.write_memory(self.key, d.addr, b"\xee" * d.length)
        cap = Capsule.with_data(Opcode.READ, self.cid(), descs, nsid=self.ns, slba=slba,
                                nlb=nlb)
        rsp = self.run_one(qp, cap)
        return rsp, self.gather(descs)

    def place(self, data: bytes, layout: str, ndesc: int, host_base: int) -> list[SglDesc]:
        descs = scatter(len(data), layout, ndesc, host_base, self.key,
                        self.t.options.io_unit_size)
        off = 0
        for d in descs:
            self.t.write_memory(self.key, d.addr, data[off:off + d.length])
            off += d.length
        return descs

    def gather(self, descs: list[SglDesc]) -> bytes:
        return b"".join(self.t.read_memory(d.key, d.addr, d.length) for d in descs)

    def media(self, slba: int, length: int) -> bytes:
        return self.t.read_namespace(self.sub, self.ns, slba * self.block_size, length)

    def write_capsule(self, slba: int, data: bytes, layout: str = "list", ndesc: int = 4,
                      host_base: int = 0) -> Capsule:
        """A write capsule whose host buffers are filled, not yet submitted."""
        descs = self.place(data, layout, ndesc, host_base)
        return Capsule.with_data(Opcode.WRITE, self.cid(), descs, nsid=self.ns, slba=slba,
                                 nlb=len(data) // self.block_size - 1)

    def read_capsule(self, slba: int, length: int, layout: str = "keyed", ndesc: int = 1,
                     host_base: int = 0) -> Capsule:
        descs = scatter(length, layout, ndesc, host_base, self.key, self.t.options.io_unit_size)
        return Capsule.with_data(Opcode.READ, self.cid(), descs, nsid=self.ns, slba=slba,
                                 nlb=length // self.block_size - 1)


def scatter(length: int, layout: str, ndesc: int, host_base: int, key: int,
            io_unit: int) -> list[SglDesc]:
    """Keyed descriptors for ``length`` bytes.

    ``keyed``: one descriptor at ``host_base``.  ``list``: ``ndesc`` descriptors of uneven
    lengths (none a multiple of the io unit, so pieces straddle io_unit_size boundaries),
    placed in the host region in *reverse* order with gaps, so a target that reorders or
    coalesces SGEs gets the bytes wrong.
    """
    if layout == "keyed":
        return [keyed(host_base, length, key)]
    assert layout == "list" and 1 <= ndesc <= 16 and length >= ndesc
    lengths = uneven_split(length, ndesc)
    stride = max(lengths) + 4096 + 17
    return [keyed(host_base + (ndesc - 1 - i) * stride + 3 * i, n, key)
            for i, n in enumerate(lengths)]


def uneven_split(length: int, n: int) -> list[int]:
    """``n`` positive, pairwise different-ish lengths summing to ``length``."""
    if n == 1:
        return [length]
    weights = [2 * i + 3 for i in range(n)]     # 3, 5, 7, ...: strictly uneven
    total = sum(weights)
    lengths = [max(1, length * w // total) for w in weights[:-1]]
    lengths.append(length - sum(lengths))
    assert all(x > 0 for x in lengths) and sum(lengths) == length
    return lengths


def build(block_size: int = 512, num_blocks: int = 2048, io_depth: int = 8,
          admin_group: int = 0, io_group: int = 1, **overrides: Any) -> Rig:
    """A connected rig; ``overrides`` change :data:`BASE_OPTIONS`."""
    opts = {**BASE_OPTIONS, **overrides}
    t = Transport(Options(**opts))
    port = t.add_port()
    sub = t.add_subsystem()
    ns = t.add_namespace(sub, block_size, num_blocks)
    key = t.register_memory(MR_SIZE)
    admin = t.create_qpair(port, admin_group, 4)
    io = t.create_qpair(port, io_group, io_depth, qid=1)
    rig = Rig(t, port, sub, ns, key, admin, io, 0, block_size, num_blocks)
    rsp = rig.run_one(admin, connect_capsule(rig.cid(), sub, qid=0, sqsize=3))
    assert rsp.status == Status.SUCCESS and rsp.result >= 1
    rig.cntlid = rsp.result
    rsp = rig.run_one(admin, enable_capsule(rig.cid()))
    assert rsp.status == Status.SUCCESS
    rsp = rig.run_one(io, connect_capsule(rig.cid(), sub, qid=1, cntlid=rig.cntlid,
                                          sqsize=io_depth - 1))
    assert rsp.status == Status.SUCCESS and rsp.result == rig.cntlid
    for qp in (admin, io):
        info = t.qpair_info(qp)
        assert info is not None and info.state == QpState.ACTIVE
    return rig


def at_min_send_depth() -> tuple[Rig, bytes]:
    """A rig whose ``max_send_depth`` is its minimum (the largest request's WRITEs + 1),
    with 64 blocks written at LBA 0 (returned) and the block device in manual mode."""
    need = Options(**BASE_OPTIONS).max_wrs_per_request + 1
    rig = build(max_send_depth=need)
    media = rig.data(64 * 512)
    assert rig.write(0, media, "keyed").status == Status.SUCCESS
    rig.t.set_bdev_auto(False)
    return rig, media


def settle(t: Transport, *qpairs: int, max_rounds: int = 1000) -> list[Response]:
    """Drain (must reach quiescence, not stall), then reap every given qpair."""
    r = t.drain(max_rounds)
    assert r.quiescent and not r.stalled, r
    out: list[Response] = []
    for qp in qpairs:
        if t.qpair_info(qp) is not None:
            out.extend(t.reap(qp))
    return out


def assert_pool_whole(p: PoolCounts, capacity: int | None = None) -> None:
    """Nothing held, nothing lost, nothing twice (POOL-1/2 at quiescence)."""
    assert p.held == 0, p
    assert p.duplicates == 0, p
    assert p.missing == 0, p
    assert p.ring_free + p.cached == p.capacity, p
    if capacity is not None:
        assert p.capacity == capacity, p


def assert_released(t: Transport) -> None:
    assert_pool_whole(t.wr_pool(), t.options.wr_pool_capacity)
    assert_pool_whole(t.buf_pool(), t.options.num_shared_buffers)


def assert_clean_destroy(t: Transport) -> None:
    rep = t.destroy()
    cap = t.options.wr_pool_capacity
    assert rep.wr_expected == cap, rep
    assert rep.wr_returned == cap, rep
    assert rep.buf_returned == rep.buf_expected == t.options.num_shared_buffers, rep
    assert rep.message == "", rep


# ---- shared scenarios -------------------------------------------------------------------


def pump(rig: Rig, rounds: int, *qpairs: int, group: int = 1) -> None:
    """Deliver and poll only (no block-device completions), ``rounds`` times."""
    t = rig.t
    qpairs = qpairs or (rig.io,)
    for _ in range(rounds):
        for qp in qpairs:
            t.deliver_h2t(qp)
            while t.deliver_t2h(qp):
                pass
        t.poll(group)


def waiting_for_buffers(defects: int = 0, **overrides: Any) -> tuple[Rig, list[int], int]:
    """Two writes hold every data buffer in the block device; a 3-descriptor write gets
    its 3 WRs, finds no buffer and waits (admin and IO qpair on group 1).  Returns the
    rig, the hogs' CIDs and the waiter's."""
    rig = build(max_io_size=32768, buf_cache_size=0, num_shared_buffers=16, admin_group=1,
                io_group=1, defects=defects, **overrides)
    t = rig.t
    t.set_bdev_auto(False)
    hogs = []
    for i in range(2):
        cap = rig.write_capsule(64 * i, rig.data(32768), "keyed", host_base=100_000 * i)
        t.submit(rig.io, cap)
        hogs.append(cap.cid)
    waiting = rig.write_capsule(300, rig.data(4096), "list", ndesc=3, host_base=400_000)
    t.submit(rig.io, waiting)
    pump(rig, 40)
    states = {r.cid: r.state for r in t.requests(rig.io)}
    assert states == {hogs[0]: ReqState.EXECUTING, hogs[1]: ReqState.EXECUTING,
                      waiting.cid: ReqState.NEED_BUFFER}
    assert t.buf_pool().ring_free + t.buf_pool().cached == 0
    return rig, hogs, waiting.cid
