"""NVMe-oF RDMA bytes on the wire: a pure-Python codec mirroring ``impl/csrc/nvmf_wire.h``.

Specifications cited (section numbers as the header uses them):

* NVMe Base Specification 2.0 - 4.1 Submission Queue Entry (64 bytes), 4.4 SGL descriptors
  (16 bytes), 4.6 Completion Queue Entry (16 bytes) and 4.6.1 its Status Field; status codes
  4.6.1.2 (Generic Command Status, SCT 0h) and 4.6.1.3 (Command Specific Status, SCT 1h).
* NVMe over Fabrics 1.1 - 2.1 (fabrics SQE: PSDT shall be 01b, SGLs only), 3.3 Fabrics
  commands (Connect and its 1024-byte data, figure 20; Connect status 80h..84h), 3.4 / 3.5
  Property Get / Set.
* NVMe/RDMA Transport Binding 1.0 - 3.3 RDMA CM private data (request, accept, reject with
  the reject status values of figure 6).

Everything is little endian.  No dependency on the compiled target: only ``struct``.

Checking policy (one rule for every structure):

* Instances are plain frozen dataclasses and accept any integers, so a malformed value can
  be *expressed* (``keyed(...).replace(subtype=3)``, ``Sqe(...).replace(psdt=0)``).
* ``encode()`` checks only that each field fits its wire width (and, for an SGL descriptor,
  that the field exists in the form its type selects).  Anything that fits is encodable - a
  malformed-but-encodable value is exactly what ERR-1 sends.  A value that cannot be on the
  wire (a keyed length >= 2**24, a 3-bit SCT of 8) raises ``ValueError`` naming the field.
* ``check()`` (``SglDescriptor``, ``Sqe``) is the well-formedness rule; it raises
  ``ValueError`` naming the first offending field.  The builders (``keyed``,
  ``data_block_offset``, ``last_segment``, ``Sqe.io``, ``Capsule.io``, ``ConnectSqe`` ...)
  check their arguments, so everything they return is well formed; ``replace`` is the one
  explicit path to a malformed value.
* ``decode(bytes)`` is total over inputs of the right size (every byte is kept, reserved
  ones included, so ``encode(decode(b)) == b``) and raises ``ValueError`` on a wrong size.
"""

from __future__ import annotations

import dataclasses
import struct
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Self, TypeVar

_T = TypeVar("_T")

# ------------------------------------------------------------------------------- sizes

SQE_SIZE: Final = 64
CQE_SIZE: Final = 16
SGL_DESC_SIZE: Final = 16
CONNECT_DATA_SIZE: Final = 1024
CM_REQUEST_SIZE: Final = 32
CM_ACCEPT_SIZE: Final = 32
CM_REJECT_SIZE: Final = 4   # struct nvmf_rdma_reject_private_data: RECFMT, STS
NQN_FIELD_SIZE: Final = 256
KEYED_MAX_LENGTH: Final = (1 << 24) - 1

# ------------------------------------------------------------------------------ opcodes
# NVM command set (NVMe NVM Command Set 1.0 / base 2.0 4.1: bits 1:0 = data direction)
OPC_FLUSH: Final = 0x00
OPC_WRITE: Final = 0x01
OPC_READ: Final = 0x02
# admin (NVMe base 2.0 5)
OPC_IDENTIFY: Final = 0x06
OPC_ABORT: Final = 0x08
OPC_SET_FEATURES: Final = 0x09
OPC_GET_FEATURES: Final = 0x0A
OPC_KEEP_ALIVE: Final = 0x18
OPC_FABRICS: Final = 0x7F
# fabrics command types (NVMe-oF 1.1 3.1, byte 4 of a 7Fh SQE)
FCTYPE_PROPERTY_SET: Final = 0x00
FCTYPE_CONNECT: Final = 0x01
FCTYPE_PROPERTY_GET: Final = 0x04

# ---------------------------------------------------------------- SGL types / subtypes
# NVMe base 2.0 4.4, figure "SGL Descriptor Type": byte 15 = type << 4 | subtype.
SGL_TYPE_DATA_BLOCK: Final = 0x0
SGL_TYPE_BIT_BUCKET: Final = 0x1
SGL_TYPE_SEGMENT: Final = 0x2
SGL_TYPE_LAST_SEGMENT: Final = 0x3
SGL_TYPE_KEYED_DATA: Final = 0x4
SGL_TYPE_TRANSPORT_DATA: Final = 0x5
SGL_TYPE_VENDOR: Final = 0xF
#: Types 6h..Eh are reserved (NVMe base 2.0 4.4).
SGL_RESERVED_TYPES: Final = tuple(range(0x6, 0xF))
SGL_SUBTYPE_ADDRESS: Final = 0x0
SGL_SUBTYPE_OFFSET: Final = 0x1
SGL_SUBTYPE_INVALIDATE: Final = 0xF

# ---------------------------------------------------------------------- SQE bit fields
PSDT_PRP: Final = 0b00
PSDT_SGL_MPTR_CONTIG: Final = 0b01   # the only value NVMe-oF 1.1 2.1 allows
PSDT_SGL_MPTR_SGL: Final = 0b10
PSDT_RESERVED: Final = 0b11
FUSE_NORMAL: Final = 0b00
FUSE_FIRST: Final = 0b01
FUSE_SECOND: Final = 0b10
FUSE_RESERVED: Final = 0b11
CONNECT_CNTLID_DYNAMIC: Final = 0xFFFF

# ---------------------------------------------------------------------- status values
# status = SCT << 8 | SC, as the target carries it (NVME_CQE_STATUS in the header).
SCT_GENERIC: Final = 0x0
SCT_COMMAND_SPECIFIC: Final = 0x1
SCT_MEDIA: Final = 0x2
SCT_PATH: Final = 0x3
SCT_VENDOR: Final = 0x7

