"""Debian's unmodified pyverbs drives SPDK's own lib/nvmf/rdma.c, built against the drop-in
libraries and served in the child: IO through an admin and an IO queue, nvmf_get_stats
from SPDK's poll_group_dump_stat over JSON-RPC, and SPDK's log in the server's log file -
down to its destroy-time audit of the data-WR pool on the tree before the fix for issue
3290."""

from __future__ import annotations

from pathlib import Path

import pytest
from dropin_child import check_stats_move_with_io, spdk_tree


@pytest.fixture(scope="module")
def tree(dropin_dir: Path):
    """``tree(name)``: the SPDK tree, its drop-in build made here (cached), so the child's
    time limit covers its run, not a compile."""
    from impl.spdk import build

    def get(name: str) -> Path:
        path = spdk_tree(name)
        build.build(path, dropin=dropin_dir)
        return path

    return get


def test_pyverbs_does_io_on_spdk_and_its_stats_move(pyverbs_host, tree) -> None:
    out = pyverbs_host("stats", "--target", "spdk", "--spdk-src", str(tree("v26.05")))
    check_stats_move_with_io(out)
    assert "NVMe/RDMA Target Listening on 192.0.2.10 port 4420" in out["log"]


def test_spdk_destroy_time_audit_reaches_the_log_file(pyverbs_host, tree) -> None:
    """A Write whose RDMA READs fail, 16 descriptors deep: the tree before SPDK's fix for
    issue 3290 leaks data WRs, and its destroy says so in the log; the fixed tree does not."""
    leaky = pyverbs_host("failed_write", "--target", "spdk", "--spdk-src",
                         str(tree("7068328493-parent")))
    assert "remote access error" in leaky["log"]
    assert "transport wr pool count is" in leaky["log"], leaky["log"]


@pytest.mark.parametrize("name", ["v26.05"])
def test_fixed_spdk_destroys_without_a_leak(pyverbs_host, tree, name: str) -> None:
    out = pyverbs_host("failed_write", "--target", "spdk", "--spdk-src", str(tree(name)))
    assert "remote access error" in out["log"]
    assert "wr pool count" not in out["log"]
    assert "destroyed (0): wr 2048/2048" in out["log"]
