"""The wire codec (impl/wire.py) and the wire-level strategies (strategies/wire.py).

* round trips: decode(encode(x)) == x for drawn values, encode(decode(b)) == b for arbitrary
  bytes of each fixed size (every layout here is total);
* hand-written bytes for the key fields, the CQE status-word packing, ValueError on bad
  sizes and on values that do not fit their field;
* the layout against ``impl/csrc/nvmf_wire.h``: a small C program prints offsetof/sizeof of
  every field and the header's constants, compared with ``impl.wire.LAYOUT`` / ``SIZES``;
* the strategies do what they claim, judged by a small reference parser written here from
  the spec (independent of both the target and the strategies): valid capsules parse with
  status 0 and their SGL covers (nlb + 1) * block_size bytes; every malformed kind is
  reachable and gets its expected status (or an allowed alternative); CM private data
  expectations match their fields.
"""

from __future__ import annotations

import ast
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strategies import nvme
from strategies import wire as sw
from strategies.types import Namespace

W = sw.codec
FEW = settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
SOME = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck))

# ------------------------------------------------------------------------- round trips


@SOME
@given(sw.any_sgl_descriptors())
def test_sgl_descriptor_round_trip(d):
    assert W.SglDescriptor.decode(d.encode()) == d


@SOME
@given(st.binary(min_size=16, max_size=16))
def test_sgl_descriptor_bytes_round_trip(b):
    assert W.SglDescriptor.decode(b).encode() == b


@SOME
@given(sw.sqes())
def test_sqe_round_trip(sqe):
    assert W.Sqe.decode(sqe.encode()) == sqe


@SOME
@given(st.binary(min_size=64, max_size=64))
def test_sqe_bytes_round_trip(b):
    assert W.Sqe.decode(b).encode() == b


_u16 = st.integers(0, 0xFFFF)
_u32 = st.integers(0, 0xFFFF_FFFF)


@SOME
@given(st.builds(W.Cqe, _u32, _u32, _u16, _u16, _u16, _u16), st.binary(min_size=16,
                                                                       max_size=16))
def test_cqe_round_trip(cqe, b):
    assert W.Cqe.decode(cqe.encode()) == cqe
    assert W.Cqe.decode(b).encode() == b


_nqn = st.binary(max_size=256)


@FEW
@given(st.builds(W.ConnectData, st.binary(min_size=16, max_size=16), _u16, _nqn, _nqn,
                 st.binary(min_size=238, max_size=238), st.binary(min_size=256, max_size=256)),
       st.binary(min_size=1024, max_size=1024))
def test_connect_data_round_trip(data, b):
    assert W.ConnectData.decode(data.encode()) == data
    assert W.ConnectData.decode(b).encode() == b


@SOME
@given(st.binary(min_size=32, max_size=32), st.binary(min_size=4, max_size=4))
def test_cm_private_data_round_trip(b32, b4):
    for cls in (W.CmRequestPrivateData, W.CmAcceptPrivateData):
        assert cls.decode(b32).encode() == b32
        x = cls.decode(b32)
        assert cls.decode(x.encode()) == x
    assert W.CmRejectPrivateData.decode(b4).encode() == b4


@SOME
@given(st.binary(min_size=64, max_size=64 + 300))
def test_capsule_bytes_round_trip(b):
    cap = W.Capsule.decode(b)
    assert cap.encode() == b
    assert W.Capsule.decode(cap.encode()) == cap


@FEW
@given(sw.io_capsules())
def test_io_capsule_round_trip(cap):
    assert W.Capsule.decode(cap.encode()) == cap


@FEW
@given(_u16, _u16, _u16, st.integers(0, 255), _u32, _u16)
def test_connect_sqe_view(cid, qid, sqsize, cattr, kato, recfmt):
    c = W.ConnectSqe(cid, qid, sqsize, cattr, kato, recfmt)
    raw = c.encode()
    assert W.ConnectSqe.decode(raw) == c
    sqe = W.Sqe.decode(raw)
    assert sqe.opc == W.OPC_FABRICS and sqe.fctype == W.FCTYPE_CONNECT
    assert W.ConnectSqe.from_sqe(sqe) == c


@FEW
@given(st.sampled_from((W.FCTYPE_PROPERTY_GET, W.FCTYPE_PROPERTY_SET)), _u16, _u32,
       st.integers(0, 255), st.integers(0, 2**64 - 1))
def test_property_sqe_view(fctype, cid, ofst, attrib, value):
    p = W.PropertySqe(fctype, cid, ofst, attrib, value)
    assert W.PropertySqe.decode(p.encode()) == p


# ------------------------------------------------------------------ hand-written bytes


def test_keyed_descriptor_bytes():
    d = W.keyed(0x1122334455667788, 0x123456, 0xAABBCCDD, invalidate=True)
    assert d.encode() == bytes.fromhex("8877665544332211" "563412" "ddccbbaa" "4f")
    assert W.keyed(0, 1, 0).encode()[15] == 0x40


