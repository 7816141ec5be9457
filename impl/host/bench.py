"""Benchmark: host commands per second through each verbs binding, on simverbs.

Run ``python -m impl.host.bench [--commands N] [--binding cffi,pyverbs] [--target builtin]``.

The command re-runs itself under ``impl.dropin.subprocess_env()`` (so ``libibverbs.so.1``
is simverbs) when it is not already in such a process, serves the target in-process
(``impl.dropin.serve``), connects one controller per binding and times ``N`` commands of
each workload with ``time.perf_counter``: 512-byte reads at queue depth 1 (one keyed
descriptor) and at queue depth 8, and Flush at queue depth 1 (no data).  The host, the
bindings and the target all run in one process, so the figures are the cost of the
host's Python (capsule building, CQE parsing), the binding's calls, and the target's work
in simverbs together - a comparison of the bindings, not of any NIC.

The table goes to stdout, progress to stderr; the last stdout line is one JSON object with
``<binding>_<workload>`` commands/s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from impl.host import Controller, binding

WORKLOADS = ("read512_qd1", "read512_qd8", "flush_qd1")


def _run(c: Controller, workload: str, n: int) -> float:
    qid, nsid = min(c.io), min(c.namespaces)
    depth = 8 if workload.endswith("qd8") else 1
    op = "flush" if workload.startswith("flush") else "read"
    nlb = 0 if op == "flush" else 1
    t0 = time.perf_counter()
    done = 0
    inflight: list = []
    while done < n:
        while len(inflight) < depth and done + len(inflight) < n:
            inflight.append(c.start_io(qid, op, nsid, (done + len(inflight)) % 64, nlb))
        rsp, _ = c.finish_io(inflight.pop(0))
        if not rsp.ok:
            raise RuntimeError(f"{workload}: command answered {rsp.status:#x}")
        done += 1
    return n / (time.perf_counter() - t0)


def bench(bindings: list[str], n: int, target: str) -> dict[str, float]:
    from impl import dropin

    out: dict[str, float] = {}
    srv = dropin.serve(target=target, spdk_src=os.environ.get("NRT_SPDK_SRC") or None)
    try:
        for name in bindings:
            c = Controller(binding(name), srv.address, srv.port, srv.subnqn).connect()
            c.namespace(1)
            try:
                for w in WORKLOADS:
                    _run(c, w, max(n // 10, 10))   # warm-up
                    out[f"{name}_{w}"] = rate = _run(c, w, n)
                    print(f"{name:8} {w:12} {rate:10.0f} commands/s", file=sys.stderr)
            finally:
                c.disconnect()
    finally:
        srv.stop()
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m impl.host.bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--commands", type=int, default=2000, help="commands per workload")
    ap.add_argument("--binding", default="cffi,pyverbs",
                    help="comma-separated bindings to time (cffi, pyverbs)")
    ap.add_argument("--target", default="builtin", choices=("builtin", "spdk"),
                    help="the target served in-process (spdk: NRT_SPDK_SRC names the tree)")
    args = ap.parse_args(argv)
    if args.commands < 1:
        ap.error("--commands must be at least 1")
    names = [b.strip() for b in args.binding.split(",") if b.strip()]
    from impl import dropin

    if not dropin.active():
        env = dropin.subprocess_env()
        return subprocess.run([sys.executable, "-m", "impl.host.bench", *(argv or sys.argv[1:])],
                              env=env, check=False).returncode
    res = bench(names, args.commands, args.target)
    print(f"{'binding':8} {'workload':12} {'commands/s':>10}")
    for k, v in res.items():
        b, w = k.split("_", 1)
        print(f"{b:8} {w:12} {v:10.0f}")
    print(json.dumps({k: round(v) for k, v in res.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
