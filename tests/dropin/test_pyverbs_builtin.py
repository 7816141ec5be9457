"""Debian's unmodified pyverbs, in a child on the drop-in libibverbs, drives the built-in
target served in the same child: it sees one active RDMA device, connects through the CM
with the NVMe/RDMA private data (NVMe/RDMA 1.0 3.3), SENDs a Fabrics Connect capsule
(NVMe-oF 1.1 3.3) and receives its CQE: success, the command's CID, the controller ID.
With an IO queue too, Reads move the built-in target's nvmf_get_stats counters."""

from __future__ import annotations

from dropin_child import check_stats_move_with_io


def test_pyverbs_connects_and_gets_the_connect_cqe(pyverbs_host) -> None:
    out = pyverbs_host("connect")
    assert out["active"] is True
    assert out["devices"] == ["simverbs0"]
    assert out["port_state"] == 4            # IBV_PORT_ACTIVE
    assert out["status"] == 0, f"Connect failed with status {out['status']:#x}"
    assert out["cid"] == 1
    assert out["sqid"] == 0
    assert out["cntlid"] != 0xFFFF           # a controller of the dynamic model was made
    assert "destroyed (0)" in out["log"]


def test_rpc_server_answers_nvmf_get_stats_and_its_counters_move_with_io(pyverbs_host) -> None:
    check_stats_move_with_io(pyverbs_host("stats"))


def test_two_targets_in_one_process_both_progress(pyverbs_host) -> None:
    out = pyverbs_host("two_targets")
    assert out["first"] == {"cid": 11, "status": 0}
    assert out["second"] == {"cid": 11, "status": 0}
    assert out["second_stats"] == 1


def test_rpc_server_speaks_json_rpc_2(pyverbs_host) -> None:
    """JSON-RPC 2.0 (section 5.1 error codes): a result for nvmf_get_stats, -32601 for a
    method it does not serve, -32600 for a request that is not JSON-RPC 2.0."""
    ok, unknown, invalid = pyverbs_host("rpc")["answers"]
    assert ok["id"] == 1 and "poll_groups" in ok["result"]
    assert unknown == {"jsonrpc": "2.0", "id": 2,
                       "error": {"code": -32601, "message": "Method not found"}}
    assert invalid["error"]["code"] == -32600 and invalid["id"] == 3
