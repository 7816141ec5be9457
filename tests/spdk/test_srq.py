"""Shared receive queues: the neutral ``srq`` / ``max_srq_depth`` options, SPDK's rdma.c
running with them on simverbs, and the built-in target's refusal.

rdma.c (``nvmf_rdma_poller_create``) creates one SRQ per poll group and device
(``ibv_create_srq`` with ``max_wr = max_srq_depth``), posts that many receives into it
(``ibv_post_srq_recv``) with one shared request object each, creates every qpair's QP on it
(``qp_init_attr.srq``) and re-posts a receive to it when a request gives its receive back.
These tests show that simverbs serves each of those calls (the SRQs exist as fabric
objects, capsules land in their receives, a host beyond them waits in RNR until one is
re-posted) and that the adapter's introspection walks the shared request objects.
"""

from __future__ import annotations

import pytest

from impl import Capsule, Opcode, Options, OptionsRefused, Status, Transport, backends, keyed
from strategies.configs import srq_modes
from tests.spdk.conftest import TREES
from tests.target.rig import BASE_OPTIONS
from tests.target.rig import build as build_rig


@pytest.fixture
def spdk(spdk_backend, monkeypatch):
    """The SPDK target of v26.05 as the default backend (what ``tests.target.rig`` builds)."""
    backend = spdk_backend("v26.05")
    monkeypatch.setattr("impl.backends.default", lambda: backend)
    return backend


def _rig(**opts):
    return build_rig(io_group=0, **{"num_poll_groups": 2, **opts})


# ------------------------------------------------------------------ the built-in target

def test_the_builtin_target_refuses_srq_with_its_reason():
    opts = Options(**BASE_OPTIONS, srq=1, max_srq_depth=16)
    assert "no shared receive queue mode" in (opts.refusal() or "")
    with pytest.raises(OptionsRefused, match="receive WRs and request slots are per qpair"):
        Transport(opts)
    # fitting moves it to what the target honours: no SRQ, no SRQ depth
    fitted = opts.fitted(backends.builtin())
    assert (fitted.srq, fitted.max_srq_depth) == (0, 0)
    assert not opts.takes_srq(backends.builtin())


def test_the_gate_draws_srq_only_for_a_target_that_takes_it():
    from hypothesis import find, given, settings

    never = srq_modes("ci", takes_srq=lambda: False)
    seen: set[tuple[int, int]] = set()

    @settings(max_examples=60, database=None)
    @given(never)
    def draw_never(mode):
        seen.add(mode)

    draw_never()
    assert seen == {(0, 0)}
    taken = srq_modes("ci", takes_srq=lambda: True)
    mode = find(taken, lambda m: m[0] == 1, settings=settings(database=None))
    assert mode[1] >= 2


# ------------------------------------------------------------------------ SPDK's rdma.c

def test_spdk_takes_srq_and_keeps_its_depth(spdk):
    opts = Options(**BASE_OPTIONS, srq=1, max_srq_depth=24)
    assert opts.takes_srq(spdk)
    assert opts.fitted(spdk).max_srq_depth == 24
    # a depth without an SRQ means nothing: fitted away, refused as asked
    stray = Options(**BASE_OPTIONS, max_srq_depth=24)
    assert stray.fitted(spdk).max_srq_depth == 0
    with pytest.raises(OptionsRefused, match="without srq"):
        Transport(stray, backend=spdk)


@pytest.mark.parametrize("name", (TREES[0], "v26.05"))
def test_spdk_creates_an_srq_per_poll_group_and_carries_io_on_it(name, spdk_backend,
                                                                 monkeypatch):
    backend = spdk_backend(name)
    monkeypatch.setattr("impl.backends.default", lambda: backend)
    live = {}
    for srq in (0, 1):
        rig = _rig(srq=srq, max_srq_depth=8 * srq)
        try:
            desc = rig.t.describe()
            assert ("SHARED_RECEIVES" in desc.caps) == bool(srq)
            live[srq] = rig.t.fabric_stats().live_objects
            data = rig.data(16384)
            assert rig.write(8, data, layout="list").status == Status.SUCCESS
            rsp, got = rig.read(8, len(data), layout="list")
            assert rsp.status == Status.SUCCESS and got == data
        finally:
            rep = rig.t.destroy()
        assert rep.wr_returned == rep.wr_expected and rep.message == "", rep
    # ibv_create_srq served once per poll group (2), each an object on the fabric
    assert live[1] - live[0] == 2, live


def test_capsules_beyond_the_srq_wait_in_rnr_and_are_all_answered(spdk):
    """Two receives for the poll group, eight capsules at once: six host SENDs find no
    receive (RNR) until rdma.c re-posts one to the SRQ; every capsule is answered."""
    rnr = {}
    for srq in (0, 1):
        rig = _rig(srq=srq, max_srq_depth=2 * srq)
        try:
            cids = [rig.cid() for _ in range(8)]
            for cid in cids:
                rig.t.submit(rig.io, Capsule(Opcode.FLUSH, cid, nsid=rig.ns))
            drained = rig.t.drain(500)
            assert drained.quiescent and not drained.stalled, drained
            got = {r.cid: r.status for r in rig.t.reap(rig.io)}
            assert got == {cid: Status.SUCCESS for cid in cids}
            rnr[srq] = rig.t.fabric_stats().rnr_waits
        finally:
            rig.t.destroy()
    assert rnr[0] == 0 and rnr[1] > 0, rnr


