"""The defect switches really re-create their bugs in the target (DESIGN 2 and 5.6).

Each scenario runs with the switch off and on; off, the target must behave; on, the
failure the switch stands for must show, in the numbers the generic properties look at.
"""

from __future__ import annotations

import pytest

from impl import Capsule, Defect, Opcode, ReqState, Status, connect_capsule

from .rig import Rig, assert_released, build

OFF_ON = [pytest.param(0, id="off"), pytest.param(1, id="on")]


# ---- leak_remaining_wrs (SPDK issue 3290) -------------------------------------------------


def partially_posted_write(defects: int) -> tuple[Rig, int]:
    """A 7-descriptor write with read depth 2: 2 READs posted, 5 WRs held unposted.
    Returns the rig and the number of unposted WRs."""
    rig = build(max_read_depth=2, defects=defects)
    t = rig.t
    t.set_bdev_auto(False)
    cap = rig.write_capsule(0, rig.data(24 * 512), "list", ndesc=7)
    t.submit(rig.io, cap)
    t.deliver_h2t(rig.io)
    t.poll(1)
    [req] = t.requests(rig.io)
    assert req.state == ReqState.TRANSFER_TO_CTRLR_PENDING
    assert (req.num_wrs, req.wrs_posted) == (7, 2)
    return rig, req.num_wrs - req.wrs_posted


@pytest.mark.parametrize("fault", ["port_down", "qpair_error", "transport_destroy"])
@pytest.mark.parametrize("on", OFF_ON)
def test_leak_remaining_wrs(on: int, fault: str) -> None:
    rig, unposted = partially_posted_write(int(Defect.LEAK_REMAINING_WRS) if on else 0)
    t = rig.t
    cap = t.options.wr_pool_capacity
    if fault != "transport_destroy":
        if fault == "port_down":
            t.port_down(rig.port)
        else:
            t.inject_qpair_error(rig.io)
        r = t.drain()
        assert r.quiescent and not r.stalled
        assert t.qpair_info(rig.io) is None
        wr = t.wr_pool()
        assert wr.held == 0
        assert wr.missing == (unposted if on else 0)          # POOL-1 sees the loss
        assert wr.ring_free + wr.cached == cap - (unposted if on else 0)
    rep = t.destroy()
    assert rep.wr_expected == cap
    if on:
        assert rep.wr_returned == cap - unposted == cap - 5
        assert "wr pool count is" in rep.message
        assert f"{cap - unposted} but should be {cap}" in rep.message
    else:
        assert rep.wr_returned == cap and rep.message == ""


def test_leak_remaining_wrs_spares_fully_posted_requests() -> None:
    """The defect is specific: a write whose READs were all posted returns everything."""
    rig = build(max_read_depth=16, defects=int(Defect.LEAK_REMAINING_WRS))
    t = rig.t
    t.set_bdev_auto(False)
    t.submit(rig.io, rig.write_capsule(0, rig.data(24 * 512), "list", ndesc=7))
    t.deliver_h2t(rig.io)
    t.poll(1)
    [req] = t.requests(rig.io)
    assert req.wrs_posted == req.num_wrs == 7
    t.port_down(rig.port)
    assert t.drain().quiescent
    rep = t.destroy()
    assert rep.wr_returned == rep.wr_expected and rep.message == ""


# ---- no_idle_pending_poll (SPDK issue 3328) ------------------------------------------------


def starved_on_idle_group(defects: int) -> tuple[Rig, int, Capsule, bytes]:
    """Group 1's IO holds the whole (minimum-size, uncached) WR pool while a request on
    group 0 asks for WRs and waits in NEED_BUFFER; then group 1's IO finishes.  Returns
    the rig, the group-0 qpair, and the waiting capsule with its data."""
    opts = {"num_poll_groups": 2, "max_io_size": 32768, "io_unit_size": 4096,
            "wr_cache_size": 0, "buf_cache_size": 8, "num_shared_buffers": 256}
    probe = build(**opts)
    minimum = probe.t.options.min_wr_pool
    probe.t.destroy()
    assert minimum == 2 * 16
    rig = build(wr_pool_size=minimum, defects=defects, admin_group=1, io_group=1, **opts)
    t = rig.t
    t.set_bdev_auto(False)
    qa = t.create_qpair(rig.port, 0, 4)
    rsp = rig.run_one(qa, connect_capsule(rig.cid(), rig.sub, qid=2, cntlid=rig.cntlid,
                                          sqsize=3))
    assert rsp.status == Status.SUCCESS

    # group 1: two 16-descriptor writes take all 32 WRs and sit in the block device
    held = []
    for i in range(2):
        cap = rig.write_capsule(64 * i, rig.data(16 * 1024), "list", ndesc=16,
                                host_base=300_000 * i)
        t.submit(rig.io, cap)
        held.append(cap.cid)
    for _ in range(100):
        t.deliver_h2t(rig.io)
        while t.deliver_t2h(rig.io):
            pass
        t.poll(1)
    assert [r.state for r in t.requests(rig.io)] == [ReqState.EXECUTING] * 2
    assert t.wr_pool().held == minimum and t.wr_pool().ring_free == 0

    # group 0: a 16-descriptor write finds no WRs
    data = rig.data(16 * 1024)
    cap = rig.write_capsule(200, data, "list", ndesc=16, host_base=700_000)
    t.submit(qa, cap)
    assert t.deliver_h2t(qa)
    assert t.poll(0) == 1
    [req] = t.requests(qa)
    assert req.state == ReqState.NEED_BUFFER and req.num_wrs == 0
    assert t.group_stats(0).pending_data_buffer == 1
    assert t.wr_pool().get_failures >= 1

    # group 1's IO finishes and gives every WR back (no cache: straight to the ring)
    while t.bdev_complete(0):
        pass
    for _ in range(10):
        t.deliver_t2h(rig.io)
        t.poll(1)
    assert sorted(r.cid for r in t.reap(rig.io)) == sorted(held)
    assert t.wr_pool().ring_free == minimum
    assert t.group_stats(0).cq_entries == 0          # group 0's last CQE is long reaped
    return rig, qa, cap, data


