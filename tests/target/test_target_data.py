"""DATA-1: bytes round-trip through every SGL layout, with 512- and 4096-byte blocks."""

from __future__ import annotations

import pytest

from impl import Capsule, Opcode, Status, keyed

from .rig import Rig, assert_clean_destroy, assert_released, build


@pytest.fixture(params=[512, 4096], ids=["bs512", "bs4096"])
def bs_rig(request: pytest.FixtureRequest):
    bs = request.param
    rig = build(block_size=bs, num_blocks=(1 << 20) // bs)
    yield rig
    if rig.t.alive:
        rig.t.destroy()


def sizes_for(layout: str, bs: int) -> list[int]:
    if layout == "in_capsule":                      # bounded by in_capsule_data_size (4 KiB)
        return sorted({bs, 4096})
    return sorted({bs, 3 * bs, 12 * 1024, 65536})   # 64 KiB = max_io_size


@pytest.mark.parametrize("read_layout", ["keyed", "list"])
@pytest.mark.parametrize("write_layout", ["in_capsule", "keyed", "list"])
def test_round_trip(bs_rig: Rig, write_layout: str, read_layout: str) -> None:
    rig = bs_rig
    bs = rig.block_size
    slba = 3
    for n, length in enumerate(sizes_for(write_layout, bs)):
        ndesc = min(16, max(2, length // 1000)) if write_layout == "list" else 1
        data = rig.data(length)
        rsp = rig.write(slba, data, write_layout, ndesc=ndesc, host_base=n * 10_000)
        assert rsp.status == Status.SUCCESS
        assert rig.media(slba, length) == data
        rndesc = min(16, max(2, length // 700)) if read_layout == "list" else 1
        rsp, back = rig.read(slba, length, read_layout, ndesc=rndesc, host_base=500_000)
        assert rsp.status == Status.SUCCESS
        assert back == data
        slba += length // bs + 1
    assert_released(rig.t)
    assert_clean_destroy(rig.t)


def test_overwrite_keeps_neighbours(bs_rig: Rig) -> None:
    rig = bs_rig
    bs = rig.block_size
    base = rig.data(8 * bs)
    assert rig.write(0, base, "keyed").status == Status.SUCCESS
    patch = rig.data(2 * bs)
    assert rig.write(3, patch, "list", ndesc=5).status == Status.SUCCESS
    expected = base[:3 * bs] + patch + base[5 * bs:]
    rsp, back = rig.read(0, 8 * bs, "list", ndesc=8, host_base=200_000)
    assert rsp.status == Status.SUCCESS and back == expected


def test_last_block_of_the_namespace(bs_rig: Rig) -> None:
    rig = bs_rig
    bs, last = rig.block_size, rig.num_blocks - 1
    data = rig.data(bs)
    assert rig.write(last, data, "keyed").status == Status.SUCCESS
    rsp, back = rig.read(last, bs, "keyed", host_base=1000)
    assert rsp.status == Status.SUCCESS and back == data


def test_list_order_is_preserved_with_one_byte_descriptors() -> None:
    """16 descriptors, 15 of one byte: any reordering or coalescing shows in the bytes."""
    rig = build()
    try:
        data = rig.data(1024)
        singles = [keyed(9000 - 37 * i, 1, rig.key) for i in range(15)]
        tail = keyed(20_000, 1024 - 15, rig.key)
        for i, d in enumerate(singles):
            rig.t.write_memory(rig.key, d.addr, data[i:i + 1])
        rig.t.write_memory(rig.key, tail.addr, data[15:])
        cap = Capsule.with_data(Opcode.WRITE, rig.cid(), [*singles, tail], nsid=rig.ns,
                                slba=0, nlb=1)
        assert rig.run_one(rig.io, cap).status == Status.SUCCESS
        assert rig.media(0, 1024) == data
        for d in singles:
            rig.t.write_memory(rig.key, d.addr, b"\x00")
        rig.t.write_memory(rig.key, tail.addr, bytes(1024 - 15))
        cap = Capsule.with_data(Opcode.READ, rig.cid(), [*singles, tail], nsid=rig.ns,
                                slba=0, nlb=1)
        assert rig.run_one(rig.io, cap).status == Status.SUCCESS
        assert rig.gather([*singles, tail]) == data
    finally:
        assert_clean_destroy(rig.t)
