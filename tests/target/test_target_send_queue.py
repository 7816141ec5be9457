"""LIVE-1 and DEPTH-1 on the target's send queue: RDMA READs occupy the QP's send queue as
much as WRITEs and SENDs do, so the send depth must count them.  Otherwise a response chain
is posted into a send queue the READs have filled, the provider takes only part of it, and
the unsignaled WRITEs it took hold their slots for good (only a signaled completion after
them would release them): every later post is refused and the qpair livelocks.

The scenario: max_send_depth at its minimum (the largest request's WRITEs + 1), a
16-descriptor read whose response needs the whole send queue, and a write whose RDMA READ
is on the send queue, undelivered, when the read's data is ready."""

from __future__ import annotations

from impl import Queue, ReqState, Status

from .rig import Rig, assert_clean_destroy, at_min_send_depth


def big_read_waiting_behind_a_read_wr() -> tuple[Rig, bytes, object, object]:
    """A 16-descriptor read executing in the block device, and a keyed write whose single
    RDMA READ has been posted but not delivered; then the read's IO completes."""
    rig, media = at_min_send_depth()
    t = rig.t
    read = rig.read_capsule(0, len(media), "list", ndesc=16, host_base=300_000)
    write = rig.write_capsule(200, rig.data(4096), "keyed", host_base=700_000)
    for cap in (read, write):
        t.submit(rig.io, cap)
        t.deliver_h2t(rig.io)
        t.poll(1)
    states = {r.cid: r.state for r in t.requests(rig.io)}
    assert states == {read.cid: ReqState.EXECUTING, write.cid: ReqState.TRANSFERRING_H2C}
    assert t.qpair_info(rig.io).cur_read_depth == 1
    assert t.bdev_complete(0)             # the read's data is ready: 16 WRITEs + 1 SEND
    t.poll(1)
    return rig, media, read, write


def test_rdma_reads_count_against_the_send_depth() -> None:
    rig, media, read, write = big_read_waiting_behind_a_read_wr()
    t = rig.t
    before = t.qpair_info(rig.io)
    [big] = [r for r in t.requests(rig.io) if r.cid == read.cid]
    r = t.drain()
    assert r.quiescent and not r.stalled, r      # a livelock: progress, never quiescent
    got = {x.cid: x.status for x in t.reap(rig.io)}
    assert got == {read.cid: Status.SUCCESS, write.cid: Status.SUCCESS}
    assert rig.gather(list(read.descriptors)) == media
    # the READ held one of the send queue's slots: the response chain waited for it,
    # queued, with none of its WRs on the wire
    assert (big.state, big.queue) == (ReqState.TRANSFER_TO_HOST_PENDING, Queue.PENDING_WRITE)
    assert before.wire_t2h == 1, before
    assert before.cur_send_depth == 1, before
    info = t.qpair_info(rig.io)
    assert (info.cur_read_depth, info.cur_send_depth) == (0, 0)
    assert info.max_send_depth_seen <= info.max_send_depth
    assert_clean_destroy(t)


def test_response_needing_the_whole_send_queue_is_not_starved_by_reads() -> None:
    """Writes keep arriving, each posting one RDMA READ, and the fabric delivers one WR at
    a time, so one READ is always outstanding if new READs may take the room as it frees.
    The read's response, which needs the whole send queue, must still go out: READs and
    SENDs behind it leave it the room it waits for."""
    rig, media, read, write = big_read_waiting_behind_a_read_wr()
    t = rig.t
    t.set_bdev_auto(True)
    posted_at = None
    for i in range(6):
        cap = rig.write_capsule(300 + 8 * i, rig.data(4096), "keyed",
                                host_base=800_000 + 8192 * i)
        t.submit(rig.io, cap)
        t.deliver_h2t(rig.io)
        t.poll(1)
        t.deliver_t2h(rig.io)             # one WR of the target's send queue
        t.poll(1)
        states = {r.cid: r.state for r in t.requests(rig.io)}
        if states.get(read.cid) != ReqState.TRANSFER_TO_HOST_PENDING:
            posted_at = i
            break
        info = t.qpair_info(rig.io)
        assert info.cur_send_depth <= info.max_send_depth
    assert posted_at is not None, "the read's response never got the send queue"
    rig.settle()
    got = {r.cid: r.status for r in t.reap(rig.io)}
    assert got[read.cid] == Status.SUCCESS and got[write.cid] == Status.SUCCESS
    assert all(s == Status.SUCCESS for s in got.values()), got
    assert rig.gather(list(read.descriptors)) == media
    info = t.qpair_info(rig.io)
    assert (info.cur_read_depth, info.cur_send_depth) == (0, 0)
    assert_clean_destroy(t)
