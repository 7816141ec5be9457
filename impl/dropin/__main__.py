"""``python -m impl.dropin``: build the drop-in libraries, regenerate the ABI list, or
measure a host's command rate on them.

    python -m impl.dropin build [--out DIR] [--force]   # prints the library directory
    python -m impl.dropin abi [--write]                  # rdma-core's ABI from the system
    python -m impl.dropin bench [--commands N] [--target builtin|spdk] [--spdk-src DIR]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from impl.dropin import abi, build


def _build(args: argparse.Namespace) -> int:
    started = time.monotonic()
    try:
        out = build.build(args.out, force=args.force)
    except build.BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(out)
    print(f"({time.monotonic() - started:.2f} s)", file=sys.stderr)
    return 0


def _abi(args: argparse.Namespace) -> int:
    libs = abi.installed()
    if not libs:
        print(f"error: rdma-core's libraries are not installed in {abi.SYSTEM_LIBDIR}",
              file=sys.stderr)
        return 2
    text = abi.format_abi(abi.read_system(), " ".join(p.name for p in libs))
    if args.write:
        abi.ABI_FILE.write_text(text)
        print(f"wrote {abi.ABI_FILE}")
    else:
        sys.stdout.write(text)
    return 0


def _bench(args: argparse.Namespace) -> int:
    from impl import dropin
    cmd = [sys.executable, "-m", "impl.dropin.bench", "--commands", str(args.commands),
           "--target", args.target, *(["--json"] if args.json else [])]
    if args.spdk_src:
        cmd += ["--spdk-src", args.spdk_src]
    return subprocess.run(cmd, env=dropin.subprocess_env(), check=False).returncode


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m impl.dropin", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="build (cached) and print the library directory")
    b.add_argument("--out", help="output directory (default build/dropin)")
    b.add_argument("--force", action="store_true", help="rebuild even if the stamp matches")
    b.set_defaults(fn=_build)
    a = sub.add_parser("abi", help="rdma-core's sonames, versions and symbols, from the system")
    a.add_argument("--write", action="store_true", help=f"write {abi.ABI_FILE.name}")
    a.set_defaults(fn=_abi)
    c = sub.add_parser("bench", help="pyverbs host commands/s against a served target")
    c.add_argument("--commands", type=int, default=20000, help="commands to time (default 20000)")
    c.add_argument("--target", choices=("builtin", "spdk"), default="builtin")
    c.add_argument("--spdk-src", help="SPDK tree for --target spdk")
    c.add_argument("--json", action="store_true", help="print the figures as JSON")
    c.set_defaults(fn=_bench)
    args = ap.parse_args(argv)
    return int(args.fn(args))


if __name__ == "__main__":
    sys.exit(main())
