"""SHUT-1 / POOL-2: the destroy report after clean and abrupt shutdowns, IO in every state."""

from __future__ import annotations

import random

import pytest

from impl import Capsule, Opcode, QpState, ReqState, Status, connect_capsule

from .rig import Rig, assert_clean_destroy, assert_released, build


def test_clean_shutdown_after_io(rig: Rig) -> None:
    t = rig.t
    for i in range(6):
        assert rig.write(i * 40, rig.data(16 * 512), "list", ndesc=3 + i).status == 0
    t.disconnect_qpair(rig.io)
    t.disconnect_qpair(rig.admin)
    rig.settle()
    assert t.qpairs() == []
    assert_released(t)
    rep = t.destroy()
    assert rep.wr_expected == rep.wr_returned == t.options.wr_pool_capacity
    assert rep.buf_expected == rep.buf_returned == t.options.num_shared_buffers
    assert rep.requests_released == 0 and rep.message == ""


def test_destroy_with_live_idle_qpairs(rig: Rig) -> None:
    assert rig.write(0, rig.data(4096), "keyed").status == 0
    rep = rig.t.destroy()
    assert rep.wr_returned == rep.wr_expected and rep.requests_released == 0
    assert rep.message == ""
    assert not rig.t.alive


def test_destroy_with_qpairs_in_error_not_yet_drained(rig: Rig) -> None:
    t = rig.t
    t.set_bdev_auto(False)
    for i in range(4):
        t.submit(rig.io, rig.write_capsule(i * 64, rig.data(8192), "list", ndesc=4,
                                           host_base=i * 100_000))
    for _ in range(6):
        t.deliver_h2t(rig.io)
        t.deliver_t2h(rig.io)
        t.poll(1)
    flushed = t.fabric_stats().flushed
    t.inject_qpair_error(rig.io)
    info = t.qpair_info(rig.io)
    assert info.state == QpState.ERROR
    # flushes not yet reaped: a verbs program cannot look into its CQ (cq_entries is 0),
    # so count what is posted and not reaped, and what the fabric flushed
    assert info.signaled_outstanding > 0 and info.recv_posted > 0
    assert t.fabric_stats().flushed - flushed >= info.signaled_outstanding + info.recv_posted
    rep = t.destroy()
    assert rep.wr_returned == rep.wr_expected, rep
    assert rep.buf_returned == rep.buf_expected, rep
    assert rep.requests_released >= 1 and rep.message == ""


class Churn:
    """A seeded mixed workload on two IO qpairs in two groups plus the admin qpair,
    stepped one fabric event at a time, so stopping after k steps leaves IO in whatever
    state step k left it."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.rig = build(max_io_size=32768, buf_cache_size=2, num_shared_buffers=20,
                         max_read_depth=2, io_depth=6, wr_cache_size=2)
        rig = self.rig
        t = rig.t
        t.set_bdev_auto(False)
        self.io2 = t.create_qpair(rig.port, 0, 6)
        rsp = rig.run_one(self.io2, connect_capsule(rig.cid(), rig.sub, qid=2,
                                                    cntlid=rig.cntlid, sqsize=5))
        assert rsp.status == Status.SUCCESS
        self.qps = [rig.io, self.io2]
        self.outstanding = {qp: 0 for qp in self.qps}

    def submit_some(self) -> None:
        rig, t = self.rig, self.rig.t
        for qp in self.qps:
            while self.outstanding[qp] < 6:
                kind = self.rng.randrange(4)
                slba = self.rng.randrange(0, 1900)
                n = self.rng.choice([1, 3, 8, 24, 64]) * 512
                if kind == 0:
                    cap = rig.write_capsule(slba, rig.data(n), "list",
                                            ndesc=self.rng.randrange(2, 9),
                                            host_base=self.rng.randrange(0, 500_000))
                elif kind == 1:
                    cap = rig.read_capsule(slba, n, "list", ndesc=self.rng.randrange(2, 9),
                                           host_base=self.rng.randrange(0, 500_000))
                elif kind == 2:
                    cap = rig.read_capsule(slba, n, "keyed",
                                           host_base=self.rng.randrange(0, 900_000))
                else:
                    cap = Capsule(Opcode.FLUSH, rig.cid(), nsid=rig.ns)
                t.submit(qp, cap)
                self.outstanding[qp] += 1

    def step(self) -> None:
        t = self.rig.t
        qp = self.rng.choice(self.qps)
        r = self.rng.randrange(10)
        if r < 3:
            t.deliver_h2t(qp)
        elif r < 6:
            t.deliver_t2h(qp)
        elif r < 8:
            t.poll(self.rng.randrange(2))
        elif r < 9:
            t.bdev_complete(self.rng.randrange(8))
        else:
            if self.rng.randrange(4) == 0:
                t.fail_posts(qp, 2)
            self.outstanding[qp] -= len(t.reap(qp))
            self.submit_some()

    def live_states(self) -> set[int]:
        return {r.state for qp in self.qps for r in self.rig.t.requests(qp)}


STOPS = range(0, 240, 3)


def test_abrupt_destroy_with_io_in_every_state() -> None:
    seen: set[int] = set()
    released = 0
    for seed in range(2):
        for stop in STOPS:
            churn = Churn(seed)
            churn.submit_some()
            for _ in range(stop):
                churn.step()
            wr, buf = churn.rig.t.wr_pool(), churn.rig.t.buf_pool()
            assert wr.duplicates == wr.missing == 0 and buf.duplicates == buf.missing == 0
            assert wr.ring_free + wr.cached + wr.held == wr.capacity
            states = churn.live_states()
            seen |= states
            rep = churn.rig.t.destroy()
            assert rep.wr_returned == rep.wr_expected == churn.rig.t.options.wr_pool_capacity, (
                seed, stop, rep)
            assert rep.buf_returned == rep.buf_expected, (seed, stop, rep)
            assert rep.message == "", (seed, stop, rep)
            released += rep.requests_released
    interesting = {ReqState.NEED_BUFFER, ReqState.TRANSFER_TO_CTRLR_PENDING,
                   ReqState.TRANSFERRING_H2C, ReqState.EXECUTING,
                   ReqState.TRANSFER_TO_HOST_PENDING, ReqState.READY_TO_COMPLETE,
                   ReqState.TRANSFERRING_C2H, ReqState.COMPLETING}
    assert interesting <= seen, sorted(ReqState(s).name for s in interesting - seen)
    assert released > 0


@pytest.mark.parametrize("stop", [40, 120, 200])
def test_churn_then_drain_releases_everything(stop: int) -> None:
    """The same churn, then liveness mode instead of destroy: everything completes."""
    churn = Churn(7)
    churn.submit_some()
    for _ in range(stop):
        churn.step()
    t = churn.rig.t
    for qp in churn.qps:
        t.fail_posts(qp, 0)
    r = t.drain()
    assert r.quiescent and not r.stalled, r
    for qp in churn.qps:
        churn.outstanding[qp] -= len(t.reap(qp))
        assert churn.outstanding[qp] == 0
        info = t.qpair_info(qp)
        assert info.state == QpState.ACTIVE and info.slots_used == 0
    assert_released(t)
    assert_clean_destroy(t)
