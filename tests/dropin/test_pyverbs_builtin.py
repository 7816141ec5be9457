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