# Generic Command Status (SCT 0h), NVMe base 2.0 4.6.1.2.
SC_SUCCESS: Final = 0x000
SC_INVALID_OPCODE: Final = 0x001
SC_INVALID_FIELD: Final = 0x002
SC_COMMAND_ID_CONFLICT: Final = 0x003
SC_DATA_TRANSFER_ERROR: Final = 0x004
SC_ABORTED_POWER_LOSS: Final = 0x005
SC_INTERNAL_ERROR: Final = 0x006
SC_ABORT_REQUESTED: Final = 0x007
SC_ABORTED_SQ_DELETION: Final = 0x008
SC_ABORTED_FAILED_FUSED: Final = 0x009
SC_ABORTED_MISSING_FUSED: Final = 0x00A
SC_INVALID_NAMESPACE: Final = 0x00B
SC_COMMAND_SEQUENCE_ERROR: Final = 0x00C
SC_INVALID_SGL_SEG_DESC: Final = 0x00D
SC_INVALID_NUM_SGL_DESC: Final = 0x00E
SC_DATA_SGL_LENGTH_INVALID: Final = 0x00F
SC_METADATA_SGL_LENGTH_INVALID: Final = 0x010
SC_SGL_DESC_TYPE_INVALID: Final = 0x011
SC_INVALID_CMB_USE: Final = 0x012
SC_PRP_OFFSET_INVALID: Final = 0x013
SC_ATOMIC_WRITE_UNIT_EXCEEDED: Final = 0x014
SC_OPERATION_DENIED: Final = 0x015
SC_SGL_OFFSET_INVALID: Final = 0x016
SC_HOSTID_INCONSISTENT_FORMAT: Final = 0x018
SC_KEEP_ALIVE_EXPIRED: Final = 0x019
SC_KEEP_ALIVE_INVALID: Final = 0x01A
SC_ABORTED_PREEMPT: Final = 0x01B
SC_SANITIZE_FAILED: Final = 0x01C
SC_SANITIZE_IN_PROGRESS: Final = 0x01D
SC_SGL_DATA_BLOCK_GRANULARITY_INVALID: Final = 0x01E
SC_NAMESPACE_WRITE_PROTECTED: Final = 0x020
SC_COMMAND_INTERRUPTED: Final = 0x021
SC_TRANSIENT_TRANSPORT_ERROR: Final = 0x022
# Generic, I/O command set specific (80h..BFh; NVM Command Set 1.0)
SC_LBA_OUT_OF_RANGE: Final = 0x080
SC_CAPACITY_EXCEEDED: Final = 0x081
SC_NAMESPACE_NOT_READY: Final = 0x082
SC_RESERVATION_CONFLICT: Final = 0x083
SC_FORMAT_IN_PROGRESS: Final = 0x084
# Command Specific Status (SCT 1h), NVMe base 2.0 4.6.1.3
SC_INVALID_QUEUE_IDENTIFIER: Final = 0x101
SC_INVALID_QUEUE_SIZE: Final = 0x102
SC_ABORT_LIMIT_EXCEEDED: Final = 0x103
SC_ASYNC_EVENT_LIMIT_EXCEEDED: Final = 0x105
# ... Fabrics Connect (NVMe-oF 1.1 3.3, Connect command specific status values)
SC_CONNECT_INCOMPATIBLE_FORMAT: Final = 0x180
SC_CONNECT_CONTROLLER_BUSY: Final = 0x181
SC_CONNECT_INVALID_PARAMETERS: Final = 0x182
SC_CONNECT_RESTART_DISCOVERY: Final = 0x183
SC_CONNECT_INVALID_HOST: Final = 0x184
# Media and Data Integrity Errors (SCT 2h)
SC_WRITE_FAULT: Final = 0x280
SC_UNRECOVERED_READ_ERROR: Final = 0x281
SC_GUARD_CHECK_ERROR: Final = 0x282
SC_APPTAG_CHECK_ERROR: Final = 0x283
SC_REFTAG_CHECK_ERROR: Final = 0x284
SC_COMPARE_FAILURE: Final = 0x285
SC_ACCESS_DENIED: Final = 0x286
SC_DEALLOCATED_OR_UNWRITTEN: Final = 0x287
# Path Related Status (SCT 3h)
SC_INTERNAL_PATH_ERROR: Final = 0x300
SC_ANA_PERSISTENT_LOSS: Final = 0x301
SC_ANA_INACCESSIBLE: Final = 0x302
SC_ANA_TRANSITION: Final = 0x303
SC_CONTROLLER_PATHING_ERROR: Final = 0x360
SC_HOST_PATHING_ERROR: Final = 0x370
SC_ABORTED_BY_HOST: Final = 0x371

#: status (SCT << 8 | SC) -> name.  Command specific codes are named for the commands this
#: suite sends (Connect for 80h..84h); the same numbers mean other things for other commands.
STATUS_NAMES: Final[dict[int, str]] = {
    v: k[3:] for k, v in sorted(globals().items()) if k.startswith("SC_") and isinstance(v, int)
}

# Reject status values (NVMe/RDMA 1.0 3.3, figure 6)
RDMA_STS_INVALID_PRIVATE_DATA_LENGTH: Final = 0x01
RDMA_STS_INVALID_RECFMT: Final = 0x02
RDMA_STS_INVALID_QID: Final = 0x03
RDMA_STS_INVALID_HSQSIZE: Final = 0x04
RDMA_STS_INVALID_HRQSIZE: Final = 0x05
RDMA_STS_NO_RESOURCES: Final = 0x06
RDMA_STS_INVALID_IRD: Final = 0x07
RDMA_STS_INVALID_ORD: Final = 0x08
RDMA_REJECT_NAMES: Final[dict[int, str]] = {
    v: k[9:] for k, v in sorted(globals().items())
    if k.startswith("RDMA_STS_") and isinstance(v, int)
}


def status_name(status: int) -> str:
    """Readable name of ``status`` = SCT << 8 | SC (e.g. ``0x182`` ->
    ``"CONNECT_INVALID_PARAMETERS"``); unknown codes read ``"SCT1h/SC99h"``.  Raises
    ``ValueError`` if ``status`` does not fit 11 bits (3-bit SCT, 8-bit SC; base 2.0 4.6.1)."""
    if not isinstance(status, int) or not 0 <= status <= 0x7FF:
        raise ValueError(f"status={status!r}: must be SCT << 8 | SC in 0..0x7ff")
    name = STATUS_NAMES.get(status)
    return name if name is not None else f"SCT{status >> 8:X}h/SC{status & 0xFF:02X}h"


