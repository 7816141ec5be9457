"""SGL layouts: how a command's bytes are described to the target.

Three shapes, as an NVMe-oF RDMA host sends them:

* ``in_capsule`` - data rides in the command capsule (host-to-controller only, and only
  up to the target's ``in_capsule_data_size``);
* ``keyed`` - one keyed data-block descriptor: the target moves the bytes by RDMA;
* ``keyed_list`` - a last-segment list of 2..16 keyed descriptors of uneven lengths.  A
  multi-descriptor write is what splits into several RDMA READs and, with a short read
  depth, leaves an unposted remainder (the WR leak of SPDK issue 3290).

Descriptor boundaries are biased to land just off ``io_unit_size`` multiples, so one
descriptor often straddles two data buffers - where SGE bookkeeping goes wrong.  Host
addresses are packed, gapped, or scattered out of transfer order, so a target that
preserves address order instead of descriptor order is caught by DATA-1.
"""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.strategies import DrawFn, SearchStrategy

from strategies import nvme
from strategies.types import Direction, SglKind, SglLayout, TransportOptions

__all__ = ["SGL1_TYPE", "descriptor_lengths", "sgl_layouts"]

#: SGL1 (type, subtype) of the command for each layout kind.
SGL1_TYPE: dict[SglKind, tuple[int, int]] = {
    "in_capsule": (nvme.SGL_TYPE_DATA_BLOCK, nvme.SGL_SUBTYPE_OFFSET),
    "keyed": (nvme.SGL_TYPE_KEYED_DATA, nvme.SGL_SUBTYPE_ADDRESS),
    "keyed_list": (nvme.SGL_TYPE_LAST_SEGMENT, nvme.SGL_SUBTYPE_OFFSET),
}


def sgl_layouts(length: int, opts: TransportOptions, direction: Direction = "h2c",
                *, kinds: tuple[SglKind, ...] = ("keyed", "in_capsule", "keyed_list"),
                ) -> SearchStrategy[SglLayout]:
    """Valid layouts for a ``length``-byte transfer under ``opts``.

    ``in_capsule`` only when ``direction == "h2c"`` and ``length <= in_capsule_data_size``;
    ``keyed_list`` only when ``min(16, max_sgl_descriptors, length, in_capsule_data_size //
    16) >= 2`` (the list rides in the capsule, 16 bytes a descriptor).  Raises
    ``ValueError`` if ``length`` is outside ``1..max_io_size`` or no kind applies.
    Shrinks toward one keyed descriptor at host offset 0."""
    if not 1 <= length <= opts.max_io_size:
        raise ValueError(f"length {length} outside 1..max_io_size={opts.max_io_size}")
    branches: list[SearchStrategy[SglLayout]] = []
    if "keyed" in kinds:
        branches.append(_keyed(length))
    if ("in_capsule" in kinds and direction == "h2c"
            and length <= opts.in_capsule_data_size):
        branches.append(_in_capsule(length, opts.in_capsule_data_size))
    most = min(nvme.MAX_SGL_DESC, opts.max_sgl_descriptors, length,
               opts.in_capsule_data_size // 16)
    if "keyed_list" in kinds and most >= 2:
        branches.append(_keyed_list(length, most, opts.io_unit_size))
    if not branches:
        raise ValueError(f"no SGL kind in {kinds} fits length {length} ({direction})")
    return st.one_of(branches)


def descriptor_lengths(total: int, n: int, io_unit_size: int) -> SearchStrategy[tuple[int, ...]]:
    """``n`` descriptor lengths, each >= 1, summing to ``total``, cut near buffer boundaries.

    Each cut is either anywhere legal or within 2 bytes of one of the next few
    ``io_unit_size`` multiples (so the descriptor around it straddles a boundary).
    Shrinks toward ``(1, 1, ..., total - n + 1)``."""
    if not 1 <= n <= total:
        raise ValueError(f"cannot cut {total} bytes into {n} non-empty descriptors")
    return _cuts(total, n, io_unit_size)


@st.composite
def _cuts(draw: DrawFn, total: int, n: int, unit: int) -> tuple[int, ...]:
    lengths, prev = [], 0
    for i in range(n - 1):
        lo, hi = prev + 1, total - (n - 1 - i)  # leave >= 1 byte for each later descriptor
        if draw(st.integers(0, 2)) == 0:
            cut = draw(st.integers(lo, hi))
        else:
            boundary = (prev // unit + 1 + draw(st.integers(0, 2))) * unit
            cut = min(max(boundary + draw(st.integers(-2, 2)), lo), hi)
        lengths.append(cut - prev)
        prev = cut
    lengths.append(total - prev)
    return tuple(lengths)


def _keyed(length: int) -> SearchStrategy[SglLayout]:
    return st.builds(lambda off: SglLayout("keyed", (length,), (off,)), _base_offset())


def _in_capsule(length: int, icd_size: int) -> SearchStrategy[SglLayout]:
    # A non-zero in-capsule offset is legal NVMe-oF (data-block descriptor, offset
    # subtype); keep it rare-ish by offering 0 as its own branch.
    room = icd_size - length
    offset = st.one_of(st.just(0), st.integers(0, room)) if room else st.just(0)
    return st.builds(lambda off: SglLayout("in_capsule", (length,), (off,)), offset)


def _base_offset() -> SearchStrategy[int]:
    return st.one_of(st.just(0), st.integers(0, 4096))


def _gap() -> SearchStrategy[int]:
    return st.one_of(st.integers(0, 64), st.sampled_from([4095, 4096, 4097]))


@st.composite
def _keyed_list(draw: DrawFn, length: int, most: int, unit: int) -> SglLayout:
    n = draw(st.integers(2, most))
    lengths = draw(_cuts(length, n, unit))
    placement = draw(st.sampled_from(["packed", "gapped", "scattered"]))
    order = (draw(st.permutations(range(n))) if placement == "scattered"
             else list(range(n)))
    offsets = [0] * n
    pos = draw(_base_offset())
    for i in order:  # lay descriptors out in address order `order`
        if placement != "packed":
            pos += draw(_gap())
        offsets[i] = pos
        pos += lengths[i]
    return SglLayout("keyed_list", lengths, tuple(offsets))
