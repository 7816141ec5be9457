"""The rest of the defect switches (DESIGN section 2) re-create their bugs in the target.

Same shape as :mod:`.test_target_defects`: each scenario runs with its switch off and on;
off, the target behaves; on, the historical failure shows in the generic numbers the
properties look at (pool audit, destroy report, drain, responses, qpair counters,
request-state transitions).  No assertion reads the switch to decide what is right: the
``on`` branches assert the symptom, the ``off`` branches the healthy behaviour, on the
same scenario.
"""

from __future__ import annotations

import pytest

from impl import (
    AsyncEventType,
    Capsule,
    Defect,
    FabricsType,
    Opcode,
    QpState,
    Queue,
    ReqState,
    Status,
    connect_capsule,
    in_capsule,
)

from .rig import Rig, assert_released, build, pump, waiting_for_buffers
from .test_target_defects import POOL_CONFIGS, partially_posted_write

OFF_ON = [pytest.param(0, id="off"), pytest.param(1, id="on")]


def switch(defect: Defect, on: int) -> int:
    return int(defect) if on else 0


# ---- pool_double_put (SPDK issue 2541) ------------------------------------------------------


@pytest.mark.parametrize("on", OFF_ON)
def test_pool_double_put(on: int) -> None:
    rig, _, waiter = waiting_for_buffers(switch(Defect.POOL_DOUBLE_PUT, on))
    t = rig.t
    cap = t.options.wr_pool_capacity
    [req] = [r for r in t.requests(rig.io) if r.cid == waiter]
    wr = t.wr_pool()
    if on:
        # the WRs went back to the pool, yet the waiting request still links them
        assert req.num_wrs == 3
        assert (wr.held, wr.duplicates) == (2 + 3, 3)
        assert wr.accounted == cap + 3
    else:
        assert req.num_wrs == 0
        assert (wr.held, wr.duplicates, wr.missing) == (2, 0, 0)
        assert wr.accounted == cap

    t.inject_qpair_error(rig.io)          # the forced completion
    r = t.drain()
    assert r.quiescent and not r.stalled
    assert t.qpair_info(rig.io) is None
    wr = t.wr_pool()
    assert wr.held == 0
    if on:
        assert wr.duplicates == 3                     # POOL-1: in the pool twice
        assert wr.ring_free + wr.cached == cap + 3
    else:
        assert_released(t)
    rep = t.destroy()
    assert rep.wr_expected == cap
    if on:
        assert rep.wr_returned == cap + 3
        assert rep.message == (f"nrt_transport_destroy: transport wr pool count is "
                               f"{cap + 3} but should be {cap}")
    else:
        assert rep.wr_returned == cap and rep.message == ""


def test_pool_audit_catches_a_double_put_the_counts_hide() -> None:
    """With leak_remaining_wrs also on, 5 WRs lost and 5 put twice cancel out: ring free +
    cached + held equals the capacity exactly, and only the audit's duplicates and missing
    tell the pool is corrupt (and the destroy report sees nothing)."""
    rig = build(max_io_size=32768, buf_cache_size=0, num_shared_buffers=16, max_read_depth=2,
                admin_group=1, io_group=1,
                defects=int(Defect.POOL_DOUBLE_PUT | Defect.LEAK_REMAINING_WRS))
    t = rig.t
    t.set_bdev_auto(False)
    cap = t.options.wr_pool_capacity
    # 1. a 7-descriptor write: 3 buffers, 7 WRs, 2 READs posted, 5 held unposted
    partial = rig.write_capsule(0, rig.data(24 * 512), "list", ndesc=7)
    t.submit(rig.io, partial)
    t.deliver_h2t(rig.io)
    t.poll(1)
    # 2. two reads take the other 13 buffers and sit in the block device
    for i, blocks in enumerate((64, 40)):
        t.submit(rig.io, rig.read_capsule(100 + 64 * i, blocks * 512, host_base=200_000 * (i + 1)))
        t.deliver_h2t(rig.io)
        t.poll(1)
    # 3. a 5-descriptor write gets 5 WRs, no buffer: it waits, still linking the WRs
    waiting = rig.write_capsule(400, rig.data(5 * 512), "list", ndesc=5, host_base=600_000)
    t.submit(rig.io, waiting)
    t.deliver_h2t(rig.io)
    t.poll(1)
    reqs = {r.cid: r for r in t.requests(rig.io)}
    assert (reqs[partial.cid].num_wrs, reqs[partial.cid].wrs_posted) == (7, 2)
    assert reqs[waiting.cid].state == ReqState.NEED_BUFFER
    assert reqs[waiting.cid].num_wrs == 5
    assert t.bdev_pending() == 2

    t.inject_qpair_error(rig.io)
    r = t.drain()
    assert r.quiescent and not r.stalled
    wr = t.wr_pool()
    assert wr.held == 0
    assert wr.ring_free + wr.cached == wr.capacity == cap     # the counts add up...
    assert (wr.duplicates, wr.missing) == (5, 5)             # ...the audit does not
    rep = t.destroy()
    assert rep.wr_returned == rep.wr_expected == cap and rep.message == ""


