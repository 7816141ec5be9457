"""The block device of every target answers ``bdev_complete`` the same way (``nrt.h``): 1
for a block IO it completed, 0 when none was pending.  The harness completes block IO with
``while t.bdev_complete(0)``; a target that said 0 after completing one left the rest for
later rounds, so a probe behind several block IOs looked starved (LIVE-2)."""

from __future__ import annotations

import pytest

from impl import Capsule, Opcode, Status, keyed
from tests.target.rig import build as build_rig

READS = 3


@pytest.fixture(params=("builtin", "v26.05"))
def target(request, spdk_backend, monkeypatch):
    if request.param != "builtin":
        backend = spdk_backend(request.param)
        monkeypatch.setattr("impl.backends.default", lambda: backend)
    return request.param


def test_each_completed_block_io_is_reported_and_an_empty_device_says_none(target):
    rig = build_rig(io_group=0, num_poll_groups=1, io_depth=8)
    t = rig.t
    try:
        t.set_bdev_auto(False)
        cids = []
        for i in range(READS):
            cid = rig.cid()
            t.submit(rig.io, Capsule(Opcode.READ, cid, nsid=rig.ns, slba=8 * i, nlb=7,
                                     sgl=keyed(4096 * i, 4096, rig.key)))
            cids.append(cid)
        for _ in range(10):
            t.deliver_h2t(rig.io)
            t.poll(0)
        assert t.bdev_pending() == READS
        done = 0
        while t.bdev_complete(0):
            done += 1
            assert done <= READS, "bdev_complete kept reporting completions"
        assert done == READS and t.bdev_pending() == 0
        assert t.bdev_complete(0) is False   # nothing pending: none, and no error
        drained = t.drain(100)
        assert drained.quiescent, drained
        assert {r.cid: r.status for r in t.reap(rig.io)} == dict.fromkeys(cids, Status.SUCCESS)
    finally:
        t.destroy()