def status_word(status: int, *, dnr: bool = False, phase: int = 0, crd: int = 0,
                more: bool = False) -> int:
    """The CQE status word (base 2.0 4.6.1: bit 0 P, 8:1 SC, 11:9 SCT, 13:12 CRD, 14 M,
    15 DNR) for ``status`` = SCT << 8 | SC; checks every field's width."""
    _width("status", status, 11)
    _width("phase", phase, 1)
    _width("crd", crd, 2)
    return ((status & 0xFF) << 1 | (status >> 8) << 9 | crd << 12 | int(bool(more)) << 14
            | int(bool(dnr)) << 15 | phase)


# ----------------------------------------------------------------------------- helpers

def _width(name: str, value: Any, bits: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name}={value!r}: must be an integer")
    if not 0 <= value < 1 << bits:
        raise ValueError(f"{name}={value:#x} does not fit {bits} bits "
                         f"(0..{(1 << bits) - 1:#x})")


def _raw(name: str, value: Any, size: int) -> None:
    if not isinstance(value, (bytes, bytearray)) or len(value) != size:
        raise ValueError(f"{name}: must be {size} bytes, got "
                         f"{len(value) if isinstance(value, (bytes, bytearray)) else value!r}")


def _size(cls_name: str, data: Any, size: int, *, exact: bool = True) -> bytes:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ValueError(f"{cls_name}.decode: expected bytes, got {type(data).__name__}")
    data = bytes(data)
    if (len(data) != size) if exact else (len(data) < size):
        want = f"{size}" if exact else f"at least {size}"
        raise ValueError(f"{cls_name}.decode: expected {want} bytes, got {len(data)}")
    return data[:size]


class _Replace:
    def replace(self, **changes: Any) -> Self:
        """A copy with some fields changed, unchecked (the path to malformed values; only
        ``encode()``'s width check applies).  Unknown names raise ``TypeError``."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]


Z3 = b"\0\0\0"

# -------------------------------------------------------------------- SGL descriptors


@dataclass(frozen=True)
class SglDescriptor(_Replace):
    """One 16-byte SGL descriptor (NVMe base 2.0 4.4; ``union nvme_sgl_desc``).

    The type selects the form: a keyed data block (type 4h, base 4.4 / NVMe-oF RDMA) is
    address (bytes 0..7), 24-bit ``length`` (8..10), 32-bit ``key`` (11..14); every other
    type uses the unkeyed form: address, 32-bit ``length`` (8..11), ``reserved`` (12..14).
    Byte 15 is ``type << 4 | subtype``.  ``key`` must be 0 in the unkeyed form and
    ``reserved`` all zero in the keyed one (neither has room for the other)."""

    address: int = 0
    length: int = 0
    key: int = 0
    type: int = SGL_TYPE_DATA_BLOCK
    subtype: int = SGL_SUBTYPE_ADDRESS
    reserved: bytes = Z3

    SIZE: ClassVar[int] = SGL_DESC_SIZE

    @property
    def is_keyed(self) -> bool:
        return self.type == SGL_TYPE_KEYED_DATA

    @property
    def type_subtype(self) -> int:
        """Byte 15."""
        return (self.type & 0xF) << 4 | (self.subtype & 0xF)

    def encode(self) -> bytes:
        _width("sgl.address", self.address, 64)
        _width("sgl.type", self.type, 4)
        _width("sgl.subtype", self.subtype, 4)
        _raw("sgl.reserved", self.reserved, 3)
        if self.is_keyed:
            _width("sgl.length (keyed, 24 bits)", self.length, 24)
            _width("sgl.key", self.key, 32)
            if self.reserved != Z3:
                raise ValueError("sgl.reserved: a keyed descriptor has no reserved bytes "
                                 "(bytes 12..14 hold the key)")
            return (struct.pack("<Q", self.address) + self.length.to_bytes(3, "little")
                    + struct.pack("<IB", self.key, self.type_subtype))
        _width("sgl.length", self.length, 32)
        if self.key:
            raise ValueError(f"sgl.key={self.key:#x}: only a keyed descriptor (type 4h) "
                             f"has a key; type {self.type:#x} uses the unkeyed form")
        return (struct.pack("<QI", self.address, self.length) + bytes(self.reserved)
                + bytes([self.type_subtype]))

    @classmethod
    def decode(cls, data: bytes) -> SglDescriptor:
        data = _size("SglDescriptor", data, SGL_DESC_SIZE)
        address, = struct.unpack_from("<Q", data)
        t, s = data[15] >> 4, data[15] & 0xF
        if t == SGL_TYPE_KEYED_DATA:
            return cls(address, int.from_bytes(data[8:11], "little"),
                       struct.unpack_from("<I", data, 11)[0], t, s)
        return cls(address, struct.unpack_from("<I", data, 8)[0], 0, t, s, data[12:15])

    def check(self) -> None:
        """Raise ``ValueError`` naming the field if this is not a descriptor an NVMe-oF
        RDMA host may put in SGL1 or a last-segment list: keyed data block (subtype 0h or
        Fh, length >= 1), data block with subtype offset (in-capsule, length >= 1) or last
        segment with subtype offset (length a non-zero multiple of 16); reserved zero."""
        self.encode()
        if self.type == SGL_TYPE_KEYED_DATA:
            if self.subtype not in (SGL_SUBTYPE_ADDRESS, SGL_SUBTYPE_INVALIDATE):
                raise ValueError(f"sgl.subtype={self.subtype:#x}: a keyed data block's "
                                 f"subtype is 0h (address) or Fh (invalidate)")
        elif self.type in (SGL_TYPE_DATA_BLOCK, SGL_TYPE_LAST_SEGMENT):
            if self.subtype != SGL_SUBTYPE_OFFSET:
                raise ValueError(f"sgl.subtype={self.subtype:#x}: a data block / last "
                                 f"segment in a fabrics capsule uses subtype 1h (offset)")
            if self.reserved != Z3:
                raise ValueError(f"sgl.reserved={self.reserved.hex()}: must be zero")
        else:
            raise ValueError(f"sgl.type={self.type:#x}: not a type NVMe/RDMA uses "
                             f"(data block 0h, last segment 3h, keyed data block 4h)")
        if self.length == 0:
            raise ValueError("sgl.length=0: must be at least 1")
        if self.type == SGL_TYPE_LAST_SEGMENT and self.length % SGL_DESC_SIZE:
            raise ValueError(f"sgl.length={self.length}: a last segment's length is a "
                             f"multiple of 16")


def keyed(addr: int, length: int, key: int, invalidate: bool = False) -> SglDescriptor:
    """Keyed SGL data block (type 4h, subtype 0h or Fh with ``invalidate``): ``length``
    bytes of host memory at ``addr`` under remote key ``key`` (base 2.0 4.4; NVMe/RDMA)."""
    d = SglDescriptor(addr, length, key, SGL_TYPE_KEYED_DATA,
                      SGL_SUBTYPE_INVALIDATE if invalidate else SGL_SUBTYPE_ADDRESS)
    d.check()
    return d


def data_block_offset(offset: int, length: int) -> SglDescriptor:
    """SGL data block, subtype offset (type 0h, subtype 1h): ``length`` bytes of in-capsule
    data at ``offset`` into the capsule's data area (NVMe-oF 1.1 2.x capsules)."""
    d = SglDescriptor(offset, length, 0, SGL_TYPE_DATA_BLOCK, SGL_SUBTYPE_OFFSET)
    d.check()
    return d