# ---- stale_transfer_wr (SPDK issue 3129) ----------------------------------------------------


@pytest.mark.parametrize("on", OFF_ON)
def test_stale_transfer_wr(on: int) -> None:
    rig = build(defects=switch(Defect.STALE_TRANSFER_WR, on))
    t = rig.t
    cap = t.options.wr_pool_capacity
    data = rig.data(8192)
    assert rig.write(0, data, "list", ndesc=4).status == Status.SUCCESS
    wr = t.wr_pool()
    # the freed slot still points at its 4 WRs, which are back in the pool
    assert (wr.held, wr.duplicates) == ((4, 4) if on else (0, 0))
    # every slot of the qpair is used once more, by commands without data
    depth = t.qpair_info(rig.io).depth
    for _ in range(depth):
        rsp = rig.run_one(rig.io, Capsule(Opcode.FLUSH, rig.cid(), nsid=rig.ns))
        assert rsp.status == Status.SUCCESS
    wr = t.wr_pool()
    if on:
        # the slot's next free put the same 4 WRs again
        assert wr.ring_free + wr.cached == cap + 4
        assert wr.duplicates == 8
    else:
        assert_released(t)
    assert rig.read(0, 8192, "list", ndesc=3, host_base=100_000)[1] == data
    rep = t.destroy()
    assert rep.wr_expected == cap
    assert rep.wr_returned == (cap + 4 if on else cap)
    assert ("wr pool count is" in rep.message) == bool(on)


# ---- pending_send_only_on_cqe (SPDK issue 3646, e775a7a4cf) ----------------------------------

#: pending queue -> (command whose post fails there, state it waits in)
STUCK_POSTS = {
    "send": (ReqState.READY_TO_COMPLETE, Queue.PENDING_SEND),        # a flush's response
    "write": (ReqState.TRANSFER_TO_HOST_PENDING, Queue.PENDING_WRITE),  # a read's data
    "read": (ReqState.TRANSFER_TO_CTRLR_PENDING, Queue.PENDING_READ),   # a write's data
}


def post_fails_then_idle(rig: Rig, queue: str) -> int:
    """One command on the IO qpair whose post fails (injected ENOMEM) and leaves it on
    ``queue``, after the last CQE of that qpair has been reaped.  Returns its CID."""
    t = rig.t
    t.set_bdev_auto(False)
    if queue == "send":
        cap = Capsule(Opcode.FLUSH, rig.cid(), nsid=rig.ns)
    elif queue == "write":
        cap = rig.read_capsule(0, 4096)
    else:
        cap = rig.write_capsule(0, rig.data(4096), "keyed")
    t.submit(rig.io, cap)
    assert t.deliver_h2t(rig.io)
    if queue == "read":
        # fails in the receive's completion, and again in the same poll's pending pass
        t.fail_posts(rig.io, 2)
        assert t.poll(1) == 1
    else:
        assert t.poll(1) == 1
        t.fail_posts(rig.io, 1)
        assert t.bdev_complete(0)           # the post happens outside any poll
    [req] = t.requests(rig.io)
    assert (req.state, req.queue) == STUCK_POSTS[queue]
    info = t.qpair_info(rig.io)
    assert info.wire_t2h == 0 and t.group_stats(1).cq_entries == 0
    return cap.cid


