"""Wire-level strategies: SQEs, SGL descriptors, capsules and RDMA CM private data as bytes
on the wire, every field drawn (reserved fields and bits, offsets, lengths included).

Where ``strategies.commands`` / ``strategies.malformed`` describe commands for a harness to
build, this module builds the 64-byte SQE and its in-capsule bytes itself with the codec in
``impl/wire.py`` (a transport under test can be fed ``capsule.encode()`` directly).

The codec is loaded without the compiled target: ``impl/__init__`` imports the C extension,
``impl/wire.py`` does not, so when ``impl`` cannot be imported (not built) the file is loaded
on its own; ``codec`` is the module either way (use its classes, so equality holds).

==========================  ==================================================================
strategy                    draws
==========================  ==================================================================
``any_sgl_descriptors``     any encodable descriptor: every field over its full width
``sgl_descriptors``         descriptors of named kinds (``SGL_KINDS``), valid and malformed
``sqes``                    any encodable SQE: every field over its full width
``io_capsules``             valid NVM Read/Write/Flush capsules under ``WireLimits``
``connect_capsules``        valid admin Connect capsules (SQE + 1024-byte data in-capsule)
``malformed_capsules``      ``MalformedCapsule(capsule, expected_status, kind, citation)``
``cm_private_data``         ``(bytes, "accept" | RDMA_STS_*)`` connect private data (CONN-1)
==========================  ==================================================================

Malformed kinds (``WIRE_KINDS``; exactly one thing is wrong in each, on top of a capsule
``io_capsules`` / ``connect_capsules`` would draw; "alt" = also acceptable)::

    kind                          status  alt          queue
    sgl_type_reserved             0011h                io     SGL1 type 5h..Eh
    sgl_segment                   0011h   000Dh        io     SGL1 type 2h (Segment)
    sgl_bit_bucket                0011h                io     SGL1 type 1h (Bit Bucket)
    keyed_bad_subtype             0011h                io     keyed subtype 1h..Eh
    data_block_bad_subtype        0011h                io     data block subtype != 1h
    last_segment_bad_subtype      0011h   000Dh        io     last segment subtype != 1h
    icd_offset_past_capsule       0016h   000Fh        io     in-capsule offset > bytes sent
    icd_length_too_large          000Fh                io     in-capsule length > ICD size
    keyed_length_too_large        000Fh                io     keyed length > max_io_size
    list_length_too_large         000Fh                io     list total > max_io_size
    sgl_length_mismatch           000Fh                io     SGL length != (nlb+1)*bs
    keyed_zero_length             000Fh                io     keyed length 0
    list_too_many_descriptors     000Eh   000Dh        io     > max_sgl_descriptors entries
    last_segment_zero_length      000Dh   000Eh        io     last segment length 0
    last_segment_not_multiple     000Dh                io     length % 16 != 0
    last_segment_past_capsule     000Dh   0016h        io     list runs past bytes sent
    list_entry_segment            000Dh   0011h        io     list holds a (last) segment
    list_entry_not_keyed          0011h   000Dh        io     list holds a non-keyed entry
    io_invalid_opcode             0001h                io     reserved NVM opcode
    admin_invalid_opcode          0001h                admin  reserved admin opcode
    fabrics_invalid_fctype        0001h   0002h        admin  reserved fabrics FCTYPE
    invalid_namespace             000Bh                io     nsid 0, unknown, FFFFFFFFh
    lba_out_of_range              0080h                io     slba + nlb + 1 > num_blocks
    psdt_prp                      0002h                io     PSDT 00b
    psdt_not_01b                  0002h                io     PSDT 10b / 11b
    fuse_set                      0002h   000Ah 0009h  io     FUSE != 00b
    io_before_connect             000Ch                io_unconnected
    admin_before_connect          000Ch                admin_unconnected
    connect_twice                 000Ch                admin  Connect on a connected queue
    connect_incompatible_format   0180h                admin_unconnected  RECFMT != 0
    connect_sqsize_zero           0182h                admin_unconnected  SQSIZE 0
    connect_sqsize_too_large      0182h                admin_unconnected  SQSIZE >= depth
    connect_unknown_subnqn        0182h   0184h        admin_unconnected  unknown SUBNQN

Assumption a target may not share: SGL checks come before namespace / LBA checks (every SGL
kind uses a valid namespace and LBA range anyway, so only the order among SGL checks
matters, and the alternatives cover the orders seen in SPDK and the Linux target).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Final, Literal, NamedTuple

from hypothesis import strategies as st
from hypothesis.strategies import DrawFn, SearchStrategy

from strategies.types import Namespace, TransportOptions


def _load_codec() -> ModuleType:
    try:
        return importlib.import_module("impl.wire")
    except ImportError:   # impl/__init__ needs the compiled target; impl/wire.py does not
        pass
    name = "impl_wire_standalone"
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).resolve().parent.parent / "impl" / "wire.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


#: The codec module (``impl.wire``, or the same file loaded alone when ``impl`` is not built).
codec: Final = _load_codec()
W = codec
Capsule = W.Capsule
Sqe = W.Sqe
SglDescriptor = W.SglDescriptor

__all__ = [
    "CM_KINDS",
    "SGL_KINDS",
    "WIRE_KINDS",
    "MalformedCapsule",
    "Region",
    "WireKind",
    "WireLimits",
    "any_sgl_descriptors",
    "cm_private_data",
    "codec",
    "connect_capsules",
    "feasible_wire_kinds",
    "io_capsules",
    "malformed_capsules",
    "sgl_descriptors",
    "sqes",
]

U16, U32, U64 = 0xFFFF, 0xFFFF_FFFF, 0xFFFF_FFFF_FFFF_FFFF

# --------------------------------------------------------------------------- limits


@dataclass(frozen=True)
class Region:
    """A registered host memory region: ``size`` bytes at ``iova`` under remote key
    ``rkey`` (what keyed descriptors point into)."""

    rkey: int
    iova: int
    size: int


@dataclass(frozen=True)
class WireLimits:
    """What the target under test advertises / was configured with.

    ``in_capsule_data_size`` (IOCCSZ * 16 - 64), ``max_io_size`` (MDTS in bytes),
    ``max_sgl_descriptors`` (MSDBD), ``max_queue_depth`` (CAP.MQES + 1; also the CM queue
    size limit), ``max_qid`` (largest IO queue id a host may connect), ``namespaces``
    (nsid = index + 1), host ``regions``, and the NQNs a Connect names."""

    in_capsule_data_size: int = 4096
    max_io_size: int = 131072
    max_sgl_descriptors: int = 16
    max_queue_depth: int = 128
    max_qid: int = 255
    namespaces: tuple[Namespace, ...] = (Namespace(512, 4096),)
    regions: tuple[Region, ...] = (Region(0x1234_5678, 0x7F00_0000_0000, 1 << 20),)
    subnqn: str = "nqn.2016-06.io.nrt:subsystem0"
    hostnqn: str = "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-0000-0000-000000000001"

    @classmethod
    def from_options(cls, opts: TransportOptions, namespaces: tuple[Namespace, ...],
                     regions: tuple[Region, ...], **more: Any) -> WireLimits:
        """Limits of a target built with ``opts`` (``max_qid = max_qpairs - 1``)."""
        return cls(opts.in_capsule_data_size, opts.max_io_size, opts.max_sgl_descriptors,
                   opts.max_queue_depth, max(opts.max_qpairs - 1, 0), tuple(namespaces),
                   tuple(regions), **more)

    @property
    def max_piece(self) -> int:
        """Longest single keyed descriptor that fits a region (and 24 bits)."""
        return min(max((r.size for r in self.regions), default=0), W.KEYED_MAX_LENGTH)

    @property
    def max_list(self) -> int:
        """Most keyed descriptors a last-segment list may carry: MSDBD, and the list's
        16-byte entries must fit the in-capsule area."""
        return min(self.max_sgl_descriptors, self.in_capsule_data_size // W.SGL_DESC_SIZE)

    def layouts_for(self, length: int, op: str) -> tuple[str, ...]:
        """SGL layouts that can describe a valid ``length``-byte ``op`` transfer."""
        out = []
        p, m = self.max_piece, self.max_list
        if 1 <= length <= p:
            out.append("keyed")
        if m >= 2 and p and max(2, -(-length // p)) <= min(m, length):
            out.append("keyed_list")
        if op == "write" and 1 <= length <= self.in_capsule_data_size:
            out.append("in_capsule")
        return tuple(out)

    def max_blocks(self, ns: Namespace, op: str) -> int:
        """Largest valid transfer in blocks of ``ns`` for ``op`` (0: none)."""
        cap = min(self.max_io_size, ns.num_blocks * ns.block_size, 0x10000 * ns.block_size)
        p, m = self.max_piece, self.max_list
        feas = max(p, m * p if m >= 2 else 0,
                   self.in_capsule_data_size if op == "write" else 0)
        return min(cap, feas) // ns.block_size


# ------------------------------------------------------------------ SGL descriptors

#: Descriptor kinds ``sgl_descriptors`` draws; the first four are valid in SGL1.
SGL_KINDS: Final = ("keyed", "keyed_invalidate", "data_block_offset", "last_segment",
                    "bad_type", "bad_subtype", "zero_length", "length_too_large",
                    "offset_past_capsule", "list_too_long", "last_segment_bad_length",
                    "segment", "bit_bucket")
VALID_SGL_KINDS: Final = SGL_KINDS[:4]

_u64 = st.integers(0, U64)
_u32 = st.integers(0, U32)


def _reserved3(dirty: bool) -> SearchStrategy[bytes]:
    return st.binary(min_size=3, max_size=3) if dirty else st.just(W.Z3)


def any_sgl_descriptors() -> SearchStrategy[Any]:
    """Any encodable descriptor: type and subtype 0..15, address 0..2**64-1, length over
    the width its form has (24 bits keyed, 32 otherwise), key (keyed) or reserved bytes
    (unkeyed) drawn.  Shrinks toward the all-zero data block."""
    def build(t: int, s: int, a: int, n: int, k: int, r: bytes) -> Any:
        if t == W.SGL_TYPE_KEYED_DATA:
            return SglDescriptor(a, n & W.KEYED_MAX_LENGTH, k, t, s)
        return SglDescriptor(a, n, 0, t, s, r)
    return st.builds(build, st.integers(0, 15), st.integers(0, 15), _u64, _u32, _u32,
                     st.binary(min_size=3, max_size=3))


@st.composite
def _region_piece(draw: DrawFn, lim: WireLimits, length: int, invalidate: bool = False,
                  ) -> Any:
    """A keyed descriptor for ``length`` bytes somewhere inside a region that holds it."""
    fits = [r for r in lim.regions if r.size >= length]
    r = draw(st.sampled_from(fits))
    off = draw(st.integers(0, r.size - length))
    return SglDescriptor(r.iova + off, length, r.rkey, W.SGL_TYPE_KEYED_DATA,
                         W.SGL_SUBTYPE_INVALIDATE if invalidate else W.SGL_SUBTYPE_ADDRESS)


@st.composite
def _sgl_of_kind(draw: DrawFn, kind: str, lim: WireLimits, dirty: bool) -> Any:
    icd = lim.in_capsule_data_size
    res = draw(_reserved3(dirty))
    if kind in ("keyed", "keyed_invalidate"):
        n = draw(st.integers(1, min(lim.max_piece, lim.max_io_size)))
        return draw(_region_piece(lim, n, kind == "keyed_invalidate"))
    if kind == "data_block_offset":
        n = draw(st.integers(1, icd))
        off = draw(st.integers(0, icd - n))
        return SglDescriptor(off, n, 0, W.SGL_TYPE_DATA_BLOCK, W.SGL_SUBTYPE_OFFSET, res)
    if kind == "last_segment":
        count = draw(st.integers(1, lim.max_list))
        off = draw(st.integers(0, icd - 16 * count))
        return SglDescriptor(off, 16 * count, 0, W.SGL_TYPE_LAST_SEGMENT,
                             W.SGL_SUBTYPE_OFFSET, res)
    if kind == "bad_type":
        t = draw(st.sampled_from((W.SGL_TYPE_TRANSPORT_DATA, *W.SGL_RESERVED_TYPES,
                                  W.SGL_TYPE_VENDOR)))
        return SglDescriptor(draw(_u64), draw(_u32), 0, t, draw(st.integers(0, 15)), res)
    if kind == "bad_subtype":
        t = draw(st.sampled_from((W.SGL_TYPE_KEYED_DATA, W.SGL_TYPE_DATA_BLOCK,
                                  W.SGL_TYPE_LAST_SEGMENT)))
        if t == W.SGL_TYPE_KEYED_DATA:
            good = draw(_region_piece(lim, 1))
            return good.replace(subtype=draw(st.integers(1, 14)),
                                length=draw(st.integers(1, min(lim.max_piece, 1 << 12))))
        s = draw(st.sampled_from([0, *range(2, 16)]))
        return SglDescriptor(draw(st.integers(0, icd)), 16 * draw(st.integers(1, 16)), 0, t,
                             s, res)
    if kind == "zero_length":
        if draw(st.booleans()):
            return draw(_region_piece(lim, 1)).replace(length=0)
        return SglDescriptor(draw(st.integers(0, icd)), 0, 0, W.SGL_TYPE_DATA_BLOCK,
                             W.SGL_SUBTYPE_OFFSET, res)
    if kind == "length_too_large":
        if lim.max_io_size < W.KEYED_MAX_LENGTH and draw(st.booleans()):
            n = draw(st.integers(lim.max_io_size + 1, W.KEYED_MAX_LENGTH))
            return draw(_region_piece(lim, 1)).replace(length=n)
        return SglDescriptor(0, draw(st.integers(icd + 1, U32)), 0, W.SGL_TYPE_DATA_BLOCK,
                             W.SGL_SUBTYPE_OFFSET, res)
    if kind == "offset_past_capsule":
        t = draw(st.sampled_from((W.SGL_TYPE_DATA_BLOCK, W.SGL_TYPE_LAST_SEGMENT)))
        n = 16 * draw(st.integers(1, max(lim.max_list, 1))) if t == 3 else \
            draw(st.integers(1, max(icd, 1)))
        return SglDescriptor(draw(st.integers(icd + 1, U64)), n, 0, t, W.SGL_SUBTYPE_OFFSET,
                             res)
    if kind == "list_too_long":
        count = draw(st.integers(lim.max_sgl_descriptors + 1, lim.max_sgl_descriptors + 256))
        return SglDescriptor(0, 16 * count, 0, W.SGL_TYPE_LAST_SEGMENT, W.SGL_SUBTYPE_OFFSET,
                             res)
    if kind == "last_segment_bad_length":
        n = draw(st.one_of(st.just(0), st.integers(1, 4096).filter(lambda v: v % 16),
                           _u32.filter(lambda v: v % 16)))
        return SglDescriptor(0, n, 0, W.SGL_TYPE_LAST_SEGMENT, W.SGL_SUBTYPE_OFFSET, res)
    if kind == "segment":
        return SglDescriptor(draw(st.integers(0, icd)), 16 * draw(st.integers(0, 16)), 0,
                             W.SGL_TYPE_SEGMENT, draw(st.sampled_from((0, 1))), res)
    if kind == "bit_bucket":
        return SglDescriptor(0, draw(st.integers(0, lim.max_io_size)), 0,
                             W.SGL_TYPE_BIT_BUCKET, 0, res)
    raise ValueError(f"unknown SGL kind {kind!r}: choose from {SGL_KINDS}")


def sgl_descriptors(limits: WireLimits | None = None, kinds: tuple[str, ...] = SGL_KINDS, *,
                    tagged: bool = False, dirty_reserved: bool = False,
                    ) -> SearchStrategy[Any]:
    """Descriptors of the given ``kinds`` (``SGL_KINDS``; ``VALID_SGL_KINDS`` are valid as
    SGL1 under ``limits``).  ``tagged`` draws ``(kind, descriptor)``; ``dirty_reserved``
    draws the unkeyed form's reserved bytes instead of zeros (the spec says a receiver
    ignores them, so no status is attached).  Kinds that cannot exist under ``limits`` (a
    keyed length above ``max_io_size`` when that is 2**24 - 1, a last segment with an ICD
    below 16 bytes) are left out; raises ``ValueError`` if none remain."""
    lim = limits or WireLimits()
    usable = [k for k in kinds if _sgl_kind_feasible(k, lim)]
    if not usable:
        raise ValueError(f"no SGL kind of {kinds} is possible under {lim}")
    for k in usable:
        if k not in SGL_KINDS:
            raise ValueError(f"unknown SGL kind {k!r}: choose from {SGL_KINDS}")
    return st.sampled_from(usable).flatmap(
        lambda k: _sgl_of_kind(k, lim, dirty_reserved).map(
            (lambda d: (k, d)) if tagged else (lambda d: d)))


def _sgl_kind_feasible(kind: str, lim: WireLimits) -> bool:
    if kind in ("keyed", "keyed_invalidate", "bad_subtype", "zero_length"):
        return lim.max_piece >= 1 and lim.max_io_size >= 1
    if kind == "data_block_offset":
        return lim.in_capsule_data_size >= 1
    if kind == "last_segment":
        return lim.max_list >= 1
    return True


# ----------------------------------------------------------------------------- SQEs


def sqes(*, opc: SearchStrategy[int] | None = None, psdt: SearchStrategy[int] | None = None,
         fuse: SearchStrategy[int] | None = None, nsid: SearchStrategy[int] | None = None,
         sgl1: SearchStrategy[Any] | None = None) -> SearchStrategy[Any]:
    """Any encodable SQE: opc, fuse, the reserved CDW0 bits 13:10, psdt, cid, nsid, cdw2,
    cdw3, mptr, sgl1 (``any_sgl_descriptors``) and cdw10..cdw15 drawn over their full
    widths; pass a strategy to pin one.  Valid or not - this is the codec's input space
    and the fuzzing baseline.  Shrinks toward the all-zero SQE (a Flush of nsid 0)."""
    return st.builds(
        Sqe, opc=opc or st.integers(0, 0xFF), fuse=fuse or st.integers(0, 3),
        psdt=psdt or st.integers(0, 3), cid=st.integers(0, U16), nsid=nsid or _u32,
        cdw2=_u32, cdw3=_u32, mptr=_u64, sgl1=sgl1 or any_sgl_descriptors(), cdw10=_u32,
        cdw11=_u32, cdw12=_u32, cdw13=_u32, cdw14=_u32, cdw15=_u32, rsvd=st.integers(0, 15))


# ------------------------------------------------------------------------ IO capsules

IoOp = Literal["read", "write", "flush"]
_OPC = {"read": W.OPC_READ, "write": W.OPC_WRITE, "flush": W.OPC_FLUSH}
LayoutKind = Literal["keyed", "keyed_list", "in_capsule"]


@st.composite
def _pieces(draw: DrawFn, total: int, n: int, most: int) -> tuple[int, ...]:
    """``n`` lengths in 1..``most`` summing to ``total`` (needs n <= total <= n * most)."""
    out, left = [], total
    for i in range(n):
        rest = n - i - 1
        lo, hi = max(1, left - rest * most), min(most, left - rest)
        v = left if rest == 0 else draw(st.integers(lo, hi))
        out.append(v)
        left -= v
    return tuple(out)


@st.composite
def _keyed_list(draw: DrawFn, lim: WireLimits, length: int, n: int | None = None,
                ) -> tuple[Any, ...]:
    p = lim.max_piece
    if n is None:
        n = draw(st.integers(max(2, -(-length // p)), min(lim.max_list, length)))
    lengths = draw(_pieces(length, n, p))
    return tuple(draw(_region_piece(lim, ln, draw(st.booleans()))) for ln in lengths)


@st.composite
def _rw_parts(draw: DrawFn, lim: WireLimits, op: str, layouts: tuple[str, ...],
              min_blocks: int = 1) -> tuple[int, Namespace, int, int, str]:
    """(nsid, namespace, slba, nlb, layout) of a valid ``op`` under ``lim``."""
    choices = [(i, ns) for i, ns in enumerate(lim.namespaces)
               if lim.max_blocks(ns, op) >= min_blocks
               and set(lim.layouts_for(min_blocks * ns.block_size, op)) & set(layouts)]
    i, ns = draw(st.sampled_from(choices))
    blocks = draw(st.integers(min_blocks, lim.max_blocks(ns, op)))
    usable = [k for k in lim.layouts_for(blocks * ns.block_size, op) if k in layouts]
    if not usable:   # the drawn size suits none of the requested layouts: the smallest does
        blocks = min_blocks
        usable = [k for k in lim.layouts_for(blocks * ns.block_size, op) if k in layouts]
    layout = draw(st.sampled_from(usable))
    slba = draw(st.integers(0, ns.num_blocks - blocks))
    return i + 1, ns, slba, blocks - 1, layout


@st.composite
def _io_capsule(draw: DrawFn, lim: WireLimits, op: str, layouts: tuple[str, ...]) -> Any:
    cid = draw(st.integers(0, U16))
    if op == "flush":
        nsid = draw(st.integers(1, len(lim.namespaces)))
        return Capsule.io(W.OPC_FLUSH, cid, nsid, 0, 0)
    nsid, ns, slba, nlb, layout = draw(_rw_parts(lim, op, layouts))
    length = (nlb + 1) * ns.block_size
    if layout == "in_capsule":
        icd = draw(st.binary(min_size=length, max_size=length))
        return Capsule.io(W.OPC_WRITE, cid, nsid, slba, nlb, icd=icd)
    if layout == "keyed":
        descs = (draw(_region_piece(lim, length, draw(st.booleans()))),)
    else:
        descs = draw(_keyed_list(lim, length))
    return Capsule.io(_OPC[op], cid, nsid, slba, nlb, descs)


def _ops_possible(lim: WireLimits, ops: tuple[str, ...], layouts: tuple[str, ...],
                  ) -> list[str]:
    out = []
    for op in ops:
        if op == "flush":
            if lim.namespaces:
                out.append(op)
            continue
        for ns in lim.namespaces:
            k = lim.max_blocks(ns, op)
            if k and any(lay in layouts for lay in lim.layouts_for(ns.block_size, op)):
                out.append(op)
                break
    return out


def io_capsules(limits: WireLimits | None = None,
                ops: tuple[IoOp, ...] = ("read", "write", "flush"),
                layouts: tuple[LayoutKind, ...] = ("keyed", "keyed_list", "in_capsule"),
                ) -> SearchStrategy[Any]:
    """Valid NVM capsules under ``limits``: nsid of a namespace, slba + nlb + 1 within it,
    (nlb + 1) * block_size <= max_io_size, and data described by one keyed descriptor
    (subtype address or invalidate) inside a region, a last segment of 2..max_list keyed
    descriptors (in-capsule, at offset 0) whose lengths sum to the transfer, or (writes,
    when it fits) in-capsule data.  cid drawn; PSDT 01b, FUSE 0, reserved zero.  Flush
    carries no SGL.  Raises ``ValueError`` if no op can be drawn under ``limits``."""
    lim = limits or WireLimits()
    possible = _ops_possible(lim, tuple(ops), tuple(layouts))
    if not possible:
        raise ValueError(f"no valid {ops} capsule with layouts {layouts} under {lim}")
    return st.sampled_from(possible).flatmap(lambda op: _io_capsule(lim, op, tuple(layouts)))


@st.composite
def connect_capsules(draw: DrawFn, limits: WireLimits | None = None) -> Any:
    """Valid admin-queue Connect capsules (NVMe-oF 1.1 3.3): qid 0, sqsize 1..depth - 1,
    kato drawn, RECFMT 0, CNTLID FFFFh, the limits' NQNs, hostid drawn; the 1024-byte
    connect data rides in-capsule (SGL1 data block, offset 0, length 1024)."""
    lim = limits or WireLimits()
    sq = W.ConnectSqe(cid=draw(st.integers(0, U16)), qid=0,
                      sqsize=draw(st.integers(1, max(lim.max_queue_depth - 1, 1))),
                      kato=draw(st.sampled_from((0, 5000, 120000)) | _u32))
    data = W.ConnectData.make(lim.subnqn, lim.hostnqn, draw(st.binary(min_size=16,
                                                                      max_size=16)))
    return W.connect_capsule(sq, data)


# -------------------------------------------------------------------- malformed


class MalformedCapsule(NamedTuple):
    """A malformed capsule and the status the target must answer with (ERR-1): send
    ``capsule.encode()`` on a queue in state ``WIRE_KINDS[kind].queue``."""

    capsule: Any
    expected_status: int
    kind: str
    citation: str


Queue = Literal["io", "admin", "io_unconnected", "admin_unconnected"]


@dataclass(frozen=True)
class WireKind:
    """What one malformed family expects: ``status`` (SCT << 8 | SC), other statuses the
    spec leaves room for, the queue state to send it in, and where the rule is written."""

    status: int
    queue: Queue
    citation: str
    alternatives: tuple[int, ...] = ()

    def accepts(self, status: int) -> bool:
        return status == self.status or status in self.alternatives


_G = "NVMe Base 2.0 4.6.1.2 (Generic Command Status)"
_SGL = "NVMe Base 2.0 4.4 (SGL descriptors)"
_RDMA_SGL = ("NVMe/RDMA 1.0 2.x / NVMe-oF 1.1 2.x (an RDMA capsule's SGL1 is a keyed data "
             "block, a data block with offset, or a last segment with offset)")
_CONN = "NVMe-oF 1.1 3.3 (Connect)"

WIRE_KINDS: Final[dict[str, WireKind]] = {
    "sgl_type_reserved": WireKind(W.SC_SGL_DESC_TYPE_INVALID, "io",
                                  f"{_SGL}: types 6h-Eh reserved, 5h not an RDMA type; {_G} "
                                  f"11h SGL Descriptor Type Invalid"),
    "sgl_segment": WireKind(W.SC_SGL_DESC_TYPE_INVALID, "io",
                            f"{_RDMA_SGL}; {_G} 11h SGL Descriptor Type Invalid",
                            (W.SC_INVALID_SGL_SEG_DESC,)),
    "sgl_bit_bucket": WireKind(W.SC_SGL_DESC_TYPE_INVALID, "io",
                               f"{_RDMA_SGL}; {_G} 11h SGL Descriptor Type Invalid"),
    "keyed_bad_subtype": WireKind(W.SC_SGL_DESC_TYPE_INVALID, "io",
                                  f"{_SGL}: keyed subtypes 0h (address) and Fh (invalidate); "
                                  f"{_G} 11h SGL Descriptor Type Invalid"),
    "data_block_bad_subtype": WireKind(W.SC_SGL_DESC_TYPE_INVALID, "io",
                                       f"{_RDMA_SGL}: in-capsule data uses subtype 1h "
                                       f"(offset); {_G} 11h SGL Descriptor Type Invalid"),
    "last_segment_bad_subtype": WireKind(W.SC_SGL_DESC_TYPE_INVALID, "io",
                                         f"{_RDMA_SGL}; {_G} 11h SGL Descriptor Type Invalid",
                                         (W.SC_INVALID_SGL_SEG_DESC,)),
    "icd_offset_past_capsule": WireKind(W.SC_SGL_OFFSET_INVALID, "io",
                                        f"{_G} 16h SGL Offset Invalid (an invalid offset "
                                        f"into a fabrics capsule)",
                                        (W.SC_DATA_SGL_LENGTH_INVALID,)),
    "icd_length_too_large": WireKind(W.SC_DATA_SGL_LENGTH_INVALID, "io",
                                     f"NVMe-oF 1.1 2.x (in-capsule data at most IOCCSZ * 16 "
                                     f"- 64 bytes); {_G} 0Fh Data SGL Length Invalid"),
    "keyed_length_too_large": WireKind(W.SC_DATA_SGL_LENGTH_INVALID, "io",
                                       f"NVMe Base 2.0 5.17.2.1 (MDTS); {_G} 0Fh Data SGL "
                                       f"Length Invalid"),
    "list_length_too_large": WireKind(W.SC_DATA_SGL_LENGTH_INVALID, "io",
                                      f"NVMe Base 2.0 5.17.2.1 (MDTS); {_G} 0Fh Data SGL "
                                      f"Length Invalid"),
    "sgl_length_mismatch": WireKind(W.SC_DATA_SGL_LENGTH_INVALID, "io",
                                    f"{_SGL} (the SGL describes the whole transfer, "
                                    f"(NLB + 1) * block size); {_G} 0Fh Data SGL Length "
                                    f"Invalid"),
    "keyed_zero_length": WireKind(W.SC_DATA_SGL_LENGTH_INVALID, "io",
                                  f"{_SGL} (a zero-length data block describes no data, so "
                                  f"the SGL is shorter than the transfer); {_G} 0Fh"),
    "list_too_many_descriptors": WireKind(W.SC_INVALID_NUM_SGL_DESC, "io",
                                          f"NVMe-oF 1.1 (Identify MSDBD); {_G} 0Eh Invalid "
                                          f"Number of SGL Descriptors",
                                          (W.SC_INVALID_SGL_SEG_DESC,)),
    "last_segment_zero_length": WireKind(W.SC_INVALID_SGL_SEG_DESC, "io",
                                         f"{_G} 0Dh Invalid SGL Segment Descriptor (a last "
                                         f"segment of length zero)",
                                         (W.SC_INVALID_NUM_SGL_DESC,)),
    "last_segment_not_multiple": WireKind(W.SC_INVALID_SGL_SEG_DESC, "io",
                                          f"{_G} 0Dh Invalid SGL Segment Descriptor (a last "
                                          f"segment length not a multiple of 16)"),
    "last_segment_past_capsule": WireKind(W.SC_INVALID_SGL_SEG_DESC, "io",
                                          f"{_G} 0Dh Invalid SGL Segment Descriptor / 16h "
                                          f"SGL Offset Invalid (the list is not inside the "
                                          f"capsule)", (W.SC_SGL_OFFSET_INVALID,)),
    "list_entry_segment": WireKind(W.SC_INVALID_SGL_SEG_DESC, "io",
                                   f"{_G} 0Dh Invalid SGL Segment Descriptor (the last "
                                   f"segment contains a segment or last segment descriptor)",
                                   (W.SC_SGL_DESC_TYPE_INVALID,)),
    "list_entry_not_keyed": WireKind(W.SC_SGL_DESC_TYPE_INVALID, "io",
                                     f"{_RDMA_SGL} (list entries are keyed data blocks); "
                                     f"{_G} 11h", (W.SC_INVALID_SGL_SEG_DESC,)),
    "io_invalid_opcode": WireKind(W.SC_INVALID_OPCODE, "io",
                                  f"NVM Command Set 1.0 (opcode table: reserved); {_G} 01h "
                                  f"Invalid Command Opcode"),
    "admin_invalid_opcode": WireKind(W.SC_INVALID_OPCODE, "admin",
                                     f"NVMe Base 2.0 5 (admin opcode table: reserved); {_G} "
                                     f"01h Invalid Command Opcode"),
    "fabrics_invalid_fctype": WireKind(W.SC_INVALID_OPCODE, "admin",
                                       f"NVMe-oF 1.1 3.1 (FCTYPE table: reserved); {_G} 01h",
                                       (W.SC_INVALID_FIELD,)),
    "invalid_namespace": WireKind(W.SC_INVALID_NAMESPACE, "io",
                                  f"NVMe Base 2.0 3.2.1 (valid NSIDs); {_G} 0Bh Invalid "
                                  f"Namespace or Format"),
    "lba_out_of_range": WireKind(W.SC_LBA_OUT_OF_RANGE, "io",
                                 "NVM Command Set 1.0 (Read/Write SLBA, NLB; status 80h LBA "
                                 "Out of Range)"),
    "psdt_prp": WireKind(W.SC_INVALID_FIELD, "io",
                         f"NVMe-oF 1.1 2.1 (PSDT shall be 01b: SGLs only); {_G} 02h Invalid "
                         f"Field in Command"),
    "psdt_not_01b": WireKind(W.SC_INVALID_FIELD, "io",
                             f"NVMe-oF 1.1 2.1 (PSDT shall be 01b); NVMe Base 2.0 4.1 (11b "
                             f"reserved); {_G} 02h"),
    "fuse_set": WireKind(W.SC_INVALID_FIELD, "io",
                         f"NVMe Base 2.0 4.1 (FUSE; 11b reserved, fused pairs are Compare + "
                         f"Write only); {_G} 02h",
                         (W.SC_ABORTED_MISSING_FUSED, W.SC_ABORTED_FAILED_FUSED)),
    "io_before_connect": WireKind(W.SC_COMMAND_SEQUENCE_ERROR, "io_unconnected",
                                  f"{_CONN}: Connect is the first command on a queue; {_G} "
                                  f"0Ch Command Sequence Error"),
    "admin_before_connect": WireKind(W.SC_COMMAND_SEQUENCE_ERROR, "admin_unconnected",
                                     f"{_CONN}: Connect is the first command on a queue; "
                                     f"{_G} 0Ch Command Sequence Error"),
    "connect_twice": WireKind(W.SC_COMMAND_SEQUENCE_ERROR, "admin",
                              f"{_CONN}: a Connect on an established queue; {_G} 0Ch"),
    "connect_incompatible_format": WireKind(W.SC_CONNECT_INCOMPATIBLE_FORMAT,
                                            "admin_unconnected",
                                            f"{_CONN}: RECFMT 0; status 80h Connect "
                                            f"Incompatible Format"),
    "connect_sqsize_zero": WireKind(W.SC_CONNECT_INVALID_PARAMETERS, "admin_unconnected",
                                    f"{_CONN}: SQSIZE is 0's based, a queue has at least 2 "
                                    f"entries; status 82h Connect Invalid Parameters"),
    "connect_sqsize_too_large": WireKind(W.SC_CONNECT_INVALID_PARAMETERS, "admin_unconnected",
                                         f"{_CONN}: SQSIZE above CAP.MQES; status 82h "
                                         f"Connect Invalid Parameters"),
    "connect_unknown_subnqn": WireKind(W.SC_CONNECT_INVALID_PARAMETERS, "admin_unconnected",
                                       f"{_CONN}: SUBNQN names no subsystem; status 82h "
                                       f"Connect Invalid Parameters",
                                       (W.SC_CONNECT_INVALID_HOST,)),
}

# Reserved opcodes with data-direction bits 00, so no SGL parsing precedes the opcode check.
_NVM_RESERVED_OPCODES = (0x10, 0x14, 0x1C, 0x20, 0x24, 0x28, 0x2C, 0x30, 0x40, 0x50, 0x60,
                         0x70)
_ADMIN_RESERVED_OPCODES = (0x28, 0x2C, 0x30, 0x3C, 0x40, 0x50, 0x60, 0x70, 0x78)
_RESERVED_FCTYPES = (0x0C, 0x10, 0x14, 0x20, 0x40, 0x7C, 0xBC)


def _needs(lim: WireLimits) -> dict[str, bool]:
    """Which kinds can be built under ``lim`` (each needs a valid base command)."""
    ns_ok = any(lim.max_blocks(ns, "read") for ns in lim.namespaces)
    one_block = [ns for ns in lim.namespaces if lim.max_blocks(ns, "read")]
    keyed_ok = ns_ok and any("keyed" in lim.layouts_for(ns.block_size, "read")
                             for ns in one_block)
    w_icd = [ns for ns in lim.namespaces
             if "in_capsule" in lim.layouts_for(ns.block_size, "write")]
    icd_big = [ns for ns in lim.namespaces
               if lim.in_capsule_data_size < min(lim.max_io_size, ns.size_bytes,
                                                 0x10000 * ns.block_size)]
    n_over = lim.max_sgl_descriptors + 1
    over_ok = (n_over * 16 <= lim.in_capsule_data_size and lim.max_piece >= 1
               and any(_holds_list(lim, ns, n_over) for ns in lim.namespaces))
    list_ok = keyed_ok and lim.max_list >= 1
    out = {k: keyed_ok for k in WIRE_KINDS}
    out.update({
        "icd_offset_past_capsule": bool(w_icd), "icd_length_too_large": bool(icd_big),
        "keyed_length_too_large": keyed_ok and lim.max_io_size < W.KEYED_MAX_LENGTH,
        "list_length_too_large": list_ok and lim.max_list >= 2,
        "list_too_many_descriptors": over_ok,
        "last_segment_zero_length": list_ok, "last_segment_not_multiple": list_ok,
        "last_segment_past_capsule": list_ok, "list_entry_segment": list_ok,
        "list_entry_not_keyed": list_ok, "last_segment_bad_subtype": list_ok,
        "io_invalid_opcode": True, "admin_invalid_opcode": True,
        "fabrics_invalid_fctype": True, "invalid_namespace": True,
        "io_before_connect": bool(lim.namespaces), "admin_before_connect": True,
        "connect_twice": True, "connect_incompatible_format": True,
        "connect_sqsize_zero": True, "connect_sqsize_too_large": lim.max_queue_depth <= U16,
        "connect_unknown_subnqn": True,
    })
    return out


def feasible_wire_kinds(limits: WireLimits | None = None) -> tuple[str, ...]:
    """The ``WIRE_KINDS`` that can be built under ``limits`` (e.g. ``icd_length_too_large``
    needs a transfer longer than the in-capsule area that still fits max_io_size)."""
    ok = _needs(limits or WireLimits())
    return tuple(k for k in WIRE_KINDS if ok[k])


def _raw_io_sqe(opc: int, cid: int, nsid: int, slba: int, nlb: int, sgl1: Any) -> Any:
    """An NVM SQE laid out like ``Sqe.io`` but unchecked (for a malformed SGL1)."""
    return Sqe(opc=opc, cid=cid, nsid=nsid, sgl1=sgl1, cdw10=slba & U32, cdw11=slba >> 32,
               cdw12=nlb)


def _list_blocks(lim: WireLimits, ns: Namespace, n: int) -> tuple[int, int]:
    """Block counts of ``ns`` whose transfer splits into ``n`` keyed pieces (lo > hi: none)."""
    top = min(lim.max_io_size, ns.size_bytes, 0x10000 * ns.block_size, n * lim.max_piece)
    return -(-n // ns.block_size), top // ns.block_size


def _holds_list(lim: WireLimits, ns: Namespace, n: int) -> bool:
    lo, hi = _list_blocks(lim, ns, n)
    return 1 <= lo <= hi and lo <= ns.num_blocks


def _mk(kind: str, capsule: Any) -> MalformedCapsule:
    k = WIRE_KINDS[kind]
    return MalformedCapsule(capsule, k.status, kind, k.citation)


@st.composite
def _keyed_rw(draw: DrawFn, lim: WireLimits, op: str | None = None) -> Any:
    """A valid keyed (one descriptor) read or write to build a malformed one from."""
    op = op or draw(st.sampled_from(("read", "write")))
    return draw(_io_capsule(lim, op, ("keyed",)))


def _with_sgl1(cap: Any, sgl1: Any) -> Any:
    return cap.replace(sqe=cap.sqe.replace(sgl1=sgl1))


@st.composite
def _list_rw(draw: DrawFn, lim: WireLimits, n: int | None = None,
             op: str | None = None) -> tuple[Any, tuple[Any, ...]]:
    """A valid read/write whose SGL1 is a last segment of ``n`` (drawn) keyed entries; with
    n == 1 the one entry still rides in the list (valid: a list may hold one entry)."""
    op = op or draw(st.sampled_from(("read", "write")))
    nsid, ns, slba, nlb, _ = draw(_rw_parts(lim, op, ("keyed", "keyed_list")))
    length = (nlb + 1) * ns.block_size
    lo = max(1, -(-length // lim.max_piece))
    hi = min(lim.max_list, length)
    if n is None:
        n = draw(st.integers(lo, hi)) if lo <= hi else 1
    if not lo <= n <= hi:   # fall back to the smallest shape that holds
        nlb, length = 0, ns.block_size
        n = 1
    descs = draw(_keyed_list(lim, length, n))
    sqe = Sqe.io(_OPC[op], draw(st.integers(0, U16)), nsid, slba, nlb,
                 W.last_segment(0, n))
    return Capsule(sqe, b"".join(d.encode() for d in descs)), descs


@st.composite
def _build_malformed(draw: DrawFn, kind: str, lim: WireLimits) -> MalformedCapsule:
    icd = lim.in_capsule_data_size
    if kind in ("sgl_type_reserved", "sgl_segment", "sgl_bit_bucket", "keyed_bad_subtype",
                "data_block_bad_subtype", "keyed_length_too_large", "sgl_length_mismatch",
                "keyed_zero_length", "invalid_namespace", "lba_out_of_range", "psdt_prp",
                "psdt_not_01b", "fuse_set"):
        cap = draw(_keyed_rw(lim))
        sqe, s = cap.sqe, cap.sqe.sgl1
        if kind == "sgl_type_reserved":
            t = draw(st.sampled_from((W.SGL_TYPE_TRANSPORT_DATA, *W.SGL_RESERVED_TYPES)))
            bad = SglDescriptor(s.address, s.length, 0, t, draw(st.integers(0, 15)))
        elif kind == "sgl_segment":
            bad = SglDescriptor(0, 16, 0, W.SGL_TYPE_SEGMENT,
                                draw(st.sampled_from((0, 1))))
            cap = cap.replace(data=s.encode())
        elif kind == "sgl_bit_bucket":
            bad = SglDescriptor(0, s.length, 0, W.SGL_TYPE_BIT_BUCKET, 0)
        elif kind == "keyed_bad_subtype":
            bad = s.replace(subtype=draw(st.integers(1, 14)))
        elif kind == "data_block_bad_subtype":
            bad = SglDescriptor(s.address, s.length, 0, W.SGL_TYPE_DATA_BLOCK,
                                draw(st.sampled_from([0, *range(2, 16)])))
        elif kind == "keyed_length_too_large":
            bad = s.replace(length=draw(st.integers(lim.max_io_size + 1, W.KEYED_MAX_LENGTH)))
        elif kind == "sgl_length_mismatch":
            n = draw(st.integers(1, min(lim.max_io_size, W.KEYED_MAX_LENGTH)).filter(
                lambda v: v != s.length))
            bad = s.replace(length=n)
        elif kind == "keyed_zero_length":
            bad = s.replace(length=0)
        else:
            bad = s
        cap = _with_sgl1(cap, bad)
        if kind == "invalid_namespace":
            nsid = draw(st.one_of(st.just(0), st.just(U32),
                                  st.integers(len(lim.namespaces) + 1, U32 - 1)))
            cap = cap.replace(sqe=cap.sqe.replace(nsid=nsid))
        elif kind == "lba_out_of_range":
            ns = lim.namespaces[sqe.nsid - 1]
            slba = draw(st.integers(ns.num_blocks - sqe.nlb, U64))
            cap = cap.replace(sqe=cap.sqe.replace(cdw10=slba & U32, cdw11=slba >> 32))
        elif kind == "psdt_prp":
            cap = cap.replace(sqe=cap.sqe.replace(psdt=W.PSDT_PRP))
        elif kind == "psdt_not_01b":
            cap = cap.replace(sqe=cap.sqe.replace(psdt=draw(st.sampled_from((2, 3)))))
        elif kind == "fuse_set":
            cap = cap.replace(sqe=cap.sqe.replace(fuse=draw(st.integers(1, 3))))
        return _mk(kind, cap)

    if kind in ("icd_offset_past_capsule", "icd_length_too_large"):
        if kind == "icd_offset_past_capsule":
            cap = draw(_io_capsule(lim, "write", ("in_capsule",)))
            off = draw(st.integers(len(cap.data) + 1, U64))
            return _mk(kind, _with_sgl1(cap, cap.sqe.sgl1.replace(address=off)))
        ns_i = [i for i, ns in enumerate(lim.namespaces)
                if icd < min(lim.max_io_size, ns.size_bytes, 0x10000 * ns.block_size)]
        i = draw(st.sampled_from(ns_i))
        ns = lim.namespaces[i]
        top = min(lim.max_io_size, ns.size_bytes, 0x10000 * ns.block_size) // ns.block_size
        blocks = draw(st.integers(icd // ns.block_size + 1, top))
        length = blocks * ns.block_size
        sent = draw(st.integers(0, icd))
        sqe = _raw_io_sqe(W.OPC_WRITE, draw(st.integers(0, U16)), i + 1,
                          draw(st.integers(0, ns.num_blocks - blocks)), blocks - 1,
                          SglDescriptor(0, length, 0, W.SGL_TYPE_DATA_BLOCK,
                                        W.SGL_SUBTYPE_OFFSET))
        return _mk(kind, Capsule(sqe, draw(st.binary(min_size=sent, max_size=sent))))

    if kind == "list_too_many_descriptors":
        n = draw(st.integers(lim.max_sgl_descriptors + 1,
                             min(icd // 16, lim.max_sgl_descriptors + 16)))
        cands = [(i, ns) for i, ns in enumerate(lim.namespaces) if _holds_list(lim, ns, n)]
        if not cands:   # a longer list fits no namespace: the shortest overflowing one does
            n = lim.max_sgl_descriptors + 1
            cands = [(i, ns) for i, ns in enumerate(lim.namespaces)
                     if _holds_list(lim, ns, n)]
        i, ns = draw(st.sampled_from(cands))
        lo_blocks, hi_blocks = _list_blocks(lim, ns, n)
        blocks = draw(st.integers(lo_blocks, hi_blocks))
        descs = draw(_keyed_list(lim, blocks * ns.block_size, n))
        sqe = _raw_io_sqe(draw(st.sampled_from((W.OPC_READ, W.OPC_WRITE))),
                          draw(st.integers(0, U16)), i + 1,
                          draw(st.integers(0, ns.num_blocks - blocks)), blocks - 1,
                          SglDescriptor(0, 16 * n, 0, W.SGL_TYPE_LAST_SEGMENT,
                                        W.SGL_SUBTYPE_OFFSET))
        return _mk(kind, Capsule(sqe, b"".join(d.encode() for d in descs)))

    if kind in ("last_segment_bad_subtype", "list_length_too_large", "last_segment_zero_length",
                "last_segment_not_multiple", "last_segment_past_capsule",
                "list_entry_segment", "list_entry_not_keyed"):
        cap, descs = draw(_list_rw(lim))
        s, n = cap.sqe.sgl1, len(descs)
        if kind == "last_segment_bad_subtype":
            return _mk(kind, _with_sgl1(cap, s.replace(
                subtype=draw(st.sampled_from([0, *range(2, 16)])))))
        if kind == "list_length_too_large":
            n = draw(st.integers(2, lim.max_list))
            lengths = draw(_pieces(draw(st.integers(lim.max_io_size + 1,
                                                    n * lim.max_piece)), n, lim.max_piece)
                           ) if n * lim.max_piece > lim.max_io_size else None
            if lengths is None:   # regions too small to overflow: lengths past any region
                lengths = (W.KEYED_MAX_LENGTH,) * n
            descs = tuple(SglDescriptor(lim.regions[0].iova, ln, lim.regions[0].rkey,
                                        W.SGL_TYPE_KEYED_DATA, 0) for ln in lengths)
            return _mk(kind, Capsule(cap.sqe.replace(sgl1=W.last_segment(0, n)),
                                     b"".join(d.encode() for d in descs)))
        if kind == "last_segment_zero_length":
            return _mk(kind, _with_sgl1(cap, s.replace(length=0)))
        if kind == "last_segment_not_multiple":
            ln = draw(st.integers(1, max(16 * n - 1, 1)).filter(lambda v: v % 16))
            return _mk(kind, _with_sgl1(cap, s.replace(length=ln)))
        if kind == "last_segment_past_capsule":
            off = draw(st.one_of(st.integers(1, 16 * n), st.integers(16 * n + 1, U64 - 16 * n)))
            return _mk(kind, _with_sgl1(cap, s.replace(address=off)))
        i = draw(st.integers(0, n - 1))
        d = descs[i]
        if kind == "list_entry_segment":
            bad = SglDescriptor(16, 16 * n, 0, draw(st.sampled_from((W.SGL_TYPE_SEGMENT,
                                                                     W.SGL_TYPE_LAST_SEGMENT))),
                                draw(st.sampled_from((0, 1))))
        else:
            t = draw(st.sampled_from((W.SGL_TYPE_DATA_BLOCK, W.SGL_TYPE_BIT_BUCKET,
                                      W.SGL_TYPE_TRANSPORT_DATA, *W.SGL_RESERVED_TYPES)))
            bad = SglDescriptor(d.address, d.length, 0, t, draw(st.sampled_from((0, 1))))
        data = cap.data[:16 * i] + bad.encode() + cap.data[16 * (i + 1):]
        return _mk(kind, cap.replace(data=data))

    cid = draw(st.integers(0, U16))
    if kind == "io_invalid_opcode":
        return _mk(kind, Capsule(Sqe(opc=draw(st.sampled_from(_NVM_RESERVED_OPCODES)), cid=cid,
                                     nsid=draw(st.integers(1, max(len(lim.namespaces), 1))))))
    if kind == "admin_invalid_opcode":
        return _mk(kind, Capsule(Sqe(opc=draw(st.sampled_from(_ADMIN_RESERVED_OPCODES)),
                                     cid=cid)))
    if kind == "fabrics_invalid_fctype":
        return _mk(kind, Capsule(Sqe(opc=W.OPC_FABRICS, cid=cid,
                                     nsid=draw(st.sampled_from(_RESERVED_FCTYPES)))))
    if kind == "io_before_connect":
        return _mk(kind, draw(io_capsules(lim)))
    if kind == "admin_before_connect":
        return _mk(kind, Capsule(W.PropertySqe(W.FCTYPE_PROPERTY_GET, cid,
                                               draw(st.sampled_from((0x0, 0x8, 0x14, 0x1C))),
                                               draw(st.sampled_from((0, 1)))).sqe()))
    cap = draw(connect_capsules(lim))
    if kind == "connect_twice":
        return _mk(kind, cap)
    sq = W.ConnectSqe.from_sqe(cap.sqe)
    if kind == "connect_incompatible_format":
        sq = sq.replace(recfmt=draw(st.integers(1, U16)))
    elif kind == "connect_sqsize_zero":
        sq = sq.replace(sqsize=0)
    elif kind == "connect_sqsize_too_large":
        sq = sq.replace(sqsize=draw(st.integers(lim.max_queue_depth, U16)))
    elif kind == "connect_unknown_subnqn":
        data = W.ConnectData.decode(cap.data)
        other = draw(st.sampled_from(("nqn.2016-06.io.nrt:no-such-subsystem",
                                      lim.subnqn + "x", "nqn.2014-08.org.nvmexpress.discovery"
                                      if lim.subnqn != "nqn.2014-08.org.nvmexpress.discovery"
                                      else "nqn.x")))
        return _mk(kind, Capsule(cap.sqe, data.replace(subnqn=other.encode()).encode()))
    else:
        raise ValueError(f"unknown malformed kind {kind!r}")
    return _mk(kind, Capsule(sq.sqe(), cap.data))


def malformed_capsules(limits: WireLimits | None = None,
                       kinds: tuple[str, ...] | None = None,
                       ) -> SearchStrategy[MalformedCapsule]:
    """``MalformedCapsule(capsule, expected_status, kind, citation)`` for the ``kinds``
    (default: every one ``feasible_wire_kinds(limits)`` allows); send it on a queue in
    state ``WIRE_KINDS[kind].queue`` and accept ``WIRE_KINDS[kind].accepts(status)``.
    Raises ``ValueError`` for an unknown kind or one that cannot be built under
    ``limits``."""
    lim = limits or WireLimits()
    feasible = feasible_wire_kinds(lim)
    chosen = tuple(kinds) if kinds is not None else feasible
    for k in chosen:
        if k not in WIRE_KINDS:
            raise ValueError(f"unknown malformed kind {k!r}: choose from {tuple(WIRE_KINDS)}")
        if k not in feasible:
            raise ValueError(f"malformed kind {k!r} cannot be built under {lim}")
    if not chosen:
        raise ValueError("no malformed kind to draw")
    return st.sampled_from(chosen).flatmap(lambda k: _build_malformed(k, lim))


# ------------------------------------------------------------------- CM private data

#: ``cm_private_data`` kinds: "valid" and "padded" are accepted, the others rejected.
CM_KINDS: Final[dict[str, str | int]] = {
    "valid": "accept",
    "padded": "accept",
    "short": W.RDMA_STS_INVALID_PRIVATE_DATA_LENGTH,
    "bad_recfmt": W.RDMA_STS_INVALID_RECFMT,
    "bad_qid": W.RDMA_STS_INVALID_QID,
    "hrqsize_zero": W.RDMA_STS_INVALID_HRQSIZE,
    "hrqsize_too_large": W.RDMA_STS_INVALID_HRQSIZE,
    "hsqsize_zero": W.RDMA_STS_INVALID_HSQSIZE,
    "hsqsize_too_large": W.RDMA_STS_INVALID_HSQSIZE,
}


@st.composite
def _cm(draw: DrawFn, kind: str, depth: int, max_qid: int, dirty: bool) -> tuple[Any, ...]:
    qid = draw(st.integers(0, max_qid))
    d = draw(st.integers(2, depth))
    req = W.CmRequestPrivateData(
        0, qid, d, d - 1, W.CONNECT_CNTLID_DYNAMIC if qid == 0 else draw(st.integers(0, U16)),
        draw(st.binary(min_size=22, max_size=22)) if dirty else bytes(22))
    if kind == "bad_recfmt":
        req = req.replace(recfmt=draw(st.integers(1, U16)))
    elif kind == "bad_qid":
        req = req.replace(qid=draw(st.integers(max_qid + 1, U16)))
    elif kind == "hrqsize_zero":
        req = req.replace(hrqsize=0)
    elif kind == "hrqsize_too_large":
        req = req.replace(hrqsize=draw(st.integers(depth + 1, U16)))
    elif kind == "hsqsize_zero":
        req = req.replace(hsqsize=0)
    elif kind == "hsqsize_too_large":
        req = req.replace(hsqsize=draw(st.integers(depth, U16)))
    raw = req.encode()
    if kind == "short":
        raw = raw[:draw(st.integers(0, W.CM_REQUEST_SIZE - 1))]
    elif kind == "padded":   # RDMA CM hands over its whole private-data buffer, zero padded
        raw += bytes(draw(st.integers(1, 56 - W.CM_REQUEST_SIZE)))
    return raw, CM_KINDS[kind], kind


def cm_private_data(limits: WireLimits | None = None,
                    kinds: tuple[str, ...] = tuple(CM_KINDS), *, tagged: bool = False,
                    dirty_reserved: bool = False) -> SearchStrategy[tuple[Any, ...]]:
    """RDMA_CM_REQUEST private data for CONN-1 (NVMe/RDMA 1.0 3.3): ``(bytes, expected)``
    with ``expected`` ``"accept"`` or the ``RDMA_STS_*`` reject status (``tagged`` adds the
    kind).  Valid: RECFMT 0, QID 0..max_qid, queue depth d in 2..max_queue_depth with
    HRQSIZE = d and HSQSIZE = d - 1 (as Linux sends them), CNTLID FFFFh for the admin
    queue.  One thing wrong per invalid kind (``CM_KINDS``): fewer than 32 bytes, RECFMT
    != 0, QID > max_qid, HRQSIZE 0 or > max_queue_depth, HSQSIZE 0 (a 1-entry queue) or
    >= max_queue_depth.  ``padded`` appends zeros up to the 56 bytes RDMA CM carries
    (still accepted).  ``dirty_reserved`` draws the 22 reserved bytes."""
    lim = limits or WireLimits()
    depth, max_qid = lim.max_queue_depth, lim.max_qid
    if not 2 <= depth <= U16 or not 0 <= max_qid <= U16:
        raise ValueError(f"max_queue_depth={depth} / max_qid={max_qid}: need a depth in "
                         f"2..65535 and a qid limit in 0..65535")
    usable = [k for k in kinds if not (k == "bad_qid" and max_qid == U16)
              and not (k == "hrqsize_too_large" and depth == U16)]
    for k in usable:
        if k not in CM_KINDS:
            raise ValueError(f"unknown CM kind {k!r}: choose from {tuple(CM_KINDS)}")
    return st.sampled_from(usable).flatmap(
        lambda k: _cm(k, depth, max_qid, dirty_reserved).map(
            (lambda t: t) if tagged else (lambda t: t[:2])))
