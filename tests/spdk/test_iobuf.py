"""rdma.c on SPDK's own iobuf (``lib/thread/iobuf.c``), not on its test double.

From v24.09 or so rdma.c lets a request that finds no data buffer wait in iobuf's queue
(``spdk_iobuf_get`` with an entry; ``NEED_BUFFER`` on the qpair's ``pending_iobuf_queue``)
and, when the qpair goes while the request waits, takes the entry back out
(``nvmf_request_get_buffers_abort``: ``spdk_iobuf_for_each_entry`` +
``spdk_iobuf_entry_abort``).  SPDK's test double ``test/common/lib/test_iobuf.c`` stubs
both calls, so the entry stayed queued and the next ``spdk_iobuf_put`` handed a buffer to a
request object that was free or, with shared receive queues, already serving another
qpair: ``nvmf_request_iobuf_get_cb`` failed ``tgroup != NULL`` or
``nvmf_rdma_request_get_buffers_done`` dereferenced NULL in its ``STAILQ_REMOVE``
(docs/spdk-findings.md, "Ours, fixed").  These tests hold the adapter to the real iobuf.
"""

from __future__ import annotations

import pytest

from impl import Capsule, Opcode, Status, connect_capsule, keyed
from impl.spdk import build
from tests.spdk.conftest import TREES, tree
from tests.target.rig import build as build_rig

IO_SIZE = 65536          # one read holds 16 buffers of 4 KiB
BUFFERS = 64             # iobuf's smallest small pool (IOBUF_MIN_SMALL_POOL_SIZE)


@pytest.fixture
def spdk_isolated(spdk_backend, monkeypatch):
    """v26.05 in a forked child: the defect this guards against is a crash."""
    backend = spdk_backend("v26.05", isolate=True)
    monkeypatch.setattr("impl.backends.default", lambda: backend)
    return backend


