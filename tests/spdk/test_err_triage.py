"""The ERR-1 items on SPDK v26.05, triaged (``docs/spdk-findings.md``): what was the
driver's and what is rdma.c's.

* The ERR-1 driver draws its malformed capsules from the limits of the *fitted* options the
  target runs with, not from the options the strategy drew (which is what a failing
  example prints): shown here with options SPDK would change.
* rdma.c's answers to four hand-made capsules, each judged by the ERR-1 check with the
  built-in target answering the same bytes as the control: a fused command with FUSE 11b, a
  keyed list with an Invalidate Key entry, a keyed list at a non-zero capsule offset, a list
  entry that is not a keyed data block.  The check passes the built-in target and fails
  SPDK's, with the answer SPDK gives.
"""

from __future__ import annotations

import pytest

from conformance import checks
from conformance.malformed import Placement, _Driver
from impl import backends
from impl import wire as W
from strategies.types import Namespace, TransportOptions
from tests.target.rig import build as build_rig


def test_the_err_driver_draws_from_the_fitted_options(spdk_backend, monkeypatch):
    backend = spdk_backend("v26.05")
    monkeypatch.setattr("impl.backends.default", lambda: backend)
    drawn = TransportOptions(max_queue_depth=4, max_io_size=8192, io_unit_size=512,
                             in_capsule_data_size=32, num_shared_buffers=16,
                             buf_cache_size=0, wr_pool_multiplier=5, wr_cache_size=0,
                             num_poll_groups=1, max_read_depth=1, max_sge=1,
                             max_sgl_descriptors=2)
    d = _Driver(drawn, Namespace(512, 64), Placement(depths=(2, 2, 2)), "io")
    try:
        lim = d.context().limits
        fitted = d.t.options
        assert (lim.max_sgl_descriptors, lim.in_capsule_data_size, lim.max_io_size) == (
            fitted.max_sgl_descriptors, fitted.in_capsule_data_size, fitted.max_io_size)
        # and they differ from what was drawn: SPDK keeps MSDBD 16 and a larger ICD
        assert lim.max_sgl_descriptors == 16 != drawn.max_sgl_descriptors
        assert lim.in_capsule_data_size > drawn.in_capsule_data_size
    finally:
        d.t.destroy()


def _keyed(iova: int, length: int, key: int, subtype: int = W.SGL_SUBTYPE_ADDRESS):
    return W.SglDescriptor(iova, length, key, W.SGL_TYPE_KEYED_DATA, subtype)


def _fuse_reserved(rig, iova):
    """A Flush with FUSE 11b (reserved: NVMe Base 2.0 4.1): Invalid Field in Command."""
    return W.Capsule(W.Sqe(opc=W.OPC_FLUSH, cid=rig.cid(), nsid=rig.ns, fuse=W.FUSE_RESERVED)
                     ), (W.SC_INVALID_FIELD,)


def _list_invalidate(rig, iova):
    """A 2-block write whose keyed list ends with an Invalidate Key descriptor (subtype
    Fh, valid for an RDMA keyed data block): Success."""
    descs = (_keyed(iova, 512, rig.key), _keyed(iova + 512, 512, rig.key,
                                                W.SGL_SUBTYPE_INVALIDATE))
    return W.Capsule(W.Sqe(opc=W.OPC_WRITE, cid=rig.cid(), nsid=rig.ns, cdw12=1,
                           sgl1=W.last_segment(0, 2)),
                     b"".join(d.encode() for d in descs)), (W.SC_SUCCESS,)


def _list_at_offset(rig, iova):
    """The same write with its list 16 bytes into the in-capsule data (the last segment's
    address is a byte offset: NVMe Base 2.0 4.4, NVMe-oF 1.1 2.x): Success."""
    descs = (_keyed(iova, 512, rig.key), _keyed(iova + 512, 512, rig.key))
    return W.Capsule(W.Sqe(opc=W.OPC_WRITE, cid=rig.cid(), nsid=rig.ns, cdw12=1,
                           sgl1=W.last_segment(16, 2)),
                     bytes(16) + b"".join(d.encode() for d in descs)), (W.SC_SUCCESS,)


def _list_entry_data_block(rig, iova):
    """A list whose second entry is an (unkeyed) data block: SGL Descriptor Type Invalid
    (11h) or Invalid SGL Segment Descriptor (0Dh), not a length error."""
    descs = (_keyed(iova, 512, rig.key),
             W.SglDescriptor(0, 512, 0, W.SGL_TYPE_DATA_BLOCK, W.SGL_SUBTYPE_OFFSET))
    return W.Capsule(W.Sqe(opc=W.OPC_WRITE, cid=rig.cid(), nsid=rig.ns, cdw12=1,
                           sgl1=W.last_segment(0, 2)),
                     b"".join(d.encode() for d in descs)), (W.SC_SGL_DESC_TYPE_INVALID,
                                                            W.SC_INVALID_SGL_SEG_DESC)


#: capsule maker -> what the ERR-1 check says of SPDK v26.05's answer
CASES = {
    "fuse_reserved": (_fuse_reserved, "no response"),
    "list_invalidate": (_list_invalidate, "answered 0x000f"),
    "list_at_offset": (_list_at_offset, "answered 0x000f"),
    "list_entry_data_block": (_list_entry_data_block, "answered 0x000f"),
}


def _judge(make):
    rig = build_rig()
    try:
        cap, allowed = make(rig, rig.t.memory_iova(rig.key))
        before = rig.t.qpair_info(rig.io)
        rig.t.submit_bytes(rig.io, cap.encode())
        rig.t.drain(100)
        got = rig.t.reap(rig.io)
        checks.malformed_answered("hand-made capsule", rig.io, cap.sqe.cid, got, allowed,
                                  before, rig.t.qpair_info(rig.io), free_state=None,
                                  receives=False)
    finally:
        rig.t.destroy()


@pytest.mark.parametrize("case", CASES)
def test_the_builtin_target_answers_as_the_specification_says(case, monkeypatch):
    monkeypatch.setattr("impl.backends.default", backends.builtin)
    _judge(CASES[case][0])


@pytest.mark.parametrize("case", CASES)
def test_err_1_fails_spdk_v26_05_on_it(case, spdk_backend, monkeypatch):
    backend = spdk_backend("v26.05")
    monkeypatch.setattr("impl.backends.default", lambda: backend)
    make, said = CASES[case]
    with pytest.raises(checks.PropertyViolation, match=said):
        _judge(make)