def test_unkeyed_descriptor_bytes():
    assert W.data_block_offset(0x10, 0x1000).encode() == bytes.fromhex(
        "1000000000000000" "00100000" "000000" "01")
    assert W.last_segment(0, 3).encode() == bytes.fromhex(
        "0000000000000000" "30000000" "000000" "31")
    raw = bytes.fromhex("0100000000000000" "ffffffff" "aabbcc" "2e")
    d = W.SglDescriptor.decode(raw)
    assert (d.address, d.length, d.key, d.type, d.subtype, d.reserved) == (
        1, 0xFFFFFFFF, 0, 2, 0xE, b"\xaa\xbb\xcc")


def test_sqe_bytes():
    sqe = W.Sqe.io(W.OPC_READ, 0x1234, 5, slba=0x1_0000_0002, nlb=7,
                   sgl1=W.keyed(0x1000, 4096, 0x77))
    b = sqe.encode()
    assert len(b) == 64
    assert b[0] == 0x02 and b[1] == 0x40          # PSDT 01b in bits 7:6, FUSE 0
    assert b[2:4] == b"\x34\x12" and b[4:8] == b"\x05\0\0\0"
    assert b[24:40] == W.keyed(0x1000, 4096, 0x77).encode()
    assert b[40:44] == b"\x02\0\0\0" and b[44:48] == b"\x01\0\0\0" and b[48:52] == b"\x07\0\0\0"
    assert sqe.slba == 0x1_0000_0002 and sqe.nlb == 7
    flags = W.Sqe(fuse=2, rsvd=0xF, psdt=3).encode()[1]
    assert flags == 0b11_1111_10


def test_connect_and_property_bytes():
    b = W.ConnectSqe(cid=9, qid=3, sqsize=0x7F, cattr=0x4, kato=0x11223344, recfmt=0).encode()
    assert b[0] == 0x7F and b[2:4] == b"\x09\0" and b[4] == 0x01
    assert b[40:42] == b"\0\0" and b[42:44] == b"\x03\0" and b[44:46] == b"\x7f\0"
    assert b[46] == 4 and b[48:52] == bytes.fromhex("44332211")
    assert b[24:40] == W.data_block_offset(0, 1024).encode()
    p = W.PropertySqe(W.FCTYPE_PROPERTY_SET, 1, 0x14, 1, 0x0102030405060708).encode()
    assert p[4] == 0 and p[40] == 1 and p[44:48] == b"\x14\0\0\0"
    assert p[48:56] == bytes.fromhex("0807060504030201")


def test_connect_data_bytes():
    d = W.ConnectData.make("nqn.sub", "nqn.host", bytes(range(16)), cntlid=0xFFFF).encode()
    assert d[:16] == bytes(range(16)) and d[16:18] == b"\xff\xff"
    assert d[256:263] == b"nqn.sub" and d[263] == 0 and d[512:520] == b"nqn.host"
    assert W.ConnectData.decode(d).subnqn == b"nqn.sub"


def test_cm_private_data_bytes():
    b = W.CmRequestPrivateData(0, 2, 0x80, 0x7F, 0x1234).encode()
    assert b == bytes.fromhex("0000" "0200" "8000" "7f00" "3412") + bytes(22)
    assert W.CmAcceptPrivateData(0, 0x40).encode() == bytes.fromhex("00004000") + bytes(28)
    assert W.CmRejectPrivateData(0, W.RDMA_STS_INVALID_HRQSIZE).encode() == b"\0\0\x05\0"
    padded = b + bytes(24)
    assert W.CmRequestPrivateData.decode(padded, exact=False).qid == 2
    with pytest.raises(ValueError, match="expected 32 bytes, got 56"):
        W.CmRequestPrivateData.decode(padded)


def test_cqe_status_word_packing():
    cqe = W.Cqe.make(7, 0x182, dnr=True, phase=1)
    assert cqe.status_word == 0x8000 | 1 << 9 | 0x82 << 1 | 1
    assert cqe.encode()[14:16] == (0x8000 | 1 << 9 | 0x82 << 1 | 1).to_bytes(2, "little")
    assert (cqe.sct, cqe.sc, cqe.dnr, cqe.phase, cqe.crd, cqe.more, cqe.status) == (
        1, 0x82, True, 1, 0, False, 0x182)
    w = W.Cqe.make(1, 0x00F, crd=3, more=True)
    assert w.status_word == 0x0F << 1 | 3 << 12 | 1 << 14
    assert (w.crd, w.more, w.dnr, w.phase) == (3, True, False, 0)
    b = W.Cqe(cdw0=0x11223344, sqhd=5, sqid=2, cid=0xBEEF).encode()
    assert b == bytes.fromhex("44332211" "00000000" "0500" "0200" "efbe" "0000")


