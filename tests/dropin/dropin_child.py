"""Running a child process on the drop-in libraries, for the tests of tests/dropin."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
PYVERBS = Path("/usr/lib/python3/dist-packages/pyverbs")
CHILD_TIMEOUT_S = 120


def need_pyverbs() -> None:
    if (PYVERBS / "__init__.py").is_file():
        return
    ci = os.environ.get("CI", "").strip().lower() not in ("", "false", "0", "no")
    if ci or os.environ.get("NRT_REQUIRE_PYVERBS") == "1":
        pytest.fail(f"python3-pyverbs is not installed ({PYVERBS} is missing): .ci/run "
                    f"installs it")
    pytest.skip(f"python3-pyverbs is not installed ({PYVERBS} is missing; "
                f"apt-get install python3-pyverbs)")


def run_child(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True,
                          timeout=CHILD_TIMEOUT_S, check=False, cwd=HERE.parents[1])


# ---- SPDK trees, found where tests/spdk finds them ----------------------------------------

ROOT = HERE.parents[1]
_TREE_DIRS = ([Path(os.environ["NRT_SPDK_TREES"])] if os.environ.get("NRT_SPDK_TREES") else
              [ROOT.parent / "shared" / "spdk", Path("/work/shared/spdk")])


def spdk_tree(name: str) -> Path:
    for d in _TREE_DIRS:
        if (d / name / "lib" / "nvmf" / "rdma.c").is_file():
            return d / name
    pytest.skip(f"no SPDK tree {name} in {' or '.join(map(str, _TREE_DIRS))} "
                f"(set NRT_SPDK_TREES)")


# ---- nvmf_get_stats: the contract's shape, and counters that move with IO ---------------

GROUP_KEYS = {"name", "admin_qpairs", "io_qpairs", "current_admin_qpairs", "current_io_qpairs",
              "pending_bdev_io", "completed_nvme_io", "transports"}
DEVICE_KEYS = {"name", "polls", "idle_polls", "completions", "requests", "request_latency",
               "pending_free_request", "pending_rdma_read", "pending_rdma_write",
               "pending_rdma_send", "total_send_wrs", "send_doorbell_updates",
               "total_recv_wrs", "recv_doorbell_updates"}


def check_stats_shape(answer: dict, rid: int = 7) -> dict:
    """The JSON-RPC 2.0 answer to nvmf_get_stats, in the shape of SPDK's; returns result."""
    assert answer.get("jsonrpc") == "2.0" and answer.get("id") == rid, answer
    result = answer["result"]
    assert set(result) == {"tick_rate", "poll_groups"}
    assert result["poll_groups"], "no poll groups"
    for g in result["poll_groups"]:
        assert set(g) == GROUP_KEYS, sorted(set(g) ^ GROUP_KEYS)
        assert len(g["transports"]) == 1
        tr = g["transports"][0]
        assert set(tr) == {"trtype", "pending_data_buffer", "devices"}
        assert tr["trtype"] == "RDMA"
        for d in tr["devices"]:
            assert set(d) == DEVICE_KEYS, sorted(set(d) ^ DEVICE_KEYS)
            assert all(isinstance(d[k], int) for k in DEVICE_KEYS - {"name"})
    return result


def _total(result: dict, key: str) -> int:
    return sum(d[key] for g in result["poll_groups"] for t in g["transports"]
               for d in t["devices"])


def check_stats_move_with_io(out: dict) -> None:
    """The child's 'stats' scenario: 8 successful Reads between the two answers."""
    assert out["io"] == 0, f"IO queue Connect failed: {out['io']:#x}"
    assert out["reads"] == [0] * 8
    before, after = check_stats_shape(out["before"]), check_stats_shape(out["after"])
    groups = after["poll_groups"]
    assert sum(g["admin_qpairs"] for g in groups) == 1
    assert sum(g["io_qpairs"] for g in groups) == 1
    assert sum(g["current_io_qpairs"] for g in groups) == 1
    assert sum(g["completed_nvme_io"] for g in groups) >= 8
    assert _total(after, "requests") - _total(before, "requests") >= 8 + 3
    assert _total(after, "completions") > _total(before, "completions")
    # each Read: one RDMA WRITE and one response SEND at least
    assert _total(after, "total_send_wrs") - _total(before, "total_send_wrs") >= 16
    assert _total(after, "total_recv_wrs") >= _total(before, "total_recv_wrs")
    assert _total(after, "polls") > _total(before, "polls")
