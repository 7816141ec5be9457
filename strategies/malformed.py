"""Malformed commands and the NVMe status each must get (ERR-1, DESIGN 5.7).

Each ``Malformed`` names a well-formed *base* command, the queue state it is sent in, and
the capsule fields to override so that exactly one thing is wrong.  The target must answer
with ``expected_status`` (or one of ``alternatives``) and release everything the command
held - never crash, leak or hang.

Base commands (built by the harness *before* overrides; IO bases use the namespace passed
to ``malformed_commands`` and a valid host memory region of at least
``max(max_io_size, 4096) * 2`` bytes):

=============  =================  =======================================================
base           queue (default)    capsule
=============  =================  =======================================================
read, write    io                 NVM read/write, nsid of the namespace, slba 0, nlb 0;
                                  SGL1 one keyed descriptor (type 4, subtype 0) at region
                                  offset 0 of length (nlb + 1) * block_size, computed
                                  from the *overridden* nlb
read_list,     io                 as read/write, but SGL1 is a last segment (type 3,
write_list                        subtype 1, addr 0, length ndesc * 16) and ``list`` /
                                  ``ndesc`` always come from the overrides
write_icd      io                 write whose SGL1 is a data block (type 0, subtype 1),
                                  addr 0, length (nlb + 1) * block_size; attaches that
                                  many in-capsule bytes unless ``icd_len`` says otherwise
flush          io                 flush, nsid of the namespace
identify       admin              identify CNS 1, one keyed 4096-byte descriptor
keep_alive     admin              keep-alive, no data
property_get   admin              fabrics (0x7F) fctype 4, cdw10 = 0x0 (CAP)
property_set   admin              fabrics fctype 0, cdw10 = 0x14 (CC), value = CC_ENABLE
connect_admin  admin_unconnected  fabrics CONNECT: qid 0, cntlid 0xFFFF, subsystem under
                                  test, sqsize = qpair depth - 1, kato 0
connect_io     io_unconnected     fabrics CONNECT: next free qid, cntlid of a live
                                  controller of that subsystem, sqsize = depth - 1
=============  =================  =======================================================

Override keys are ``struct nrt_capsule`` field names.  ``sgl`` is a dict of
``nrt_sgl_desc`` fields merged into the base's SGL1; ``list`` is a tuple of such dicts
(keyed list entries: a missing ``key`` means the harness's valid region key and ``addr``
is an offset in that region).  Queue states: ``io`` / ``admin`` = connected;
``*_unconnected`` = RDMA-accepted, no successful CONNECT yet.  ``setup`` actions:
``namespace_not_ready`` = ``nrt_namespace_set_ready(..., 0)`` before submitting;
``duplicate_qid`` = set the CONNECT's qid to that of a live IO qpair of the same controller
(the harness knows which qids are live; the strategy does not).

Kinds (status = ``expected_status``; "alt" = also acceptable):

===========================  ================================================  ==============
kind                         what is wrong                                     status
===========================  ================================================  ==============
io_invalid_opcode            unimplemented NVM opcode (no data bits)           0x0001
admin_invalid_opcode         unimplemented admin opcode (no data bits)         0x0001
nvm_opcode_on_admin          flush/write/read opcode on the admin queue        0x0001
admin_opcode_on_io           identify/abort/keep-alive opcode on an IO queue   0x0001
invalid_sgl_type             SGL1 type 1, 2, 5..15, or data block + address    0x0011
invalid_keyed_subtype        keyed SGL1 with subtype 1..14                     0x0011
icd_offset_beyond_data       in-capsule offset > in_capsule_data_size          0x0016 alt 0x000F
icd_length_too_large         in-capsule length > in_capsule_data_size          0x000F
keyed_length_too_large       keyed length > max_io_size                        0x000F
keyed_list_length_too_large  list total > max_io_size                          0x000F
sgl_length_short             SGL length < transfer length                      0x000F
sgl_length_long              SGL length > transfer length (<= max_io_size)     0x000F
list_zero_descriptors        last segment with 0 descriptors                   0x000E
list_too_many_descriptors    more than max_sgl_descriptors entries             0x000E
list_entry_not_keyed         a list entry of non-keyed type                    0x0011 alt 0x000D
last_segment_wrong_subtype   last-segment SGL1 with subtype other than offset  0x0011 alt 0x000D
lba_out_of_range             slba + nlb + 1 > num_blocks (also 64-bit wrap)    0x0080
nsid_zero                    nsid 0 on read/write/flush                        0x000B
nsid_unknown                 nsid above max_namespaces                         0x000B
namespace_not_ready          namespace marked not ready                        0x0082
io_before_connect            NVM command on an IO qpair before CONNECT         0x000C
admin_before_connect         admin/property command before CONNECT             0x000C
connect_bad_qid              IO CONNECT with qid > max_qpairs                  0x0182
connect_duplicate_qid        IO CONNECT reusing a qid live on the controller   0x0182
connect_unknown_cntlid       IO CONNECT naming a controller that is not there  0x0182
connect_unknown_subsystem    CONNECT to a subsystem handle >= max_subsystems   0x0182
connect_sqsize_too_large     CONNECT sqsize >= max_queue_depth                 0x0182
connect_sqsize_zero          CONNECT sqsize 0 (a queue needs >= 2 entries)     0x0182
property_get_bad_offset      Property Get at an offset not CAP/VS/CC/CSTS      0x0002
property_set_bad_offset      Property Set at an offset not CAP/VS/CC/CSTS      0x0002
identify_bad_cns             identify CNS 4..255                               0x0002
identify_nsid_unknown        identify CNS 0 with nsid 0 or above max           0x000B
fabrics_bad_fctype           fabrics fctype not 0/1/4                          0x0001 alt 0x0002
===========================  ================================================  ==============

Assumptions a target may not share (reported with each run, not hidden): SGL checks come
before namespace and LBA checks, so a long in-capsule write is 0x000F even if it also runs
past the namespace; for ``list_too_many_descriptors`` above 16, ``ndesc`` and the SGL1
length both claim the full count while ``list`` holds only 16 entries.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st
from hypothesis.strategies import DrawFn, SearchStrategy

from strategies import nvme
from strategies.sgl import descriptor_lengths
from strategies.types import Malformed, MalformedQueue, Namespace, TransportOptions

__all__ = ["MALFORMED_KINDS", "feasible_kinds", "malformed_commands"]

U32 = 0xFFFF_FFFF
U64 = 0xFFFF_FFFF_FFFF_FFFF

# Opcodes chosen with data-direction bits 00 so no SGL parsing can get in the way of the
# opcode check, and disjoint from every opcode the target implements on either queue.
_NVM_INVALID_OPCODES = (0x04, 0x0C, 0x10, 0x14, 0x1C, 0x20, 0x80, 0x84, 0xC0, 0xFC)
_ADMIN_INVALID_OPCODES = (0x10, 0x14, 0x1C, 0x20, 0x24, 0x3C, 0x40, 0x7C, 0x80, 0xC0)
_BAD_SGL_TYPES = (0x1, 0x2, 0x5, 0x6, 0x7, 0x8, 0x9, 0xA, 0xB, 0xC, 0xD, 0xE, 0xF)
_NON_KEYED_TYPES = (nvme.SGL_TYPE_DATA_BLOCK, 0x1, 0x2, nvme.SGL_TYPE_LAST_SEGMENT,
                    0x5, 0x8, 0xF)
_BAD_FCTYPES = (0x02, 0x03, 0x05, 0x06, 0x07, 0x08, 0x0C, 0x10, 0x7F, 0xC0, 0xFF)
# Not a register in NVMe-oF (0x20..0x3F left out: NSSR/AQA/ASQ/ACQ may be served).
_BAD_PROPERTY_OFFSETS = st.one_of(
    st.sampled_from([0x04, 0x0C, 0x10, 0x18]),
    st.integers(0x40 // 4, 0xFFF // 4).map(lambda w: 4 * w),
    st.sampled_from([0x1000, 0xFFFC, U32]))


Builder = Callable[[TransportOptions, Namespace], SearchStrategy[Malformed] | None]


def _m(kind: str, base: str, queue: MalformedQueue, overrides: dict[str, Any], status: int,
       alternatives: tuple[int, ...] = (), icd_len: int | None = None,
       setup: tuple[str, ...] = ()) -> Malformed:
    return Malformed(kind, base, queue, overrides, status, alternatives, icd_len, setup)


def _io_fits(o: TransportOptions, ns: Namespace) -> bool:
    """A one-block read/write is valid, so only the override can be wrong."""
    return ns.block_size <= o.max_io_size and ns.num_blocks >= 1


def _max_list(o: TransportOptions) -> int:
    return min(nvme.MAX_SGL_DESC, o.max_sgl_descriptors)


def _entries(lengths: tuple[int, ...]) -> tuple[dict[str, int], ...]:
    """Valid keyed list entries, packed from region offset 0."""
    out, pos = [], 0
    for n in lengths:
        out.append({"addr": pos, "length": n, "type": nvme.SGL_TYPE_KEYED_DATA,
                    "subtype": nvme.SGL_SUBTYPE_ADDRESS})
        pos += n
    return tuple(out)


def _list_overrides(entries: tuple[dict[str, int], ...], ndesc: int | None = None,
                    ) -> dict[str, Any]:
    n = len(entries) if ndesc is None else ndesc
    return {"ndesc": n, "sgl": {"length": n * nvme.SGL_DESC_BYTES}, "list": entries}


# ------------------------------------------------------------------------ opcode kinds

def _io_invalid_opcode(o: TransportOptions, ns: Namespace) -> SearchStrategy[Malformed]:
    return st.builds(lambda op: _m("io_invalid_opcode", "flush", "io", {"opcode": op},
                                   nvme.SC_INVALID_OPCODE),
                     st.sampled_from(_NVM_INVALID_OPCODES))


def _admin_invalid_opcode(o: TransportOptions, ns: Namespace) -> SearchStrategy[Malformed]:
    return st.builds(lambda op: _m("admin_invalid_opcode", "keep_alive", "admin",
                                   {"opcode": op}, nvme.SC_INVALID_OPCODE),
                     st.sampled_from(_ADMIN_INVALID_OPCODES))


def _nvm_on_admin(o: TransportOptions, ns: Namespace) -> SearchStrategy[Malformed]:
    return st.builds(lambda op: _m("nvm_opcode_on_admin", "keep_alive", "admin",
                                   {"opcode": op, "nsid": 1}, nvme.SC_INVALID_OPCODE),
                     st.sampled_from(sorted(nvme.NVM_OPCODES)))


def _admin_on_io(o: TransportOptions, ns: Namespace) -> SearchStrategy[Malformed]:
    return st.builds(lambda op: _m("admin_opcode_on_io", "flush", "io", {"opcode": op},
                                   nvme.SC_INVALID_OPCODE),
                     st.sampled_from(sorted(nvme.ADMIN_OPCODES)))


def _fabrics_bad_fctype(o: TransportOptions, ns: Namespace) -> SearchStrategy[Malformed]:
    return st.builds(lambda f: _m("fabrics_bad_fctype", "property_get", "admin",
                                  {"fctype": f}, nvme.SC_INVALID_OPCODE,
                                  (nvme.SC_INVALID_FIELD,)),
                     st.sampled_from(_BAD_FCTYPES))


# --------------------------------------------------------------------------- SGL kinds

def _rw() -> SearchStrategy[str]:
    return st.sampled_from(["read", "write"])


def _invalid_sgl_type(o: TransportOptions, ns: Namespace) -> SearchStrategy[Malformed] | None:
    if not _io_fits(o, ns):
        return None
    sgl = st.one_of(st.builds(lambda t: {"type": t}, st.sampled_from(_BAD_SGL_TYPES)),
                    st.just({"type": nvme.SGL_TYPE_DATA_BLOCK,
                             "subtype": nvme.SGL_SUBTYPE_ADDRESS}))
    return st.builds(lambda b, s: _m("invalid_sgl_type", b, "io", {"sgl": s},
                                     nvme.SC_SGL_DESC_TYPE_INVALID), _rw(), sgl)


def _invalid_keyed_subtype(o: TransportOptions, ns: Namespace,
                           ) -> SearchStrategy[Malformed] | None:
    if not _io_fits(o, ns):
        return None
    return st.builds(lambda b, s: _m("invalid_keyed_subtype", b, "io", {"sgl": {"subtype": s}},
                                     nvme.SC_SGL_DESC_TYPE_INVALID),
                     _rw(), st.integers(0x1, 0xE))


def _icd_offset_beyond(o: TransportOptions, ns: Namespace) -> SearchStrategy[Malformed]:
    icd = o.in_capsule_data_size
    return st.builds(
        lambda k: _m("icd_offset_beyond_data", "write_icd", "io",
                     {"sgl": {"addr": icd + k}}, nvme.SC_SGL_OFFSET_INVALID,
                     (nvme.SC_DATA_SGL_LENGTH_INVALID,), icd_len=min(ns.block_size, icd)),
        st.one_of(st.integers(1, 16), st.integers(1, 65536)))


def _icd_length_too_large(o: TransportOptions, ns: Namespace) -> SearchStrategy[Malformed]:
    icd, bs = o.in_capsule_data_size, ns.block_size
    first = icd // bs  # smallest 0-based nlb whose transfer exceeds the ICD size
    return st.builds(lambda nlb: _m("icd_length_too_large", "write_icd", "io", {"nlb": nlb},
                                    nvme.SC_DATA_SGL_LENGTH_INVALID, icd_len=icd),
                     st.integers(first, first + 3))


def _keyed_too_large(o: TransportOptions, ns: Namespace) -> SearchStrategy[Malformed] | None:
    if not _io_fits(o, ns):
        return None
    first = o.max_io_size // ns.block_size  # 0-based nlb of the first too-long transfer
    by_nlb = st.builds(lambda b, j: _m("keyed_length_too_large", b, "io", {"nlb": first + j},
                                       nvme.SC_DATA_SGL_LENGTH_INVALID),
                       _rw(), st.integers(0, 3))
    # a huge length on a one-block command: wrong twice over, same status either way
    huge = st.builds(lambda b, n: _m("keyed_length_too_large", b, "io",
                                     {"sgl": {"length": n}}, nvme.SC_DATA_SGL_LENGTH_INVALID),
                     _rw(), st.sampled_from([U32, 1 << 31, nvme.MAX_SGL_DESC * o.max_io_size]))
    return st.one_of(by_nlb, huge)


@st.composite
def _list_too_large(draw: DrawFn, o: TransportOptions, ns: Namespace) -> Malformed:
    nlb = o.max_io_size // ns.block_size + draw(st.integers(0, 3))
    total = (nlb + 1) * ns.block_size
    lo = 2 if _max_list(o) >= 2 else 1
    n = draw(st.integers(lo, _max_list(o)))
    lengths = draw(descriptor_lengths(total, n, o.io_unit_size))
    return _m("keyed_list_length_too_large", draw(st.sampled_from(["read_list", "write_list"])),
              "io", {"nlb": nlb, **_list_overrides(_entries(lengths))},
              nvme.SC_DATA_SGL_LENGTH_INVALID)


def _keyed_list_too_large(o: TransportOptions, ns: Namespace,
                          ) -> SearchStrategy[Malformed] | None:
    return _list_too_large(o, ns) if _io_fits(o, ns) else None


def _valid_nlb(o: TransportOptions, ns: Namespace, max_bytes: int) -> SearchStrategy[int]:
    """0-based nlb whose transfer fits ``max_bytes`` and the namespace from LBA 0."""
    return st.integers(0, min(max_bytes // ns.block_size, ns.num_blocks) - 1)


@st.composite
def _length_short(draw: DrawFn, o: TransportOptions, ns: Namespace) -> Malformed:
    nlb = draw(_valid_nlb(o, ns, o.max_io_size))
    transfer = (nlb + 1) * ns.block_size
    short = transfer - draw(st.integers(1, transfer - 1))
    if min(_max_list(o), short) >= 2 and draw(st.booleans()):
        n = draw(st.integers(2, min(_max_list(o), short)))
        lengths = draw(descriptor_lengths(short, n, o.io_unit_size))
        return _m("sgl_length_short", draw(st.sampled_from(["read_list", "write_list"])), "io",
                  {"nlb": nlb, **_list_overrides(_entries(lengths))},
                  nvme.SC_DATA_SGL_LENGTH_INVALID)
    return _m("sgl_length_short", draw(_rw()), "io", {"nlb": nlb, "sgl": {"length": short}},
              nvme.SC_DATA_SGL_LENGTH_INVALID)


def _sgl_length_short(o: TransportOptions, ns: Namespace) -> SearchStrategy[Malformed] | None:
    return _length_short(o, ns) if _io_fits(o, ns) and ns.block_size >= 2 else None


@st.composite
def _length_long(draw: DrawFn, o: TransportOptions, ns: Namespace) -> Malformed:
    nlb = draw(_valid_nlb(o, ns, o.max_io_size - 1))
    transfer = (nlb + 1) * ns.block_size
    longer = transfer + draw(st.integers(1, o.max_io_size - transfer))
    return _m("sgl_length_long", draw(_rw()), "io", {"nlb": nlb, "sgl": {"length": longer}},
              nvme.SC_DATA_SGL_LENGTH_INVALID)


def _sgl_length_long(o: TransportOptions, ns: Namespace) -> SearchStrategy[Malformed] | None:
    return _length_long(o, ns) if _io_fits(o, ns) and ns.block_size < o.max_io_size else None


def _list_zero(o: TransportOptions, ns: Namespace) -> SearchStrategy[Malformed] | None:
    if not _io_fits(o, ns):
        return None
    return st.builds(lambda b: _m("list_zero_descriptors", b, "io", _list_overrides(()),
                                  nvme.SC_INVALID_NUM_SGL_DESC),
                     st.sampled_from(["read_list", "write_list"]))


@st.composite
def _too_many(draw: DrawFn, o: TransportOptions, ns: Namespace) -> Malformed:
    claimed = draw(st.one_of(st.integers(o.max_sgl_descriptors + 1, nvme.MAX_SGL_DESC + 1),
                             st.integers(o.max_sgl_descriptors + 1, 255)))
    held = min(claimed, nvme.MAX_SGL_DESC)  # the capsule's list[] has 16 slots
    lengths = draw(descriptor_lengths(ns.block_size, held, o.io_unit_size))
    return _m("list_too_many_descriptors", draw(st.sampled_from(["read_list", "write_list"])),
              "io", _list_overrides(_entries(lengths), ndesc=claimed),
              nvme.SC_INVALID_NUM_SGL_DESC)


def _list_too_many(o: TransportOptions, ns: Namespace) -> SearchStrategy[Malformed] | None:
    return _too_many(o, ns) if _io_fits(o, ns) else None


@st.composite
def _valid_list(draw: DrawFn, o: TransportOptions, ns: Namespace,
                ) -> tuple[str, tuple[dict[str, int], ...]]:
    lo = 2 if _max_list(o) >= 2 else 1
    n = draw(st.integers(lo, _max_list(o)))
    lengths = draw(descriptor_lengths(ns.block_size, n, o.io_unit_size))
    return draw(st.sampled_from(["read_list", "write_list"])), _entries(lengths)


@st.composite
def _entry_not_keyed(draw: DrawFn, o: TransportOptions, ns: Namespace) -> Malformed:
    base, entries = draw(_valid_list(o, ns))
    i = draw(st.integers(0, len(entries) - 1))
    bad = dict(entries[i], type=draw(st.sampled_from(_NON_KEYED_TYPES)),
               subtype=draw(st.sampled_from([nvme.SGL_SUBTYPE_ADDRESS,
                                             nvme.SGL_SUBTYPE_OFFSET])))
    entries = entries[:i] + (bad,) + entries[i + 1:]
    return _m("list_entry_not_keyed", base, "io", _list_overrides(entries),
              nvme.SC_SGL_DESC_TYPE_INVALID, (nvme.SC_INVALID_SGL_SEG_DESC,))


def _list_entry_not_keyed(o: TransportOptions, ns: Namespace,
                          ) -> SearchStrategy[Malformed] | None:
    return _entry_not_keyed(o, ns) if _io_fits(o, ns) else None


@st.composite
def _wrong_subtype(draw: DrawFn, o: TransportOptions, ns: Namespace) -> Malformed:
    base, entries = draw(_valid_list(o, ns))
    over = _list_overrides(entries)
    sub = draw(st.sampled_from([s for s in range(16) if s != nvme.SGL_SUBTYPE_OFFSET]))
    over["sgl"] = dict(over["sgl"], subtype=sub)
    return _m("last_segment_wrong_subtype", base, "io", over,
              nvme.SC_SGL_DESC_TYPE_INVALID, (nvme.SC_INVALID_SGL_SEG_DESC,))


def _last_segment_wrong_subtype(o: TransportOptions, ns: Namespace,
                                ) -> SearchStrategy[Malformed] | None:
    return _wrong_subtype(o, ns) if _io_fits(o, ns) else None


# --------------------------------------------------------------------- namespace kinds

@st.composite
def _lba(draw: DrawFn, o: TransportOptions, ns: Namespace) -> Malformed:
    nlb = draw(_valid_nlb(o, ns, o.max_io_size))
    if draw(st.integers(0, 3)) == 3:  # 64-bit wrap: slba + nlb + 1 overflows to a small LBA
        slba = U64 - draw(st.integers(0, nlb))
    else:  # first LBA past the last one that would fit, or further
        slba = ns.num_blocks - nlb + draw(st.one_of(st.just(0), st.integers(0, 1024)))
    return _m("lba_out_of_range", draw(_rw()), "io", {"slba": slba, "nlb": nlb},
              nvme.SC_LBA_OUT_OF_RANGE)


def _lba_out_of_range(o: TransportOptions, ns: Namespace) -> SearchStrategy[Malformed] | None:
    return _lba(o, ns) if _io_fits(o, ns) else None


def _io_bases(o: TransportOptions, ns: Namespace) -> SearchStrategy[str]:
    return st.sampled_from(["flush", "read", "write"] if _io_fits(o, ns) else ["flush"])


def _unknown_nsid(o: TransportOptions) -> SearchStrategy[int]:
    # 0xFFFFFFFF (broadcast) is left out: it is legal for some commands (flush, identify).
    return st.one_of(st.integers(o.max_namespaces + 1, o.max_namespaces + 64),
                     st.sampled_from([1 << 31, U32 - 1]))


def _nsid_zero(o: TransportOptions, ns: Namespace) -> SearchStrategy[Malformed]:
    return st.builds(lambda b: _m("nsid_zero", b, "io", {"nsid": 0},
                                  nvme.SC_INVALID_NAMESPACE), _io_bases(o, ns))


def _nsid_unknown(o: TransportOptions, ns: Namespace) -> SearchStrategy[Malformed]:
    return st.builds(lambda b, n: _m("nsid_unknown", b, "io", {"nsid": n},
                                     nvme.SC_INVALID_NAMESPACE),
                     _io_bases(o, ns), _unknown_nsid(o))


def _ns_not_ready(o: TransportOptions, ns: Namespace) -> SearchStrategy[Malformed]:
    return st.builds(lambda b: _m("namespace_not_ready", b, "io", {},
                                  nvme.SC_NAMESPACE_NOT_READY,
                                  setup=("namespace_not_ready",)), _io_bases(o, ns))


# ------------------------------------------------------------- sequence/connect kinds

def _io_before_connect(o: TransportOptions, ns: Namespace) -> SearchStrategy[Malformed]:
    return st.builds(lambda b: _m("io_before_connect", b, "io_unconnected", {},
                                  nvme.SC_COMMAND_SEQUENCE_ERROR), _io_bases(o, ns))


def _admin_bases(o: TransportOptions) -> list[str]:
    return (["keep_alive", "property_get"]
            + (["identify"] if o.max_io_size >= nvme.IDENTIFY_DATA_BYTES else []))


def _admin_before_connect(o: TransportOptions, ns: Namespace) -> SearchStrategy[Malformed]:
    return st.builds(lambda b: _m("admin_before_connect", b, "admin_unconnected", {},
                                  nvme.SC_COMMAND_SEQUENCE_ERROR),
                     st.sampled_from(_admin_bases(o)))


def _connect(kind: str, field: str, values: SearchStrategy[int],
             bases: tuple[str, ...] = ("connect_io",)) -> SearchStrategy[Malformed]:
    def build(base: str, v: int) -> Malformed:
        queue: MalformedQueue = "io_unconnected" if base == "connect_io" else "admin_unconnected"
        return _m(kind, base, queue, {field: v}, nvme.SC_CONNECT_INVALID_PARAM)
    return st.builds(build, st.sampled_from(bases), values)


def _connect_bad_qid(o: TransportOptions, ns: Namespace) -> SearchStrategy[Malformed] | None:
    if o.max_qpairs >= 0xFFFF:  # every 16-bit qid might be legal
        return None
    return _connect("connect_bad_qid", "qid",
                    st.one_of(st.integers(o.max_qpairs + 1, 0xFFFF), st.just(0xFFFF)))


def _connect_unknown_cntlid(o: TransportOptions, ns: Namespace) -> SearchStrategy[Malformed]:
    # 0xFFFF (dynamic) and 0xFFF0..0xFFFE (reserved) are left out: their meaning varies.
    return _connect("connect_unknown_cntlid", "cntlid", st.integers(0xF000, 0xFFEF))


def _connect_unknown_subsystem(o: TransportOptions, ns: Namespace,
                               ) -> SearchStrategy[Malformed]:
    return _connect("connect_unknown_subsystem", "subsystem",
                    st.one_of(st.integers(o.max_subsystems, o.max_subsystems + 64),
                              st.just(U32)),
                    ("connect_admin", "connect_io"))


def _connect_duplicate_qid(o: TransportOptions, ns: Namespace) -> SearchStrategy[Malformed]:
    return st.just(_m("connect_duplicate_qid", "connect_io", "io_unconnected", {},
                      nvme.SC_CONNECT_INVALID_PARAM, setup=("duplicate_qid",)))


def _connect_sqsize_zero(o: TransportOptions, ns: Namespace) -> SearchStrategy[Malformed]:
    return _connect("connect_sqsize_zero", "sqsize", st.just(0),
                    ("connect_admin", "connect_io"))


def _connect_sqsize(o: TransportOptions, ns: Namespace) -> SearchStrategy[Malformed]:
    return _connect("connect_sqsize_too_large", "sqsize",
                    st.one_of(st.just(o.max_queue_depth),
                              st.integers(o.max_queue_depth, 0xFFFF)),
                    ("connect_admin", "connect_io"))


# --------------------------------------------------------------- admin/property kinds

def _property_get_bad(o: TransportOptions, ns: Namespace) -> SearchStrategy[Malformed]:
    return st.builds(lambda off: _m("property_get_bad_offset", "property_get", "admin",
                                    {"cdw10": off}, nvme.SC_INVALID_FIELD),
                     _BAD_PROPERTY_OFFSETS)


def _property_set_bad(o: TransportOptions, ns: Namespace) -> SearchStrategy[Malformed]:
    return st.builds(lambda off: _m("property_set_bad_offset", "property_set", "admin",
                                    {"cdw10": off}, nvme.SC_INVALID_FIELD),
                     _BAD_PROPERTY_OFFSETS)


def _identify_bad_cns(o: TransportOptions, ns: Namespace) -> SearchStrategy[Malformed] | None:
    if o.max_io_size < nvme.IDENTIFY_DATA_BYTES:
        return None
    # CNS 2 and 3 (namespace lists) are left out: a target may reasonably serve them.
    return st.builds(lambda cns: _m("identify_bad_cns", "identify", "admin", {"cdw10": cns},
                                    nvme.SC_INVALID_FIELD), st.integers(4, 255))


def _identify_nsid_unknown(o: TransportOptions, ns: Namespace,
                           ) -> SearchStrategy[Malformed] | None:
    if o.max_io_size < nvme.IDENTIFY_DATA_BYTES:
        return None
    return st.builds(lambda n: _m("identify_nsid_unknown", "identify", "admin",
                                  {"cdw10": nvme.CNS_NAMESPACE, "nsid": n},
                                  nvme.SC_INVALID_NAMESPACE),
                     st.one_of(st.just(0), _unknown_nsid(o)))


_BUILDERS: dict[str, Builder] = {
    "io_invalid_opcode": _io_invalid_opcode,
    "admin_invalid_opcode": _admin_invalid_opcode,
    "nvm_opcode_on_admin": _nvm_on_admin,
    "admin_opcode_on_io": _admin_on_io,
    "invalid_sgl_type": _invalid_sgl_type,
    "invalid_keyed_subtype": _invalid_keyed_subtype,
    "icd_offset_beyond_data": _icd_offset_beyond,
    "icd_length_too_large": _icd_length_too_large,
    "keyed_length_too_large": _keyed_too_large,
    "keyed_list_length_too_large": _keyed_list_too_large,
    "sgl_length_short": _sgl_length_short,
    "sgl_length_long": _sgl_length_long,
    "list_zero_descriptors": _list_zero,
    "list_too_many_descriptors": _list_too_many,
    "list_entry_not_keyed": _list_entry_not_keyed,
    "last_segment_wrong_subtype": _last_segment_wrong_subtype,
    "lba_out_of_range": _lba_out_of_range,
    "nsid_zero": _nsid_zero,
    "nsid_unknown": _nsid_unknown,
    "namespace_not_ready": _ns_not_ready,
    "io_before_connect": _io_before_connect,
    "admin_before_connect": _admin_before_connect,
    "connect_bad_qid": _connect_bad_qid,
    "connect_duplicate_qid": _connect_duplicate_qid,
    "connect_unknown_cntlid": _connect_unknown_cntlid,
    "connect_unknown_subsystem": _connect_unknown_subsystem,
    "connect_sqsize_too_large": _connect_sqsize,
    "connect_sqsize_zero": _connect_sqsize_zero,
    "property_get_bad_offset": _property_get_bad,
    "property_set_bad_offset": _property_set_bad,
    "identify_bad_cns": _identify_bad_cns,
    "identify_nsid_unknown": _identify_nsid_unknown,
    "fabrics_bad_fctype": _fabrics_bad_fctype,
}

#: Every malformed kind, in table order.
MALFORMED_KINDS: tuple[str, ...] = tuple(_BUILDERS)


def feasible_kinds(opts: TransportOptions, namespace: Namespace) -> tuple[str, ...]:
    """Kinds that can be isolated under these options and namespace (e.g. no LBA-range
    case when one block already exceeds ``max_io_size``)."""
    return tuple(k for k, build in _BUILDERS.items() if build(opts, namespace) is not None)


def malformed_commands(opts: TransportOptions, namespace: Namespace, *,
                       kinds: tuple[str, ...] = MALFORMED_KINDS) -> SearchStrategy[Malformed]:
    """Malformed inputs of the feasible ``kinds`` for a target with ``opts``, aimed at
    ``namespace`` (the one the IO bases address).  Kinds infeasible under these options
    are skipped; ``ValueError`` if none is left.  Shrinks toward the first kind listed."""
    bad = set(kinds) - set(_BUILDERS)
    if bad:
        raise ValueError(f"unknown malformed kind(s) {sorted(bad)}")
    branches = [s for k in kinds if (s := _BUILDERS[k](opts, namespace)) is not None]
    if not branches:
        raise ValueError(f"none of {kinds} is feasible for {opts} / {namespace}")
    return st.one_of(branches)
