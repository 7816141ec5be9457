"""Host commands/s on simverbs in drop-in mode: Debian's unmodified pyverbs, in this
process, against a target served in this process (``impl.dropin.serve``).

Run through ``python -m impl.dropin bench`` (which starts it with ``subprocess_env()``), or
directly in such an environment: ``python -m impl.dropin.bench [--commands N] [--target
builtin|spdk] [--spdk-src DIR]``.  Each command is one 512-byte NVM Read with a keyed SGL
into host memory: a receive posted for its response, the capsule SENT, both completions
reaped - the target runs in between, driven by autoprogress.  Prints one line of figures
(and JSON with ``--json``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def _host(srv, depth: int = 4):
    import pyverbs.cm_enums as ce
    import pyverbs.enums as e
    from pyverbs.cmid import CMID, AddrInfo, ConnParam
    from pyverbs.qp import QPCap, QPInitAttr

    from impl.wire import (
        FCTYPE_PROPERTY_SET,
        CmRequestPrivateData,
        ConnectData,
        ConnectSqe,
        Cqe,
        PropertySqe,
        connect_capsule,
    )

    def connect(qid: int):
        ai = AddrInfo(dst=srv.address, dst_service=str(srv.port), port_space=ce.RDMA_PS_TCP)
        cap = QPCap(max_send_wr=depth, max_recv_wr=depth, max_send_sge=1, max_recv_sge=1)
        cmid = CMID(creator=ai, qp_init_attr=QPInitAttr(qp_type=e.IBV_QPT_RC, cap=cap,
                                                        sq_sig_all=1))
        cp = ConnParam(resources=4, depth=0, data_len=CmRequestPrivateData.SIZE)
        cp.set_private_data(CmRequestPrivateData(qid=qid, hrqsize=depth,
                                                 hsqsize=depth - 1).encode())
        cmid.connect(cp)
        return cmid

    class Queue:
        def __init__(self, cmid):
            self.cmid = cmid
            self.recv = cmid.reg_msgs(64)
            self.send = cmid.reg_msgs(2048)

        def command(self, capsule: bytes) -> Cqe:
            self.cmid.post_recv(self.recv, 64)
            self.send.write(capsule, len(capsule))
            self.cmid.post_send(self.send, 0, len(capsule))
            if self.cmid.get_send_comp().status or self.cmid.get_recv_comp().status:
                raise RuntimeError("a completion failed")
            return Cqe.decode(self.recv.read(16, 0))

    hostnqn = "nqn.2014-08.org.nvmexpress:uuid:00000000-0000-0000-0000-0000000000b1"
    admin = Queue(connect(0))
    a = admin.command(connect_capsule(ConnectSqe(cid=1, qid=0, sqsize=depth - 1),
                                      ConnectData.make(srv.subnqn, hostnqn)).encode())
    en = admin.command(PropertySqe(FCTYPE_PROPERTY_SET, cid=2, ofst=0x14,
                                   value=1 | 6 << 16 | 4 << 20).encode())
    io = Queue(connect(1))
    c = io.command(connect_capsule(ConnectSqe(cid=3, qid=1, sqsize=depth - 1),
                                   ConnectData.make(srv.subnqn, hostnqn,
                                                    cntlid=a.cdw0 & 0xFFFF)).encode())
    if a.status or en.status or c.status:
        raise RuntimeError(f"queue setup failed: {a.status:#x} {en.status:#x} {c.status:#x}")
    return admin, io


def run(commands: int, target: str, spdk_src: str | None) -> dict:
    from impl import dropin
    from impl.wire import Capsule, keyed

    srv = dropin.serve(target=target, spdk_src=spdk_src)
    try:
        admin, io = _host(srv)
        data = io.cmid.reg_write(4096)
        capsule = Capsule.io(0x02, 9, 1, 0, 0, [keyed(data.buf, 512, data.rkey)]).encode()
        for _ in range(min(200, commands)):          # warm-up
            io.command(capsule)
        passes0 = srv.passes
        started = time.perf_counter()
        done = 0
        report_at = started + 2.0
        while done < commands:
            if io.command(capsule).status:
                raise RuntimeError("a Read failed")
            done += 1
            if done % 1000 == 0 and time.perf_counter() > report_at:
                print(f"  {done}/{commands} commands", file=sys.stderr)
                report_at += 2.0
        elapsed = time.perf_counter() - started
        passes = srv.passes - passes0
        del admin
    finally:
        srv.stop()
    return {"target": target, "commands": commands, "seconds": round(elapsed, 3),
            "commands_per_s": round(commands / elapsed), "us_per_command":
            round(elapsed / commands * 1e6, 1), "target_passes_per_command":
            round(passes / commands, 2)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m impl.dropin.bench",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--commands", type=int, default=20000, help="Reads to time (default 20000)")
    ap.add_argument("--target", choices=("builtin", "spdk"), default="builtin")
    ap.add_argument("--spdk-src", help="SPDK tree for --target spdk")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = ap.parse_args(argv)
    if args.commands < 1:
        ap.error("--commands must be >= 1")
    from impl import dropin
    if not dropin.active():
        print("error: libibverbs.so.1 is not simverbs here: run python -m impl.dropin bench",
              file=sys.stderr)
        return 2
    r = run(args.commands, args.target, args.spdk_src)
    if args.json:
        print(json.dumps(r))
    else:
        print(f"{r['target']}: {r['commands']} Reads in {r['seconds']} s: "
              f"{r['commands_per_s']} commands/s ({r['us_per_command']} us each, "
              f"{r['target_passes_per_command']} target passes each)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
