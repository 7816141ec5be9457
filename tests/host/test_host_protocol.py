"""The host's protocol layer (capsules, CQE parsing, CIDs, time bounds, state) against a
fake binding: no verbs library involved."""

from __future__ import annotations

import pytest

from impl import wire as W
from impl.host import CommandTimeout, ConnectRejected, Controller, QueueFailed
from impl.host.queue import cm_private_data
from tests.host.fake_verbs import FakeFabric, FakeVerbs


def controller(**quirks: bool) -> tuple[Controller, FakeFabric]:
    fabric = FakeFabric(quirks=frozenset(k for k, v in quirks.items() if v))
    c = Controller(FakeVerbs(fabric), "192.0.2.10", 4420, fabric.subnqn, timeout=0.2)
    return c.connect(), fabric


def test_cm_private_data_is_the_nvme_rdma_request() -> None:
    p = W.CmRequestPrivateData.decode(cm_private_data(3, 32))
    assert (p.recfmt, p.qid, p.hrqsize, p.hsqsize, p.cntlid) == (0, 3, 32, 31, 0xFFFF)


def test_bring_up_connects_enables_and_identifies() -> None:
    c, fabric = controller()
    assert c.cntlid == 1 and fabric.connects == 2   # admin + one I/O queue
    assert c.info is not None and c.info.in_capsule_data_size == 8192
    assert c.info.msdbd == 16 and c.info.subnqn == fabric.subnqn
    assert c.mqes == 127
    assert fabric.controllers[1]["cc"] & 1
    ns = c.namespace(1)
    assert (ns.num_blocks, ns.block_size) == (256, 512)
    assert c.admin is not None and c.admin.crqsize == 32


@pytest.mark.parametrize(("layout", "pieces"), [("keyed", 1), ("keyed_list", 3),
                                                ("in_capsule", 1)])
def test_write_then_read_round_trips_through_each_layout(layout: str, pieces: int) -> None:
    c, _ = controller()
    data = bytes(range(256)) * 8   # 4 blocks
    io = c.start_io(1, "write", 1, 8, 4, layout=layout, pieces=pieces, data=data)
    rsp, _ = c.finish_io(io)
    assert rsp.ok and rsp.cqe.sqid == 1
    for read_layout, n in (("keyed", 1), ("keyed_list", 4)):
        rsp, got = c.finish_io(c.start_io(1, "read", 1, 8, 4, layout=read_layout, pieces=n))
        assert rsp.ok and got == data


def test_keyed_list_places_pieces_in_reverse_so_sge_order_matters() -> None:
    c, _ = controller()
    io = c.start_io(1, "read", 1, 0, 2, layout="keyed_list", pieces=2)
    (o0, _n0), (o1, _n1) = io.pieces
    assert o0 > o1
    c.finish_io(io)


def test_many_in_flight_complete_and_free_their_cids() -> None:
    c, _ = controller()
    q = c.io[1]
    ios = [c.start_io(1, "write", 1, i, 1, data=bytes([i]) * 512) for i in range(q.limit)]
    assert len(q.outstanding) == q.limit == 31
    for io in ios:
        assert c.finish_io(io)[0].ok
    assert not q.outstanding and q.completed == q.submitted


def test_a_response_with_a_cid_not_outstanding_is_recorded_and_the_command_times_out() -> None:
    c, _ = controller(wrong_cid=True)
    io = c.start_io(1, "flush", 1, 0, 0)
    with pytest.raises(CommandTimeout) as exc:
        c.finish_io(io)
    assert exc.value.cids == (io.cid,)
    assert [cqe.cid for cqe in c.io[1].anomalies.unknown_cid] == [io.cid + 1]


def test_duplicate_responses_are_recorded() -> None:
    c, _ = controller(duplicate=True)
    rsp, _ = c.finish_io(c.start_io(1, "flush", 1, 0, 0))
    assert rsp.ok
    c.io[1].poll()
    assert [cqe.cid for cqe in c.io[1].anomalies.unknown_cid] == [rsp.cid]


def test_wrong_sqid_is_recorded() -> None:
    c, _ = controller(wrong_sqid=True)
    c.finish_io(c.start_io(1, "flush", 1, 0, 0))
    assert c.io[1].anomalies.wrong_sqid


def test_a_silent_target_trips_the_time_bound() -> None:
    c, _ = controller(silent=True)
    io = c.start_io(1, "write", 1, 0, 1, data=bytes(512))
    with pytest.raises(CommandTimeout, match="no response within"):
        c.finish_io(io)


def test_bad_rkey_fails_the_queue_with_the_commands_it_left_unanswered() -> None:
    c, _ = controller()
    io = c.start_io(1, "write", 1, 0, 1, data=bytes(512), rkey=0xDEAD)
    with pytest.raises(QueueFailed) as exc:
        c.finish_io(io)
    assert exc.value.cids == (io.cid,)
    with pytest.raises(QueueFailed):
        c.start_io(1, "flush", 1, 0, 0)


def test_host_qp_to_error_fails_the_queue() -> None:
    c, _ = controller()
    q = c.io[1]
    assert q.conn is not None
    q.conn.qp_to_error()
    q.poll()
    assert q.failed and "WR_FLUSH_ERR" in q.failed


def test_rejected_connect_carries_the_reject_private_data() -> None:
    fabric = FakeFabric(quirks=frozenset({"reject"}))
    c = Controller(FakeVerbs(fabric), "192.0.2.10", 4420, fabric.subnqn)
    with pytest.raises(ConnectRejected) as exc:
        c.connect()
    assert W.CmRejectPrivateData.decode(exc.value.private_data).sts == 6


def test_wrong_subnqn_gets_connect_invalid_parameters() -> None:
    fabric = FakeFabric()
    c = Controller(FakeVerbs(fabric), "192.0.2.10", 4420, "nqn.2016-06.io.nrt:other")
    with pytest.raises(Exception, match="CONNECT_INVALID_PARAMETERS"):
        c.connect()


def test_shutdown_reaches_shst_complete_and_reconnect_gets_a_new_controller() -> None:
    c, fabric = controller()
    c.shutdown()
    c.disconnect()
    c2 = Controller(FakeVerbs(fabric), "192.0.2.10", 4420, fabric.subnqn).connect()
    assert c2.cntlid == 2


def test_queue_limit_is_sqsize_and_refuses_more() -> None:
    c, _ = controller()
    q = c.io[1]
    for _ in range(q.limit):
        q.submit(W.Capsule.io(W.OPC_FLUSH, 0, 1, 0, 0), *q.reserve())
    with pytest.raises(Exception, match="the limit is 31"):
        q.reserve()