def last_segment(offset: int, count: int) -> SglDescriptor:
    """SGL last segment, subtype offset (type 3h, subtype 1h): ``count`` 16-byte
    descriptors in the in-capsule area at ``offset`` (length 16 * count; base 2.0 4.4)."""
    _width("count", count, 28)
    d = SglDescriptor(offset, SGL_DESC_SIZE * count, 0, SGL_TYPE_LAST_SEGMENT,
                      SGL_SUBTYPE_OFFSET)
    d.check()
    return d


NULL_SGL: Final = SglDescriptor()

# ----------------------------------------------------------------------------- SQE

_SQE = struct.Struct("<BBHIIIQ16sIIIIII")
assert _SQE.size == SQE_SIZE


@dataclass(frozen=True)
class Sqe(_Replace):
    """Submission queue entry (NVMe base 2.0 4.1; ``struct nvme_sqe``), 64 bytes.

    CDW0: ``opc`` byte 0; byte 1 = ``fuse`` (bits 1:0) | ``rsvd`` (bits 5:2, reserved) |
    ``psdt`` (bits 7:6); ``cid`` bytes 2..3.  ``nsid`` 4..7, ``cdw2`` 8..11, ``cdw3``
    12..15, ``mptr`` 16..23, ``sgl1`` (DPTR) 24..39, ``cdw10``..``cdw15`` 40..63.

    A fabrics command (opc 7Fh, NVMe-oF 1.1 2.1 / 3.1) is the same 64 bytes viewed
    differently: ``fctype`` is byte 4 (the low byte of ``nsid``), bytes 5..23 are reserved
    and bytes 40..63 command specific (``cdw10``..``cdw15``); see ``ConnectSqe`` and
    ``PropertySqe`` for the views."""

    opc: int = 0
    fuse: int = FUSE_NORMAL
    psdt: int = PSDT_SGL_MPTR_CONTIG
    cid: int = 0
    nsid: int = 0
    cdw2: int = 0
    cdw3: int = 0
    mptr: int = 0
    sgl1: SglDescriptor = NULL_SGL
    cdw10: int = 0
    cdw11: int = 0
    cdw12: int = 0
    cdw13: int = 0
    cdw14: int = 0
    cdw15: int = 0
    rsvd: int = 0

    SIZE: ClassVar[int] = SQE_SIZE

    def encode(self) -> bytes:
        for name, bits in (("opc", 8), ("fuse", 2), ("rsvd", 4), ("psdt", 2), ("cid", 16),
                           ("nsid", 32), ("cdw2", 32), ("cdw3", 32), ("mptr", 64),
                           ("cdw10", 32), ("cdw11", 32), ("cdw12", 32), ("cdw13", 32),
                           ("cdw14", 32), ("cdw15", 32)):
            _width(name, getattr(self, name), bits)
        if not isinstance(self.sgl1, SglDescriptor):
            raise ValueError(f"sgl1={self.sgl1!r}: must be an SglDescriptor")
        return _SQE.pack(self.opc, self.fuse | self.rsvd << 2 | self.psdt << 6, self.cid,
                         self.nsid, self.cdw2, self.cdw3, self.mptr, self.sgl1.encode(),
                         self.cdw10, self.cdw11, self.cdw12, self.cdw13, self.cdw14,
                         self.cdw15)

    @classmethod
    def decode(cls, data: bytes) -> Sqe:
        data = _size("Sqe", data, SQE_SIZE)
        (opc, flags, cid, nsid, cdw2, cdw3, mptr, sgl, c10, c11, c12, c13, c14,
         c15) = _SQE.unpack(data)
        return cls(opc, flags & 3, flags >> 6, cid, nsid, cdw2, cdw3, mptr,
                   SglDescriptor.decode(sgl), c10, c11, c12, c13, c14, c15,
                   (flags >> 2) & 0xF)

    # ---- views
    @property
    def fctype(self) -> int:
        """Fabrics command type: byte 4 (NVMe-oF 1.1 3.1); meaningful when opc is 7Fh."""
        return self.nsid & 0xFF

    @property
    def is_fabrics(self) -> bool:
        return self.opc == OPC_FABRICS

    @property
    def data_direction(self) -> int:
        """Bits 1:0 of OPC (or of FCTYPE for fabrics): 0 none, 1 host to controller,
        2 controller to host, 3 bidirectional (base 2.0 4.1; NVMe-oF 1.1 3.1)."""
        return (self.fctype if self.is_fabrics else self.opc) & 3

    @property
    def slba(self) -> int:
        """Read/Write/... starting LBA: CDW11:CDW10 (NVM Command Set 1.0)."""
        return self.cdw11 << 32 | self.cdw10

    @property
    def nlb(self) -> int:
        """Number of logical blocks, 0's based: CDW12 bits 15:0."""
        return self.cdw12 & 0xFFFF

    def check(self) -> None:
        """Raise ``ValueError`` naming the field if this SQE breaks a rule every fabrics
        command follows: PSDT 01b (NVMe-oF 1.1 2.1), FUSE 00b, reserved CDW0 bits zero,
        and an SGL1 that passes ``SglDescriptor.check`` when the command moves data."""
        self.encode()
        if self.psdt != PSDT_SGL_MPTR_CONTIG:
            raise ValueError(f"psdt={self.psdt:#04b}: NVMe-oF 1.1 2.1 requires 01b (SGLs)")
        if self.fuse != FUSE_NORMAL:
            raise ValueError(f"fuse={self.fuse:#04b}: fused operations are not sent")
        if self.rsvd:
            raise ValueError(f"rsvd={self.rsvd:#x}: CDW0 bits 13:10 are reserved")
        if self.data_direction:
            self.sgl1.check()

    @classmethod
    def io(cls, opc: int, cid: int, nsid: int, slba: int = 0, nlb: int = 0,
           sgl1: SglDescriptor = NULL_SGL) -> Sqe:
        """An NVM command (Flush, Write, Read...) with SLBA in CDW10/11 and NLB (0's based)
        in CDW12 bits 15:0; checked."""
        _width("opc", opc, 8)
        _width("slba", slba, 64)
        _width("nlb", nlb, 16)
        sqe = cls(opc=opc, cid=cid, nsid=nsid, sgl1=sgl1, cdw10=slba & 0xFFFF_FFFF,
                  cdw11=slba >> 32, cdw12=nlb)
        sqe.check()
        return sqe


