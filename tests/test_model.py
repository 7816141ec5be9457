"""Tests of the reference model (``conformance/model.py``): what the host may observe.

No target runs here: the model is plain Python, and DATA-1 verdicts are only as good as it.
"""

from __future__ import annotations

import struct

import pytest

from conformance import checks
from conformance.model import Command, ControllerModel, NamespaceModel, QpairModel, pattern
from strategies.types import IoCommand

BS = 512


def ns(num_blocks: int = 8, block_size: int = BS) -> NamespaceModel:
    return NamespaceModel(subsystem=0, nsid=1, block_size=block_size, num_blocks=num_blocks)


def block(fill: int, block_size: int = BS) -> bytes:
    return bytes([fill]) * block_size


# ------------------------------------------------------------------------ NamespaceModel


@pytest.mark.spec("DATA-1")
def test_a_fresh_namespace_reads_zeroes() -> None:
    m = ns()
    assert all(m.candidates(lba) == (bytes(BS),) for lba in range(m.num_blocks))


@pytest.mark.spec("DATA-1")
def test_write_acknowledged_makes_the_candidates_exactly_the_new_data() -> None:
    m = ns()
    m.write_acknowledged(2, block(1) + block(2) + block(3))
    assert m.candidates(1) == (bytes(BS),)
    assert m.candidates(2) == (block(1),)
    assert m.candidates(3) == (block(2),)
    assert m.candidates(4) == (block(3),)
    assert m.candidates(5) == (bytes(BS),)
    m.write_acknowledged(3, block(9))
    assert m.candidates(3) == (block(9),)          # the old version is gone


@pytest.mark.spec("DATA-1")
def test_write_acknowledged_decides_an_undecided_block() -> None:
    m = ns()
    m.write_undecided(0, block(1))
    m.write_undecided(0, block(2))
    assert len(m.candidates(0)) == 3
    m.write_acknowledged(0, block(3))
    assert m.candidates(0) == (block(3),)


@pytest.mark.spec("DATA-1")
def test_write_undecided_keeps_the_old_and_adds_the_new() -> None:
    m = ns()
    m.write_acknowledged(0, block(1) + block(2))
    m.write_undecided(1, block(5) + block(6))
    assert m.candidates(0) == (block(1),)
    assert m.candidates(1) == (block(2), block(5))
    assert m.candidates(2) == (bytes(BS), block(6))
    m.write_undecided(1, block(7))
    assert m.candidates(1) == (block(2), block(5), block(7))


@pytest.mark.spec("DATA-1")
def test_write_undecided_does_not_duplicate_a_known_version() -> None:
    m = ns()
    m.write_acknowledged(0, block(1))
    m.write_undecided(0, block(1))
    m.write_undecided(0, block(2))
    m.write_undecided(0, block(2))
    assert m.candidates(0) == (block(1), block(2))


@pytest.mark.spec("DATA-1")
def test_bytes_match_over_model_candidates() -> None:
    """The model and the DATA-1 check together: old, new, or nothing else."""
    m = ns()
    m.write_acknowledged(0, block(1))
    m.write_undecided(0, block(2))
    checks.bytes_match("block 0", block(1), m.candidates(0))
    checks.bytes_match("block 0", block(2), m.candidates(0))
    with pytest.raises(checks.PropertyViolation) as exc:
        checks.bytes_match("block 0", block(3), m.candidates(0))
    assert exc.value.spec == "DATA-1"
    with pytest.raises(checks.PropertyViolation):
        checks.bytes_match("block 1", block(1), m.candidates(1))


def test_namespace_model_splits_at_its_own_block_size() -> None:
    m = ns(4, 4096)
    m.write_acknowledged(1, block(1, 4096) + block(2, 4096))
    assert m.candidates(1) == (block(1, 4096),) and m.candidates(2) == (block(2, 4096),)
    assert m.candidates(0) == m.candidates(3) == (bytes(4096),)


# -------------------------------------------------------------------------------- pattern


@pytest.mark.spec("DATA-1")
@pytest.mark.parametrize("block_size", [512, 4096])
@pytest.mark.parametrize("blocks", [1, 2, 7, 32])
def test_pattern_has_the_requested_length(block_size: int, blocks: int) -> None:
    assert len(pattern(3, 10, blocks * block_size, block_size)) == blocks * block_size


@pytest.mark.spec("DATA-1")
def test_pattern_names_the_write_the_block_and_the_place_in_every_16_bytes() -> None:
    data = pattern(0xDEAD, 40, 3 * BS, BS)
    for off in range(0, len(data), 16):
        place = (off % BS) // 16
        assert struct.unpack("<QQ", data[off:off + 16]) == (0xDEAD, (40 + off // BS) | place << 48)


@pytest.mark.spec("DATA-1")
def test_pattern_blocks_are_unique_per_tag_and_lba() -> None:
    seen: dict[bytes, tuple[int, int]] = {}
    for tag in (0, 1, 2, 255, 256, 2**32, 2**64 - 1):
        for slba in (0, 1, 2, 7, 255, 256, 2**40):
            data = pattern(tag, slba, 2 * BS, BS)
            for i in range(2):
                blk = data[i * BS:(i + 1) * BS]
                key = (tag, slba + i)
                assert seen.setdefault(blk, key) == key, f"{key} collides with {seen[blk]}"


@pytest.mark.spec("DATA-1")
def test_pattern_of_a_range_is_the_patterns_of_its_blocks() -> None:
    """Block i of a write at slba is what a one-block write at slba + i gives: the content
    depends on (tag, lba) only, so a block shifted to another LBA is caught."""
    data = pattern(5, 100, 4 * BS, BS)
    for i in range(4):
        assert data[i * BS:(i + 1) * BS] == pattern(5, 100 + i, BS, BS)
    assert pattern(5, 100, BS, BS) != pattern(6, 100, BS, BS)
    assert pattern(5, 100, BS, BS) != pattern(5, 101, BS, BS)


@pytest.mark.spec("DATA-1")
def test_pattern_never_looks_like_a_fresh_block() -> None:
    for tag in (0, 1, 2, 3):
        assert pattern(tag, 0, BS, BS) != bytes(BS)


# ------------------------------------------------------------------- Command, QpairModel


def test_command_lba_range() -> None:
    read = IoCommand("read", 1, 10, 3, None)
    assert Command(1, "r", "io", io=read).lba_range == (10, 14)
    flush = IoCommand("flush", 1, 0, 0, None)
    assert Command(2, "f", "io", io=flush).lba_range is None
    assert Command(3, "a", "admin").lba_range is None
    c = Command(4, "w", "io")
    assert c.allowed == (0,) and not c.lost and c.result is None


def test_qpair_model_free_cid() -> None:
    ctrl = ControllerModel(subsystem=0, namespaces=[ns()])
    qp = QpairModel(handle=4097, group=0, port=0, depth=3, qid=1, controller=ctrl,
                    window=4096, base=0)
    assert qp.free_cid() == 0
    qp.outstanding[0] = Command(0, "a", "io")
    qp.outstanding[2] = Command(2, "b", "io")
    assert qp.free_cid() == 1
    qp.outstanding[1] = Command(1, "c", "io")
    assert qp.free_cid() is None
    del qp.outstanding[0]
    assert qp.free_cid() == 0