@pytest.mark.parametrize("queue", sorted(STUCK_POSTS))
@pytest.mark.parametrize("on", OFF_ON)
def test_pending_send_only_on_cqe(on: int, queue: str) -> None:
    rig = build(defects=switch(Defect.PENDING_SEND_ONLY_ON_CQE, on))
    t = rig.t
    cid = post_fails_then_idle(rig, queue)
    if on:
        for _ in range(20):
            assert t.poll(1) == 0
        [req] = t.requests(rig.io)
        assert (req.state, req.queue) == STUCK_POSTS[queue]
        r = t.drain()
        assert r.stalled and not r.quiescent           # LIVE-1
        assert t.reap(rig.io) == []
        # a completion on that qpair (any other command) is what moves it again
        flush = Capsule(Opcode.FLUSH, rig.cid(), nsid=rig.ns)
        t.submit(rig.io, flush)
        rig.settle()
        assert {r.cid: r.status for r in t.reap(rig.io)} == {cid: Status.SUCCESS,
                                                             flush.cid: Status.SUCCESS}
    else:
        assert t.poll(1) == 0                          # one idle poll retries the post
        assert t.qpair_info(rig.io).wire_t2h >= 1
        rig.settle()
        assert [(r.cid, r.status) for r in t.reap(rig.io)] == [(cid, Status.SUCCESS)]
    assert_released(t)
    t.destroy()


# ---- icd_waits_for_buffer (SPDK issue 3646, f4c10e1a8e, 7251e4c26c) ---------------------------


@pytest.mark.parametrize("on", OFF_ON)
def test_icd_waits_for_buffer(on: int) -> None:
    rig, hogs, waiter = waiting_for_buffers(switch(Defect.ICD_WAITS_FOR_BUFFER, on),
                                            keep_alive_ticks=100)
    t = rig.t
    t.advance_time(60)
    icd = rig.data(1024)
    keep_alive = Capsule(Opcode.KEEP_ALIVE, rig.cid())
    prop_get = Capsule(Opcode.FABRICS, rig.cid(), fctype=FabricsType.PROPERTY_GET, cdw10=0x08)
    icd_write = Capsule.with_data(Opcode.WRITE, rig.cid(), [in_capsule(1024)], nsid=rig.ns,
                                  slba=500, nlb=1)
    flush = Capsule(Opcode.FLUSH, rig.cid(), nsid=rig.ns)
    t.submit(rig.admin, keep_alive)
    t.submit(rig.admin, prop_get)
    t.submit(rig.io, icd_write, icd)
    t.submit(rig.io, flush)
    pump(rig, 10, rig.admin, rig.io)             # deliver and poll: no device completions
    got = {r.cid: r.status for qp in (rig.admin, rig.io) for r in t.reap(qp)}
    if on:
        # LIVE-2: all four queue for buffers behind the waiting write
        assert got == {}
        assert t.group_stats(1).pending_data_buffer == 5
        admin_reqs = t.requests(rig.admin)
        assert {r.cid for r in admin_reqs} == {keep_alive.cid, prop_get.cid}
        assert all(r.state == ReqState.NEED_BUFFER and r.queue == Queue.PENDING_BUF
                   for r in admin_reqs)
        assert t.bdev_pending() == 2
    else:
        assert got == {keep_alive.cid: Status.SUCCESS, prop_get.cid: Status.SUCCESS}
        assert t.group_stats(1).pending_data_buffer == 1
        assert t.bdev_pending() == 4
    # the host's keep-alive was sent at tick 60; at tick 120 the 100-tick timer decides
    t.advance_time(60)
    expired = [e for e in t.async_events() if e.type == AsyncEventType.KEEP_ALIVE_EXPIRED]
    assert len(expired) == (1 if on else 0)
    assert t.qpair_info(rig.admin).state == (QpState.ERROR if on else QpState.ACTIVE)
    rig.settle()
    if not on:
        got = {r.cid: r.status for r in t.reap(rig.io)}
        assert got == {c: Status.SUCCESS for c in [*hogs, waiter, icd_write.cid, flush.cid]}
        assert rig.media(500, 1024) == icd
    assert_released(t)
    t.destroy()


