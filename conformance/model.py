"""The reference model: what the host may legitimately observe.

* :class:`NamespaceModel` holds, per block, the set of contents a read may return: exactly
  one after an acknowledged write, "either old or new" after a write a fault cut off (no
  response, or an error status).
* :class:`QpairModel` holds the commands outstanding per CID; after the qpair fails they
  are *lost*: none or one response may still come.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from strategies.types import IoCommand


class NamespaceModel:
    """Possible contents of every block of one RAM namespace."""

    def __init__(self, subsystem: int, nsid: int, block_size: int, num_blocks: int):
        self.subsystem = subsystem
        self.nsid = nsid
        self.block_size = block_size
        self.num_blocks = num_blocks
        zero = bytes(block_size)
        self._blocks: list[tuple[bytes, ...]] = [(zero,)] * num_blocks

    def candidates(self, lba: int) -> tuple[bytes, ...]:
        return self._blocks[lba]

    def _split(self, data: bytes) -> list[bytes]:
        bs = self.block_size
        return [data[i:i + bs] for i in range(0, len(data), bs)]

    def write_acknowledged(self, slba: int, data: bytes) -> None:
        for i, block in enumerate(self._split(data)):
            self._blocks[slba + i] = (block,)

    def write_undecided(self, slba: int, data: bytes) -> None:
        for i, block in enumerate(self._split(data)):
            old = self._blocks[slba + i]
            if block not in old:
                self._blocks[slba + i] = (*old, block)


def pattern(tag: int, slba: int, length: int, block_size: int) -> bytes:
    """Recognisable write data: every 16 bytes name the write, the block and their own
    place in it, so SGEs swapped anywhere, even inside a block, read back differently."""
    out = bytearray()
    for i in range(length // block_size):
        lba = slba + i
        out += b"".join(struct.pack("<QQ", tag, lba | j << 48) for j in range(block_size // 16))
    return bytes(out)


@dataclass
class Command:
    """One capsule the host submitted and has not seen answered."""

    cid: int
    label: str
    kind: str                          # "io", "admin", "connect", "probe"
    io: IoCommand | None = None
    ns: NamespaceModel | None = None
    data: bytes | None = None          # write payload
    host_ranges: tuple[tuple[int, int], ...] = ()   # (MR offset, length) in SGE order
    allowed: tuple[int, ...] = (0,)    # statuses it may be answered with
    lost: bool = False                 # its qpair failed: none or one response
    result: int | None = None          # the response's result field, once answered

    @property
    def lba_range(self) -> tuple[int, int] | None:
        if self.io is None or self.io.op == "flush":
            return None
        return self.io.slba, self.io.slba + self.io.nlb + 1


@dataclass
class QpairModel:
    handle: int
    group: int
    port: int
    depth: int
    qid: int
    controller: ControllerModel
    window: int                        # host memory bytes per CID
    base: int                          # offset of this qpair's area in the host region
    outstanding: dict[int, Command] = field(default_factory=dict)
    failed: bool = False               # the target reported it errored or destroyed it
    gone: bool = False                 # destroyed: nothing of it is left in the target

    def free_cid(self) -> int | None:
        for cid in range(self.depth):
            if cid not in self.outstanding:
                return cid
        return None


@dataclass
class ControllerModel:
    subsystem: int
    namespaces: list[NamespaceModel]
    cntlid: int = 0
    admin: QpairModel | None = None
    io: list[QpairModel] = field(default_factory=list)