@SOME
@given(st.integers(0, 0x7FF), st.booleans(), st.integers(0, 1), st.integers(0, 3),
       st.booleans())
def test_status_word_fields_round_trip(status, dnr, phase, crd, more):
    c = W.Cqe.make(0, status, dnr=dnr, phase=phase, crd=crd, more=more)
    assert (c.status, c.dnr, c.phase, c.crd, c.more) == (status, dnr, phase, crd, more)


def test_status_names():
    assert W.status_name(0x182) == "CONNECT_INVALID_PARAMETERS"
    assert W.status_name(0x00F) == "DATA_SGL_LENGTH_INVALID"
    assert W.status_name(0x0199) == "SCT1h/SC99h"
    for value in nvme.STATUS_NAMES:    # every status the suite speaks of has a name here
        assert not W.status_name(value).startswith("SCT"), hex(value)
    with pytest.raises(ValueError, match="status"):
        W.status_name(0x800)


def test_constants_match_strategies_nvme():
    for name in ("OPC_FLUSH", "OPC_WRITE", "OPC_READ", "OPC_ABORT", "OPC_IDENTIFY",
                 "OPC_KEEP_ALIVE", "OPC_FABRICS", "FCTYPE_PROPERTY_SET", "FCTYPE_CONNECT",
                 "FCTYPE_PROPERTY_GET", "SGL_TYPE_DATA_BLOCK", "SGL_TYPE_LAST_SEGMENT",
                 "SGL_TYPE_KEYED_DATA", "SGL_SUBTYPE_ADDRESS", "SGL_SUBTYPE_OFFSET",
                 "SGL_SUBTYPE_INVALIDATE", "SC_SUCCESS", "SC_INVALID_OPCODE",
                 "SC_INVALID_FIELD", "SC_INVALID_NAMESPACE", "SC_COMMAND_SEQUENCE_ERROR",
                 "SC_INVALID_SGL_SEG_DESC", "SC_INVALID_NUM_SGL_DESC",
                 "SC_DATA_SGL_LENGTH_INVALID", "SC_SGL_DESC_TYPE_INVALID",
                 "SC_SGL_OFFSET_INVALID", "SC_LBA_OUT_OF_RANGE", "SC_NAMESPACE_NOT_READY"):
        assert getattr(W, name) == getattr(nvme, name), name
    assert W.SC_CONNECT_INVALID_PARAMETERS == nvme.SC_CONNECT_INVALID_PARAM


# ----------------------------------------------------------------------- ValueErrors


@pytest.mark.parametrize(("cls", "size"), [
    (W.SglDescriptor, 16), (W.Sqe, 64), (W.Cqe, 16), (W.ConnectData, 1024),
    (W.CmRequestPrivateData, 32), (W.CmAcceptPrivateData, 32), (W.CmRejectPrivateData, 4),
    (W.ConnectSqe, 64), (W.PropertySqe, 64)])
def test_decode_rejects_wrong_sizes(cls, size):
    for n in (0, size - 1, size + 1):
        with pytest.raises(ValueError, match=f"{cls.__name__}.decode: expected {size} bytes"):
            cls.decode(bytes(n))
    with pytest.raises(ValueError, match="expected bytes"):
        cls.decode("x" * size)
    with pytest.raises(ValueError, match="at least 64"):
        W.Capsule.decode(bytes(63))


