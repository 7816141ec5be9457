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
from pyverbs.cmid import CMID, AddrInfo, CMEvent, CMEventChannel, ConnParam
from pyverbs.qp import QPCap, QPInitAttr

from impl import dropin
from impl.wire import (
    FCTYPE_PROPERTY_SET,
    Capsule,
    CmRequestPrivateData,
    ConnectData,
    ConnectSqe,
    Cqe,
    PropertySqe,
    connect_capsule,
    keyed,
)

HOSTNQN = "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-0000-0000-000000000001"


def connect(srv: dropin.Server, qid: int = 0, depth: int = 4) -> tuple[CMID, dict]:
    ai = AddrInfo(dst=srv.address, dst_service=str(srv.port), port_space=ce.RDMA_PS_TCP)
    cap = QPCap(max_send_wr=depth, max_recv_wr=depth, max_send_sge=1, max_recv_sge=1)
    cmid = CMID(creator=ai, qp_init_attr=QPInitAttr(qp_type=e.IBV_QPT_RC, cap=cap,
                                                    sq_sig_all=1))
    # the target may RDMA READ host memory (responder resources), never the reverse
    # (NVMe/RDMA 1.0 3.3: the host's initiator depth is 0)
    cp = ConnParam(resources=4, depth=0, data_len=CmRequestPrivateData.SIZE)
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


def fabrics_connect(cmid: CMID, srv: dropin.Server, qid: int, cid: int = 1,
                    cntlid: int = 0xFFFF) -> Cqe:
    capsule = connect_capsule(ConnectSqe(cid=cid, qid=qid, sqsize=3),
                              ConnectData.make(srv.subnqn, HOSTNQN, cntlid=cntlid))
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


def read_capsule(mr, cid: int, slba: int, block: int = 512) -> bytes:
    """An NVM Read of one block into the host region ``mr`` (a keyed SGL, NVMe/RDMA 1.0
    4.2: address, length, the region's rkey)."""
    return Capsule.io(0x02, cid, 1, slba, 0, [keyed(mr.buf, block, mr.rkey)]).encode()


def io_queue(srv: dropin.Server) -> tuple[CMID, CMID, int]:
    """An admin queue and one IO queue, each through RDMA CM and a Fabrics Connect."""
    admin, _ = connect(srv)
    a = fabrics_connect(admin, srv, qid=0)
    # CC.EN = 1 with 64-byte SQEs and 16-byte CQEs (NVMe base 2.0 3.1.3.5): IO queues
    # exist only on an enabled controller
    cc = 1 | 6 << 16 | 4 << 20
    en = exchange(admin, PropertySqe(FCTYPE_PROPERTY_SET, cid=3, ofst=0x14, value=cc).encode())
    if en.status != 0:
        raise RuntimeError(f"Property Set CC.EN failed: {en.status:#x}")
    io, _ = connect(srv, qid=1)
    cqe = fabrics_connect(io, srv, qid=1, cid=2, cntlid=a.cdw0 & 0xFFFF)
    return admin, io, cqe.status


def scenario_stats(srv: dropin.Server) -> dict:
    before = rpc_stats(srv.rpc_socket)
    admin, io, io_status = io_queue(srv)
    data = io.reg_write(4096)
    reads = [exchange(io, read_capsule(data, 10 + i, i)).status for i in range(8)]
    after = rpc_stats(srv.rpc_socket)
    io.disconnect()
    admin.disconnect()
    data.close()
    io.close()
    admin.close()
    return {"before": before, "after": after, "io": io_status, "reads": reads}


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