# ---- post_fail_counter_leak (SPDK PR 224) ----------------------------------------------------


@pytest.mark.parametrize("counter", ["read", "send"])
@pytest.mark.parametrize("on", OFF_ON)
def test_post_fail_counter_leak(on: int, counter: str) -> None:
    probe = build()
    need_send = probe.t.options.max_wrs_per_request + 1
    probe.t.destroy()
    defects = switch(Defect.POST_FAIL_COUNTER_LEAK, on)
    if counter == "read":
        rig = build(max_read_depth=2, defects=defects)
        cap = rig.write_capsule(0, rig.data(4096), "keyed")   # one RDMA READ
        failures = 2                                          # = max_read_depth
    else:
        rig = build(max_send_depth=need_send, defects=defects)
        cap = Capsule(Opcode.FLUSH, rig.cid(), nsid=rig.ns)   # one SEND
        failures = need_send                                  # = max_send_depth
    t = rig.t
    t.fail_posts(rig.io, failures)
    t.submit(rig.io, cap)
    r = t.drain()
    info = t.qpair_info(rig.io)
    if on:
        # every failed post kept its depth: the counter is full with nothing posted
        assert r.stalled and not r.quiescent
        assert info.wire_t2h == 0
        if counter == "read":
            assert info.cur_read_depth == info.max_read_depth == 2
            [req] = t.requests(rig.io)
            assert (req.state, req.wrs_posted, req.wrs_outstanding) == (
                ReqState.TRANSFER_TO_CTRLR_PENDING, 0, 0)
        else:
            assert info.cur_send_depth == info.max_send_depth == need_send
            [req] = t.requests(rig.io)
            assert req.state == ReqState.READY_TO_COMPLETE
        assert t.reap(rig.io) == []
        # the qpair stops serving: the next command of the same kind is stuck as well
        if counter == "read":
            t.submit(rig.io, rig.write_capsule(8, rig.data(4096), "keyed", host_base=50_000))
        else:
            t.submit(rig.io, Capsule(Opcode.FLUSH, rig.cid(), nsid=rig.ns))
        assert t.drain().stalled
        assert t.reap(rig.io) == []
        t.destroy()
    else:
        assert r.quiescent and not r.stalled
        assert (info.cur_read_depth, info.cur_send_depth) == (0, 0)
        assert [(x.cid, x.status) for x in t.reap(rig.io)] == [(cap.cid, Status.SUCCESS)]
        assert_released(t)
        t.destroy()


# ---- recv_not_released (SPDK issue 2937, 470cee22fb) -----------------------------------------