def _fabrics_view(sqe: Sqe, fctype: int, what: str) -> bytes:
    if sqe.opc != OPC_FABRICS or sqe.fctype != fctype:
        raise ValueError(f"{what}.from_sqe: opc={sqe.opc:#x} fctype={sqe.fctype:#x} is not "
                         f"a {what} (opc 7Fh, fctype {fctype:#04x})")
    return sqe.encode()


_CONNECT_SPECIFIC = struct.Struct("<HHHBBI12s")   # bytes 40..63


@dataclass(frozen=True)
class ConnectSqe(_Replace):
    """Connect command view (NVMe-oF 1.1 3.3; ``struct nvmf_connect_sqe``): fctype 01h,
    RECFMT bytes 40..41, QID 42..43, SQSIZE (0's based) 44..45, CATTR 46, KATO (ms)
    48..51.  The 1024-byte ``ConnectData`` rides in-capsule: SGL1 is by default a data
    block, subtype offset 0, length 1024.  ``sqe()`` is the canonical 64-byte form."""

    cid: int = 0
    qid: int = 0
    sqsize: int = 31
    cattr: int = 0
    kato: int = 0
    recfmt: int = 0
    sgl1: SglDescriptor = field(default_factory=lambda: data_block_offset(0,
                                                                          CONNECT_DATA_SIZE))

    def sqe(self) -> Sqe:
        spec = _CONNECT_SPECIFIC.pack(self.recfmt, self.qid, self.sqsize, self.cattr, 0,
                                      self.kato, bytes(12))
        return Sqe(opc=OPC_FABRICS, cid=self.cid, nsid=FCTYPE_CONNECT, sgl1=self.sgl1,
                   **dict(zip(_CDWS, struct.unpack("<6I", spec))))

    def encode(self) -> bytes:
        for name, bits in (("recfmt", 16), ("qid", 16), ("sqsize", 16), ("cattr", 8),
                           ("kato", 32)):
            _width(name, getattr(self, name), bits)
        return self.sqe().encode()

    @classmethod
    def from_sqe(cls, sqe: Sqe) -> ConnectSqe:
        raw = _fabrics_view(sqe, FCTYPE_CONNECT, "ConnectSqe")
        recfmt, qid, sqsize, cattr, _r, kato, _r3 = _CONNECT_SPECIFIC.unpack_from(raw, 40)
        return cls(sqe.cid, qid, sqsize, cattr, kato, recfmt, sqe.sgl1)

    @classmethod
    def decode(cls, data: bytes) -> ConnectSqe:
        """The Connect fields of a 64-byte SQE (reserved bytes are not kept: decode with
        ``Sqe.decode`` for a lossless view)."""
        return cls.from_sqe(Sqe.decode(_size("ConnectSqe", data, SQE_SIZE)))


_CDWS = ("cdw10", "cdw11", "cdw12", "cdw13", "cdw14", "cdw15")
_PROPERTY_SPECIFIC = struct.Struct("<B3sIQ8s")   # bytes 40..63


