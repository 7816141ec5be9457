"""Every fault in the middle of every transfer phase (SHUT-1, POOL-2, LIVE-1, CQE-1).

Each phase puts one IO ("A") exactly where the phase says, by stepping the fabric by hand
with the block device in manual mode, and checks it got there.  Then the fault fires and
the harness drains: the target must reach quiescence without stalling, destroy the failed
qpair, and give back every WR and buffer - or, for a post failure, recover and complete.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from impl import AsyncEventType, Capsule, Opcode, QpState, ReqState, Status, keyed

from .rig import Rig, assert_pool_whole, assert_released, build

IO_GROUP = 1
BOGUS_KEY = 0x7FFF_0001       # never registered


# The need_wrs phase runs on the smallest data-WR pool the target accepts, uncached.
TIGHT_WRS = {"wr_cache_size": 0, "wr_pool_size": 2 * 16}


def fault_rig(phase: str = "") -> Rig:
    """Tight buffers (so a request can be made to wait for them), short read depth (so
    multi-descriptor writes split), manual block device."""
    extra = TIGHT_WRS if phase == "need_wrs" else {}
    rig = build(max_io_size=32768, io_unit_size=4096, buf_cache_size=0,
                num_shared_buffers=16, max_read_depth=2, io_depth=8, **extra)
    assert rig.t.options.min_buffers == 16
    if extra:
        assert rig.t.options.min_wr_pool == TIGHT_WRS["wr_pool_size"]
    rig.t.set_bdev_auto(False)
    return rig


@dataclass
class Phase:
    """Where IO ``a`` was left; ``expect`` checks the data once it completes normally."""

    a: Capsule
    others: list[int]                  # CIDs of helper IOs also in flight
    expect: Callable[[], None]
    live_requests: int                 # non-free requests on the IO qpair


def step_until(rig: Rig, cid: int, state: int, limit: int = 50) -> None:
    t = rig.t
    for _ in range(limit):
        reqs = {r.cid: r for r in t.requests(rig.io)}
        if cid in reqs and reqs[cid].state == state:
            return
        moved = t.deliver_h2t(rig.io) | t.deliver_t2h(rig.io)
        moved |= t.poll(IO_GROUP) > 0
        assert moved, f"no progress towards state {ReqState(state).name}"
    raise AssertionError(f"cid {cid} never reached {ReqState(state).name}")


def the_request(rig: Rig, cid: int):
    [req] = [r for r in rig.t.requests(rig.io) if r.cid == cid]
    return req


def write_a(rig: Rig) -> tuple[Capsule, Callable[[], None]]:
    data = rig.data(16 * 512)
    cap = rig.write_capsule(0, data, "list", ndesc=5, host_base=0)

    def expect() -> None:
        assert rig.media(0, len(data)) == data
    return cap, expect


def read_a(rig: Rig) -> tuple[Capsule, Callable[[], None]]:
    media = rig.data(16 * 512)
    pre = rig.write_capsule(200, media, "keyed", host_base=700_000)
    rig.t.set_bdev_auto(True)
    rig.run_one(rig.io, pre)
    rig.t.set_bdev_auto(False)
    cap = rig.read_capsule(200, len(media), "list", ndesc=4, host_base=100_000)
    for d in cap.descriptors:
        rig.t.write_memory(rig.key, d.addr, b"\xee" * d.length)

    def expect() -> None:
        got = b"".join(rig.t.read_memory(rig.key, d.addr, d.length) for d in cap.descriptors)
        assert got == media
    return cap, expect


# ---- phases -------------------------------------------------------------------------------


def capsule_on_wire(rig: Rig) -> Phase:
    a, expect = write_a(rig)
    rig.t.submit(rig.io, a)
    assert rig.t.qpair_info(rig.io).wire_h2t == 1
    assert rig.t.requests(rig.io) == []
    return Phase(a, [], expect, 0)


def need_buffer(rig: Rig) -> Phase:
    t = rig.t
    holders = []
    for i in range(2):     # two 32 KiB writes hold all 16 buffers while the device runs
        cap = rig.write_capsule(64 + 64 * i, rig.data(32768), "keyed", host_base=200_000 + 40_000 * i)
        t.submit(rig.io, cap)
        step_until(rig, cap.cid, ReqState.EXECUTING)
        holders.append(cap.cid)
    assert t.buf_pool().held == 16
    a, expect = write_a(rig)
    t.submit(rig.io, a)
    step_until(rig, a.cid, ReqState.NEED_BUFFER)
    for _ in range(3):
        t.poll(IO_GROUP)
    req = the_request(rig, a.cid)
    assert req.state == ReqState.NEED_BUFFER and req.num_bufs == 0 and req.num_wrs == 0
    assert t.group_stats(IO_GROUP).pending_data_buffer == 1
    return Phase(a, holders, expect, 3)


def need_wrs(rig: Rig) -> Phase:
    """Two 16-descriptor writes in the device hold the whole WR pool (buffers to spare)."""
    t = rig.t
    holders = []
    for i in range(2):
        cap = rig.write_capsule(64 + 64 * i, rig.data(16 * 1024), "list", ndesc=16,
                                host_base=200_000 + 150_000 * i)
        t.submit(rig.io, cap)
        step_until(rig, cap.cid, ReqState.EXECUTING, limit=200)
        holders.append(cap.cid)
    assert t.wr_pool().held == t.wr_pool().capacity == 32
    assert t.buf_pool().held == 8
    a, expect = write_a(rig)
    t.submit(rig.io, a)
    step_until(rig, a.cid, ReqState.NEED_BUFFER)
    for _ in range(3):
        t.poll(IO_GROUP)
    req = the_request(rig, a.cid)
    assert req.state == ReqState.NEED_BUFFER and req.num_wrs == 0 and req.num_bufs == 0
    assert t.wr_pool().get_failures > 0
    return Phase(a, holders, expect, 3)


def reads_partial(rig: Rig) -> Phase:
    t = rig.t
    a, expect = write_a(rig)
    t.submit(rig.io, a)
    step_until(rig, a.cid, ReqState.TRANSFER_TO_CTRLR_PENDING)
    assert t.deliver_t2h(rig.io) and t.poll(IO_GROUP) == 1     # one READ done, one more posted
    req = the_request(rig, a.cid)
    assert req.state == ReqState.TRANSFER_TO_CTRLR_PENDING
    assert (req.num_wrs, req.wrs_posted, req.wrs_outstanding) == (5, 3, 2)
    return Phase(a, [], expect, 1)


def executing(rig: Rig) -> Phase:
    a, expect = write_a(rig)
    rig.t.submit(rig.io, a)
    step_until(rig, a.cid, ReqState.EXECUTING)
    assert rig.t.bdev_pending() == 1
    assert the_request(rig, a.cid).num_wrs == 5
    return Phase(a, [], expect, 1)


def c2h_posted(rig: Rig) -> Phase:
    t = rig.t
    a, expect = read_a(rig)
    t.submit(rig.io, a)
    step_until(rig, a.cid, ReqState.EXECUTING)
    assert t.bdev_complete(0)
    req = the_request(rig, a.cid)
    assert req.state == ReqState.TRANSFERRING_C2H and req.wrs_posted == req.num_wrs == 4
    assert t.qpair_info(rig.io).wire_t2h == 5               # 4 WRITEs + the SEND
    return Phase(a, [], expect, 1)


def send_posted(rig: Rig) -> Phase:
    t = rig.t
    a, expect = write_a(rig)
    t.submit(rig.io, a)
    step_until(rig, a.cid, ReqState.EXECUTING)
    assert t.bdev_complete(0)
    assert the_request(rig, a.cid).state == ReqState.COMPLETING
    assert t.qpair_info(rig.io).wire_t2h == 1
    return Phase(a, [], expect, 1)


PHASES = {f.__name__: f for f in (capsule_on_wire, need_buffer, need_wrs, reads_partial,
                                  executing,
                                  c2h_posted, send_posted)}

# ---- faults --------------------------------------------------------------------------------


def bad_key(rig: Rig) -> None:
    """The host's region goes away under the IO, and one more write names a bogus key:
    whichever RDMA touches the host next completes with a remote-access error."""
    rig.t.deregister_memory(rig.key)
    bogus = Capsule.with_data(Opcode.WRITE, rig.cid(), [keyed(0, 512, BOGUS_KEY)],
                              nsid=rig.ns, slba=1000, nlb=0)
    rig.t.submit(rig.io, bogus)


FAULTS: dict[str, Callable[[Rig], None]] = {
    "qpair_error": lambda rig: rig.t.inject_qpair_error(rig.io),
    "port_down": lambda rig: rig.t.port_down(rig.port),
    "host_disconnect": lambda rig: rig.t.host_disconnect(rig.io),
    "disconnect": lambda rig: rig.t.disconnect_qpair(rig.io),
    "bad_key": bad_key,
}


def check_pools_mid_flight(rig: Rig) -> None:
    for p in (rig.t.wr_pool(), rig.t.buf_pool()):
        assert p.duplicates == 0 and p.missing == 0, p
        assert p.ring_free + p.cached + p.held == p.capacity, p


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("phase", list(PHASES))
def test_fault_in_phase_releases_everything(phase: str, fault: str) -> None:
    rig = fault_rig(phase)
    t = rig.t
    PHASES[phase](rig)
    check_pools_mid_flight(rig)
    FAULTS[fault](rig)
    check_pools_mid_flight(rig)

    r = t.drain()
    assert r.quiescent and not r.stalled, r
    assert t.qpair_info(rig.io) is None
    assert rig.io not in t.qpairs()
    if fault == "port_down":
        assert t.qpair_info(rig.admin) is None
        assert (AsyncEventType.PORT_DOWN, rig.port) in [(e.type, e.object)
                                                       for e in t.async_events()]
    else:
        assert t.qpair_info(rig.admin).state == QpState.ACTIVE
    assert_released(t)
    rep = t.destroy()
    cap = t.options.wr_pool_capacity
    assert rep.wr_returned == rep.wr_expected == cap, rep
    assert rep.buf_returned == rep.buf_expected, rep
    assert rep.requests_released == 0 and rep.message == "", rep


@pytest.mark.parametrize("phase", list(PHASES))
def test_transport_destroy_in_phase(phase: str) -> None:
    rig = fault_rig(phase)
    ph = PHASES[phase](rig)
    rep = rig.t.destroy()
    cap = rig.t.options.wr_pool_capacity
    assert rep.wr_returned == rep.wr_expected == cap, rep
    assert rep.buf_returned == rep.buf_expected == 16, rep
    assert rep.requests_released == ph.live_requests, rep
    assert rep.message == "", rep


@pytest.mark.parametrize("phase", PHASES)
def test_post_failures_in_phase_recover_and_complete(phase: str) -> None:
    rig = fault_rig(phase)
    t = rig.t
    ph = PHASES[phase](rig)
    t.fail_posts(rig.io, 3)
    progress = t.progress
    r = t.drain()
    assert r.quiescent and not r.stalled, r
    assert t.progress > progress
    rsps = {x.cid: x.status for x in t.reap(rig.io)}
    assert rsps == {c: Status.SUCCESS for c in [ph.a.cid, *ph.others]}
    ph.expect()
    info = t.qpair_info(rig.io)
    assert info.state == QpState.ACTIVE and info.slots_used == 0
    assert_released(t)
    # the qpair keeps serving: a following IO absorbs any failures left, then completes
    t.set_bdev_auto(True)
    data = rig.data(4096)
    assert rig.write(500, data, "keyed", host_base=900_000).status == Status.SUCCESS
    assert rig.media(500, 4096) == data
    assert_pool_whole(t.wr_pool())
    rep = t.destroy()
    assert rep.wr_returned == rep.wr_expected and rep.message == "", rep


def test_remote_access_error_on_a_read_write_then_drain_releases_everything() -> None:
    rig = fault_rig()
    t = rig.t
    t.set_bdev_auto(True)
    cap = Capsule.with_data(Opcode.READ, rig.cid(), [keyed(0, 4096, BOGUS_KEY)],
                            nsid=rig.ns, slba=0, nlb=7)
    t.submit(rig.io, cap)
    r = t.drain()
    assert r.quiescent and not r.stalled
    assert t.qpair_info(rig.io) is None
    assert_released(t)


def test_failed_rdma_write_stops_the_response_reaching_the_host() -> None:
    rig = fault_rig()
    t = rig.t
    t.set_bdev_auto(True)
    t.write_memory(rig.key, 0, b"\xee" * 4096)
    cap = Capsule.with_data(Opcode.READ, rig.cid(), [keyed(0, 4096, BOGUS_KEY)],
                            nsid=rig.ns, slba=0, nlb=7)
    t.submit(rig.io, cap)
    assert t.deliver_h2t(rig.io) and t.poll(IO_GROUP) == 1
    assert the_request(rig, cap.cid).state == ReqState.TRANSFERRING_C2H
    assert t.qpair_info(rig.io).wire_t2h == 2                   # the WRITE, then the SEND
    while t.deliver_t2h(rig.io):                                # the wire, before any poll
        pass
    rsps = t.reap(rig.io)
    assert all(r.status != Status.SUCCESS for r in rsps), rsps
