"""Malformed capsules (ERR-1), call-order errors, and option validation (CFG-1)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from impl._nrt import lib

from impl import (
    Capsule,
    FabricsType,
    Opcode,
    Options,
    OptionsRefused,
    QpState,
    SglDesc,
    Status,
    TargetError,
    Transport,
    connect_capsule,
    in_capsule,
    keyed,
    last_segment,
)
from impl.nvme import (
    SGL_SUBTYPE_ADDRESS,
    SGL_SUBTYPE_OFFSET,
    SGL_TYPE_DATA_BLOCK,
    SGL_TYPE_KEYED_DATA,
    SGL_TYPE_LAST_SEGMENT,
)

from .rig import BASE_OPTIONS, Rig, assert_clean_destroy, assert_released, build

# The NRT_E* codes, named as in nrt.h (impl.nvme.ErrorCode strips the "E").
ENOENT, EINVAL, EBUSY, ENOTCONN = lib.NRT_ENOENT, lib.NRT_EINVAL, lib.NRT_EBUSY, lib.NRT_ENOTCONN
ENETDOWN, EMSGSIZE, ESTATE = lib.NRT_ENETDOWN, lib.NRT_EMSGSIZE, lib.NRT_ESTATE

# ---- malformed capsules ------------------------------------------------------------------


@dataclass(frozen=True)
class Bad:
    make: Callable[[Rig, int], Capsule]
    status: int
    admin: bool = False
    icd: bytes = b""


def w(rig: Rig, cid: int, **kw) -> Capsule:
    """An otherwise good 1 KiB keyed write; ``kw`` spoils it."""
    base = {"nsid": rig.ns, "slba": 8, "nlb": 1, "sgl": keyed(0, 1024, rig.key)}
    base.update(kw)
    return Capsule(Opcode.WRITE, cid, **base)


def lst(rig: Rig, cid: int, descs: list[SglDesc], length: int | None = None, **kw) -> Capsule:
    total = sum(d.length for d in descs)
    sgl = last_segment(len(descs)) if length is None else SglDesc(
        0, length, 0, SGL_TYPE_LAST_SEGMENT, SGL_SUBTYPE_OFFSET)
    base = {"nsid": rig.ns, "slba": 8, "nlb": max(total // 512 - 1, 0)}
    base.update(kw)
    return Capsule(Opcode.WRITE, cid, sgl=sgl, descriptors=tuple(descs), **base)


def k(rig: Rig, *lengths: int) -> list[SglDesc]:
    return [keyed(i * 8192, n, rig.key) for i, n in enumerate(lengths)]


BAD: dict[str, Bad] = {
    "write_on_admin": Bad(lambda r, c: w(r, c), Status.INVALID_OPCODE, admin=True),
    "flush_on_admin": Bad(lambda r, c: Capsule(Opcode.FLUSH, c, nsid=r.ns),
                          Status.INVALID_OPCODE, admin=True),
    "identify_on_io": Bad(lambda r, c: Capsule(Opcode.IDENTIFY, c, cdw10=1,
                                               sgl=keyed(0, 4096, r.key)),
                          Status.INVALID_OPCODE),
    "keep_alive_on_io": Bad(lambda r, c: Capsule(Opcode.KEEP_ALIVE, c), Status.INVALID_OPCODE),
    "abort_on_io": Bad(lambda r, c: Capsule(Opcode.ABORT, c), Status.INVALID_OPCODE),
    "property_get_on_io": Bad(lambda r, c: Capsule(Opcode.FABRICS, c,
                                                   fctype=FabricsType.PROPERTY_GET),
                              Status.INVALID_OPCODE),
    # Reserved opcodes (NVM Command Set 1.0 / NVMe Base 2.0 5 opcode tables): Invalid
    # Command Opcode (NVMe Base 2.0 4.6.1.2).  The transport moves a command's data before
    # the controller sees it, so 55h (bits 1:0 = 01b, host to controller) needs a good SGL
    # to get that far; a zero-length one is refused by the transport first (see
    # keyed_length_zero).  50h carries no data (bits 1:0 = 00b).
    "unknown_opcode_io": Bad(lambda r, c: Capsule(0x55, c, nsid=r.ns,
                                                  sgl=keyed(0, 512, r.key)),
                             Status.INVALID_OPCODE),
    "unknown_opcode_admin": Bad(lambda r, c: Capsule(0x55, c, sgl=keyed(0, 512, r.key)),
                                Status.INVALID_OPCODE, admin=True),
    "unknown_opcode_no_data_io": Bad(lambda r, c: Capsule(0x50, c, nsid=r.ns),
                                     Status.INVALID_OPCODE),
    "unknown_opcode_no_data_admin": Bad(lambda r, c: Capsule(0x50, c), Status.INVALID_OPCODE,
                                        admin=True),
    # A reserved FCTYPE (NVMe-oF 1.1 3.1) with no data (bits 1:0 = 00b) reaches the
    # controller: Invalid Command Opcode, as the emulation chose (ctrlr.c nvmf_emu_exec).
    "unknown_fctype": Bad(lambda r, c: Capsule(Opcode.FABRICS, c, fctype=0x10),
                          Status.INVALID_OPCODE, admin=True),
    # FCTYPE 33h is reserved *and* bidirectional (bits 1:0 = 11b, NVMe-oF 1.1 3.1 / base 2.0
    # 4.1): the transport refuses bidirectional transfers before the controller sees the
    # command, with Invalid Field in Command (request.c parse).
    "bidirectional_fctype": Bad(lambda r, c: Capsule(Opcode.FABRICS, c, fctype=0x33),
                                Status.INVALID_FIELD, admin=True),
    "sgl_type_segment": Bad(lambda r, c: w(r, c, sgl=SglDesc(0, 1024, r.key, 0x2, 0)),
                            Status.SGL_DESC_TYPE_INVALID),
    "sgl_type_reserved": Bad(lambda r, c: w(r, c, sgl=SglDesc(0, 1024, r.key, 0x7, 0)),
                             Status.SGL_DESC_TYPE_INVALID),
    "keyed_subtype_invalid": Bad(lambda r, c: w(r, c, sgl=SglDesc(
        0, 1024, r.key, SGL_TYPE_KEYED_DATA, SGL_SUBTYPE_OFFSET)), Status.SGL_DESC_TYPE_INVALID),
    "data_block_subtype_invalid": Bad(lambda r, c: w(r, c, sgl=SglDesc(
        0, 512, 0, SGL_TYPE_DATA_BLOCK, SGL_SUBTYPE_ADDRESS), nlb=0),
        Status.SGL_DESC_TYPE_INVALID, icd=b"x" * 512),
    "icd_offset_beyond_data": Bad(lambda r, c: w(r, c, sgl=in_capsule(512, offset=1024),
                                                 nlb=0),
                                  Status.SGL_OFFSET_INVALID, icd=b"x" * 512),
    "icd_length_beyond_data": Bad(lambda r, c: w(r, c, sgl=in_capsule(1024), nlb=1),
                                  Status.DATA_SGL_LENGTH_INVALID, icd=b"x" * 512),
    "icd_offset_plus_length_beyond": Bad(lambda r, c: w(r, c, sgl=in_capsule(512, offset=256),
                                                        nlb=0),
                                         Status.DATA_SGL_LENGTH_INVALID, icd=b"x" * 512),
    "icd_length_zero": Bad(lambda r, c: w(r, c, sgl=in_capsule(0), nlb=0),
                           Status.DATA_SGL_LENGTH_INVALID, icd=b"x" * 512),
    "icd_on_a_read": Bad(lambda r, c: Capsule(Opcode.READ, c, nsid=r.ns, slba=0, nlb=0,
                                              sgl=in_capsule(512)),
                         Status.INVALID_FIELD, icd=b"x" * 512),
    "keyed_longer_than_max_io": Bad(lambda r, c: w(r, c, sgl=keyed(0, 65536 + 512, r.key),
                                                   nlb=128),
                                    Status.DATA_SGL_LENGTH_INVALID),
    "keyed_length_zero": Bad(lambda r, c: w(r, c, sgl=keyed(0, 0, r.key), nlb=0),
                             Status.DATA_SGL_LENGTH_INVALID),
    "sgl_length_not_nlb": Bad(lambda r, c: w(r, c, nlb=2), Status.DATA_SGL_LENGTH_INVALID),
    "sgl_length_not_nlb_read": Bad(lambda r, c: Capsule(Opcode.READ, c, nsid=r.ns, slba=0,
                                                        nlb=0, sgl=keyed(0, 1024, r.key)),
                                   Status.DATA_SGL_LENGTH_INVALID),
    "list_of_zero": Bad(lambda r, c: lst(r, c, []), Status.INVALID_NUM_SGL_DESC),
    # A last segment of 16 bytes is a well-formed one-descriptor list (NVMe Base 2.0 4.4);
    # the second descriptor in the capsule is not part of it.  The list then describes 512
    # bytes for a 1024-byte write: Data SGL Length Invalid (NVMe Base 2.0 4.6.1.2).
    "list_length_field_short": Bad(lambda r, c: lst(r, c, k(r, 512, 512), length=16),
                                   Status.DATA_SGL_LENGTH_INVALID),
    "list_length_field_odd": Bad(lambda r, c: lst(r, c, k(r, 512, 512), length=33),
                                 Status.INVALID_SGL_SEG_DESC),
    "list_entry_in_capsule": Bad(lambda r, c: lst(r, c, [*k(r, 512), in_capsule(512)]),
                                 Status.SGL_DESC_TYPE_INVALID),
    "list_entry_keyed_subtype": Bad(lambda r, c: lst(r, c, [*k(r, 512), SglDesc(
        0, 512, r.key, SGL_TYPE_KEYED_DATA, SGL_SUBTYPE_OFFSET)]), Status.SGL_DESC_TYPE_INVALID),
    "list_entry_length_zero": Bad(lambda r, c: lst(r, c, k(r, 1024, 0), nlb=1),
                                  Status.DATA_SGL_LENGTH_INVALID),
    "list_longer_than_max_io": Bad(lambda r, c: lst(r, c, k(r, *[8192] * 9)),
                                   Status.DATA_SGL_LENGTH_INVALID),
    "list_subtype_invalid": Bad(lambda r, c: lst(r, c, k(r, 512, 512), nlb=1).__class__(
        Opcode.WRITE, c, nsid=r.ns, slba=8, nlb=1,
        sgl=SglDesc(0, 32, 0, SGL_TYPE_LAST_SEGMENT, SGL_SUBTYPE_ADDRESS),
        descriptors=tuple(k(r, 512, 512))), Status.SGL_DESC_TYPE_INVALID),
    "lba_start_out_of_range": Bad(lambda r, c: w(r, c, slba=2048, nlb=0,
                                                 sgl=keyed(0, 512, r.key)),
                                  Status.LBA_OUT_OF_RANGE),
    "lba_end_out_of_range": Bad(lambda r, c: w(r, c, slba=2047), Status.LBA_OUT_OF_RANGE),
    "lba_huge": Bad(lambda r, c: w(r, c, slba=(1 << 64) - 1), Status.LBA_OUT_OF_RANGE),
    "read_lba_out_of_range": Bad(lambda r, c: Capsule(Opcode.READ, c, nsid=r.ns, slba=2047,
                                                      nlb=1, sgl=keyed(0, 1024, r.key)),
                                 Status.LBA_OUT_OF_RANGE),
    "nsid_zero": Bad(lambda r, c: w(r, c, nsid=0), Status.INVALID_NAMESPACE),
    "nsid_unknown": Bad(lambda r, c: w(r, c, nsid=2), Status.INVALID_NAMESPACE),
    "flush_nsid_unknown": Bad(lambda r, c: Capsule(Opcode.FLUSH, c, nsid=9),
                              Status.INVALID_NAMESPACE),
    "property_get_bad_offset": Bad(lambda r, c: Capsule(Opcode.FABRICS, c, cdw10=0x30,
                                                        fctype=FabricsType.PROPERTY_GET),
                                   Status.INVALID_FIELD, admin=True),
    "property_set_not_cc": Bad(lambda r, c: Capsule(Opcode.FABRICS, c, cdw10=0x00, value=1,
                                                    fctype=FabricsType.PROPERTY_SET),
                               Status.INVALID_FIELD, admin=True),
    # CNS 02h (active namespace ID list) is implemented now (test_target_lifecycle); FFh is
    # reserved (NVMe Base 2.0 5.17): Invalid Field in Command.
    "identify_bad_cns": Bad(lambda r, c: Capsule(Opcode.IDENTIFY, c, cdw10=0xFF,
                                                 sgl=keyed(0, 4096, r.key)),
                            Status.INVALID_FIELD, admin=True),
    # CNS 00h: an NSID up to NN that is not active gets a zero-filled page (NVMe Base 2.0
    # 5.17, tested in test_target_lifecycle); an NSID above NN, or FFFFFFFFh without
    # namespace management, is Invalid Namespace or Format (NVMe Base 2.0 4.6.1.2).
    "identify_ns_unknown": Bad(lambda r, c: Capsule(Opcode.IDENTIFY, c, cdw10=0,
                                                    nsid=r.t.options.max_namespaces + 1,
                                                    sgl=keyed(0, 4096, r.key)),
                               Status.INVALID_NAMESPACE, admin=True),
    "identify_ns_broadcast": Bad(lambda r, c: Capsule(Opcode.IDENTIFY, c, cdw10=0,
                                                      nsid=0xFFFFFFFF,
                                                      sgl=keyed(0, 4096, r.key)),
                                 Status.INVALID_NAMESPACE, admin=True),
    # A buffer shorter than the 4096-byte data structure: Data SGL Length Invalid, as the
    # emulation chose (ctrlr.c).  A longer one is accepted (the status "may" be returned
    # for a too long SGL, NVMe Base 2.0 4.6.1.2): test_target_lifecycle checks it.
    "identify_too_short": Bad(lambda r, c: Capsule(Opcode.IDENTIFY, c, cdw10=1,
                                                   sgl=keyed(0, 4095, r.key)),
                              Status.DATA_SGL_LENGTH_INVALID, admin=True),
    "connect_when_connected": Bad(lambda r, c: connect_capsule(c, r.sub, qid=1, cntlid=1),
                                  Status.COMMAND_SEQUENCE_ERROR),
}


def check_rejected_then_serving(rig: Rig, bad: Bad) -> None:
    t = rig.t
    qp = rig.admin if bad.admin else rig.io
    media_before = rig.media(0, 16 * 512)
    cap = bad.make(rig, rig.cid())
    rsp = rig.run_one(qp, cap, bad.icd)
    assert rsp.status == bad.status, f"0x{rsp.status:04x} != 0x{bad.status:04x}"
    assert rsp.result == 0
    assert rig.media(0, 16 * 512) == media_before             # nothing written
    info = t.qpair_info(qp)
    assert info.state == QpState.ACTIVE
    assert info.slots_used == 0 and info.recv_posted == info.depth
    assert info.host_outstanding == 0
    assert_released(t)
    # the qpair keeps serving
    if bad.admin:
        assert rig.run_one(qp, Capsule(Opcode.KEEP_ALIVE, rig.cid())).status == Status.SUCCESS
    else:
        data = rig.data(2048)
        assert rig.write(8, data, "list", ndesc=3).status == Status.SUCCESS
        assert rig.media(8, 2048) == data
    assert_released(t)


@pytest.mark.parametrize("name", list(BAD))
def test_malformed_capsule_gets_its_status(rig: Rig, name: str) -> None:
    check_rejected_then_serving(rig, BAD[name])


def test_more_descriptors_than_max_sgl_descriptors() -> None:
    rig = build(max_sgl_descriptors=4)
    try:
        check_rejected_then_serving(rig, Bad(lambda r, c: lst(r, c, k(r, *[512] * 5)),
                                             Status.INVALID_NUM_SGL_DESC))
        data = rig.data(2048)    # exactly max_sgl_descriptors is fine
        assert rig.write(0, data, "list", ndesc=4).status == Status.SUCCESS
        assert rig.media(0, 2048) == data
    finally:
        rig.t.destroy()


def test_namespace_not_ready(rig: Rig) -> None:
    rig.t.set_namespace_ready(rig.sub, rig.ns, False)
    for make in (lambda c: w(rig, c), lambda c: Capsule(Opcode.FLUSH, c, nsid=rig.ns),
                 lambda c: Capsule(Opcode.READ, c, nsid=rig.ns, nlb=1,
                                   sgl=keyed(0, 1024, rig.key))):
        rsp = rig.run_one(rig.io, make(rig.cid()))
        assert rsp.status == Status.NAMESPACE_NOT_READY
    assert_released(rig.t)
    rig.t.set_namespace_ready(rig.sub, rig.ns, True)
    assert rig.write(8, rig.data(1024), "keyed").status == Status.SUCCESS


def test_block_device_error_status_reaches_the_host(rig: Rig) -> None:
    t = rig.t
    data = rig.data(4096)
    assert rig.write(0, data, "keyed").status == Status.SUCCESS
    t.bdev_inject_error(1, Status.UNRECOVERED_READ_ERROR)
    rsp, back = rig.read(0, 4096, "list", ndesc=3, host_base=50_000)
    assert rsp.status == Status.UNRECOVERED_READ_ERROR
    assert back == b"\xee" * 4096                      # no data was written to the host
    assert_released(t)
    rsp, back = rig.read(0, 4096, "list", ndesc=3, host_base=50_000)
    assert rsp.status == Status.SUCCESS and back == data
    with pytest.raises(TargetError):
        t.bdev_inject_error(1, Status.SUCCESS)


# ---- connect ---------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["unknown_subsystem", "unknown_cntlid", "cntlid_zero",
                                  "sqsize_too_big", "sqsize_zero", "duplicate_qid",
                                  "wrong_subsystem"])
def test_bad_connect(rig: Rig, case: str) -> None:
    t = rig.t
    other_sub = t.add_subsystem()
    qp = t.create_qpair(rig.port, 0, 4)
    good = {"subsystem": rig.sub, "qid": 2, "cntlid": rig.cntlid, "sqsize": 3}
    bad = dict(good, **{
        "unknown_subsystem": {"subsystem": 9},
        "unknown_cntlid": {"cntlid": 77},
        "cntlid_zero": {"cntlid": 0},
        "sqsize_too_big": {"sqsize": 4},
        "sqsize_zero": {"sqsize": 0},
        "duplicate_qid": {"qid": 1},       # the rig's IO qpair has qid 1
        "wrong_subsystem": {"subsystem": other_sub},
    }[case])
    # A Connect for a queue the controller already has is out of sequence, not a bad
    # parameter: Command Sequence Error, as the emulation chose (ctrlr.c do_connect; the
    # Linux and SPDK targets answer the same).  The rest name a bad field: Connect Invalid
    # Parameters (NVMe-oF 1.1 3.3).
    want = Status.COMMAND_SEQUENCE_ERROR if case == "duplicate_qid" else \
        Status.CONNECT_INVALID_PARAM
    cap = connect_capsule(rig.cid(), **{k_: v for k_, v in bad.items()})
    rsp = rig.run_one(qp, cap)
    assert rsp.status == want
    assert t.qpair_info(qp).state == QpState.CONNECTING
    assert_released(t)
    rsp = rig.run_one(qp, connect_capsule(rig.cid(), **good))
    assert (rsp.status, rsp.result) == (Status.SUCCESS, rig.cntlid)
    assert t.qpair_info(qp).state == QpState.ACTIVE


def test_qid_can_be_reused_after_its_qpair_failed(rig: Rig) -> None:
    t = rig.t
    t.disconnect_qpair(rig.io)
    qp = t.create_qpair(rig.port, 1, 4)
    rsp = rig.run_one(qp, connect_capsule(rig.cid(), rig.sub, qid=1, cntlid=rig.cntlid,
                                          sqsize=3))
    assert rsp.status == Status.SUCCESS


def test_post_failure_on_a_connecting_qpair_recovers() -> None:
    with Transport(Options(**BASE_OPTIONS)) as t:
        port, _sub = t.add_port(), t.add_subsystem()
        qp = t.create_qpair(port, 0, 4)
        t.fail_posts(qp, 1)
        t.submit(qp, connect_capsule(1, 99))       # refused: unknown subsystem
        r = t.drain()
        assert r.quiescent and not r.stalled, (r, t.requests(qp))
        [rsp] = t.reap(qp)
        assert rsp.status == Status.CONNECT_INVALID_PARAM


# ---- call-order errors raise TargetError --------------------------------------------------


def raises(code: int, fn: Callable[[], object]) -> TargetError:
    with pytest.raises(TargetError) as exc:
        fn()
    assert exc.value.code == code, exc.value
    assert exc.value.message
    return exc.value


def test_submit_on_failed_and_destroyed_qpair(rig: Rig) -> None:
    """The handle is the rig's connection: once the target destroyed the qpair it was
    connected to, every call acting on it is refused as on a destroyed handle."""
    t = rig.t
    t.disconnect_qpair(rig.io)
    raises(ENOTCONN, lambda: t.submit(rig.io, Capsule(Opcode.FLUSH, 1, nsid=1)))
    raises(ESTATE, lambda: t.disconnect_qpair(rig.io))    # second disconnect
    rig.settle()
    assert t.qpair_info(rig.io) is None
    err = raises(ENOENT, lambda: t.submit(rig.io, Capsule(Opcode.FLUSH, 1, nsid=1)))
    assert str(rig.io) in err.message
    raises(ENOENT, lambda: t.disconnect_qpair(rig.io))
    raises(ENOENT, lambda: t.host_disconnect(rig.io))
    raises(ENOENT, lambda: t.inject_qpair_error(rig.io))
    raises(ENOENT, lambda: t.fail_posts(rig.io, 1))
    assert t.reap(rig.io) == [] and t.requests(rig.io) == []
    assert not t.deliver_h2t(rig.io) and not t.deliver_t2h(rig.io)
    # the handle is not reused for the next qpair in the same slot
    qp = t.create_qpair(rig.port, 1, 4)
    assert qp != rig.io
    raises(ENOENT, lambda: t.submit(rig.io, Capsule(Opcode.FLUSH, 1, nsid=1)))


def test_unknown_port_and_group(rig: Rig) -> None:
    t = rig.t
    before = t.qpairs()
    raises(ENOENT, lambda: t.create_qpair(5, 0, 4))
    # The rig's connect takes the port as a uint32: -1 is 2**32 - 1 there, refused as an
    # unknown port.  Given as -1, cffi refuses it at the call (OverflowError) before the rig
    # sees it; either way no connection is made.
    raises(ENOENT, lambda: t.create_qpair(2**32 - 1, 0, 4))
    with pytest.raises((TargetError, OverflowError)):
        t.create_qpair(-1, 0, 4)
    # The group is the target's placement hint for the connection: one the transport does
    # not have is refused, not silently wrapped into another group.
    raises(ENOENT, lambda: t.create_qpair(rig.port, 2, 4))
    assert t.qpairs() == before
    raises(ENOENT, lambda: t.poll(2))
    raises(ENOENT, lambda: t.group_stats(7))
    raises(ENOENT, lambda: t.port_down(3))
    raises(ENOENT, lambda: t.port_up(3))
    t.port_down(rig.port)
    raises(ENETDOWN, lambda: t.create_qpair(rig.port, 0, 4))
    t.port_up(rig.port)
    assert t.create_qpair(rig.port, 0, 4) > 0


def test_qpair_depth_limits(rig: Rig) -> None:
    t = rig.t
    mqd = t.options.max_queue_depth
    raises(EINVAL, lambda: t.create_qpair(rig.port, 0, 0))
    err = raises(EINVAL, lambda: t.create_qpair(rig.port, 0, mqd + 1))
    assert str(mqd) in err.message
    assert t.qpair_info(t.create_qpair(rig.port, 0, mqd)).depth == mqd


def test_submitting_more_than_depth_is_ebusy(rig: Rig) -> None:
    t = rig.t
    depth = t.qpair_info(rig.io).depth
    cids = [rig.cid() for _ in range(depth)]
    for c in cids:
        t.submit(rig.io, Capsule(Opcode.FLUSH, c, nsid=rig.ns))
    raises(EBUSY, lambda: t.submit(rig.io, Capsule(Opcode.FLUSH, 1, nsid=rig.ns)))
    rig.settle()
    assert sorted(r.cid for r in t.reap(rig.io)) == sorted(cids)
    t.submit(rig.io, Capsule(Opcode.FLUSH, 1, nsid=rig.ns))     # room again after reaping


def test_in_capsule_data_larger_than_the_receive_buffer(rig: Rig) -> None:
    t = rig.t
    icd = t.options.in_capsule_data_size
    cap = Capsule(Opcode.WRITE, 1, nsid=rig.ns, nlb=8, sgl=in_capsule(icd + 512))
    err = raises(EMSGSIZE, lambda: t.submit(rig.io, cap, b"x" * (icd + 512)))
    assert str(icd) in err.message
    assert t.qpair_info(rig.io).wire_h2t == 0


def test_run_refuses_an_unknown_event_kind(rig: Rig) -> None:
    raises(EINVAL, lambda: rig.t.run([(99 << 24) | 1]))


def test_calls_after_destroy_raise(rig: Rig) -> None:
    rig.t.destroy()
    raises(ESTATE, lambda: rig.t.add_port())
    raises(ESTATE, lambda: rig.t.destroy())


# ---- options ---------------------------------------------------------------------------------


def refused(**kw) -> str:
    opts = Options(**{**BASE_OPTIONS, **kw})
    with pytest.raises(OptionsRefused) as exc:
        Transport(opts)
    assert opts.refusal() == exc.value.message
    return exc.value.message


def test_wr_pool_below_minimum_is_refused_naming_it() -> None:
    opts = Options(**BASE_OPTIONS)
    minimum = opts.min_wr_pool
    assert minimum == 2 * (8 + 16)
    msg = refused(wr_pool_size=minimum - 1)
    assert str(minimum) in msg and "deadlock" in msg
    msg = refused(wr_pool_multiplier=1)       # 16 x 1 < 48
    assert str(minimum) in msg
    with Transport(Options(**{**BASE_OPTIONS, "wr_pool_size": minimum})) as t:
        assert t.wr_pool().capacity == minimum


def test_buffers_below_minimum_are_refused_naming_it() -> None:
    minimum = Options(**BASE_OPTIONS).min_buffers
    assert minimum == 2 * (8 + 16)
    msg = refused(num_shared_buffers=minimum - 1)
    assert str(minimum) in msg and "num_shared_buffers" in msg
    with Transport(Options(**{**BASE_OPTIONS, "num_shared_buffers": minimum})) as t:
        assert t.buf_pool().capacity == minimum


def test_send_depth_below_minimum_is_refused_naming_it() -> None:
    need = Options(**BASE_OPTIONS).max_wrs_per_request + 1
    msg = refused(max_send_depth=need - 1)
    assert str(need) in msg and "max_send_depth" in msg


@pytest.mark.parametrize("kw,words", [
    ({"max_queue_depth": 0}, "max_queue_depth"),
    ({"io_unit_size": 3000}, "io_unit_size"),
    ({"io_unit_size": 256}, "io_unit_size"),
    ({"max_io_size": 65536 + 4096 * 2 - 1}, "max_io_size"),
    ({"max_io_size": 2048}, "max_io_size"),
    ({"in_capsule_data_size": 1000}, "in_capsule_data_size"),
    ({"num_poll_groups": 0}, "num_poll_groups"),
    ({"num_poll_groups": 65}, "num_poll_groups"),
    ({"max_read_depth": 0}, "max_read_depth"),
    ({"max_sge": 0}, "max_sge"),
    ({"max_sgl_descriptors": 17}, "max_sgl_descriptors"),
    ({"wr_pool_multiplier": 0}, "wr_pool_multiplier"),
    ({"max_qpairs": 0}, "max_qpairs"),
    ({"max_queue_depth": -1}, "max_queue_depth"),
])
def test_invalid_options_are_refused(kw: dict, words: str) -> None:
    opts = Options(**{**BASE_OPTIONS, **kw})
    with pytest.raises(OptionsRefused) as exc:
        Transport(opts)
    assert words in exc.value.message


@pytest.mark.parametrize("kw", [
    {},
    {"wr_pool_multiplier": 32},
    {"wr_pool_multiplier": 3, "max_queue_depth": 16},
    {"wr_pool_size": 1000},
    {"wr_pool_size": 48, "wr_pool_multiplier": 0},
])
def test_accepted_options_are_honoured(kw: dict) -> None:
    opts = Options(**{**BASE_OPTIONS, **kw})
    assert opts.refusal() is None
    with Transport(opts) as t:
        expected = kw.get("wr_pool_size") or opts.max_queue_depth * opts.wr_pool_multiplier
        assert t.wr_pool().capacity == expected == opts.wr_pool_capacity
        assert t.wr_pool().ring_free == expected
        assert t.buf_pool().capacity == opts.num_shared_buffers
        eff = t.effective_options
        assert eff.max_send_depth == 2 * opts.max_queue_depth + opts.max_wrs_per_request
        assert eff.max_io_size == opts.max_io_size and eff.io_unit_size == opts.io_unit_size
        port = t.add_port()
        info = t.qpair_info(t.create_qpair(port, 1, 5))
        assert (info.depth, info.max_read_depth, info.group) == (5, opts.max_read_depth, 1)
        assert info.max_send_depth == eff.max_send_depth
        assert info.recv_posted == 5 and info.slots_free == 5
        rep = t.destroy()
        assert rep.wr_expected == rep.wr_returned == expected and rep.message == ""


def test_explicit_send_depth_is_honoured() -> None:
    rig = build(max_send_depth=40)
    try:
        assert rig.t.qpair_info(rig.io).max_send_depth == 40
        data = rig.data(32768)
        rsp = rig.write(0, data, "list", ndesc=16)
        assert rsp.status == Status.SUCCESS
        rsp, back = rig.read(0, 32768, "list", ndesc=16, host_base=300_000)
        assert rsp.status == Status.SUCCESS and back == data
        assert rig.t.qpair_info(rig.io).max_send_depth_seen <= 40
    finally:
        assert_clean_destroy(rig.t)