@dataclass(frozen=True)
class PropertySqe(_Replace):
    """Property Get (fctype 04h) / Property Set (00h) view (NVMe-oF 1.1 3.4 / 3.5;
    ``struct nvmf_property_sqe``): ATTRIB byte 40 (bits 2:0 size: 0 = 4 bytes, 1 = 8
    bytes), OFST dword at 44, VALUE (Set only) qword at 48.  No data (SGL1 zero)."""

    fctype: int = FCTYPE_PROPERTY_GET
    cid: int = 0
    ofst: int = 0
    attrib: int = 0
    value: int = 0

    def sqe(self) -> Sqe:
        spec = _PROPERTY_SPECIFIC.pack(self.attrib, Z3, self.ofst, self.value, bytes(8))
        return Sqe(opc=OPC_FABRICS, cid=self.cid, nsid=self.fctype,
                   **dict(zip(_CDWS, struct.unpack("<6I", spec))))

    def encode(self) -> bytes:
        for name, bits in (("fctype", 8), ("attrib", 8), ("ofst", 32), ("value", 64)):
            _width(name, getattr(self, name), bits)
        return self.sqe().encode()

    @classmethod
    def from_sqe(cls, sqe: Sqe) -> PropertySqe:
        if sqe.opc != OPC_FABRICS or sqe.fctype not in (FCTYPE_PROPERTY_GET,
                                                        FCTYPE_PROPERTY_SET):
            raise ValueError(f"PropertySqe.from_sqe: opc={sqe.opc:#x} fctype={sqe.fctype:#x}"
                             f" is not a Property Get/Set")
        attrib, _r, ofst, value, _r2 = _PROPERTY_SPECIFIC.unpack_from(sqe.encode(), 40)
        return cls(sqe.fctype, sqe.cid, ofst, attrib, value)

    @classmethod
    def decode(cls, data: bytes) -> PropertySqe:
        return cls.from_sqe(Sqe.decode(_size("PropertySqe", data, SQE_SIZE)))


# ----------------------------------------------------------------------------- CQE

_CQE = struct.Struct("<IIHHHH")


@dataclass(frozen=True)
class Cqe(_Replace):
    """Completion queue entry (NVMe base 2.0 4.6; ``struct nvme_cqe``), 16 bytes: ``cdw0``
    (Connect: CNTLID in bits 15:0), ``cdw1``, ``sqhd``, ``sqid``, ``cid``, and the status
    word (4.6.1: bit 0 P, 8:1 SC, 11:9 SCT, 13:12 CRD, 14 M, 15 DNR)."""

    cdw0: int = 0
    cdw1: int = 0
    sqhd: int = 0
    sqid: int = 0
    cid: int = 0
    status_word: int = 0

    SIZE: ClassVar[int] = CQE_SIZE

    @classmethod
    def make(cls, cid: int, status: int = SC_SUCCESS, *, dnr: bool = False, phase: int = 0,
             crd: int = 0, more: bool = False, sqhd: int = 0, sqid: int = 0, cdw0: int = 0,
             cdw1: int = 0) -> Cqe:
        """A CQE with ``status`` = SCT << 8 | SC packed into the status word."""
        return cls(cdw0, cdw1, sqhd, sqid, cid,
                   status_word(status, dnr=dnr, phase=phase, crd=crd, more=more))

    @property
    def phase(self) -> int:
        return self.status_word & 1

    @property
    def sc(self) -> int:
        return (self.status_word >> 1) & 0xFF

    @property
    def sct(self) -> int:
        return (self.status_word >> 9) & 0x7

    @property
    def crd(self) -> int:
        return (self.status_word >> 12) & 0x3

    @property
    def more(self) -> bool:
        return bool(self.status_word >> 14 & 1)

    @property
    def dnr(self) -> bool:
        return bool(self.status_word >> 15 & 1)

    @property
    def status(self) -> int:
        """SCT << 8 | SC (the form ``status_name`` and the target use)."""
        return self.sct << 8 | self.sc

    def encode(self) -> bytes:
        for name, bits in (("cdw0", 32), ("cdw1", 32), ("sqhd", 16), ("sqid", 16),
                           ("cid", 16), ("status_word", 16)):
            _width(name, getattr(self, name), bits)
        return _CQE.pack(self.cdw0, self.cdw1, self.sqhd, self.sqid, self.cid,
                         self.status_word)

    @classmethod
    def decode(cls, data: bytes) -> Cqe:
        return cls(*_CQE.unpack(_size("Cqe", data, CQE_SIZE)))


# --------------------------------------------------------------------- Connect data

_CONNECT_DATA = struct.Struct("<16sH238s256s256s256s")
assert _CONNECT_DATA.size == CONNECT_DATA_SIZE


@dataclass(frozen=True)
class ConnectData(_Replace):
    """Connect data (NVMe-oF 1.1 3.3, figure 20; ``struct nvmf_connect_data``), 1024 bytes:
    HOSTID 0..15, CNTLID 16..17 (FFFFh: dynamic controller model), SUBNQN 256..511, HOSTNQN
    512..767 (NUL-padded; kept as bytes with trailing NULs stripped so any 256 bytes round
    trip), reserved 18..255 and 768..1023 kept as bytes."""

    hostid: bytes = bytes(16)
    cntlid: int = CONNECT_CNTLID_DYNAMIC
    subnqn: bytes = b""
    hostnqn: bytes = b""
    reserved1: bytes = bytes(238)
    reserved2: bytes = bytes(256)

    SIZE: ClassVar[int] = CONNECT_DATA_SIZE

    def __post_init__(self) -> None:
        for name in ("subnqn", "hostnqn"):
            v = getattr(self, name)
            if isinstance(v, str):
                v = v.encode()
            if isinstance(v, (bytes, bytearray)):
                object.__setattr__(self, name, bytes(v).rstrip(b"\0"))

    @classmethod
    def make(cls, subnqn: str, hostnqn: str, hostid: bytes = bytes(16),
             cntlid: int = CONNECT_CNTLID_DYNAMIC) -> ConnectData:
        """Checked: NQNs are UTF-8 of at most 223 bytes (base 2.0 4.5, NQN), NUL terminated
        in their 256-byte fields."""
        for name, v in (("subnqn", subnqn), ("hostnqn", hostnqn)):
            if not 1 <= len(v.encode()) <= 223:
                raise ValueError(f"{name}={v!r}: an NQN is 1..223 bytes of UTF-8")
        d = cls(hostid, cntlid, subnqn.encode(), hostnqn.encode())
        d.encode()
        return d

    def encode(self) -> bytes:
        _raw("hostid", self.hostid, 16)
        _width("cntlid", self.cntlid, 16)
        _raw("reserved1", self.reserved1, 238)
        _raw("reserved2", self.reserved2, 256)
        for name in ("subnqn", "hostnqn"):
            v = getattr(self, name)
            if not isinstance(v, bytes) or len(v) > NQN_FIELD_SIZE:
                raise ValueError(f"{name}: at most {NQN_FIELD_SIZE} bytes, got {v!r:.40}")
        return _CONNECT_DATA.pack(self.hostid, self.cntlid, self.reserved1, self.subnqn,
                                  self.hostnqn, self.reserved2)

    @classmethod
    def decode(cls, data: bytes) -> ConnectData:
        h, c, r1, s, n, r2 = _CONNECT_DATA.unpack(_size("ConnectData", data,
                                                        CONNECT_DATA_SIZE))
        return cls(h, c, s, n, r1, r2)