@pytest.mark.parametrize(("build", "field"), [
    (lambda: W.SglDescriptor(0, 1 << 24, 0, W.SGL_TYPE_KEYED_DATA).encode(), "length"),
    (lambda: W.keyed(0, 1 << 24, 1), "length"),
    (lambda: W.SglDescriptor(0, 1, 1 << 32, W.SGL_TYPE_KEYED_DATA).encode(), "key"),
    (lambda: W.SglDescriptor(1 << 64).encode(), "address"),
    (lambda: W.SglDescriptor(0, 1 << 32).encode(), "length"),
    (lambda: W.SglDescriptor(type=16).encode(), "type"),
    (lambda: W.SglDescriptor(subtype=-1).encode(), "subtype"),
    (lambda: W.SglDescriptor(key=5).encode(), "key"),
    (lambda: W.SglDescriptor(type=4, reserved=b"\1\0\0").encode(), "reserved"),
    (lambda: W.SglDescriptor(reserved=b"\0").encode(), "reserved"),
    (lambda: W.Sqe(cid=1 << 16).encode(), "cid"),
    (lambda: W.Sqe(psdt=4).encode(), "psdt"),
    (lambda: W.Sqe(fuse=4).encode(), "fuse"),
    (lambda: W.Sqe(rsvd=16).encode(), "rsvd"),
    (lambda: W.Sqe(opc=256).encode(), "opc"),
    (lambda: W.Sqe(cdw15=-1).encode(), "cdw15"),
    (lambda: W.Sqe.io(W.OPC_READ, 0, 1, nlb=1 << 16, sgl1=W.keyed(0, 1, 1)), "nlb"),
    (lambda: W.Cqe(status_word=1 << 16).encode(), "status_word"),
    (lambda: W.Cqe.make(0, 0x800), "status"),
    (lambda: W.Cqe.make(0, 0, crd=4), "crd"),
    (lambda: W.ConnectSqe(sqsize=1 << 16).encode(), "sqsize"),
    (lambda: W.ConnectSqe(kato=1 << 32).encode(), "kato"),
    (lambda: W.PropertySqe(ofst=1 << 32).encode(), "ofst"),
    (lambda: W.ConnectData(hostid=b"x").encode(), "hostid"),
    (lambda: W.ConnectData(subnqn=b"x" * 257).encode(), "subnqn"),
    (lambda: W.ConnectData.make("", "nqn.h"), "subnqn"),
    (lambda: W.CmRequestPrivateData(hrqsize=1 << 16).encode(), "hrqsize"),
    (lambda: W.CmAcceptPrivateData(crqsize=-1).encode(), "crqsize"),
    (lambda: W.CmRejectPrivateData(sts=1 << 16).encode(), "sts"),
    (lambda: W.data_block_offset(0, 0), "length"),
    (lambda: W.last_segment(0, 0), "length"),
    (lambda: W.Capsule.io(W.OPC_WRITE, 0, 1, 0, 0, [W.keyed(0, 512, 1)], icd=b"x"),
     "descriptors"),
    (lambda: W.Capsule.io(W.OPC_WRITE, 0, 1, 0, 0, [W.keyed(0, 8, 1),
                                                    W.data_block_offset(0, 8)]), "descriptors"),
])
def test_out_of_range_fields_raise_naming_the_field(build, field):
    with pytest.raises(ValueError, match=field):
        build()


def test_replace_is_the_unchecked_path():
    good = W.keyed(0x1000, 512, 0x42)
    bad = good.replace(subtype=3)
    assert bad.encode()[15] == 0x43            # encodable: it fits its fields
    with pytest.raises(ValueError, match="subtype"):
        bad.check()
    sqe = W.Sqe.io(W.OPC_WRITE, 1, 1, 0, 0, good).replace(psdt=W.PSDT_PRP, fuse=1)
    assert sqe.encode()[1] == 0x01
    with pytest.raises(ValueError, match="psdt"):
        sqe.check()
    with pytest.raises(ValueError, match="fuse"):
        sqe.replace(psdt=1).check()


def test_capsule_io_layouts():
    a, b = W.keyed(0x1000, 512, 7), W.keyed(0x9000, 1536, 7, invalidate=True)
    one = W.Capsule.io(W.OPC_READ, 1, 1, 0, 0, [a])
    assert one.sqe.sgl1 == a and one.data == b"" and one.sgl_length == 512
    two = W.Capsule.io(W.OPC_WRITE, 2, 1, 4, 3, [a, b])
    assert two.sqe.sgl1 == W.last_segment(0, 2)
    assert two.data == a.encode() + b.encode()
    assert two.list_descriptors() == (a, b) and two.sgl_length == 2048
    icd = W.Capsule.io(W.OPC_WRITE, 3, 1, 0, 0, icd=b"z" * 512)
    assert icd.sqe.sgl1 == W.data_block_offset(0, 512) and icd.data == b"z" * 512
    flush = W.Capsule.io(W.OPC_FLUSH, 4, 1, 0, 0)
    assert flush.sqe.sgl1 == W.NULL_SGL and flush.data_descriptors() == ()
    assert W.Capsule.decode(two.encode()) == two


# --------------------------------------------------------------- layout against C


_C_TEMPLATE = r"""
#include <stddef.h>
#include <stdio.h>
#include "nvmf_wire.h"
#define F(s, f) printf("F %s %s %zu %zu\n", #s, #f, offsetof(struct s, f), \
                       sizeof(((struct s *)0)->f));
#define S(s) printf("S %s %zu\n", #s, sizeof(struct s));
#define C(n) printf("C %s %lu\n", #n, (unsigned long)(n));
int main(void) {
@BODY@
    return 0;
}
"""