@pytest.mark.parametrize("on", OFF_ON)
def test_no_idle_pending_poll(on: int) -> None:
    rig, qa, cap, data = starved_on_idle_group(
        int(Defect.NO_IDLE_PENDING_POLL) if on else 0)
    t = rig.t
    if on:
        before = t.group_stats(0)
        for _ in range(50):
            assert t.poll(0) == 0
        [req] = t.requests(qa)
        assert req.state == ReqState.NEED_BUFFER
        stats = t.group_stats(0)
        assert stats.pending_data_buffer == 1
        assert stats.idle_polls == before.idle_polls + 50
        r = t.drain()
        assert r.stalled and not r.quiescent
        [req] = t.requests(qa)
        assert req.state == ReqState.NEED_BUFFER
        assert t.reap(qa) == []
        # what un-stuck the field incident: any CQE on that group (a new admin qpair there)
        flush = Capsule(Opcode.FLUSH, rig.cid(), nsid=rig.ns)
        t.submit(qa, flush)
        rig.settle()
        rsps = {r.cid: r.status for r in t.reap(qa)}
        assert rsps == {cap.cid: Status.SUCCESS, flush.cid: Status.SUCCESS}
    else:
        t.poll(0)                       # one idle poll is enough
        [req] = t.requests(qa)
        assert req.state != ReqState.NEED_BUFFER and req.num_wrs == 16
        rig.settle()
        [rsp] = t.reap(qa)
        assert (rsp.cid, rsp.status) == (cap.cid, Status.SUCCESS)
    assert rig.media(200, len(data)) == data
    assert_released(t)
    t.destroy()


# ---- fixed_pool_size (SPDK 7dab13c0e0) -----------------------------------------------------

#: Pool configurations that differ from max_queue_depth * 16 (by multiplier or size).
POOL_CONFIGS = [{"wr_pool_multiplier": 32}, {"wr_pool_size": 1000},
                {"wr_pool_multiplier": 4, "max_queue_depth": 32}]


@pytest.mark.parametrize("config", POOL_CONFIGS)
@pytest.mark.parametrize("on", OFF_ON)
def test_fixed_pool_size(on: int, config: dict) -> None:
    rig = build(defects=int(Defect.FIXED_POOL_SIZE) if on else 0, **config)
    t = rig.t
    mqd = t.options.max_queue_depth
    configured = t.options.wr_pool_capacity
    assert configured != mqd * 16
    data = rig.data(8192)
    assert rig.write(0, data, "list", ndesc=4).status == Status.SUCCESS
    assert rig.read(0, 8192, "list", ndesc=3, host_base=100_000)[1] == data
    wr = t.wr_pool()
    assert wr.capacity == (mqd * 16 if on else configured)
    assert wr.ring_free + wr.cached == wr.capacity and wr.held == 0
    rep = t.destroy()
    assert rep.wr_expected == configured
    if on:
        assert rep.wr_returned == mqd * 16
        assert rep.message == (f"nrt_transport_destroy: transport wr pool count is "
                               f"{mqd * 16} but should be {configured}")
    else:
        assert rep.wr_returned == configured and rep.message == ""


def test_defect_names_round_trip() -> None:
    from impl import DEFECT_NAMES, Options
    assert set(DEFECT_NAMES) >= {"leak_remaining_wrs", "no_idle_pending_poll",
                                 "fixed_pool_size"}
    opts = Options.from_any(None, defects="leak_remaining_wrs")
    assert opts.defects == int(Defect.LEAK_REMAINING_WRS)
    with pytest.raises(ValueError, match="known"):
        Options.from_any(None, defects="no_such_defect")
