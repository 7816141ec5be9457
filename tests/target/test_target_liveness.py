"""LIVE-1/LIVE-2 and DEPTH-1 on the target: no head-of-line starvation, bounded send depth."""

from __future__ import annotations

from impl import Capsule, FabricsType, Opcode, Queue, ReqState, Status, in_capsule

from .rig import (
    assert_clean_destroy,
    assert_released,
    at_min_send_depth,
    pump,
    waiting_for_buffers,
)


def test_admin_fabrics_and_in_capsule_commands_pass_io_waiting_for_buffers() -> None:
    """Buffers exhausted by IO in the block device, one more IO waiting for them: a
    keep-alive, a property get and an in-capsule write on the same group still complete."""
    rig, hogs, waiter = waiting_for_buffers()
    t = rig.t
    assert t.group_stats(1).pending_data_buffer == 1

    icd = rig.data(1024)
    small = [
        (rig.admin, Capsule(Opcode.KEEP_ALIVE, rig.cid()), b""),
        (rig.admin, Capsule(Opcode.FABRICS, rig.cid(), fctype=FabricsType.PROPERTY_GET,
                            cdw10=0x08), b""),
        (rig.io, Capsule.with_data(Opcode.WRITE, rig.cid(), [in_capsule(1024)], nsid=rig.ns,
                                   slba=500, nlb=1), icd),
        (rig.io, Capsule(Opcode.FLUSH, rig.cid(), nsid=rig.ns), b""),
    ]
    for qp, cap, data in small:
        t.submit(qp, cap, data)
    for _ in range(10):                       # deliver and poll only: no device completions
        for qp in (rig.admin, rig.io):
            t.deliver_h2t(qp)
            while t.deliver_t2h(qp):
                pass
        t.poll(1)
    got = {r.cid: r.status for qp in (rig.admin, rig.io) for r in t.reap(qp)}
    # the flush and the in-capsule write need the device; the admin commands do not
    assert got == {small[0][1].cid: Status.SUCCESS, small[1][1].cid: Status.SUCCESS}
    assert {r.cid: r.state for r in t.requests(rig.io)}[small[2][1].cid] == ReqState.EXECUTING
    assert t.bdev_pending() == 4               # hogs, icd write, flush - not the waiter
    rig.settle()
    got = {r.cid: r.status for r in t.reap(rig.io)}
    assert got == {c: Status.SUCCESS for c in [*hogs, waiter, small[2][1].cid,
                                              small[3][1].cid]}
    assert rig.media(500, 1024) == icd
    assert_released(t)


def test_send_depth_bounds_posting_and_queues_the_rest() -> None:
    """max_send_depth at its minimum (largest request's WRITEs + 1): reads finish one at a
    time through the pending write queue, never over the limit."""
    rig, media = at_min_send_depth()
    t = rig.t
    need = t.options.max_send_depth   # the minimum asked for
    caps = [rig.read_capsule(0, len(media), "list", ndesc=16, host_base=i * 200_000)
            for i in range(4)]
    for cap in caps:
        t.submit(rig.io, cap)
    for _ in range(8):
        t.deliver_h2t(rig.io)
        t.poll(1)
    while t.bdev_complete(0):
        pass
    reqs = t.requests(rig.io)
    assert [r.state for r in reqs].count(ReqState.TRANSFERRING_C2H) == 1
    waiting = [r for r in reqs if r.state == ReqState.TRANSFER_TO_HOST_PENDING]
    assert len(waiting) == 3 and all(r.queue == Queue.PENDING_WRITE for r in waiting)
    info = t.qpair_info(rig.io)
    assert info.cur_send_depth == 17 and info.pending_write == 3
    rig.settle()
    assert {r.cid: r.status for r in t.reap(rig.io)} == {c.cid: 0 for c in caps}
    for cap in caps:
        assert rig.gather(list(cap.descriptors)) == media
    info = t.qpair_info(rig.io)
    assert info.max_send_depth_seen <= need == info.max_send_depth
    assert info.cur_send_depth == 0
    assert_clean_destroy(t)


def test_requests_sit_on_the_buffer_queue_only_while_they_wait_for_buffers() -> None:
    """Two more writes behind the one waiting for buffers join the pending buffer queue
    with it; the hogs in the block device are on no queue; once the device frees the
    buffers, no request is left on the queue and every write completes."""
    rig, hogs, first = waiting_for_buffers()
    t = rig.t
    later = []
    for i in range(2):
        cap = rig.write_capsule(400 + 16 * i, rig.data(4096), "list", ndesc=3,
                                host_base=500_000 + 50_000 * i)
        t.submit(rig.io, cap)
        later.append(cap.cid)
    pump(rig, 40)
    waiters = [first, *later]
    reqs = {r.cid: r for r in t.requests(rig.io)}
    assert {c: (reqs[c].state, reqs[c].queue) for c in waiters} == {
        c: (ReqState.NEED_BUFFER, Queue.PENDING_BUF) for c in waiters}
    assert {reqs[c].queue for c in hogs} == {Queue.NONE}   # in the device: waiting on none
    assert t.group_stats(1).pending_data_buffer == 3
    while t.bdev_pending():
        t.bdev_complete(0)
        pump(rig, 40)
        for r in t.requests(rig.io):
            assert (r.queue == Queue.PENDING_BUF) == (r.state == ReqState.NEED_BUFFER), r
    rig.settle()
    got = {r.cid: r.status for r in t.reap(rig.io)}
    assert got == {c: Status.SUCCESS for c in [*hogs, *waiters]}
    assert_released(t)
