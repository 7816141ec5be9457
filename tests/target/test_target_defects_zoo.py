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

from impl import Capsule, Defect, Opcode, ReqState, Status

from .rig import Rig, assert_released, build

OFF_ON = [pytest.param(0, id="off"), pytest.param(1, id="on")]


def switch(defect: Defect, on: int) -> int:
    return int(defect) if on else 0


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


# ---- pool_double_put (SPDK issue 2541) ------------------------------------------------------


def waiting_for_buffers(defects: int) -> tuple[Rig, list[int], int]:
    """Two writes hold every data buffer in the block device; a 3-descriptor write gets
    its 3 WRs, finds no buffer and waits.  Returns the rig, the hogs' CIDs, the waiter's."""
    rig = build(max_io_size=32768, buf_cache_size=0, num_shared_buffers=16, admin_group=1,
                io_group=1, defects=defects)
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