def test_layout_matches_nvmf_wire_h(tmp_path):
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        pytest.skip("no C compiler")
    csrc = Path(__file__).resolve().parent.parent / "impl" / "csrc"
    body = []
    for struct_name, fields in W.LAYOUT.items():
        body.append(f"    S({struct_name})")
        body.extend(f"    F({struct_name}, {f})" for f in fields)
    consts = {
        "NVMF_SQE_SIZE": W.SQE_SIZE, "NVMF_CQE_SIZE": W.CQE_SIZE,
        "NVMF_SGL_DESC_SIZE": W.SGL_DESC_SIZE, "NVMF_CONNECT_DATA_SIZE": W.CONNECT_DATA_SIZE,
        "NVMF_CM_PRIVATE_DATA_SIZE": W.CM_REQUEST_SIZE,
        "NVME_SGL_TYPE_DATA_BLOCK": W.SGL_TYPE_DATA_BLOCK,
        "NVME_SGL_TYPE_BIT_BUCKET": W.SGL_TYPE_BIT_BUCKET,
        "NVME_SGL_TYPE_SEGMENT": W.SGL_TYPE_SEGMENT,
        "NVME_SGL_TYPE_LAST_SEGMENT": W.SGL_TYPE_LAST_SEGMENT,
        "NVME_SGL_TYPE_KEYED_DATA": W.SGL_TYPE_KEYED_DATA,
        "NVME_SGL_TYPE_TRANSPORT_DATA": W.SGL_TYPE_TRANSPORT_DATA,
        "NVME_SGL_SUBTYPE_ADDRESS": W.SGL_SUBTYPE_ADDRESS,
        "NVME_SGL_SUBTYPE_OFFSET": W.SGL_SUBTYPE_OFFSET,
        "NVME_SGL_SUBTYPE_INVALIDATE": W.SGL_SUBTYPE_INVALIDATE,
        **{f"NVMF_{k}": getattr(W, k) for k in dir(W) if k.startswith("RDMA_STS_")},
        # the header's status-word macro against the codec's packing
        "NVME_CQE_STATUS(0x182, 1)": W.status_word(0x182, dnr=True),
        "NVME_CQE_STATUS(0x00F, 0)": W.status_word(0x00F),
        "NVME_CQE_SC(0x8305)": W.Cqe(status_word=0x8305).sc,
        "NVME_CQE_SCT(0x8305)": W.Cqe(status_word=0x8305).sct,
        "NVME_CQE_DNR(0x8305)": int(W.Cqe(status_word=0x8305).dnr),
        "NVME_CQE_PHASE(0x8305)": W.Cqe(status_word=0x8305).phase,
    }
    body.extend(f"    C({name})" for name in consts)
    src = tmp_path / "layout.c"
    src.write_text(_C_TEMPLATE.replace("@BODY@", "\n".join(body)))
    exe = tmp_path / "layout"
    subprocess.run([gcc, "-std=c11", "-Wall", "-Werror", "-I", str(csrc), str(src), "-o",
                    str(exe)], check=True, capture_output=True, timeout=120)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True,
                         timeout=30).stdout
    seen_f, seen_s, seen_c = {}, {}, {}
    for line in out.splitlines():
        tag, *rest = line.split(" ")
        if tag == "F":
            seen_f[(rest[0], rest[1])] = (int(rest[2]), int(rest[3]))
        elif tag == "S":
            seen_s[rest[0]] = int(rest[1])
        else:
            seen_c[" ".join(rest[:-1])] = int(rest[-1])
    want_f = {(s, f): v for s, fields in W.LAYOUT.items() for f, v in fields.items()}
    assert seen_f == want_f
    assert seen_s == W.SIZES
    assert seen_c == consts

    # and the codec writes each field where the header says it is
    sgl = W.keyed(0x0102030405060708, 0x0A0B0C, 0x11121314).encode()
    o, n = W.LAYOUT["nvme_sgl_keyed"]["key"]
    assert sgl[o:o + n] == (0x11121314).to_bytes(4, "little")
    o, n = W.LAYOUT["nvme_sgl_keyed"]["length"]
    assert sgl[o:o + n] == (0x0A0B0C).to_bytes(3, "little")
    sqe = W.ConnectSqe(cid=0x0102, qid=0x0304, sqsize=0x0506, cattr=0x07,
                       kato=0x08090A0B).encode()
    for f, v in (("cid", 0x0102), ("qid", 0x0304), ("sqsize", 0x0506), ("cattr", 0x07),
                 ("kato", 0x08090A0B), ("fctype", 1), ("opc", 0x7F)):
        o, n = W.LAYOUT["nvmf_connect_sqe"][f]
        assert sqe[o:o + n] == v.to_bytes(n, "little"), f
    prop = W.PropertySqe(W.FCTYPE_PROPERTY_SET, 0, 0x14, 1, 0x0102030405060708).encode()
    for f, v in (("attrib", 1), ("ofst", 0x14), ("value", 0x0102030405060708)):
        o, n = W.LAYOUT["nvmf_property_sqe"][f]
        assert prop[o:o + n] == v.to_bytes(n, "little"), f
    req = W.CmRequestPrivateData(1, 2, 3, 4, 5).encode()
    for i, f in enumerate(("recfmt", "qid", "hrqsize", "hsqsize", "cntlid")):
        o, n = W.LAYOUT["nvmf_rdma_request_private_data"][f]
        assert req[o:o + n] == (i + 1).to_bytes(n, "little"), f
    cd = W.ConnectData.make("nqn.s", "nqn.h", bytes(16), cntlid=0x0102).encode()
    for f, v in (("cntlid", b"\x02\x01"), ("subnqn", b"nqn.s"), ("hostnqn", b"nqn.h")):
        o, _ = W.LAYOUT["nvmf_connect_data"][f]
        assert cd[o:o + len(v)] == v, f


