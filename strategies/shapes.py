"""IO shapes: commands drawn before the example's options and namespaces are known.

A state machine's rules are drawn independently of what its ``initialize`` step drew, so a
rule cannot ask for ``io_commands(namespace, opts)`` without ``st.data()`` (whose draws do
not print as a pasteable reproducer).  Instead a rule draws an :class:`IoShape` — sizes and
cut points as small integers and per-mille fractions — and the harness maps it onto the
live namespace with :func:`realize`, a pure function.  Shrinking still works on the shape:
it moves toward one block, one keyed descriptor, no gap.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Literal

from hypothesis import strategies as st
from hypothesis.strategies import SearchStrategy

from strategies.commands import max_transfer_blocks
from strategies.scale import FIELD, by_scale
from strategies.types import IoCommand, Namespace, SglLayout, TransportOptions

__all__ = ["IoShape", "io_shapes", "realize"]

ShapeLayout = Literal["keyed", "keyed_list", "in_capsule"]


@dataclass(frozen=True)
class IoShape:
    """An NVM command in option-independent terms.

    ``qpair`` and ``namespace`` are indices the harness reduces modulo what is live;
    ``blocks`` is clipped to what the namespace and ``max_io_size`` allow; ``start`` picks
    the LBA; ``cuts`` are per-mille cut points splitting the transfer into keyed
    descriptors; ``gap`` is the number of bytes left unused in host memory between
    descriptors (so SGE order and address order both matter)."""

    op: Literal["read", "write", "flush"]
    qpair: int = 0
    namespace: int = 0
    blocks: int = 1
    start: int = 0
    layout: ShapeLayout = "keyed"
    cuts: tuple[int, ...] = ()
    gap: int = 0


def io_shapes(*, ops: tuple[str, ...] = ("write", "read", "write", "read", "flush"),
              max_blocks: int | None = None, max_descriptors: int = 16,
              min_descriptors: int = 1,
              layouts: tuple[str, ...] = ("keyed", "keyed_list", "keyed_list", "in_capsule"),
              ) -> SearchStrategy[IoShape]:
    """IO shapes biased toward writes and reads with several uneven descriptors
    (``min_descriptors``/``max_descriptors`` bound the cuts a list may have; the
    realized list is still capped by what the target and the IO length allow).
    ``max_blocks`` bounds the blocks a shape asks for; by default 64 at ci scale and, at
    field scale (``strategies.scale``), up to 1 MiB of 512-byte blocks, often all of it
    (the harness clips a shape to ``max_io_size`` and the namespace)."""
    blocks = st.integers(1, max_blocks) if max_blocks is not None else by_scale(
        st.integers(1, 64),
        st.one_of(st.integers(1, 64), st.just(FIELD.io_blocks), st.integers(1, FIELD.io_blocks)))
    return st.builds(
        IoShape,
        op=st.sampled_from(ops),
        qpair=st.integers(0, 7),
        namespace=st.integers(0, 3),
        blocks=blocks,
        start=st.integers(0, 1 << 16),
        layout=st.sampled_from(layouts),
        cuts=st.lists(st.integers(1, 999), min_size=min_descriptors - 1,
                      max_size=max_descriptors - 1).map(tuple),
        gap=st.integers(0, 64),
    )


def realize(shape: IoShape, ns: Namespace, opts: TransportOptions, nsid: int,
            *, slba: int | None = None) -> IoCommand:
    """The concrete command ``shape`` stands for on namespace ``ns`` under ``opts``.

    In-capsule data is used only for writes that fit ``in_capsule_data_size``; lists are
    capped at ``max_sgl_descriptors``, at the descriptors the capsule has room for (a
    last-segment list rides in the in-capsule area, 16 bytes a descriptor: NVMe-oF 1.1
    2.x) and at one byte per descriptor; host offsets are laid
    out in transfer order with the shape's gaps between descriptors."""
    if shape.op == "flush":
        return IoCommand("flush", nsid, 0, 0, None)
    blocks = max(1, min(shape.blocks, max_transfer_blocks(ns, opts), ns.num_blocks))
    if slba is None:
        slba = shape.start % (ns.num_blocks - blocks + 1)
    length = blocks * ns.block_size
    kind = shape.layout
    if kind == "in_capsule" and (shape.op != "write" or length > opts.in_capsule_data_size):
        kind = "keyed"
    if kind == "in_capsule":
        layout = SglLayout("in_capsule", (length,), (0,))
    else:
        room = opts.in_capsule_data_size // 16
        most = 1 if kind == "keyed" else max(1, min(opts.max_sgl_descriptors, length, room))
        points = sorted({c * length // 1000 for c in shape.cuts} - {0, length})[: most - 1]
        bounds = [0, *points, length]
        lengths = tuple(b - a for a, b in itertools.pairwise(bounds))
        offsets, pos = [], 0
        for i, n in enumerate(lengths):
            pos += shape.gap * (i % 3)   # uneven spacing: 0, gap, 2*gap, 0, ...
            offsets.append(pos)
            pos += n
        layout = SglLayout("keyed" if len(lengths) == 1 else "keyed_list", lengths,
                           tuple(offsets))
    return IoCommand(shape.op, nsid, slba, blocks - 1, layout)
