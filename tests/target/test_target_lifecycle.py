"""Lifecycle paths through the target: connect, admin commands, properties, NVM IO."""

from __future__ import annotations

import struct

import pytest

from impl import (
    Capsule,
    FabricsType,
    Opcode,
    QpState,
    ReqState,
    Status,
    Transport,
    connect_capsule,
    enable_capsule,
    keyed,
)
from impl.target import CC_ENABLE, SUBSYSTEM_NQN

from .rig import LAYOUTS, Rig, assert_clean_destroy, assert_released, build

CC, CSTS, CAP, VS = 0x14, 0x1C, 0x00, 0x08


def prop_get(rig: Rig, offset: int) -> tuple[int, int]:
    cap = Capsule(Opcode.FABRICS, rig.cid(), fctype=FabricsType.PROPERTY_GET, cdw10=offset)
    rsp = rig.run_one(rig.admin, cap)
    return rsp.status, rsp.result


def prop_set(rig: Rig, offset: int, value: int) -> int:
    cap = Capsule(Opcode.FABRICS, rig.cid(), fctype=FabricsType.PROPERTY_SET, cdw10=offset,
                  value=value)
    return rig.run_one(rig.admin, cap).status


def test_connect_admin_then_io_returns_cntlid() -> None:
    with Transport(num_poll_groups=2, max_queue_depth=8, max_io_size=32768,
                   io_unit_size=4096, num_shared_buffers=200) as t:
        port, sub = t.add_port(), t.add_subsystem()
        aq = t.create_qpair(port, 0, 4)
        iq = t.create_qpair(port, 1, 8)
        assert t.qpair_info(aq).state == QpState.CONNECTING
        t.submit(aq, connect_capsule(7, sub, qid=0, sqsize=3))
        assert t.drain().quiescent
        [rsp] = t.reap(aq)
        assert (rsp.cid, rsp.status) == (7, Status.SUCCESS)
        cntlid = rsp.result
        assert cntlid >= 1
        info = t.qpair_info(aq)
        assert (info.state, info.qid, info.cntlid) == (QpState.ACTIVE, 0, cntlid)

        # I/O queues exist only on an enabled controller (NVMe Base 2.0 3.5.1; NVMe-oF 1.1
        # 3.5): before Property Set CC.EN = 1 an I/O Connect is a Command Sequence Error
        # and the queue stays unconnected
        t.submit(iq, connect_capsule(8, sub, qid=1, cntlid=cntlid, sqsize=7))
        assert t.drain().quiescent
        [rsp] = t.reap(iq)
        assert (rsp.cid, rsp.status) == (8, Status.COMMAND_SEQUENCE_ERROR)
        assert t.qpair_info(iq).state == QpState.CONNECTING
        t.submit(aq, enable_capsule(10))
        assert t.drain().quiescent
        assert [(r.cid, r.status) for r in t.reap(aq)] == [(10, Status.SUCCESS)]

        t.submit(iq, connect_capsule(11, sub, qid=1, cntlid=cntlid, sqsize=7))
        assert t.drain().quiescent
        [rsp] = t.reap(iq)
        assert (rsp.cid, rsp.status, rsp.result) == (11, Status.SUCCESS, cntlid)
        info = t.qpair_info(iq)
        assert (info.state, info.qid, info.cntlid, info.group) == (QpState.ACTIVE, 1, cntlid, 1)

        # a second admin connect makes a second controller
        aq2 = t.create_qpair(port, 0, 4)
        t.submit(aq2, connect_capsule(9, sub, qid=0, sqsize=3))
        t.drain()
        [rsp] = t.reap(aq2)
        assert rsp.status == Status.SUCCESS and rsp.result not in (0, cntlid)