# -------------------------------------------------------------- RDMA CM private data

_CM_REQ = struct.Struct("<HHHHH22s")
_CM_ACC = struct.Struct("<HH28s")
_CM_REJ = struct.Struct("<HH")


@dataclass(frozen=True)
class CmRequestPrivateData(_Replace):
    """RDMA_CM_REQUEST private data (NVMe/RDMA 1.0 3.3, figure 4), 32 bytes: RECFMT (0),
    QID, HRQSIZE (host receive queue size, 1's based), HSQSIZE (host send queue size,
    0's based: Connect's SQSIZE), CNTLID, 22 reserved bytes."""

    recfmt: int = 0
    qid: int = 0
    hrqsize: int = 32
    hsqsize: int = 31
    cntlid: int = CONNECT_CNTLID_DYNAMIC
    reserved: bytes = bytes(22)

    SIZE: ClassVar[int] = CM_REQUEST_SIZE

    def encode(self) -> bytes:
        for name in ("recfmt", "qid", "hrqsize", "hsqsize", "cntlid"):
            _width(name, getattr(self, name), 16)
        _raw("reserved", self.reserved, 22)
        return _CM_REQ.pack(self.recfmt, self.qid, self.hrqsize, self.hsqsize, self.cntlid,
                            self.reserved)

    @classmethod
    def decode(cls, data: bytes, *, exact: bool = True) -> CmRequestPrivateData:
        """``exact=False`` accepts the longer, zero-padded buffer RDMA CM delivers and
        reads its first 32 bytes (shorter still raises)."""
        return cls(*_CM_REQ.unpack(_size("CmRequestPrivateData", data, CM_REQUEST_SIZE,
                                          exact=exact)))


@dataclass(frozen=True)
class CmAcceptPrivateData(_Replace):
    """RDMA_CM_ACCEPT private data (NVMe/RDMA 1.0 3.3, figure 5), 32 bytes: RECFMT,
    CRQSIZE (controller receive queue size), 28 reserved bytes."""

    recfmt: int = 0
    crqsize: int = 0
    reserved: bytes = bytes(28)

    SIZE: ClassVar[int] = CM_ACCEPT_SIZE

    def encode(self) -> bytes:
        _width("recfmt", self.recfmt, 16)
        _width("crqsize", self.crqsize, 16)
        _raw("reserved", self.reserved, 28)
        return _CM_ACC.pack(self.recfmt, self.crqsize, self.reserved)

    @classmethod
    def decode(cls, data: bytes, *, exact: bool = True) -> CmAcceptPrivateData:
        return cls(*_CM_ACC.unpack(_size("CmAcceptPrivateData", data, CM_ACCEPT_SIZE,
                                         exact=exact)))


@dataclass(frozen=True)
class CmRejectPrivateData(_Replace):
    """RDMA_CM_REJECT private data (NVMe/RDMA 1.0 3.3, figure 6), 4 bytes: RECFMT, STS
    (an ``RDMA_STS_*`` value)."""

    recfmt: int = 0
    sts: int = 0

    SIZE: ClassVar[int] = CM_REJECT_SIZE

    @property
    def sts_name(self) -> str:
        return RDMA_REJECT_NAMES.get(self.sts, f"STS{self.sts:04X}h")

    def encode(self) -> bytes:
        _width("recfmt", self.recfmt, 16)
        _width("sts", self.sts, 16)
        return _CM_REJ.pack(self.recfmt, self.sts)

    @classmethod
    def decode(cls, data: bytes, *, exact: bool = True) -> CmRejectPrivateData:
        return cls(*_CM_REJ.unpack(_size("CmRejectPrivateData", data, CM_REJECT_SIZE,
                                         exact=exact)))


# ------------------------------------------------------------------------- capsules


