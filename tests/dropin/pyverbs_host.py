"""A child process's NVMe-oF host on Debian's unmodified pyverbs, against a target served in
the same process on simverbs' drop-in libibverbs (``impl.dropin.serve``).

Run with ``impl.dropin.subprocess_env()``: ``python tests/dropin/pyverbs_host.py SCENARIO
[--target builtin|spdk] [--spdk-src DIR]``.  Prints one JSON object (what the host saw) on
stdout; the test judges it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import pyverbs.cm_enums as ce
import pyverbs.device as pd
import pyverbs.enums as e
from pyverbs.cmid import CMID, AddrInfo, ConnParam
from pyverbs.qp import QPCap, QPInitAttr

from impl import dropin
from impl.wire import (
    Capsule,
    CmRequestPrivateData,
    ConnectData,
    ConnectSqe,
    Cqe,
    connect_capsule,
)

HOSTNQN = "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-0000-0000-000000000001"


def connect(srv: dropin.Server, qid: int = 0, depth: int = 4) -> tuple[CMID, dict]:
    ai = AddrInfo(dst=srv.address, dst_service=str(srv.port), port_space=ce.RDMA_PS_TCP)
    cap = QPCap(max_send_wr=depth, max_recv_wr=depth, max_send_sge=1, max_recv_sge=1)
    cmid = CMID(creator=ai, qp_init_attr=QPInitAttr(qp_type=e.IBV_QPT_RC, cap=cap,
                                                    sq_sig_all=1))
    cp = ConnParam(resources=4, depth=4, data_len=CmRequestPrivateData.SIZE)
    cp.set_private_data(CmRequestPrivateData(qid=qid, hrqsize=depth, hsqsize=depth - 1)
                        .encode())
    cmid.connect(cp)
    return cmid, {"connected": True}


def exchange(cmid: CMID, capsule: bytes) -> Cqe:
    """One command: a receive for its response, the capsule as a SEND, both completions."""
    recv_mr = cmid.reg_msgs(64)
    cmid.post_recv(recv_mr, 64)
    send_mr = cmid.reg_msgs(len(capsule))
    send_mr.write(capsule, len(capsule))
    cmid.post_send(send_mr)
    swc = cmid.get_send_comp()
    rwc = cmid.get_recv_comp()
    if swc.status != e.IBV_WC_SUCCESS or rwc.status != e.IBV_WC_SUCCESS:
        raise RuntimeError(f"completion status send {swc.status} recv {rwc.status}")
    cqe = Cqe.decode(recv_mr.read(16, 0))
    send_mr.close()
    recv_mr.close()
    return cqe


def fabrics_connect(cmid: CMID, srv: dropin.Server, qid: int, cid: int = 1) -> Cqe:
    capsule = connect_capsule(ConnectSqe(cid=cid, qid=qid, sqsize=3),
                              ConnectData.make(srv.subnqn, HOSTNQN))
    return exchange(cmid, capsule.encode())


def scenario_connect(srv: dropin.Server) -> dict:
    out: dict = {"active": dropin.active()}
    devs = pd.get_device_list()
    out["devices"] = [d.name.decode() for d in devs]
    ctx = pd.Context(name=out["devices"][0])
    out["port_state"] = int(ctx.query_port(1).state)
    cmid, _ = connect(srv)
    cqe = fabrics_connect(cmid, srv, qid=0)
    out.update(cid=cqe.cid, status=cqe.status, cntlid=cqe.cdw0 & 0xFFFF, sqid=cqe.sqid)
    cmid.disconnect()
    cmid.close()
    ctx.close()
    return out


def scenario_stats(srv: dropin.Server) -> dict:
    before = srv.stats()
    cmid, _ = connect(srv)
    admin = fabrics_connect(cmid, srv, qid=0)
    io, _ = connect(srv, qid=1)
    cqe = fabrics_connect(io, srv, qid=1, cid=2)
    reads = []
    for i in range(8):
        reads.append(exchange(io, Capsule.io(0x02, 10 + i, 1, i, 0).encode()).status)
    after = rpc_stats(srv.rpc_socket)
    io.disconnect()
    cmid.disconnect()
    io.close()
    cmid.close()
    return {"before": before, "after": after, "admin": admin.status, "io": cqe.status,
            "reads": reads}


def rpc_stats(path: str) -> dict:
    import socket
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(path)
        s.sendall(json.dumps({"jsonrpc": "2.0", "id": 7, "method": "nvmf_get_stats"}).encode())
        buf = b""
        dec = json.JSONDecoder()
        while True:
            chunk = s.recv(65536)
            if not chunk:
                raise RuntimeError("the RPC server closed without an answer")
            buf += chunk
            try:
                return dec.raw_decode(buf.decode())[0]
            except json.JSONDecodeError:
                continue


SCENARIOS = {"connect": scenario_connect, "stats": scenario_stats}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", choices=sorted(SCENARIOS))
    ap.add_argument("--target", default="builtin")
    ap.add_argument("--spdk-src")
    args = ap.parse_args()
    srv = dropin.serve(target=args.target, spdk_src=args.spdk_src)
    try:
        out = SCENARIOS[args.scenario](srv)
    finally:
        srv.stop()
    out["log"] = Path(srv.log_path).read_text()
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