@pytest.mark.parametrize("capsule", [
    Capsule(Opcode.READ, 5, nsid=1, nlb=0, sgl=keyed(0, 512, 1)),
    Capsule(Opcode.KEEP_ALIVE, 5),
    Capsule(Opcode.FABRICS, 5, fctype=FabricsType.PROPERTY_GET, cdw10=0),
], ids=["read", "keep_alive", "property_get"])
def test_command_before_connect_is_a_sequence_error(capsule: Capsule) -> None:
    with Transport(num_poll_groups=1, max_queue_depth=8, max_io_size=32768,
                   io_unit_size=4096, num_shared_buffers=200) as t:
        port, sub = t.add_port(), t.add_subsystem()
        t.add_namespace(sub, 512, 64)
        qp = t.create_qpair(port, 0, 4)
        t.submit(qp, capsule)
        assert t.drain().quiescent
        [rsp] = t.reap(qp)
        assert (rsp.cid, rsp.status) == (5, Status.COMMAND_SEQUENCE_ERROR)
        assert t.qpair_info(qp).state == QpState.CONNECTING
        assert t.qpair_info(qp).slots_used == 0
        # and the qpair can still connect afterwards
        t.submit(qp, connect_capsule(6, sub, qid=0, sqsize=3))
        t.drain()
        [rsp] = t.reap(qp)
        assert rsp.status == Status.SUCCESS
        assert t.qpair_info(qp).state == QpState.ACTIVE
        assert_clean_destroy(t)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_write_then_read_through_each_layout(rig: Rig, layout: str) -> None:
    length = 4096 if layout == "in_capsule" else 24 * 512   # 12 KiB: three io units
    data = rig.data(length)
    rsp = rig.write(10, data, layout, ndesc=5)
    assert rsp.status == Status.SUCCESS
    assert rig.media(10, length) == data
    assert rig.media(9, 512) == bytes(512)                   # neighbours untouched
    assert rig.media(10 + length // 512, 512) == bytes(512)
    read_layout = "keyed" if layout == "in_capsule" else layout
    rsp, back = rig.read(10, length, read_layout, ndesc=7, host_base=300_000)
    assert rsp.status == Status.SUCCESS
    assert back == data
    assert_released(rig.t)


@pytest.mark.parametrize("ndesc", [2, 3, 5, 9, 16])
def test_uneven_lists_cross_io_unit_boundaries(rig: Rig, ndesc: int) -> None:
    length = 40 * 512   # 20 KiB over 4 KiB io units
    data = rig.data(length)
    assert rig.write(0, data, "list", ndesc=ndesc).status == Status.SUCCESS
    assert rig.media(0, length) == data
    rsp, back = rig.read(0, length, "list", ndesc=17 - ndesc, host_base=400_000)
    assert rsp.status == Status.SUCCESS and back == data
    assert_released(rig.t)


def test_write_request_holds_one_wr_per_descriptor(rig: Rig) -> None:
    """With max_sge 16 and small descriptors, each keyed descriptor is one RDMA READ."""
    t = rig.t
    t.set_bdev_auto(False)
    cap = rig.write_capsule(0, rig.data(8192), "list", ndesc=6)
    t.submit(rig.io, cap)
    t.deliver_h2t(rig.io)
    t.poll(1)
    [req] = t.requests(rig.io)
    assert req.cid == cap.cid and req.length == 8192
    assert req.num_wrs == 6 and req.num_bufs == 2
    assert req.state == ReqState.TRANSFERRING_H2C and req.wrs_outstanding == 6
    assert t.qpair_info(rig.io).wire_t2h == 6
    rig.settle()
    [rsp] = t.reap(rig.io)
    assert rsp.status == Status.SUCCESS


def test_flush(rig: Rig) -> None:
    rsp = rig.run_one(rig.io, Capsule(Opcode.FLUSH, rig.cid(), nsid=rig.ns))
    assert rsp.status == Status.SUCCESS
    assert_released(rig.t)


def check_identify_controller(rig: Rig, page: bytes) -> None:
    """The Identify Controller data structure (NVMe Base 2.0 5.17.2.1; fabrics fields
    NVMe-oF 1.1 4.4) the controller emulation returns for this rig."""
    opts = rig.t.options
    # VID / SSVID: PCI vendor IDs; a fabrics controller has no PCI function: 0 (ctrlr.c)
    assert page[0:4] == bytes(4)
    assert page[24:64] == b"nvmf-emu RAM controller".ljust(40)      # MN, space padded
    assert struct.unpack_from("<H", page, 78)[0] == rig.cntlid        # CNTLID
    assert page[77] == 4                                              # MDTS: 64K / 4K = 2^4
    assert struct.unpack_from("<I", page, 80)[0] == 0x10400           # VER, as VS reads
    assert (page[512], page[513]) == (0x66, 0x44)                     # SQES, CQES
    # NN: the largest valid NSID (NVMe Base 2.0 3.2.1), the namespace table's size
    assert struct.unpack_from("<I", page, 516)[0] == opts.max_namespaces
    subnqn = SUBSYSTEM_NQN.format(rig.sub).encode()
    assert page[768:768 + 256] == subnqn.ljust(256, b"\0")            # SUBNQN
    # IOCCSZ in 16-byte units (SQE + in-capsule data), IORCSZ 1 (a CQE), MSDBD
    assert struct.unpack_from("<II", page, 1792) == ((64 + opts.in_capsule_data_size) // 16,
                                                     1)
    assert page[1803] == opts.max_sgl_descriptors
    assert page[4000:4096] == bytes(96)                               # the rest zeroed


def test_identify_controller(rig: Rig) -> None:
    rig.t.write_memory(rig.key, 0, b"\xff" * 4096)
    cap = Capsule(Opcode.IDENTIFY, rig.cid(), cdw10=1, sgl=keyed(0, 4096, rig.key))
    rsp = rig.run_one(rig.admin, cap)
    assert rsp.status == Status.SUCCESS
    check_identify_controller(rig, rig.t.read_memory(rig.key, 0, 4096))


@pytest.mark.parametrize("block_size,num_blocks", [(512, 2048), (4096, 300)])
def test_identify_namespace_reports_nsze(block_size: int, num_blocks: int) -> None:
    rig = build(block_size=block_size, num_blocks=num_blocks)
    try:
        rig.t.write_memory(rig.key, 8192, b"\xff" * 4096)
        cap = Capsule(Opcode.IDENTIFY, rig.cid(), cdw10=0, nsid=rig.ns,
                      sgl=keyed(8192, 4096, rig.key))
        assert rig.run_one(rig.admin, cap).status == Status.SUCCESS
        page = rig.t.read_memory(rig.key, 8192, 4096)
        nsze, ncap, nuse = struct.unpack_from("<QQQ", page, 0)
        assert nsze == ncap == nuse == num_blocks
        assert page[130] == {512: 9, 4096: 12}[block_size]
    finally:
        rig.t.destroy()


def test_identify_shorter_than_a_page_is_refused_and_writes_nothing(rig: Rig) -> None:
    # The data structure is 4096 bytes: a shorter buffer is Data SGL Length Invalid (NVMe
    # Base 2.0 4.6.1.2), as the emulation chose (ctrlr.c admin_identify), and no byte of the
    # host buffer is written.
    rig.t.write_memory(rig.key, 0, b"\xab" * 1024)
    cap = Capsule(Opcode.IDENTIFY, rig.cid(), cdw10=1, sgl=keyed(0, 512, rig.key))
    assert rig.run_one(rig.admin, cap).status == Status.DATA_SGL_LENGTH_INVALID
    assert rig.t.read_memory(rig.key, 0, 1024) == b"\xab" * 1024
    assert_released(rig.t)


def test_identify_longer_than_a_page_fills_only_the_page() -> None:
    # A longer buffer is accepted and gets the 4096 bytes of the data structure (Data SGL
    # Length Invalid "may" be returned for a too long SGL, NVMe Base 2.0 4.6.1.2; the
    # emulation accepts it, ctrlr.c).  The bytes past the page are left alone or zeroed
    # (the transport writes the whole SGL): never stale data of an earlier request.
    rig = build(admin_group=1, io_group=1)   # one group: the admin and IO share buffers
    t = rig.t
    # leave the target's data buffers dirty: a read of non-zero media through them first
    assert rig.write(0, b"\x5a" * 8192, "keyed", host_base=100_000).status == Status.SUCCESS
    rsp, back = rig.read(0, 8192, "keyed", host_base=200_000)
    assert rsp.status == Status.SUCCESS and back == b"\x5a" * 8192
    t.write_memory(rig.key, 0, b"\xab" * 8192)
    cap = Capsule(Opcode.IDENTIFY, rig.cid(), cdw10=1, sgl=keyed(0, 8192, rig.key))
    assert rig.run_one(rig.admin, cap).status == Status.SUCCESS
    got = t.read_memory(rig.key, 0, 8192)
    check_identify_controller(rig, got[:4096])
    assert got[4096:] in (b"\xab" * 4096, bytes(4096)), got[4096:4160].hex()
    assert_released(t)
    t.destroy()


def test_identify_inactive_namespace_is_zero_filled(rig: Rig) -> None:
    # CNS 00h for an NSID up to NN that is not active: success with a zero-filled data
    # structure (NVMe Base 2.0 5.17, CNS 00h).  The rig's namespace is NSID 1 of 4.
    inactive = rig.t.options.max_namespaces
    assert inactive != rig.ns
    rig.t.write_memory(rig.key, 0, b"\xff" * 4096)
    cap = Capsule(Opcode.IDENTIFY, rig.cid(), cdw10=0, nsid=inactive,
                  sgl=keyed(0, 4096, rig.key))
    assert rig.run_one(rig.admin, cap).status == Status.SUCCESS
    assert rig.t.read_memory(rig.key, 0, 4096) == bytes(4096)


def test_identify_active_namespace_list(rig: Rig) -> None:
    # CNS 02h: the active NSIDs greater than the command's NSID in increasing order, zero
    # filled after (NVMe Base 2.0 5.17, CNS 02h).
    t = rig.t
    second = t.add_namespace(rig.sub, 512, 64)
    assert second == rig.ns + 1
    for nsid, want in ((0, [rig.ns, second]), (rig.ns, [second]), (second, [])):
        t.write_memory(rig.key, 0, b"\xff" * 4096)
        cap = Capsule(Opcode.IDENTIFY, rig.cid(), cdw10=2, nsid=nsid,
                      sgl=keyed(0, 4096, rig.key))
        assert rig.run_one(rig.admin, cap).status == Status.SUCCESS
        page = t.read_memory(rig.key, 0, 4096)
        n = len(want)
        assert list(struct.unpack_from(f"<{n}I", page)) == want
        assert page[4 * n:] == bytes(4096 - 4 * n)


def test_keep_alive_and_abort(rig: Rig) -> None:
    rsp = rig.run_one(rig.admin, Capsule(Opcode.KEEP_ALIVE, rig.cid()))
    assert rsp.status == Status.SUCCESS
    rsp = rig.run_one(rig.admin, Capsule(Opcode.ABORT, rig.cid(), cdw10=(1 << 16) | 3))
    assert (rsp.status, rsp.result) == (Status.SUCCESS, 1)


def test_keep_alive_timer_expires_without_keep_alive() -> None:
    rig = build(keep_alive_ticks=100)
    t = rig.t
    t.advance_time(60)
    assert rig.run_one(rig.admin, Capsule(Opcode.KEEP_ALIVE, rig.cid())).status == 0
    t.advance_time(60)     # 60 since the keep-alive: still alive
    assert t.qpair_info(rig.admin).state == QpState.ACTIVE
    t.advance_time(41)     # 101 since: expired, the controller's qpairs fail
    events = t.async_events()
    assert [(e.type, e.object) for e in events] == [(3, rig.cntlid)]
    rig.settle()
    assert t.qpair_info(rig.admin) is None and t.qpair_info(rig.io) is None
    assert_released(t)
    assert_clean_destroy(t)


def test_properties(rig: Rig) -> None:
    mqd = rig.t.options.max_queue_depth
    status, cap = prop_get(rig, CAP)
    assert status == Status.SUCCESS
    assert cap & 0xFFFF == mqd - 1          # MQES, 0-based
    assert cap >> 37 & 1 == 1               # CSS: NVM command set
    assert prop_get(rig, VS) == (Status.SUCCESS, 0x10400)
    # The rig enabled the controller before connecting its IO queue (NVMe Base 2.0 3.5.1):
    # CC reads back what was written (NVMe Base 2.0 3.1.3.5) and CSTS.RDY follows CC.EN
    # (3.1.3.6); nothing in the emulation takes time, so at once.
    assert CC_ENABLE == 0x460001
    assert prop_get(rig, CC) == (Status.SUCCESS, CC_ENABLE)
    assert prop_get(rig, CSTS) == (Status.SUCCESS, 1)
    assert prop_set(rig, CC, 0x460000) == Status.SUCCESS   # EN 1 -> 0: a controller reset
    assert prop_get(rig, CC) == (Status.SUCCESS, 0x460000)
    assert prop_get(rig, CSTS) == (Status.SUCCESS, 0)      # RDY follows EN
    assert prop_set(rig, CC, 0x460001) == Status.SUCCESS
    assert prop_get(rig, CC) == (Status.SUCCESS, 0x460001)
    assert prop_get(rig, CSTS) == (Status.SUCCESS, 1)
    assert prop_set(rig, CSTS, 1) == Status.INVALID_FIELD  # only CC is writable


def test_responses_carry_sqhd_and_cids_in_order(rig: Rig) -> None:
    t = rig.t
    cids = [rig.cid() for _ in range(5)]
    for c in cids:
        t.submit(rig.io, Capsule(Opcode.FLUSH, c, nsid=rig.ns))
    rig.settle()
    rsps = t.reap(rig.io)
    assert [r.cid for r in rsps] == cids
    assert all(r.status == Status.SUCCESS and not r.unexpected for r in rsps)
    # SQHD: capsules consumed so far (connect + 5) modulo the queue size
    assert rsps[-1].sqhd == 6 % t.qpair_info(rig.io).depth
    rig.run_one(rig.io, Capsule(Opcode.FLUSH, rig.cid(), nsid=rig.ns))
    rsp = rig.run_one(rig.io, Capsule(Opcode.FLUSH, rig.cid(), nsid=rig.ns))
    assert rsp.sqhd == 8 % t.qpair_info(rig.io).depth


def test_full_queue_of_mixed_io(rig: Rig) -> None:
    """Depth-many commands at once (writes of each layout and reads), all complete."""
    t = rig.t
    depth = t.qpair_info(rig.io).depth
    expected = {}
    for i in range(depth):
        data = rig.data(2048)
        if i % 3 == 0:
            cap = rig.write_capsule(i * 4, data, "list", ndesc=3, host_base=i * 50_000)
            t.submit(rig.io, cap)
        elif i % 3 == 1:
            from impl import in_capsule
            cap = Capsule.with_data(Opcode.WRITE, rig.cid(), [in_capsule(2048)],
                                    nsid=rig.ns, slba=i * 4, nlb=3)
            t.submit(rig.io, cap, data)
        else:
            cap = rig.write_capsule(i * 4, data, "keyed", host_base=i * 50_000)
            t.submit(rig.io, cap)
        expected[i * 4] = data
    rig.settle()
    rsps = t.reap(rig.io)
    assert len(rsps) == depth and all(r.status == Status.SUCCESS for r in rsps)
    for slba, data in expected.items():
        assert rig.media(slba, 2048) == data
    info = t.qpair_info(rig.io)
    assert info.slots_used == 0 and info.recv_posted == depth
    assert_released(t)
    assert_clean_destroy(t)


def test_admin_reconnects_reuse_controller_slots() -> None:
    with Transport(num_poll_groups=1, max_queue_depth=8, max_io_size=32768,
                   io_unit_size=4096, num_shared_buffers=200, max_qpairs=2) as t:
        port, sub = t.add_port(), t.add_subsystem()
        for i in range(4):
            qp = t.create_qpair(port, 0, 4)
            t.submit(qp, connect_capsule(i, sub, qid=0, sqsize=3))
            assert t.drain().quiescent
            [rsp] = t.reap(qp)
            assert rsp.status == Status.SUCCESS, (i, rsp)
            t.disconnect_qpair(qp)
            assert t.drain().quiescent and t.qpairs() == []