# ------------------------------------------------------- reference parser (from the spec)

_ADMIN = {W.OPC_IDENTIFY, W.OPC_ABORT, W.OPC_SET_FEATURES, W.OPC_GET_FEATURES,
          W.OPC_KEEP_ALIVE}


def _ref_sgl(cap, lim):
    """(status, total length) of the data SGL, by NVMe base 4.4 / NVMe-oF RDMA rules."""
    s, data = cap.sqe.sgl1, cap.data
    if s.type == W.SGL_TYPE_KEYED_DATA:
        if s.subtype not in (0, 0xF):
            return W.SC_SGL_DESC_TYPE_INVALID, 0
        descs = [s]
    elif s.type == W.SGL_TYPE_DATA_BLOCK:
        if s.subtype != W.SGL_SUBTYPE_OFFSET:
            return W.SC_SGL_DESC_TYPE_INVALID, 0
        if cap.sqe.data_direction != 1:
            return W.SC_INVALID_FIELD, 0
        if s.address > len(data):
            return W.SC_SGL_OFFSET_INVALID, 0
        if s.length > lim.in_capsule_data_size or s.address + s.length > len(data):
            return W.SC_DATA_SGL_LENGTH_INVALID, 0
        descs = [s]
    elif s.type == W.SGL_TYPE_LAST_SEGMENT:
        if s.subtype != W.SGL_SUBTYPE_OFFSET:
            return W.SC_SGL_DESC_TYPE_INVALID, 0
        if s.length == 0 or s.length % 16:
            return W.SC_INVALID_SGL_SEG_DESC, 0
        if s.length // 16 > lim.max_sgl_descriptors:
            return W.SC_INVALID_NUM_SGL_DESC, 0
        if s.address + s.length > len(data):
            return W.SC_INVALID_SGL_SEG_DESC, 0
        descs = list(cap.list_descriptors())
        for d in descs:
            if d.type in (W.SGL_TYPE_SEGMENT, W.SGL_TYPE_LAST_SEGMENT):
                return W.SC_INVALID_SGL_SEG_DESC, 0
            if d.type != W.SGL_TYPE_KEYED_DATA or d.subtype not in (0, 0xF):
                return W.SC_SGL_DESC_TYPE_INVALID, 0
    else:
        return W.SC_SGL_DESC_TYPE_INVALID, 0
    total = sum(d.length for d in descs)
    if any(d.length == 0 for d in descs) or total > lim.max_io_size:
        return W.SC_DATA_SGL_LENGTH_INVALID, 0
    return 0, total


def _ref_status(cap, lim, queue):
    sqe = cap.sqe
    connect = sqe.is_fabrics and sqe.fctype == W.FCTYPE_CONNECT
    if queue.endswith("unconnected"):
        if not connect:
            return W.SC_COMMAND_SEQUENCE_ERROR
        c = W.ConnectSqe.from_sqe(sqe)
        if c.recfmt:
            return W.SC_CONNECT_INCOMPATIBLE_FORMAT
        if c.sqsize == 0 or c.sqsize >= lim.max_queue_depth:
            return W.SC_CONNECT_INVALID_PARAMETERS
        if W.ConnectData.decode(cap.data[:1024]).subnqn != lim.subnqn.encode():
            return W.SC_CONNECT_INVALID_PARAMETERS
        return 0
    if sqe.is_fabrics:
        if connect:
            return W.SC_COMMAND_SEQUENCE_ERROR
        if sqe.fctype in (W.FCTYPE_PROPERTY_GET, W.FCTYPE_PROPERTY_SET):
            return 0 if queue == "admin" else W.SC_INVALID_OPCODE
        return W.SC_INVALID_OPCODE
    if sqe.opc not in (_ADMIN if queue == "admin" else {0, 1, 2}):
        return W.SC_INVALID_OPCODE
    if sqe.psdt != W.PSDT_SGL_MPTR_CONTIG or sqe.fuse:
        return W.SC_INVALID_FIELD
    total = 0
    if sqe.data_direction:
        sc, total = _ref_sgl(cap, lim)
        if sc:
            return sc
    if queue == "io":
        if not 1 <= sqe.nsid <= len(lim.namespaces):
            return W.SC_INVALID_NAMESPACE
        ns = lim.namespaces[sqe.nsid - 1]
        if sqe.opc != W.OPC_FLUSH:
            if sqe.slba + sqe.nlb + 1 > ns.num_blocks:
                return W.SC_LBA_OUT_OF_RANGE
            if total != (sqe.nlb + 1) * ns.block_size:
                return W.SC_DATA_SGL_LENGTH_INVALID
    return 0


