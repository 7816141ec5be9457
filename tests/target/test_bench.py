"""The benchmark command runs end to end and prints its JSON summary last (no timing checks)."""

from __future__ import annotations

import json

import pytest

from impl import bench

KEYS = [f"{kind}_{w}" for w in ("4k_read", "4k_write", "128k_write", "1m_read")
        for kind in ("ns_per_io", "ratio", "batched_ns_per_io", "ratio_batched")]


def test_bench_main_prints_the_figures_as_the_last_line(
        capsys: pytest.CaptureFixture[str]) -> None:
    figures = bench.main(["--ios", "16", "--repeat", "1", "--qd", "4"])
    out = capsys.readouterr()
    last = out.out.strip().splitlines()[-1]
    parsed = json.loads(last)
    assert parsed == figures
    assert list(parsed) == KEYS
    assert all(isinstance(v, (int, float)) and v > 0 for v in parsed.values()), parsed
    assert "4k_read" in out.out and "ratio" in out.out        # the table
    assert "bench:" in out.err                                # progress on stderr


def test_bench_run_moves_every_io() -> None:
    results = bench.run(ios=8, repeat=2, qd=2, progress=False)
    assert [r.name for r in results] == ["4k_read", "4k_write", "128k_write", "1m_read"]
    for r in results:
        assert r.ios == bench.ios_for(next(s for s in bench.WORKLOADS if s.name == r.name),
                                      8, 2)
        assert len(r.target_ns) == len(r.memcpy_ns) == len(r.batched_ns) == 2
        assert r.target_best > 0 and r.memcpy_best > 0 and r.ratio > 0
        assert r.batched_best > 0 and r.ratio_batched > 0


@pytest.mark.parametrize("floor", ["memcpy_baseline", "memcpy_batched"])
def test_each_memcpy_floor_moves_every_slots_bytes_to_the_media_and_back(floor: str) -> None:
    """A floor that skipped a copy or mixed up slots would not bring the host's bytes back."""
    qd, io_bytes = 4, 16 * 1024
    rig = bench.Rig(qd, 8 * 1024)
    try:
        t, span = rig.t, qd * io_bytes
        pattern = bytes((i * 7 + i // 4096) & 0xFF for i in range(span))
        t.write_memory(rig.key, 0, pattern)
        write = bench.Spec("w", bench.Opcode.WRITE, io_bytes, 2)
        read = bench.Spec("r", bench.Opcode.READ, io_bytes, 2)
        move = getattr(t, floor)
        assert move(rig.io, rig.workload(write, 3 * qd + 1)) == 3 * qd + 1
        t.write_memory(rig.key, 0, bytes(span))
        assert move(rig.io, rig.workload(read, qd)) == qd
        assert t.read_memory(rig.key, 0, span) == pattern
    finally:
        rig.t.destroy()


def test_bench_refuses_nonsense_arguments() -> None:
    with pytest.raises(SystemExit):
        bench.main(["--ios", "0"])
