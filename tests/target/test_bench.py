"""The benchmark command runs end to end and prints its JSON summary last (no timing checks)."""

from __future__ import annotations

import json

import pytest

from impl import bench

KEYS = [f"{kind}_{w}" for w in ("4k_read", "4k_write", "128k_write", "1m_read")
        for kind in ("ns_per_io", "ratio")]


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
        assert len(r.target_ns) == len(r.memcpy_ns) == 2
        assert r.target_best > 0 and r.memcpy_best > 0 and r.ratio > 0


def test_bench_refuses_nonsense_arguments() -> None:
    with pytest.raises(SystemExit):
        bench.main(["--ios", "0"])