LIMITS = {
    "default": sw.WireLimits(),
    "small": sw.WireLimits(in_capsule_data_size=512, max_io_size=16384, max_sgl_descriptors=4,
                           max_queue_depth=32, max_qid=3,
                           namespaces=(Namespace(4096, 64), Namespace(512, 100)),
                           regions=(sw.Region(0xA, 0x1000, 8192), sw.Region(0xB, 0, 65536))),
    "tight": sw.WireLimits(in_capsule_data_size=8192, max_io_size=8192, max_sgl_descriptors=1,
                           max_queue_depth=4096, max_qid=65535,
                           namespaces=(Namespace(512, 16),),
                           regions=(sw.Region(0xFFFF_FFFF, 2**64 - 4096, 4096),)),
}


def _in_some_region(d, lim):
    return any(d.key == r.rkey and r.iova <= d.address and d.address + d.length <= r.iova
               + r.size for r in lim.regions)


@pytest.mark.parametrize("name", LIMITS)
def test_io_capsules_are_valid_and_cover_the_transfer(name):
    lim = LIMITS[name]

    @SOME
    @given(sw.io_capsules(lim))
    def check(cap):
        sqe = cap.sqe
        sqe.check()
        assert W.Capsule.decode(cap.encode()) == cap
        assert _ref_status(cap, lim, "io") == 0
        if sqe.opc == W.OPC_FLUSH:
            assert cap.data_descriptors() == () and cap.data == b""
            return
        ns = lim.namespaces[sqe.nsid - 1]
        descs = cap.data_descriptors()
        assert sum(d.length for d in descs) == (sqe.nlb + 1) * ns.block_size
        assert (sqe.nlb + 1) * ns.block_size <= lim.max_io_size
        if sqe.sgl1.type == W.SGL_TYPE_DATA_BLOCK:
            assert sqe.opc == W.OPC_WRITE and len(cap.data) == sqe.sgl1.length
            assert len(cap.data) <= lim.in_capsule_data_size
        else:
            assert len(descs) <= lim.max_sgl_descriptors
            assert len(cap.data) <= lim.in_capsule_data_size
            assert all(_in_some_region(d, lim) for d in descs)

    check()


@pytest.mark.parametrize("kind", list(sw.WIRE_KINDS))
def test_every_malformed_kind_is_reachable_and_gets_its_status(kind):
    lim = LIMITS["default"]
    assert kind in sw.feasible_wire_kinds(lim)
    info = sw.WIRE_KINDS[kind]

    @settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
    @given(sw.malformed_capsules(lim, kinds=(kind,)))
    def check(m):
        assert m.kind == kind and m.expected_status == info.status
        assert m.citation == info.citation and m.citation
        raw = m.capsule.encode()
        assert W.Capsule.decode(raw) == m.capsule
        assert len(raw) <= 64 + max(lim.in_capsule_data_size, 1024)
        got = _ref_status(m.capsule, lim, info.queue)
        assert info.accepts(got), (W.status_name(got), m)

    check()


@pytest.mark.parametrize("name", ["small", "tight"])
def test_malformed_capsules_under_other_limits(name):
    lim = LIMITS[name]
    feasible = sw.feasible_wire_kinds(lim)
    assert "io_invalid_opcode" in feasible

    @SOME
    @given(sw.malformed_capsules(lim))
    def check(m):
        info = sw.WIRE_KINDS[m.kind]
        assert m.kind in feasible
        assert len(m.capsule.encode()) <= 64 + max(lim.in_capsule_data_size, 1024)
        assert info.accepts(_ref_status(m.capsule, lim, info.queue)), m

    check()


def test_infeasible_kinds_are_refused():
    lim = LIMITS["tight"]   # max_sgl_descriptors 1, max_io_size = ICD: no list kinds
    assert "list_length_too_large" not in sw.feasible_wire_kinds(lim)
    assert "icd_length_too_large" not in sw.feasible_wire_kinds(lim)
    with pytest.raises(ValueError, match="cannot be built"):
        sw.malformed_capsules(lim, kinds=("icd_length_too_large",))
    with pytest.raises(ValueError, match="unknown malformed kind"):
        sw.malformed_capsules(kinds=("nope",))


@FEW
@given(sw.connect_capsules())
def test_connect_capsules_are_valid(cap):
    assert _ref_status(cap, sw.WireLimits(), "admin_unconnected") == 0
    assert len(cap.data) == 1024 and cap.sqe.sgl1 == W.data_block_offset(0, 1024)


# ----------------------------------------------------------------- SGL descriptor kinds