def scenario_failed_write(srv: dropin.Server) -> dict:
    """A Write whose data the target cannot read: 16 keyed descriptors (a last-segment list,
    NVMe base 2.0 4.3.2) into host memory registered without remote read, so every RDMA
    READ the target posts completes in error (IBV_WC_REM_ACCESS_ERR), the qpair goes to
    error and the command is completed abnormally."""
    _admin, io, io_status = io_queue(srv)
    data = io.reg_msgs(16 * 4096)            # local access only: no IBV_ACCESS_REMOTE_READ
    descs = [keyed(data.buf + i * 4096, 4096, data.rkey) for i in range(16)]
    capsule = Capsule.io(0x01, 30, 1, 0, 16 * 8 - 1, descs).encode()
    recv_mr = io.reg_msgs(64)
    io.post_recv(recv_mr, 64)
    send_mr = io.reg_msgs(len(capsule))
    send_mr.write(capsule, len(capsule))
    io.post_send(send_mr)
    swc = io.get_send_comp()
    srv.progress()
    srv.stop()
    return {"io": io_status, "send": int(swc.status)}


def _event(ch) -> tuple[int, bytes]:
    ev = CMEvent(ch)
    kind, data = ev.event_type, bytes(ev.private_data or b"")
    ev.ack_cm_event()
    return kind, data


def async_connect(srv: dropin.Server, ch, qid: int, hrqsize: int) -> tuple[CMID, list]:
    """The event-channel CM: resolve address and route, a QP, connect; every event."""
    cmid = CMID(creator=ch)
    ai = AddrInfo(dst=srv.address, dst_service=str(srv.port), port_space=ce.RDMA_PS_TCP)
    events = []
    cmid.resolve_addr(ai)
    events.append(_event(ch))
    cmid.resolve_route()
    events.append(_event(ch))
    cap = QPCap(max_send_wr=4, max_recv_wr=4, max_send_sge=1, max_recv_sge=1)
    cmid.create_qp(QPInitAttr(qp_type=e.IBV_QPT_RC, cap=cap, sq_sig_all=1))
    cp = ConnParam(resources=4, depth=0, data_len=CmRequestPrivateData.SIZE)
    cp.set_private_data(CmRequestPrivateData(qid=qid, hrqsize=hrqsize, hsqsize=3).encode())
    cmid.connect(cp)
    events.append(_event(ch))
    return cmid, events


def scenario_async_cm(srv: dropin.Server) -> dict:
    """A rejected connect (HRQSIZE 1: NVMe/RDMA 1.0 3.3 figure 6, STS 5 invalid HRQSIZE)
    with its reject private data; then an accepted one, its Connect, and the
    DISCONNECTED event of a host-side disconnect."""
    ch = CMEventChannel()
    bad, rejected = async_connect(srv, ch, qid=0, hrqsize=1)
    good, accepted = async_connect(srv, ch, qid=0, hrqsize=4)
    cqe = fabrics_connect(good, srv, qid=0)
    good.disconnect()
    disconnected = _event(ch)
    names = {int(getattr(ce, n)): n for n in dir(ce) if n.startswith("RDMA_CM_EVENT_")}

    def show(events: list) -> list:
        return [[names.get(k, str(k)), d.hex()] for k, d in events]

    out = {"rejected": show(rejected), "accepted": show(accepted),
           "disconnected": show([disconnected]), "connect_status": cqe.status}
    bad.close()
    good.close()
    ch.close()
    return out


