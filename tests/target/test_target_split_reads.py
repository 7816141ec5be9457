"""Multi-descriptor writes split across a short read depth (the setting of SPDK issue 3290):
the unposted remainder is held, posted as READs complete, and the data still lands right."""

from __future__ import annotations

import pytest

from impl import Queue, ReqState, Status

from .rig import assert_clean_destroy, assert_released, build


@pytest.mark.parametrize("max_read_depth", [1, 2])
def test_split_read_steps_through_the_remainder(max_read_depth: int) -> None:
    rig = build(max_read_depth=max_read_depth)
    t, io, grp = rig.t, rig.io, 1
    t.set_bdev_auto(False)
    data = rig.data(20 * 512)
    cap = rig.write_capsule(0, data, "list", ndesc=6)
    t.submit(io, cap)
    assert t.deliver_h2t(io)
    assert t.poll(grp) == 1                       # the receive CQE

    [req] = t.requests(io)
    assert req.num_wrs == 6
    assert req.state == ReqState.TRANSFER_TO_CTRLR_PENDING
    assert req.queue == Queue.PENDING_READ
    assert req.wrs_posted == max_read_depth < req.num_wrs
    assert req.wrs_outstanding == max_read_depth
    info = t.qpair_info(io)
    assert info.cur_read_depth == max_read_depth == info.max_read_depth
    assert info.wire_t2h == max_read_depth and info.pending_read == 1

    posted = [req.wrs_posted]
    while req.state == ReqState.TRANSFER_TO_CTRLR_PENDING:
        info = t.qpair_info(io)
        assert info.cur_read_depth == max_read_depth        # never more, never idle
        assert t.deliver_t2h(io)                             # one READ executes
        assert t.poll(grp) == 1                              # its completion
        [req] = t.requests(io)
        posted.append(req.wrs_posted)
    assert posted == list(range(max_read_depth, 7))          # one more per completion
    assert req.state == ReqState.TRANSFERRING_H2C and req.wrs_posted == 6
    assert req.queue == Queue.NONE

    while t.deliver_t2h(io):
        t.poll(grp)
    [req] = t.requests(io)
    assert req.state == ReqState.EXECUTING and req.wrs_outstanding == 0
    assert t.qpair_info(io).cur_read_depth == 0
    assert t.bdev_pending() == 1
    assert rig.media(0, len(data)) == bytes(len(data))       # nothing before the device
    assert t.bdev_complete(0)
    rig.settle()
    [rsp] = t.reap(io)
    assert (rsp.cid, rsp.status) == (cap.cid, Status.SUCCESS)
    assert rig.media(0, len(data)) == data
    info = t.qpair_info(io)
    assert info.max_read_depth_seen == max_read_depth        # DEPTH-1, and reached
    assert info.slots_used == 0
    assert_released(t)
    assert_clean_destroy(t)


def test_second_split_write_waits_behind_the_first() -> None:
    rig = build(max_read_depth=2)
    t, io = rig.t, rig.io
    a = rig.write_capsule(0, d_a := rig.data(16 * 512), "list", ndesc=5, host_base=0)
    b = rig.write_capsule(64, d_b := rig.data(16 * 512), "list", ndesc=4, host_base=500_000)
    t.submit(io, a)
    t.submit(io, b)
    t.deliver_h2t(io)
    t.deliver_h2t(io)
    t.poll(1)
    reqs = {r.cid: r for r in t.requests(io)}
    assert reqs[a.cid].wrs_posted == 2 and reqs[a.cid].num_wrs == 5
    # b holds its WRs but posts nothing while a is at the head of the read queue
    assert reqs[b.cid].state == ReqState.TRANSFER_TO_CTRLR_PENDING
    assert reqs[b.cid].queue == Queue.PENDING_READ
    assert reqs[b.cid].wrs_posted == 0 and reqs[b.cid].num_wrs == 4
    assert t.qpair_info(io).pending_read == 2
    rig.settle()
    assert {r.cid: r.status for r in t.reap(io)} == {a.cid: 0, b.cid: 0}
    assert rig.media(0, len(d_a)) == d_a and rig.media(64, len(d_b)) == d_b
    assert t.qpair_info(io).max_read_depth_seen <= 2
    assert_released(t)


@pytest.mark.parametrize("max_sge,expected_wrs", [(1, 6), (2, 3), (16, 1)])
def test_max_sge_splits_one_descriptor_into_wrs(max_sge: int, expected_wrs: int) -> None:
    """One keyed 22 KiB descriptor over 4 KiB io units is 6 pieces (5 full units and a
    half); the target starts another WR every max_sge pieces."""
    rig = build(max_sge=max_sge, max_read_depth=1)
    t, io = rig.t, rig.io
    data = rig.data(22 * 1024)            # 22 KiB: 6 io units, the last partial
    cap = rig.write_capsule(0, data, "keyed")
    t.submit(io, cap)
    t.deliver_h2t(io)
    t.poll(1)
    [req] = t.requests(io)
    assert req.num_bufs == 6
    assert req.num_wrs == expected_wrs
    assert req.wrs_posted == 1
    rig.settle()
    [rsp] = t.reap(io)
    assert rsp.status == Status.SUCCESS and rig.media(0, len(data)) == data
    # and back out through WRITEs split the same way
    rsp, back = rig.read(0, len(data), "keyed", host_base=600_000)
    assert rsp.status == Status.SUCCESS and back == data
    assert t.qpair_info(io).max_read_depth_seen == 1


def test_read_depth_bound_under_a_full_queue() -> None:
    rig2 = build(max_read_depth=3)
    try:
        t, io = rig2.t, rig2.io
        datas = []
        for i in range(8):
            d = rig2.data(12 * 512)
            datas.append(d)
            t.submit(io, rig2.write_capsule(i * 16, d, "list", ndesc=2 + i,
                                            host_base=i * 120_000))
        for _ in range(200):
            t.deliver_h2t(io)
            t.deliver_t2h(io)
            t.poll(1)
            t.bdev_complete(0)
            t.reap(io)
            assert t.qpair_info(io).cur_read_depth <= 3
        rig2.settle()
        for i, d in enumerate(datas):
            assert rig2.media(i * 16, len(d)) == d
        assert t.qpair_info(io).max_read_depth_seen == 3
    finally:
        rig2.t.destroy()