def _sgl_valid_under(d, lim):
    try:
        d.check()
    except ValueError:
        return False
    if d.is_keyed:
        return d.length <= lim.max_io_size and _in_some_region(d, lim)
    if d.type == W.SGL_TYPE_DATA_BLOCK:
        return d.address + d.length <= lim.in_capsule_data_size
    return (d.length // 16 <= lim.max_sgl_descriptors
            and d.address + d.length <= lim.in_capsule_data_size)


@pytest.mark.parametrize("name", ["default", "small"])
def test_sgl_descriptor_kinds(name):
    lim = LIMITS[name]

    @SOME
    @given(sw.sgl_descriptors(lim, tagged=True, dirty_reserved=False))
    def check(tagged):
        kind, d = tagged
        d.encode()
        assert _sgl_valid_under(d, lim) == (kind in sw.VALID_SGL_KINDS), (kind, d)
        if kind == "keyed_invalidate":
            assert d.subtype == W.SGL_SUBTYPE_INVALIDATE
        if kind == "segment":
            assert d.type == W.SGL_TYPE_SEGMENT
        if kind == "bit_bucket":
            assert d.type == W.SGL_TYPE_BIT_BUCKET

    check()


@pytest.mark.parametrize("kind", sw.SGL_KINDS)
def test_each_sgl_kind_is_drawable(kind):
    lim = LIMITS["small"]

    @settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
    @given(sw.sgl_descriptors(lim, kinds=(kind,), tagged=True))
    def check(tagged):
        assert tagged[0] == kind
        assert _sgl_valid_under(tagged[1], lim) == (kind in sw.VALID_SGL_KINDS)

    check()


@FEW
@given(sw.sgl_descriptors(kinds=("data_block_offset", "last_segment"), dirty_reserved=True))
def test_dirty_reserved_round_trips(d):
    assert W.SglDescriptor.decode(d.encode()) == d


# ------------------------------------------------------------------ CM private data


def _cm_oracle(raw, lim):
    if len(raw) < W.CM_REQUEST_SIZE:
        return W.RDMA_STS_INVALID_PRIVATE_DATA_LENGTH
    r = W.CmRequestPrivateData.decode(raw, exact=False)
    if r.recfmt:
        return W.RDMA_STS_INVALID_RECFMT
    if r.qid > lim.max_qid:
        return W.RDMA_STS_INVALID_QID
    if not 1 <= r.hrqsize <= lim.max_queue_depth:
        return W.RDMA_STS_INVALID_HRQSIZE
    if not 1 <= r.hsqsize < lim.max_queue_depth:
        return W.RDMA_STS_INVALID_HSQSIZE
    return "accept"


@pytest.mark.parametrize("name", LIMITS)
def test_cm_private_data_expectations_match_fields(name):
    lim = LIMITS[name]

    @SOME
    @given(sw.cm_private_data(lim, tagged=True, dirty_reserved=True))
    def check(t):
        raw, expected, kind = t
        assert expected == sw.CM_KINDS[kind] == _cm_oracle(raw, lim), (kind, raw.hex())
        if expected == "accept":
            assert 32 <= len(raw) <= 56

    check()


@pytest.mark.parametrize("kind", sw.CM_KINDS)
@pytest.mark.parametrize("name", ["default", "small"])
def test_each_cm_kind_is_drawable(name, kind):
    lim = LIMITS[name]

    @settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
    @given(sw.cm_private_data(lim, kinds=(kind,), tagged=True))
    def check(t):
        raw, expected, got_kind = t
        assert got_kind == kind and expected == sw.CM_KINDS[kind] == _cm_oracle(raw, lim)

    check()


@FEW
@given(sw.cm_private_data(kinds=("short",)))
def test_cm_untagged_pairs(pair):
    raw, expected = pair
    assert len(raw) < 32 and expected == W.RDMA_STS_INVALID_PRIVATE_DATA_LENGTH


def test_codec_imports_only_the_standard_library():
    # impl/wire.py must work without the compiled target (impl/_nrt) or cffi
    tree = ast.parse(Path(W.__file__).read_text())
    mods = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
            for a in n.names}
    mods |= {n.module.split(".")[0] for n in ast.walk(tree)
             if isinstance(n, ast.ImportFrom) and n.module}
    assert mods <= {"__future__", "dataclasses", "struct", "typing"}, mods


def test_module_docstring_table_matches_wire_kinds():
    import re
    rows = {}
    for line in (sw.__doc__ or "").splitlines():
        m = re.match(r"\s{4}(\w+)\s+([0-9A-F]{4})h((?:\s+[0-9A-F]{4}h)*)\s+(\w+)", line)
        if m and m.group(1) in sw.WIRE_KINDS:
            rows[m.group(1)] = (int(m.group(2), 16),
                                tuple(int(x[:-1], 16) for x in m.group(3).split()), m.group(4))
    assert rows == {k: (v.status, v.alternatives, v.queue) for k, v in sw.WIRE_KINDS.items()}