def scenario_comp_channel(srv: dropin.Server) -> dict:
    """A host that sleeps on a completion channel instead of polling: its own CQ on the
    CM's device context, armed (ibv_req_notify_cq), then ibv_get_cq_event - which runs the
    fabric and the target until the response's completion raises the event."""
    from pyverbs.cq import CQ, CompChannel
    ch = CMEventChannel()
    cmid = CMID(creator=ch)
    cmid.resolve_addr(AddrInfo(dst=srv.address, dst_service=str(srv.port),
                               port_space=ce.RDMA_PS_TCP))
    _event(ch)
    cmid.resolve_route()
    _event(ch)
    cc = CompChannel(cmid.context)
    cq = CQ(cmid.context, 16, None, cc, 0)
    cap = QPCap(max_send_wr=4, max_recv_wr=4, max_send_sge=1, max_recv_sge=1)
    cmid.create_qp(QPInitAttr(qp_type=e.IBV_QPT_RC, scq=cq, rcq=cq, cap=cap, sq_sig_all=1))
    cp = ConnParam(resources=4, depth=0, data_len=CmRequestPrivateData.SIZE)
    cp.set_private_data(CmRequestPrivateData(qid=0, hrqsize=4, hsqsize=3).encode())
    cmid.connect(cp)
    established = _event(ch)[0] == ce.RDMA_CM_EVENT_ESTABLISHED
    recv_mr = cmid.reg_msgs(64)
    cmid.post_recv(recv_mr, 64)
    capsule = connect_capsule(ConnectSqe(cid=5, qid=0, sqsize=3),
                              ConnectData.make(srv.subnqn, HOSTNQN)).encode()
    send_mr = cmid.reg_msgs(len(capsule))
    send_mr.write(capsule, len(capsule))
    seen: list = []
    events = 0
    cq.req_notify()
    cmid.post_send(send_mr)
    while len(seen) < 2 and events < 4:
        cc.get_cq_event(cq)           # the verbs pattern: wait, ack, re-arm, then drain
        events += 1
        cq.ack_events(1)
        cq.req_notify()
        n, wcs = cq.poll(4)
        seen += [(int(w.opcode), int(w.status)) for w in wcs[:n]]
    cqe = Cqe.decode(recv_mr.read(16, 0))
    cmid.disconnect()
    for obj in (send_mr, recv_mr, cmid, cq, cc, ch):
        obj.close()
    return {"established": established, "events": events, "completions": seen,
            "cid": cqe.cid, "status": cqe.status}


def scenario_two_targets(srv: dropin.Server) -> dict:
    """A second target in the same process (another port, another subsystem): both make
    progress off the host's waits, each answering its own Connect."""
    other = dropin.serve(port=srv.port + 1, subnqn="nqn.2016-06.io.nrt:cnode2")
    try:
        out = {}
        for name, target in (("first", srv), ("second", other)):
            cmid, _ = connect(target)
            cqe = fabrics_connect(cmid, target, qid=0, cid=11)
            out[name] = {"cid": cqe.cid, "status": cqe.status}
            cmid.disconnect()
            cmid.close()
        out["second_stats"] = other.stats()["poll_groups"][0]["admin_qpairs"]
    finally:
        other.stop()
    return out


def scenario_rpc(srv: dropin.Server) -> dict:
    """JSON-RPC 2.0 on the socket: two requests in one write, an unknown method, a request
    without "jsonrpc": "2.0"."""
    import socket
    reqs = [{"jsonrpc": "2.0", "id": 1, "method": "nvmf_get_stats"},
            {"jsonrpc": "2.0", "id": 2, "method": "bdev_get_bdevs"},
            {"id": 3, "method": "nvmf_get_stats"}]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sk:
        sk.connect(srv.rpc_socket)
        sk.sendall((json.dumps(reqs[0]) + json.dumps(reqs[1])).encode())
        sk.sendall(json.dumps(reqs[2]).encode())
        dec, buf, answers = json.JSONDecoder(), "", []
        while len(answers) < 3:
            chunk = sk.recv(65536)
            if not chunk:
                break
            buf += chunk.decode()
            while buf.strip():
                try:
                    obj, end = dec.raw_decode(buf.lstrip())
                except json.JSONDecodeError:
                    break
                answers.append(obj)
                buf = buf.lstrip()[end:]
    return {"answers": answers}


SCENARIOS = {"rpc": scenario_rpc, "two_targets": scenario_two_targets, "comp_channel": scenario_comp_channel, "async_cm": scenario_async_cm, "failed_write": scenario_failed_write, "connect": scenario_connect, "stats": scenario_stats}


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