@dataclass(frozen=True)
class Capsule(_Replace):
    """A command capsule (NVMe-oF 1.1 2.x): the 64-byte SQE followed by in-capsule bytes
    (in-capsule data, or the descriptor list a last-segment SGL1 points at)."""

    sqe: Sqe
    data: bytes = b""

    def encode(self) -> bytes:
        if not isinstance(self.data, (bytes, bytearray)):
            raise ValueError(f"data: must be bytes, got {type(self.data).__name__}")
        return self.sqe.encode() + bytes(self.data)

    @classmethod
    def decode(cls, data: bytes) -> Capsule:
        raw = _size("Capsule", data, SQE_SIZE, exact=False)
        return cls(Sqe.decode(raw), bytes(data)[SQE_SIZE:])

    @classmethod
    def io(cls, opcode: int, cid: int, nsid: int, slba: int, nlb: int,
           descriptors: list[SglDescriptor] | tuple[SglDescriptor, ...] = (),
           icd: bytes | None = None) -> Capsule:
        """An NVM command capsule: no descriptors and no ``icd`` -> SGL1 zero (Flush);
        one keyed descriptor -> SGL1 is it; several -> SGL1 last segment (offset 0,
        length 16 * n) with the descriptors as the in-capsule bytes; ``icd`` -> SGL1 data
        block offset 0 of ``len(icd)`` bytes, the bytes in-capsule.  Checked (every
        descriptor must be keyed; not both descriptors and ``icd``)."""
        descriptors = tuple(descriptors)
        if icd is not None and descriptors:
            raise ValueError("descriptors: give keyed descriptors or icd, not both")
        for i, d in enumerate(descriptors):
            d.check()
            if not d.is_keyed:
                raise ValueError(f"descriptors[{i}].type={d.type:#x}: must be keyed (4h)")
        data = b""
        if icd is not None:
            sgl1 = data_block_offset(0, len(icd))
            data = bytes(icd)
        elif len(descriptors) == 1:
            sgl1 = descriptors[0]
        elif descriptors:
            sgl1 = last_segment(0, len(descriptors))
            data = b"".join(d.encode() for d in descriptors)
        else:
            sgl1 = NULL_SGL
        return cls(Sqe.io(opcode, cid, nsid, slba, nlb, sgl1), data)

    def list_descriptors(self) -> tuple[SglDescriptor, ...]:
        """The descriptors a last-segment SGL1 points at, decoded from the in-capsule
        bytes.  Raises ``ValueError`` if SGL1 is not a last segment (subtype offset) or
        its range is not whole descriptors inside the capsule."""
        s = self.sqe.sgl1
        if s.type != SGL_TYPE_LAST_SEGMENT or s.subtype != SGL_SUBTYPE_OFFSET:
            raise ValueError("sgl1: not a last segment with subtype offset")
        if s.length % SGL_DESC_SIZE or s.address + s.length > len(self.data):
            raise ValueError(f"sgl1: offset {s.address} length {s.length} is not whole "
                             f"descriptors inside {len(self.data)} in-capsule bytes")
        return tuple(SglDescriptor.decode(self.data[o:o + SGL_DESC_SIZE])
                     for o in range(s.address, s.address + s.length, SGL_DESC_SIZE))

    def data_descriptors(self) -> tuple[SglDescriptor, ...]:
        """The descriptors that describe data: the list for a last segment, else SGL1
        alone (empty when the command moves no data)."""
        if not self.sqe.data_direction:
            return ()
        if self.sqe.sgl1.type == SGL_TYPE_LAST_SEGMENT:
            return self.list_descriptors()
        return (self.sqe.sgl1,)

    @property
    def sgl_length(self) -> int:
        """Total bytes the data descriptors describe."""
        return sum(d.length for d in self.data_descriptors())


def connect_capsule(connect: ConnectSqe, data: ConnectData) -> Capsule:
    """A Connect capsule: the SQE plus its 1024-byte data in-capsule (NVMe-oF 1.1 3.3)."""
    return Capsule(connect.sqe(), data.encode())


#: Byte offset and size of every field, per structure, as ``impl/csrc/nvmf_wire.h`` lays
#: it out (tests/test_wire.py compares this with offsetof/sizeof from a compiled program).
LAYOUT: Final[dict[str, dict[str, tuple[int, int]]]] = {
    "nvme_sgl_unkeyed": {"address": (0, 8), "length": (8, 4), "reserved": (12, 3),
                         "type_subtype": (15, 1)},
    "nvme_sgl_keyed": {"address": (0, 8), "length": (8, 3), "key": (11, 4),
                       "type_subtype": (15, 1)},
    "nvme_sqe": {"opc": (0, 1), "fuse_psdt": (1, 1), "cid": (2, 2), "nsid": (4, 4),
                 "cdw2": (8, 4), "cdw3": (12, 4), "mptr": (16, 8), "sgl1": (24, 16),
                 "cdw10": (40, 4), "cdw11": (44, 4), "cdw12": (48, 4), "cdw13": (52, 4),
                 "cdw14": (56, 4), "cdw15": (60, 4)},
    "nvmf_fabric_sqe": {"opc": (0, 1), "fuse_psdt": (1, 1), "cid": (2, 2),
                        "fctype": (4, 1), "reserved1": (5, 19), "sgl1": (24, 16),
                        "specific": (40, 24)},
    "nvme_cqe": {"cdw0": (0, 4), "cdw1": (4, 4), "sqhd": (8, 2), "sqid": (10, 2),
                 "cid": (12, 2), "status": (14, 2)},
    "nvmf_connect_sqe": {"opc": (0, 1), "fuse_psdt": (1, 1), "cid": (2, 2),
                         "fctype": (4, 1), "reserved1": (5, 19), "sgl1": (24, 16),
                         "recfmt": (40, 2), "qid": (42, 2), "sqsize": (44, 2),
                         "cattr": (46, 1), "reserved2": (47, 1), "kato": (48, 4),
                         "reserved3": (52, 12)},
    "nvmf_connect_data": {"hostid": (0, 16), "cntlid": (16, 2), "reserved1": (18, 238),
                          "subnqn": (256, 256), "hostnqn": (512, 256),
                          "reserved2": (768, 256)},
    "nvmf_property_sqe": {"opc": (0, 1), "fuse_psdt": (1, 1), "cid": (2, 2),
                          "fctype": (4, 1), "reserved1": (5, 35), "attrib": (40, 1),
                          "reserved2": (41, 3), "ofst": (44, 4), "value": (48, 8),
                          "reserved3": (56, 8)},
    "nvmf_rdma_request_private_data": {"recfmt": (0, 2), "qid": (2, 2), "hrqsize": (4, 2),
                                       "hsqsize": (6, 2), "cntlid": (8, 2),
                                       "reserved": (10, 22)},
    "nvmf_rdma_accept_private_data": {"recfmt": (0, 2), "crqsize": (2, 2),
                                      "reserved": (4, 28)},
    "nvmf_rdma_reject_private_data": {"recfmt": (0, 2), "sts": (2, 2)},
}

#: sizeof each structure above.
SIZES: Final[dict[str, int]] = {
    "nvme_sgl_unkeyed": SGL_DESC_SIZE, "nvme_sgl_keyed": SGL_DESC_SIZE,
    "nvme_sqe": SQE_SIZE, "nvmf_fabric_sqe": SQE_SIZE, "nvme_cqe": CQE_SIZE,
    "nvmf_connect_sqe": SQE_SIZE, "nvmf_connect_data": CONNECT_DATA_SIZE,
    "nvmf_property_sqe": SQE_SIZE, "nvmf_rdma_request_private_data": CM_REQUEST_SIZE,
    "nvmf_rdma_accept_private_data": CM_ACCEPT_SIZE,
    "nvmf_rdma_reject_private_data": CM_REJECT_SIZE,
}