def _read(rig, qp: int, slba: int, length: int, host: int) -> int:
    cid = rig.cid()
    rig.t.submit(qp, Capsule(Opcode.READ, cid, nsid=rig.ns, slba=slba,
                             nlb=length // rig.block_size - 1, sgl=keyed(host, length, rig.key)))
    return cid


def _states(rig, qp: int) -> dict[int, str]:
    """The qpair's requests by CID, each with rdma.c's name of its state."""
    names = rig.t.describe().state_names
    return {r.cid: names[r.state] for r in rig.t.requests(qp)}


def _connected(rig, qid: int) -> int:
    """Another IO qpair of the rig's controller, on poll group 0."""
    qp = rig.t.create_qpair(rig.port, 0, 4, qid=qid)
    rsp = rig.run_one(qp, connect_capsule(rig.cid(), rig.sub, qid=qid, cntlid=rig.cntlid,
                                          sqsize=3))
    assert rsp.status == Status.SUCCESS
    return qp


def _deliver(rig, qp: int, rounds: int = 10) -> None:
    for _ in range(rounds):
        rig.t.deliver_h2t(qp)
        rig.t.poll(0)


@pytest.mark.parametrize("srq", (1, 0), ids=("srq", "no_srq"))
def test_a_request_torn_down_while_waiting_for_a_buffer_is_never_handed_one(spdk_isolated,
                                                                             srq):
    """Four reads of one qpair hold all 64 buffers in the block device; a read of a second
    qpair on the same poll group waits for a buffer (NEED_BUFFER); that qpair is
    disconnected and destroyed.  Completing the four reads puts their buffers back: none
    may go to the destroyed qpair's request.  The four are answered, the poll group serves
    the next read, and every buffer is back at destroy."""
    rig = build_rig(io_group=0, num_poll_groups=2, srq=srq, max_srq_depth=16 * srq,
                    max_io_size=IO_SIZE, num_shared_buffers=BUFFERS, buf_cache_size=0,
                    io_depth=8)
    t = rig.t
    try:
        second = _connected(rig, 2)
        t.set_bdev_auto(False)
        hogs = [_read(rig, rig.io, 128 * i, IO_SIZE, IO_SIZE * i)
                for i in range(BUFFERS * t.options.io_unit_size // IO_SIZE)]
        _deliver(rig, rig.io)
        assert _states(rig, rig.io) == dict.fromkeys(hogs, "EXECUTING")
        waiter = _read(rig, second, 0, 8192, 600_000)
        _deliver(rig, second)
        assert _states(rig, second) == {waiter: "NEED_BUFFER"}

        t.disconnect_qpair(second)
        for _ in range(10):
            t.accept()
            t.poll(0)
        assert t.qpair_info(second) is None   # gone, its waiting read with it

        while t.bdev_pending():               # the hogs' buffers go back, one read at a time
            t.bdev_complete(0)
            t.poll(0)
        drained = t.drain(200)
        assert drained.quiescent and not drained.stalled, drained
        assert {r.cid: r.status for r in t.reap(rig.io)} == dict.fromkeys(hogs, Status.SUCCESS)
        t.set_bdev_auto(True)
        rsp, _ = rig.read(0, 8192)
        assert rsp.status == Status.SUCCESS
        pool = t.buf_pool()
        assert pool.ring_free + pool.cached == BUFFERS, pool
    finally:
        rep = t.destroy()
    assert rep.buf_returned == rep.buf_expected == BUFFERS, rep
    assert rep.wr_returned == rep.wr_expected and rep.message == "", rep


def test_waiters_behind_a_torn_down_one_are_still_served(spdk_isolated):
    """The stall's shape: a read of qpair B waits for a buffer, then one of qpair D behind
    it; B goes.  With shared receive queues the next capsule, a read of qpair C, gets B's
    request object (rdma.c frees to the head of the SRQ's free list) and waits too.  Had
    B's wait entry not been aborted, queueing it again for C would cut D's entry off the
    queue (an STAILQ insert of an element already in it): D would wait for ever with every
    buffer free.  Both C and D must be answered once the buffers come back."""
    rig = build_rig(io_group=0, num_poll_groups=2, srq=1, max_srq_depth=16,
                    max_io_size=IO_SIZE, num_shared_buffers=BUFFERS, buf_cache_size=0,
                    io_depth=8)
    t = rig.t
    try:
        b, c, d = (_connected(rig, qid) for qid in (2, 3, 4))
        t.set_bdev_auto(False)
        for i in range(BUFFERS * t.options.io_unit_size // IO_SIZE):
            _read(rig, rig.io, 128 * i, IO_SIZE, IO_SIZE * i)
        _deliver(rig, rig.io)
        waiters = {}
        for qp, host in ((b, 600_000), (d, 610_000)):
            waiters[qp] = _read(rig, qp, 8, 4096, host)
            _deliver(rig, qp)
            assert _states(rig, qp) == {waiters[qp]: "NEED_BUFFER"}
        t.disconnect_qpair(b)
        for _ in range(10):
            t.accept()
            t.poll(0)
        assert t.qpair_info(b) is None
        waiters[c] = _read(rig, c, 16, 4096, 620_000)
        _deliver(rig, c)
        assert _states(rig, c) == {waiters[c]: "NEED_BUFFER"}
        while t.bdev_pending():
            t.bdev_complete(0)
            t.poll(0)
        t.set_bdev_auto(True)
        drained = t.drain(200)
        assert drained.quiescent and not drained.stalled, (drained, _states(rig, d))
        for qp in (c, d):
            assert [(r.cid, r.status) for r in t.reap(qp)] == [(waiters[qp], Status.SUCCESS)]
    finally:
        rep = t.destroy()
    assert rep.buf_returned == rep.buf_expected == BUFFERS and rep.message == "", rep


def test_free_buffers_are_counted_in_the_pool_and_the_poll_group_caches(spdk_isolated):
    """iobuf fills each poll group's cache from the pool at channel creation: the free
    buffers are the ring's plus the caches', and all of them are back at quiescence."""
    rig = build_rig(io_group=0, num_poll_groups=2, max_io_size=IO_SIZE,
                    num_shared_buffers=BUFFERS, buf_cache_size=4)
    t = rig.t
    try:
        pool = t.buf_pool()
        assert pool.cached == 2 * 4 and pool.ring_free == BUFFERS - 8, pool
        data = rig.data(IO_SIZE)
        assert rig.write(0, data, layout="list", ndesc=5).status == Status.SUCCESS
        rsp, got = rig.read(0, IO_SIZE, layout="list", ndesc=5)
        assert rsp.status == Status.SUCCESS and got == data
        pool = t.buf_pool()
        assert pool.ring_free + pool.cached == BUFFERS and pool.cached >= 4, pool
    finally:
        rep = t.destroy()
    assert rep.buf_returned == rep.buf_expected == BUFFERS and rep.message == "", rep


@pytest.mark.parametrize("name", TREES)
def test_every_tree_is_built_on_its_own_iobuf(name):
    """The compile probe finds lib/thread/iobuf.c in each tree, so no build falls back to
    the test double."""
    so = build.build(tree(name))
    probes = dict(line.split("=") for line in (so.parent / "probes.txt").read_text().split())
    assert probes["HAVE_IOBUF_C"] == "1", probes