@pytest.mark.parametrize("error", ["invalid_namespace", "device_error"])
@pytest.mark.parametrize("on", OFF_ON)
def test_recv_not_released(on: int, error: str) -> None:
    rig = build(defects=switch(Defect.RECV_NOT_RELEASED, on))
    t = rig.t
    depth = t.qpair_info(rig.io).depth

    def fail_one() -> None:
        if error == "invalid_namespace":
            rsp = rig.run_one(rig.io, Capsule(Opcode.FLUSH, rig.cid(), nsid=99))
            assert rsp.status == Status.INVALID_NAMESPACE
        else:
            t.bdev_inject_error(1, Status.INTERNAL_ERROR)
            rsp = rig.run_one(rig.io, Capsule(Opcode.FLUSH, rig.cid(), nsid=rig.ns))
            assert rsp.status == Status.INTERNAL_ERROR

    for _ in range(3):
        fail_one()
    info = t.qpair_info(rig.io)
    assert info.state == QpState.ACTIVE
    # POOL-3: a live qpair's receives are all posted or held
    assert (info.recv_idle, info.recv_posted) == ((3, depth - 3) if on else (0, depth))
    for _ in range(depth - 3):
        fail_one()
    flush = Capsule(Opcode.FLUSH, rig.cid(), nsid=rig.ns)
    t.submit(rig.io, flush)
    r = t.drain()
    info = t.qpair_info(rig.io)
    if on:
        # no receive left: the next capsule never leaves the wire
        assert (info.recv_idle, info.recv_posted) == (depth, 0)
        assert r.stalled and info.wire_h2t == 1
        assert t.reap(rig.io) == []
    else:
        assert r.quiescent and info.recv_posted == depth
        assert [(x.cid, x.status) for x in t.reap(rig.io)] == [(flush.cid, Status.SUCCESS)]
    assert_released(t)
    t.destroy()


# ---- wrong_expected_capacity (SPDK ab2395bb04) -----------------------------------------------


@pytest.mark.parametrize("config", POOL_CONFIGS)
@pytest.mark.parametrize("on", OFF_ON)
def test_wrong_expected_capacity(on: int, config: dict) -> None:
    rig = build(defects=switch(Defect.WRONG_EXPECTED_CAPACITY, on), **config)
    t = rig.t
    mqd = t.options.max_queue_depth
    configured = t.options.wr_pool_capacity
    assert configured != mqd * 16
    data = rig.data(8192)
    assert rig.write(0, data, "list", ndesc=4).status == Status.SUCCESS
    assert rig.read(0, 8192, "list", ndesc=3, host_base=100_000)[1] == data
    assert_released(t)                    # nothing leaked: the pool is whole
    rep = t.destroy()
    assert rep.wr_returned == configured
    if on:
        # a false alarm: the check expects the old hard-coded capacity
        assert rep.wr_expected == mqd * 16
        assert rep.message == (f"nrt_transport_destroy: transport wr pool count is "
                               f"{configured} but should be {mqd * 16}")
    else:
        assert rep.wr_expected == configured and rep.message == ""


# ---- stale_read_queue_entry (SPDK 4e45c5636b) ------------------------------------------------


@pytest.mark.parametrize("fault", ["qpair_error", "port_down"])
@pytest.mark.parametrize("on", OFF_ON)
def test_stale_read_queue_entry(on: int, fault: str) -> None:
    rig, _ = partially_posted_write(switch(Defect.STALE_READ_QUEUE_ENTRY, on))
    t = rig.t
    depth = t.qpair_info(rig.io).depth
    if fault == "port_down":
        t.port_down(rig.port)
    else:
        t.inject_qpair_error(rig.io)
    r = t.drain()
    edges = t.transitions()
    if on:
        # completed once its posted READs flushed, then found on the read queue and
        # completed again: a FREE request goes to COMPLETED (SM-1) and is released twice
        assert edges.get((ReqState.FREE, ReqState.COMPLETED)) == 1
        info = t.qpair_info(rig.io)
        assert info is not None and info.state == QpState.ERROR
        assert info.req_states[ReqState.FREE] == depth == info.slots_free
        assert info.slots_used == 2**32 - 1                  # POOL-3: released twice
        # the slot count never gets back to zero, so the qpair is never destroyed
        assert r.stalled and not r.quiescent                 # LIVE-1
    else:
        assert (ReqState.FREE, ReqState.COMPLETED) not in edges
        assert r.quiescent and not r.stalled
        assert t.qpair_info(rig.io) is None
    assert_released(t)                    # the data went back once: the pools are whole
    t.destroy()


