"""Malformed capsules as bytes on the wire, and the status each must get (ERR-1, DESIGN 5.7).

The catalogue is ``strategies.wire``'s ``WIRE_KINDS`` (every field of the SQE and of each SGL
descriptor: type, subtype, address/offset, length, the last-segment list, opcode, FUSE,
PSDT, NSID, SLBA/NLB, the Connect fields) plus the kinds below, which need what only a
connected host knows (the CNTLID of its controller, the QIDs in use, how many I/O queues
and namespaces the controller has), a setup step, or a reserved field set.  Each kind is a
``strategies.wire.WireKind``: the status the specification gives, the alternatives it
leaves room for, the queue state to send it in, and the citation.  A drawn case is a
``strategies.wire.MalformedCapsule(capsule, expected_status, kind, citation)``; send
``capsule.encode()`` as one host SEND.

Kinds added here ("alt" = also acceptable; queue: see ``WireKind.queue``)::

    kind                             status  alt          queue
    fabrics_prohibited_admin_opcode  0001h                admin   Create/Delete I/O SQ/CQ,
                                                                  Doorbell Buffer Config
    admin_opcode_on_io               0001h                io      Identify, Get Features,
                                                                  Keep Alive (reserved NVM
                                                                  opcodes), Write Zeroes and
                                                                  Dataset Management (not in
                                                                  ONCS) on an I/O queue
    namespace_not_ready              0082h                io      valid IO, namespace not ready
    connect_bad_qid                  0182h                io_unconnected  QID > I/O queues
    connect_duplicate_qid            0182h   000Ch 0101h  io_unconnected  QID already in use
    connect_unknown_cntlid           0182h                io_unconnected  CNTLID not live
    connect_io_sqsize_zero           0182h                io_unconnected  SQSIZE 0
    connect_io_sqsize_too_large      0182h                io_unconnected  SQSIZE > CAP.MQES
    property_get_bad_offset          0002h                admin   OFST names no property
    property_set_bad_offset          0002h                admin   OFST names no property
    identify_bad_cns                 0002h                admin   CNS 04h..FFh
    identify_nsid_unknown            000Bh                admin   CNS 00h, NSID 0 or > NN
    sqe_reserved_bits                0000h                io      CDW0 bits 13:10 set
    flush_reserved_dwords            0000h                io      Flush CDW10..15 set
    sgl_reserved_bytes               0000h                io      data block / last segment
                                                                  bytes 14:12 set
    fabrics_reserved_bytes           0000h                admin   Property Get reserved bytes
    connect_reserved_fields          0000h                admin_unconnected  Connect SQE and
                                                                  data reserved bytes set

The reserved-field kinds expect success: a receiver ignores reserved fields, so the command
completes as if they were zero (``connect_reserved_fields`` connects its queue: see
``CONNECTS``).

Kinds of the old, override-based catalogue the wire cannot express as their own kind are
gone: ``nvm_opcode_on_admin`` (on the admin queue 00h/01h/02h are Delete I/O SQ, Create I/O
SQ and Get Log Page: the prohibited ones are ``fabrics_prohibited_admin_opcode``, and Get
Log Page is a valid command), ``connect_unknown_subsystem`` (a subsystem is named by its
NQN on the wire: ``connect_unknown_subnqn``), ``list_zero_descriptors``
(``last_segment_zero_length``), ``sgl_length_short`` / ``sgl_length_long``
(``sgl_length_mismatch``), ``invalid_sgl_type`` and the other SGL kinds (split by field in
``WIRE_KINDS``), ``nsid_zero`` / ``nsid_unknown`` (``invalid_namespace``).

Strategies only: nothing here calls a target.  The host-side facts a live target gives
(``ErrContext``) are passed in by the harness once it has connected.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

from hypothesis import strategies as st
from hypothesis.strategies import DrawFn, SearchStrategy

from strategies import wire as sw
from strategies.wire import MalformedCapsule, Region, WireKind, WireLimits

__all__ = ["CONNECTS", "EXTRA_KINDS", "KINDS", "MALFORMED_KINDS", "SETUP", "ErrContext",
           "MalformedCapsule", "Region", "WireKind", "WireLimits", "feasible_kinds",
           "malformed_commands"]

W = sw.codec
U16, U32, U64 = 0xFFFF, 0xFFFF_FFFF, 0xFFFF_FFFF_FFFF_FFFF


@dataclass(frozen=True)
class ErrContext:
    """What a host knows once it has connected: the target's ``limits`` (with the host
    memory region keyed descriptors may point into), the CNTLID of the controller its I/O
    queues belong to and the HOSTID it connected with, the QIDs in use on that controller,
    the QID the next I/O queue Connect uses, how many I/O queues the controller grants (Get
    Features, Number of Queues: QIDs 1..``max_qid``) and its NN (Identify Controller)."""

    limits: WireLimits
    cntlid: int = 1
    hostid: bytes = bytes(16)
    live_qids: tuple[int, ...] = (1, 2)
    next_qid: int = 3
    max_qid: int = 255
    max_namespaces: int = 4
    live_cntlids: tuple[int, ...] = field(default=())

    def __post_init__(self) -> None:
        if not self.live_cntlids:
            object.__setattr__(self, "live_cntlids", (self.cntlid,))


_GEN = "NVMe Base 2.0 4.6.1.2 (Generic Command Status)"
_CONN = "NVMe-oF 1.1 3.3 (Connect)"
_RSVD = ("NVMe Base 2.0 1.5 (Definitions: reserved bits, bytes and fields are cleared to 0h "
         "by the sender and ignored by the receiver)")

#: The kinds this module adds to ``strategies.wire.WIRE_KINDS``.
EXTRA_KINDS: Final[dict[str, WireKind]] = {
    "fabrics_prohibited_admin_opcode": WireKind(
        W.SC_INVALID_OPCODE, "admin",
        "NVMe-oF 1.1 / NVMe Base 2.0 3.1 (a fabrics host creates I/O queues with Connect: "
        "Create and Delete I/O Submission / Completion Queue and Doorbell Buffer Config are "
        f"prohibited over fabrics); {_GEN} 01h Invalid Command Opcode"),
    "admin_opcode_on_io": WireKind(
        W.SC_INVALID_OPCODE, "io",
        "NVM Command Set 1.0 opcode table (06h, 0Ah, 18h reserved; 08h Write Zeroes and 09h "
        "Dataset Management optional and not claimed in Identify Controller ONCS); admin "
        f"commands belong to the admin queue; {_GEN} 01h Invalid Command Opcode"),
    "namespace_not_ready": WireKind(
        W.SC_NAMESPACE_NOT_READY, "io",
        f"{_GEN} 82h Namespace Not Ready (the namespace is not ready to be accessed)"),
    "connect_bad_qid": WireKind(
        W.SC_CONNECT_INVALID_PARAMETERS, "io_unconnected",
        f"{_CONN}: QID beyond the I/O queues the controller grants (NVMe Base 2.0 5.21.1.7 "
        f"Number of Queues); status 82h Connect Invalid Parameters"),
    "connect_duplicate_qid": WireKind(
        W.SC_CONNECT_INVALID_PARAMETERS, "io_unconnected",
        f"{_CONN}: QID of an I/O queue the controller already has; status 82h Connect "
        f"Invalid Parameters (Linux nvmet answers 0Ch Command Sequence Error, SPDK SCT 1h "
        f"SC 01h Invalid Queue Identifier)",
        (W.SC_COMMAND_SEQUENCE_ERROR, W.SC_INVALID_QUEUE_IDENTIFIER)),
    "connect_unknown_cntlid": WireKind(
        W.SC_CONNECT_INVALID_PARAMETERS, "io_unconnected",
        f"{_CONN} and NVMe-oF 1.1 4.2: an I/O queue Connect names the CNTLID of a live "
        f"controller of the subsystem; status 82h Connect Invalid Parameters"),
    "connect_io_sqsize_zero": WireKind(
        W.SC_CONNECT_INVALID_PARAMETERS, "io_unconnected",
        f"{_CONN}: SQSIZE is 0's based, a queue has at least 2 entries; status 82h Connect "
        f"Invalid Parameters"),
    "connect_io_sqsize_too_large": WireKind(
        W.SC_CONNECT_INVALID_PARAMETERS, "io_unconnected",
        f"{_CONN}: SQSIZE above CAP.MQES; status 82h Connect Invalid Parameters"),
    "property_get_bad_offset": WireKind(
        W.SC_INVALID_FIELD, "admin",
        "NVMe-oF 1.1 3.4 (OFST names a property the controller does not have; NVMe Base 2.0 "
        f"3.1.3 property map); {_GEN} 02h Invalid Field in Command"),
    "property_set_bad_offset": WireKind(
        W.SC_INVALID_FIELD, "admin",
        "NVMe-oF 1.1 3.5 (OFST names a property the controller does not have; NVMe Base 2.0 "
        f"3.1.3 property map); {_GEN} 02h Invalid Field in Command"),
    "identify_bad_cns": WireKind(
        W.SC_INVALID_FIELD, "admin",
        f"NVMe Base 2.0 5.17.1 (a CNS value the controller does not support); {_GEN} 02h "
        f"Invalid Field in Command"),
    "identify_nsid_unknown": WireKind(
        W.SC_INVALID_NAMESPACE, "admin",
        f"NVMe Base 2.0 5.17.2.1 (CNS 00h with NSID 0h or above NN); {_GEN} 0Bh Invalid "
        f"Namespace or Format"),
    "sqe_reserved_bits": WireKind(
        W.SC_SUCCESS, "io",
        f"{_RSVD}: CDW0 bits 13:10 (NVMe Base 2.0 4.1) of a valid command; it completes as if "
        f"they were 0"),
    "flush_reserved_dwords": WireKind(
        W.SC_SUCCESS, "io",
        f"{_RSVD}: Flush Command Dwords 10..15 (NVM Command Set 1.0 Flush); it completes as if "
        f"they were 0"),
    "sgl_reserved_bytes": WireKind(
        W.SC_SUCCESS, "io",
        f"{_RSVD}: bytes 14:12 of a Data Block or Last Segment descriptor (NVMe Base 2.0 "
        f"4.4); the command completes as if they were 0"),
    "fabrics_reserved_bytes": WireKind(
        W.SC_SUCCESS, "admin",
        f"{_RSVD}: a Property Get's bytes 23:05 (fabrics command, NVMe-oF 1.1 2.1), 39:24, "
        f"43:41, 63:56 and ATTRIB bits 7:3 (NVMe-oF 1.1 3.4); it completes as if they were 0"),
    "connect_reserved_fields": WireKind(
        W.SC_SUCCESS, "admin_unconnected",
        f"{_RSVD}: a Connect's SQE bytes 23:05, 47 and 63:52 and its data bytes 255:18 and "
        f"1023:768 (NVMe-oF 1.1 3.3); it connects the queue as if they were 0"),
}

#: Every ERR-1 kind: the wire kinds of ``strategies.wire``, then the ones above.
KINDS: Final[dict[str, WireKind]] = {**sw.WIRE_KINDS, **EXTRA_KINDS}
MALFORMED_KINDS: Final[tuple[str, ...]] = tuple(KINDS)

#: Harness actions a kind needs before its capsule is sent (``namespace_not_ready``: mark
#: the namespace the capsule addresses not ready; undo after the answer).
SETUP: Final[dict[str, tuple[str, ...]]] = {"namespace_not_ready": ("namespace_not_ready",)}

#: Kinds whose command, answered with success, connects the queue it went to (its state
#: goes from connecting to active; every other kind leaves the state as it was).
CONNECTS: Final[frozenset[str]] = frozenset({"connect_reserved_fields"})

# Admin opcodes a fabrics controller does not have (NVMe Base 2.0 3.1 / 5: 00h Delete I/O
# SQ, 01h Create I/O SQ, 04h Delete I/O CQ, 05h Create I/O CQ, 7Ch Doorbell Buffer Config).
_PROHIBITED_ADMIN = (0x00, 0x01, 0x04, 0x05, 0x7C)
# Admin opcodes on an I/O queue: Identify 06h, Get Features 0Ah, Keep Alive 18h (reserved in
# the NVM command set), Abort 08h / Set Features 09h (Write Zeroes / Dataset Management
# there, optional; the built-in controller's ONCS claims neither).
_ADMIN_ON_IO = (0x06, 0x08, 0x09, 0x0A, 0x18)
# Not a property in NVMe-oF (0x20..0x3F left out: NSSR/AQA/ASQ/ACQ may be served).
_BAD_PROPERTY_OFFSETS = st.one_of(
    st.sampled_from([0x04, 0x0C, 0x10, 0x18]),
    st.integers(0x40 // 4, 0xFFF // 4).map(lambda w: 4 * w),
    st.sampled_from([0x1000, 0xFFFC, U32]))
# (offset, ATTRIB size) of every property a Property Get may read: CAP is 8 bytes.
_PROPERTIES = ((0x00, 1), (0x08, 0), (0x14, 0), (0x1C, 0))
#: Bytes of an Identify data structure (NVMe Base 2.0 5.17.2).
IDENTIFY_DATA: Final = 4096


# ------------------------------------------------------------------------------ builders


def _cid() -> SearchStrategy[int]:
    return st.integers(0, U16)


def _nonzero(draw: DrawFn, widths: dict[str, int]) -> dict[str, int]:
    """Values for the named fields (``name -> bits``), at least one of them non-zero."""
    out = {name: draw(st.integers(0, (1 << bits) - 1)) for name, bits in widths.items()}
    if not any(out.values()):
        name = draw(st.sampled_from(sorted(widths)))
        out[name] = draw(st.integers(1, (1 << widths[name]) - 1))
    return out


@st.composite
def _keyed_piece(draw: DrawFn, lim: WireLimits, most: int | None = None) -> Any:
    """A keyed descriptor inside a region, 1..``most`` bytes (default: one transfer)."""
    top = min(lim.max_piece, lim.max_io_size) if most is None else most
    n = draw(st.integers(1, top))
    r = draw(st.sampled_from([r for r in lim.regions if r.size >= n]))
    return W.keyed(r.iova + draw(st.integers(0, r.size - n)), n, r.rkey)


@st.composite
def _io_connect(draw: DrawFn, ctx: ErrContext, *, qid: int | None = None,
                cntlid: int | None = None, sqsize: int | None = None) -> Any:
    """An I/O queue Connect of this host (its HOSTID and HOSTNQN) to the subsystem of
    ``ctx.cntlid``: next free QID, SQSIZE 1..CAP.MQES, unless a field is given."""
    lim = ctx.limits
    sq = W.ConnectSqe(cid=draw(_cid()), qid=ctx.next_qid if qid is None else qid,
                      sqsize=(draw(st.integers(1, max(lim.max_queue_depth - 1, 1)))
                              if sqsize is None else sqsize), kato=0)
    data = W.ConnectData.make(lim.subnqn, lim.hostnqn, ctx.hostid,
                              ctx.cntlid if cntlid is None else cntlid)
    return W.connect_capsule(sq, data)


def _with_data(draw: DrawFn, lim: WireLimits, sqe: Any) -> Any:
    """``sqe`` with a valid keyed SGL1 if its opcode moves data, else SGL1 zero."""
    if sqe.data_direction in (1, 2):
        return W.Capsule(sqe.replace(sgl1=draw(_keyed_piece(lim))))
    return W.Capsule(sqe)


@st.composite
def _prohibited_admin(draw: DrawFn, ctx: ErrContext) -> Any:
    return _with_data(draw, ctx.limits, W.Sqe(opc=draw(st.sampled_from(_PROHIBITED_ADMIN)),
                                              cid=draw(_cid())))


@st.composite
def _admin_on_io(draw: DrawFn, ctx: ErrContext) -> Any:
    nsid = draw(st.integers(1, len(ctx.limits.namespaces)))
    return _with_data(draw, ctx.limits, W.Sqe(opc=draw(st.sampled_from(_ADMIN_ON_IO)),
                                              cid=draw(_cid()), nsid=nsid))


def _not_ready(ctx: ErrContext) -> SearchStrategy[Any]:
    return sw.io_capsules(ctx.limits)


@st.composite
def _bad_qid(draw: DrawFn, ctx: ErrContext) -> Any:
    return draw(_io_connect(ctx, qid=draw(st.integers(ctx.max_qid + 1, U16))))


@st.composite
def _duplicate_qid(draw: DrawFn, ctx: ErrContext) -> Any:
    return draw(_io_connect(ctx, qid=draw(st.sampled_from(ctx.live_qids))))


@st.composite
def _unknown_cntlid(draw: DrawFn, ctx: ErrContext) -> Any:
    # FFF0h..FFFFh are reserved / the dynamic-model wildcard: their meaning varies
    live = set(ctx.live_cntlids)
    cntlid = draw(st.integers(0, 0xFFEF).filter(lambda c: c not in live))
    return draw(_io_connect(ctx, cntlid=cntlid))


@st.composite
def _io_sqsize_zero(draw: DrawFn, ctx: ErrContext) -> Any:
    return draw(_io_connect(ctx, sqsize=0))


@st.composite
def _io_sqsize_too_large(draw: DrawFn, ctx: ErrContext) -> Any:
    return draw(_io_connect(ctx, sqsize=draw(st.integers(ctx.limits.max_queue_depth, U16))))


@st.composite
def _property_bad(draw: DrawFn, ctx: ErrContext, fctype: int) -> Any:
    value = draw(st.integers(0, U64)) if fctype == W.FCTYPE_PROPERTY_SET else 0
    return W.Capsule(W.PropertySqe(fctype, draw(_cid()), draw(_BAD_PROPERTY_OFFSETS),
                                   draw(st.sampled_from((0, 1))), value).sqe())


@st.composite
def _identify(draw: DrawFn, ctx: ErrContext, cns: int, nsid: int) -> Any:
    lim = ctx.limits
    r = draw(st.sampled_from([r for r in lim.regions if r.size >= IDENTIFY_DATA]))
    sgl = W.keyed(r.iova + draw(st.integers(0, r.size - IDENTIFY_DATA)), IDENTIFY_DATA,
                  r.rkey)
    return W.Capsule(W.Sqe(opc=W.OPC_IDENTIFY, cid=draw(_cid()), nsid=nsid, sgl1=sgl,
                           cdw10=cns))


@st.composite
def _identify_bad_cns(draw: DrawFn, ctx: ErrContext) -> Any:
    # CNS 02h and 03h (namespace lists) are left out: a target may reasonably serve them
    return draw(_identify(ctx, draw(st.integers(0x04, 0xFF)), 0))


@st.composite
def _identify_nsid_unknown(draw: DrawFn, ctx: ErrContext) -> Any:
    # FFFFFFFFh is left out: with namespace management it names the common capabilities
    nn = ctx.max_namespaces
    nsid = draw(st.one_of(st.just(0), st.integers(nn + 1, U32 - 1)))
    return draw(_identify(ctx, 0x00, nsid))


@st.composite
def _sqe_reserved(draw: DrawFn, ctx: ErrContext) -> Any:
    cap = draw(sw.io_capsules(ctx.limits))
    return cap.replace(sqe=cap.sqe.replace(rsvd=draw(st.integers(1, 15))))


@st.composite
def _flush_reserved(draw: DrawFn, ctx: ErrContext) -> Any:
    dws = _nonzero(draw, {f"cdw{i}": 32 for i in range(10, 16)})
    nsid = draw(st.integers(1, len(ctx.limits.namespaces)))
    return W.Capsule(W.Sqe(opc=W.OPC_FLUSH, cid=draw(_cid()), nsid=nsid, **dws))


@st.composite
def _sgl_reserved(draw: DrawFn, ctx: ErrContext) -> Any:
    cap = draw(sw.io_capsules(ctx.limits, ops=("read", "write"),
                              layouts=("in_capsule", "keyed_list")))
    junk = draw(st.binary(min_size=3, max_size=3).filter(lambda b: b != W.Z3))
    return cap.replace(sqe=cap.sqe.replace(sgl1=cap.sqe.sgl1.replace(reserved=junk)))


@st.composite
def _fabrics_reserved(draw: DrawFn, ctx: ErrContext) -> Any:
    ofst, size = draw(st.sampled_from(_PROPERTIES))
    r = _nonzero(draw, {"nsid_hi": 24, "cdw2": 32, "cdw3": 32, "mptr": 64, "attrib_hi": 5,
                        "cdw10_hi": 24, "cdw14": 32, "cdw15": 32})
    sgl1 = draw(sw.any_sgl_descriptors())
    sqe = W.PropertySqe(W.FCTYPE_PROPERTY_GET, draw(_cid()), ofst, size).sqe()
    return W.Capsule(sqe.replace(
        nsid=W.FCTYPE_PROPERTY_GET | r["nsid_hi"] << 8, cdw2=r["cdw2"], cdw3=r["cdw3"],
        mptr=r["mptr"], sgl1=sgl1,
        cdw10=size | r["attrib_hi"] << 3 | r["cdw10_hi"] << 8, cdw14=r["cdw14"],
        cdw15=r["cdw15"]))


@st.composite
def _connect_reserved(draw: DrawFn, ctx: ErrContext) -> Any:
    cap = draw(sw.connect_capsules(ctx.limits))
    r = _nonzero(draw, {"nsid_hi": 24, "cdw2": 32, "cdw3": 32, "mptr": 64, "byte47": 8,
                        "cdw13": 32, "cdw14": 32, "cdw15": 32})
    sqe = cap.sqe.replace(nsid=W.FCTYPE_CONNECT | r["nsid_hi"] << 8, cdw2=r["cdw2"],
                          cdw3=r["cdw3"], mptr=r["mptr"],
                          cdw11=(cap.sqe.cdw11 & 0x00FF_FFFF) | r["byte47"] << 24,
                          cdw13=r["cdw13"], cdw14=r["cdw14"], cdw15=r["cdw15"])
    data = W.ConnectData.decode(cap.data).replace(
        reserved1=draw(st.binary(min_size=238, max_size=238)),
        reserved2=draw(st.binary(min_size=256, max_size=256)))
    return W.Capsule(sqe, data.encode())


_BUILDERS: Final[dict[str, Any]] = {
    "fabrics_prohibited_admin_opcode": _prohibited_admin,
    "admin_opcode_on_io": _admin_on_io,
    "namespace_not_ready": _not_ready,
    "connect_bad_qid": _bad_qid,
    "connect_duplicate_qid": _duplicate_qid,
    "connect_unknown_cntlid": _unknown_cntlid,
    "connect_io_sqsize_zero": _io_sqsize_zero,
    "connect_io_sqsize_too_large": _io_sqsize_too_large,
    "property_get_bad_offset": lambda ctx: _property_bad(ctx, W.FCTYPE_PROPERTY_GET),
    "property_set_bad_offset": lambda ctx: _property_bad(ctx, W.FCTYPE_PROPERTY_SET),
    "identify_bad_cns": _identify_bad_cns,
    "identify_nsid_unknown": _identify_nsid_unknown,
    "sqe_reserved_bits": _sqe_reserved,
    "flush_reserved_dwords": _flush_reserved,
    "sgl_reserved_bytes": _sgl_reserved,
    "fabrics_reserved_bytes": _fabrics_reserved,
    "connect_reserved_fields": _connect_reserved,
}
assert set(_BUILDERS) == set(EXTRA_KINDS)


# --------------------------------------------------------------------------- the catalogue


def _extra_feasible(ctx: ErrContext) -> dict[str, bool]:
    lim = ctx.limits
    piece = lim.max_piece >= 1 and lim.max_io_size >= 1
    identify = (min(lim.max_io_size, lim.max_piece) >= IDENTIFY_DATA
                and any(r.size >= IDENTIFY_DATA for r in lim.regions))
    unkeyed = any(set(lim.layouts_for(ns.block_size, op)) & {"in_capsule", "keyed_list"}
                  for ns in lim.namespaces for op in ("read", "write")
                  if lim.max_blocks(ns, op))
    return {
        "fabrics_prohibited_admin_opcode": piece, "admin_opcode_on_io": piece and bool(lim.namespaces),
        "namespace_not_ready": bool(lim.namespaces), "connect_bad_qid": ctx.max_qid < U16,
        "connect_duplicate_qid": bool(ctx.live_qids), "connect_unknown_cntlid": True,
        "connect_io_sqsize_zero": True,
        "connect_io_sqsize_too_large": lim.max_queue_depth <= U16,
        "property_get_bad_offset": True, "property_set_bad_offset": True,
        "identify_bad_cns": identify, "identify_nsid_unknown": identify,
        "sqe_reserved_bits": bool(lim.namespaces), "flush_reserved_dwords": bool(lim.namespaces),
        "sgl_reserved_bytes": unkeyed, "fabrics_reserved_bytes": True,
        "connect_reserved_fields": True,
    }


def feasible_kinds(ctx: ErrContext) -> tuple[str, ...]:
    """The kinds of ``MALFORMED_KINDS`` that can be built for this host and target (e.g.
    ``icd_length_too_large`` needs a transfer longer than the in-capsule area that still fits
    max_io_size), in catalogue order."""
    wire = set(sw.feasible_wire_kinds(ctx.limits))
    extra = _extra_feasible(ctx)
    return tuple(k for k in MALFORMED_KINDS if k in wire or extra.get(k, False))


def _mk(kind: str, capsule: Any) -> MalformedCapsule:
    k = KINDS[kind]
    return MalformedCapsule(capsule, k.status, kind, k.citation)


def _one(kind: str, ctx: ErrContext) -> SearchStrategy[MalformedCapsule]:
    if kind in sw.WIRE_KINDS:
        return sw.malformed_capsules(ctx.limits, (kind,))
    return _BUILDERS[kind](ctx).map(lambda cap: _mk(kind, cap))


def malformed_commands(ctx: ErrContext, kinds: tuple[str, ...] | None = None,
                       ) -> SearchStrategy[MalformedCapsule]:
    """``MalformedCapsule(capsule, expected_status, kind, citation)`` of the ``kinds``
    (default: every feasible one) for the host and target ``ctx`` describes; send it on a
    queue in state ``KINDS[kind].queue`` (after ``SETUP[kind]``) and accept
    ``KINDS[kind].accepts(status)``.  Raises ``ValueError`` for an unknown kind or one that
    cannot be built here.  Shrinks toward the first kind listed."""
    feasible = feasible_kinds(ctx)
    chosen = tuple(kinds) if kinds is not None else feasible
    for k in chosen:
        if k not in KINDS:
            raise ValueError(f"unknown malformed kind {k!r}: choose from {MALFORMED_KINDS}")
        if k not in feasible:
            raise ValueError(f"malformed kind {k!r} cannot be built under {ctx}")
    if not chosen:
        raise ValueError("no malformed kind to draw")
    if len(chosen) == 1:
        return _one(chosen[0], ctx)
    return st.sampled_from(chosen).flatmap(lambda k: _one(k, ctx))
