"""pyverbs on an event channel (rdma_create_id + rdma_resolve_addr / rdma_resolve_route +
rdma_create_qp + rdma_connect, events from rdma_get_cm_event): a rejection carries the
NVMe/RDMA reject private data (NVMe/RDMA 1.0 3.3 figure 6: RECFMT 0, STS 5 = invalid
HRQSIZE, for an HRQSIZE of 1), an acceptance the accept private data (figure 5: CRQSIZE),
and the host's rdma_disconnect yields DISCONNECTED."""

from __future__ import annotations

from impl.wire import CmAcceptPrivateData, CmRejectPrivateData


def test_event_channel_cm_reject_accept_disconnect(pyverbs_host) -> None:
    out = pyverbs_host("async_cm")
    kinds = [k for k, _ in out["rejected"]]
    assert kinds == ["RDMA_CM_EVENT_ADDR_RESOLVED", "RDMA_CM_EVENT_ROUTE_RESOLVED",
                     "RDMA_CM_EVENT_REJECTED"]
    rej = CmRejectPrivateData.decode(bytes.fromhex(out["rejected"][2][1])[:4])
    assert (rej.recfmt, rej.sts) == (0, 5), rej
    kinds = [k for k, _ in out["accepted"]]
    assert kinds[-1] == "RDMA_CM_EVENT_ESTABLISHED"
    acc = CmAcceptPrivateData.decode(bytes.fromhex(out["accepted"][2][1]), exact=False)
    assert (acc.recfmt, acc.crqsize) == (0, 4)
    assert out["connect_status"] == 0
    assert [k for k, _ in out["disconnected"]] == ["RDMA_CM_EVENT_DISCONNECTED"]


def test_host_sleeping_on_a_completion_channel_gets_its_completions(pyverbs_host) -> None:
    """Its own CQ with a completion channel: armed, the capsule posted, ibv_get_cq_event
    hands over the event and the CQ holds the SEND's and the response's completions."""
    out = pyverbs_host("comp_channel")
    assert out["established"] is True
    assert 1 <= out["events"] <= 2
    assert sorted(out["completions"]) == [[0, 0], [128, 0]]   # IBV_WC_SEND, IBV_WC_RECV
    assert (out["cid"], out["status"]) == (5, 0)
