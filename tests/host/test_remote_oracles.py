"""The hardware tier's oracles on their own: the JSON-RPC client against a unix-socket
server written here, the nvmf_get_stats totals and the log scan (the black-box checks
they feed are tested in tests/test_checks.py)."""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path

import pytest

from conformance.remote_target import LogScan, Rpc, RpcError, stat_totals

STATS = {"tick_rate": 1000, "poll_groups": [
    {"name": "nvmf_tgt_poll_group_000", "admin_qpairs": 2, "io_qpairs": 3,
     "current_admin_qpairs": 1, "current_io_qpairs": 1, "pending_bdev_io": 0,
     "completed_nvme_io": 7,
     "transports": [{"trtype": "RDMA", "pending_data_buffer": 0, "devices": [
         {"name": "mlx5_0", "polls": 100, "idle_polls": 90, "completions": 20, "requests": 9,
          "request_latency": 5, "pending_free_request": 0, "pending_rdma_read": 1,
          "pending_rdma_write": 0, "pending_rdma_send": 0, "total_send_wrs": 9,
          "send_doorbell_updates": 9, "total_recv_wrs": 40, "recv_doorbell_updates": 2}]}]},
    {"name": "nvmf_tgt_poll_group_001", "admin_qpairs": 0, "io_qpairs": 1,
     "current_admin_qpairs": 0, "current_io_qpairs": 1, "pending_bdev_io": 0,
     "completed_nvme_io": 1, "transports": [{"trtype": "RDMA", "pending_data_buffer": 2,
                                             "devices": []}]}]}


@pytest.fixture
def rpc_server(tmp_path: Path):
    path = str(tmp_path / "rpc.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(4)
    seen: list[dict] = []

    def serve() -> None:
        while True:
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            with conn:
                req = json.loads(conn.recv(65536).decode())
                seen.append(req)
                if req["method"] == "nvmf_get_stats":
                    body = {"jsonrpc": "2.0", "id": req["id"], "result": STATS}
                else:
                    body = {"jsonrpc": "2.0", "id": req["id"],
                            "error": {"code": -32601, "message": "Method not found"}}
                data = json.dumps(body).encode()
                conn.sendall(data[:50])   # in two pieces: the client must reassemble
                conn.sendall(data[50:])

    th = threading.Thread(target=serve, daemon=True)
    th.start()
    yield path, seen
    srv.close()


def test_rpc_calls_nvmf_get_stats_as_json_rpc_2(rpc_server) -> None:
    path, seen = rpc_server
    got = Rpc(path, timeout=5).call("nvmf_get_stats")
    assert got == STATS
    assert seen[0]["jsonrpc"] == "2.0" and seen[0]["method"] == "nvmf_get_stats"
    with pytest.raises(RpcError, match="Method not found"):
        Rpc(path, timeout=5).call("no_such_method")


def test_rpc_to_nothing_says_where(tmp_path: Path) -> None:
    with pytest.raises(RpcError, match="cannot reach"):
        Rpc(str(tmp_path / "none.sock"), timeout=1).call("nvmf_get_stats")


def test_totals_sum_groups_and_devices() -> None:
    t = stat_totals(STATS)
    assert t["current_admin_qpairs"] == 1 and t["current_io_qpairs"] == 2
    assert t["polls"] == 100 and t["completions"] == 20
    assert t["pending_data_buffer"] == 2 and t["pending_rdma_read"] == 1


def test_log_scan_reads_only_new_lines_and_finds_spdks_leak_message(tmp_path: Path) -> None:
    log = tmp_path / "target.log"
    log.write_text("old *ERROR*: before the scan started\n")
    scan = LogScan(str(log))
    with log.open("a") as f:
        f.write("rdma.c:2998:nvmf_rdma_destroy: *ERROR*: transport wr pool count is 4090 "
                "but should be 4096\nrdma.c: *ERROR*: Failed to post\nnotice line\n")
    lines = scan.new_lines()
    assert len(lines) == 3
    assert LogScan.leaks(lines) == [lines[0]]
    assert LogScan.errors(lines) == [lines[1]]
    assert scan.new_lines() == []