# ---- double_qpair_destroy (SPDK issue 851) ---------------------------------------------------


@pytest.mark.parametrize("on", OFF_ON)
def test_double_qpair_destroy(on: int) -> None:
    # max_qpairs sizes the controller table too (CNTLIDs 1..4): small enough to go round it
    rig = build(defects=switch(Defect.DOUBLE_QPAIR_DESTROY, on), max_qpairs=4)
    t = rig.t
    t.set_bdev_auto(False)
    data = rig.data(4096)
    assert rig.write(0, data, "keyed").status == Status.SUCCESS
    read = rig.read_capsule(0, 4096, host_base=200_000)
    t.submit(rig.io, read)
    pump(rig, 2)
    [req] = t.requests(rig.io)
    assert req.state == ReqState.EXECUTING and t.bdev_pending() == 1
    t.disconnect_qpair(rig.io)                    # closed with its read in the device
    pump(rig, 3)
    info = t.qpair_info(rig.io)
    if on:
        # torn down although its read is still in the block device
        assert info is not None and info.state == QpState.DESTROYED
        assert t.requests(rig.io) == [] and t.bdev_pending() == 1
    else:
        assert info is not None and info.state == QpState.ERROR
        assert [r.state for r in t.requests(rig.io)] == [ReqState.EXECUTING]
    assert t.bdev_complete(0)                     # the outstanding IO completes after close
    edges = t.transitions()
    if on:
        # the completion ran on a request the teardown had already released (SM-1) ...
        assert edges.get((ReqState.FREE, ReqState.EXECUTED)) == 1
        assert t.qpair_info(rig.io) is None       # ... and destroyed the qpair again
    else:
        assert (ReqState.FREE, ReqState.EXECUTED) not in edges
        pump(rig, 1)
        assert t.qpair_info(rig.io) is None       # destroyed once, after its IO
    rig.settle()
    assert_released(t)
    # The second teardown must not give the qpair's controller reference back again (the
    # transport tells the controller emulation once per qpair, and the emulation drops a
    # qpair once): when the admin queue goes too, the controller's slot is free again.
    # CNTLIDs are allocated next-fit (ctrlr.c), so the slot shows up as its CNTLID coming
    # back once every other slot has been handed out.
    t.host_disconnect(rig.admin)
    rig.settle()
    assert t.qpairs() == []
    slots = t.options.max_qpairs
    seen: list[int] = []
    for _ in range(slots):
        admin = t.create_qpair(rig.port, 0, 4)
        rsp = rig.run_one(admin, connect_capsule(rig.cid(), rig.sub, qid=0, sqsize=3))
        assert rsp.status == Status.SUCCESS
        seen.append(rsp.result)
        t.disconnect_qpair(admin)
        rig.settle()
    assert seen == [(rig.cntlid + i) % slots + 1 for i in range(slots)]
    assert seen[-1] == rig.cntlid
    t.destroy()


def test_double_qpair_destroy_then_transport_destroy_with_the_io_still_in_the_device() -> None:
    """The early-destroyed qpair outlives nothing it should not: an abrupt transport
    destroy with its IO still in the block device returns every pool object, no crash."""
    rig = build(defects=int(Defect.DOUBLE_QPAIR_DESTROY))
    t = rig.t
    t.set_bdev_auto(False)
    t.submit(rig.io, rig.write_capsule(0, rig.data(8192), "list", ndesc=3))
    pump(rig, 4)
    assert t.bdev_pending() == 1
    t.inject_qpair_error(rig.io)
    pump(rig, 3)
    assert t.qpair_info(rig.io).state == QpState.DESTROYED
    rep = t.destroy()
    cap = t.options.wr_pool_capacity
    assert (rep.wr_returned, rep.wr_expected, rep.message) == (cap, cap, "")
    assert rep.buf_returned == rep.buf_expected