def test_requests_on_shared_objects_are_seen_beyond_the_qpair_depth(spdk):
    """With an SRQ a qpair's requests are among the SRQ's request objects, wherever the
    shared free list puts them: two depth-2 IO qpairs on one poll group each hold two
    reads, so one of them holds objects past the first two, and both show their own two
    (the adapter walks the SRQ's depth, as rdma.c does at qpair destroy)."""
    from impl import connect_capsule

    rig = _rig(srq=1, max_srq_depth=16, io_depth=2)
    try:
        second = rig.t.create_qpair(rig.port, 0, 2, qid=2)
        rsp = rig.run_one(second, connect_capsule(rig.cid(), rig.sub, qid=2, cntlid=rig.cntlid,
                                                  sqsize=1))
        assert rsp.status == Status.SUCCESS
        rig.t.set_bdev_auto(False)
        for qp in (second, rig.io):
            for _ in range(2):
                cid = rig.cid()
                rig.t.submit(qp, Capsule(Opcode.READ, cid, nsid=rig.ns, slba=0, nlb=0,
                                         sgl=keyed(cid * 512, 512, rig.key)))
            for _ in range(4):   # the capsules into receives, the group polled; IO pending
                rig.t.deliver_h2t(qp)
                rig.t.poll(0)
        assert rig.t.bdev_pending() == 4
        slots = set()
        for qp in (second, rig.io):
            reqs = rig.t.requests(qp)
            assert len(reqs) == 2, reqs
            slots |= {r.slot for r in reqs}
            info = rig.t.qpair_info(qp)
            assert info is not None and info.slots_used == 2 and info.slots_free == 0
        assert len(slots) == 4 and max(slots) >= 2, slots
        rig.t.set_bdev_auto(True)
        rig.t.drain(50)
        for qp in (second, rig.io):
            assert [r.status for r in rig.t.reap(qp)] == [Status.SUCCESS] * 2
    finally:
        rig.t.destroy()


def test_a_failed_qpair_on_an_srq_is_destroyed_and_leaves_the_fabric(spdk):
    """rdma.c destroys a qpair on an SRQ only once its QP reported its last WQE
    (IBV_EVENT_QP_LAST_WQE_REACHED), which simverbs sends when such a QP enters the error
    state: after a QP error the qpair goes, and so does its QP."""
    rig = _rig(srq=1, max_srq_depth=8)
    try:
        rig.t.inject_qpair_error(rig.io)
        drained = rig.t.drain(200)
        assert drained.quiescent, drained
        info = rig.t.conn_info(rig.io)
        assert rig.t.qpair_info(rig.io) is None, info
        assert info.target_qp_state == 0, info   # the target's QP is gone from the fabric
    finally:
        rig.t.destroy()


def _desc(*caps: str):
    from impl.target import TargetDescription

    return TargetDescription("t", "1", frozenset(caps), 1, 0, ("FREE",), {}, frozenset())


def test_per_qpair_receive_parts_are_not_judged_with_shared_receives():
    from conformance import judging

    per_qpair = _desc("RECEIVES", "REQUESTS", "BUF_POOL", "WR_HELD", "DESTROY_REPORT")
    shared = _desc("RECEIVES", "REQUESTS", "BUF_POOL", "WR_HELD", "DESTROY_REPORT",
                   "SHARED_RECEIVES")
    assert judging.Scope(per_qpair)("POOL-3", "slots")
    assert judging.Scope(per_qpair)("ERR-1", "released")
    can = judging.Scope(shared)
    assert not can("POOL-3", "slots") and not can("POOL-3", "states")
    assert not can("ERR-1", "released")
    assert can("POOL-3", "buffers")   # the other parts keep their judging
    mode, why = judging.how_judged("POOL-3", shared)
    assert mode == judging.WHITE_BOX
    assert "not judged in this mode" in why and "shared receive queues" in why
    assert "request slots and receive WRs conserved per qpair" in why
    # without the capabilities the reason is still the mode's, not a missing capability
    mode, why = judging.how_judged("ERR-1", _desc("SHARED_RECEIVES"))
    assert mode == judging.BLACK_BOX and "not judged in this mode" in why
    assert "its request slot and receive are released (needs" not in why


def test_both_modes_of_a_target_are_recorded():
    from conformance import judging

    heard: list = []
    judging.reset()
    judging.JUDGED_HOOKS.append(heard.append)
    try:
        judging.record(("POOL-3",), _desc("RECEIVES"))
        judging.record(("POOL-3",), _desc("RECEIVES", "SHARED_RECEIVES"))
        judging.record(("POOL-3",), _desc("RECEIVES"))   # nothing new: not heard again
        assert len(heard) == 2 and heard[0].why != heard[1].why
    finally:
        judging.JUDGED_HOOKS.remove(heard.append)
        judging.reset()


def test_nrt_srq_forces_the_mode_and_refuses_nonsense(monkeypatch):
    from hypothesis import given, settings

    from strategies.configs import srq_choice

    def modes_drawn() -> set[int]:
        seen: set[int] = set()

        @settings(max_examples=30, database=None)
        @given(srq_modes("ci", takes_srq=lambda: True))
        def draw(mode):
            seen.add(mode[0])

        draw()
        return seen

    for value, want in (("on", {1}), ("off", {0})):
        monkeypatch.setenv("NRT_SRQ", value)
        assert modes_drawn() == want, value
    monkeypatch.setenv("NRT_SRQ", "sometimes")
    with pytest.raises(ValueError, match="choose on, off"):
        srq_choice()
