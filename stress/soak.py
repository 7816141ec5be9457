"""Soak: seeded lifecycles, IO and faults run entirely in C against a target behind nrt.h.

``python -m stress.soak --seconds N [--seed S] [--io-size BYTES] [--json FILE]``

builds the C driver (:mod:`stress.build`, cached) and runs it for the time budget.  Each
lifecycle draws valid transport options (the target's refusals are respected and counted),
ports, subsystems, namespaces and controllers (admin queue: Connect, CC.EN = 1; then IO
queues), then rounds of reads, writes and flushes (mostly ``--io-size`` bytes by one keyed
SGL, also descriptor lists in the capsule and in-capsule writes) under drawn
delivery/poll/block-device schedules, with faults (QP error, port down/up, post failure,
host disconnect, target-side qpair disconnect, remote access error, block device error,
destroy with IO in flight), then a graceful or abrupt teardown.

Checked continuously (after every round) and at every teardown, from what ``nrt.h``
exposes only: data-WR pool and shared buffers conserved (free + cached + held = capacity,
nothing held twice, capacity as configured), request slots and receive WRs of every qpair
conserved, no qpair above its read/send depth, every IO answered exactly once with success
or a status legal for what happened to it, every read returning what the last write
stored, teardown reaching quiescence, and the destroy report returning every WR and
buffer.

Progress goes to stderr about once a second; the seed is printed first.  The last line of
stdout is one JSON object (``ios``, ``ios_per_s``, ``ios_per_cpu_s``, ``seed``,
``violations``, lifecycles, faults by kind, depths seen, pool low-water marks, rounds to
quiescence...).  A violation names its seed and lifecycle index; ``--seed S --lifecycle K``
replays that lifecycle alone, exactly (the same seed gives the same event sequence, so the
same figures except timing), and a reproducer script with that command line is written
(its path printed, and listed under ``reproducers`` in the JSON).  A watchdog names the
lifecycle of a target that hangs (no new lifecycle for ``--hang-seconds``; the driver is
stopped) or crashes, as a HANG or CRASH violation with its reproducer.  Exit status: 0
clean, 1 a violation, 2 bad usage or a failed build.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from stress import build as soak_build

ROOT = Path(__file__).resolve().parent.parent
REPRO_DIR = ROOT / "build" / "soak" / "reproducers"


def defect_mask(names: str) -> int:
    """``"leak_remaining_wrs,pool_double_put"`` -> the NRT_DEFECT_* bit mask."""
    from impl.nvme import Defect

    mask = 0
    for name in filter(None, (n.strip() for n in names.split(","))):
        mask |= int(Defect.by_name(name))
    return mask


def driver_args(a: argparse.Namespace, mask: int) -> list[str]:
    """The C driver's command line for these options (everything it needs to replay)."""
    args = ["--seed", str(a.seed), "--io-size", str(a.io_size)]
    if a.lifecycle is not None:
        args += ["--lifecycle", str(a.lifecycle)]
    else:
        if a.lifecycles:
            args += ["--lifecycles", str(a.lifecycles)]
        if a.seconds is not None:
            args += ["--seconds", str(a.seconds)]
    if mask:
        args += ["--defects", str(mask)]
    if a.no_faults:
        args.append("--no-faults")
    if a.max_violations:
        args += ["--max-violations", str(a.max_violations)]
    if a.quiet:
        args.append("--quiet")
    return args


def replay_command(a: argparse.Namespace, lifecycle: int) -> list[str]:
    cmd = [sys.executable, "-m", "stress.soak", "--seed", str(a.seed), "--lifecycle",
           str(lifecycle), "--io-size", str(a.io_size)]
    if a.defects:
        cmd += ["--defects", a.defects]
    if a.no_faults:
        cmd.append("--no-faults")
    if a.target != "builtin":
        cmd += ["--target", a.target, "--spdk-src", str(a.spdk_src)]
    return cmd


def write_reproducer(a: argparse.Namespace, violation: dict[str, Any], exe: Path,
                     mask: int, directory: Path) -> Path:
    """A shell script that replays the violating lifecycle alone, exactly."""
    lc = int(violation["lifecycle"])
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"soak-seed{a.seed}-lifecycle{lc}.sh"
    direct = [str(exe), "--seed", str(a.seed), "--lifecycle", str(lc), "--io-size",
              str(a.io_size)]
    if mask:
        direct += ["--defects", str(mask)]
    if a.no_faults:
        direct.append("--no-faults")
    path.write_text(
        "#!/bin/sh\n"
        f"# soak violation {violation['check']} in lifecycle {lc} of seed {a.seed} "
        f"(round {violation['round']}):\n"
        f"#   {violation['message']}\n"
        "# Replays that lifecycle alone: the same calls in the same order, so the same\n"
        "# violation.  The C driver directly (same effect, no Python):\n"
        f"#   {shlex.join(direct)}\n"
        f"cd {shlex.quote(str(ROOT))} && exec {shlex.join(replay_command(a, lc))}\n")
    path.chmod(0o755)
    return path


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m stress.soak",
                                description=__doc__.split("\n")[0],
                                epilog="Checks, figures and replay: see the module docstring "
                                       "and the README's Soak section.")
    p.add_argument("--seconds", type=float, default=None,
                   help="time budget in seconds (default 10 unless --lifecycles or "
                        "--lifecycle is given)")
    p.add_argument("--seed", type=int, default=None,
                   help="run seed (default: drawn from the OS, and printed)")
    p.add_argument("--io-size", type=int, default=4096,
                   help="bytes per data IO: a multiple of 512 up to 1 MiB (default 4096)")
    p.add_argument("--json", metavar="FILE", help="also write the figures to FILE")
    p.add_argument("--lifecycles", type=int, default=None,
                   help="lifecycle budget: exactly this many (deterministic figures)")
    p.add_argument("--lifecycle", type=int, default=None, metavar="K",
                   help="replay lifecycle K of --seed alone")
    p.add_argument("--defects", default="",
                   help="comma-separated defect switches built into the target (names from "
                        "impl.DEFECT_NAMES), to see the soak catch them")
    p.add_argument("--no-faults", action="store_true",
                   help="IO only: no fault injection, every teardown graceful")
    p.add_argument("--max-violations", type=int, default=None,
                   help="stop after this many violations (default 1)")
    p.add_argument("--target", choices=soak_build.TARGETS, default="builtin",
                   help="target linked with the driver (default builtin; spdk needs "
                        "--spdk-src)")
    p.add_argument("--spdk-src", metavar="DIR", help="SPDK tree for --target spdk")
    p.add_argument("--reproducers", metavar="DIR", default=str(REPRO_DIR),
                   help=f"where reproducer scripts go (default {REPRO_DIR})")
    p.add_argument("--hang-seconds", type=float, default=60.0,
                   help="a lifecycle running this long is a hang: the driver is stopped and "
                        "the lifecycle reported (default 60; one normally takes milliseconds)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    a = p.parse_args(argv)
    if a.seconds is not None and a.seconds <= 0:
        p.error("--seconds must be positive")
    if a.hang_seconds <= 0:
        p.error("--hang-seconds must be positive")
    if a.io_size < 512 or a.io_size % 512 or a.io_size > 1 << 20:
        p.error("--io-size must be a multiple of 512 from 512 to 1048576")
    for name in ("lifecycles", "lifecycle", "max_violations"):
        v = getattr(a, name)
        if v is not None and v < 0:
            p.error(f"--{name.replace('_', '-')} must not be negative")
    if a.seed is None:
        a.seed = int.from_bytes(os.urandom(4), "little")
    elif a.seed < 0 or a.seed >= 1 << 64:
        p.error("--seed must be a 64-bit unsigned integer")
    if a.target == "spdk" and not a.spdk_src:
        p.error("--target spdk needs --spdk-src DIR")
    try:
        a.defect_mask = defect_mask(a.defects)
    except ValueError as exc:
        p.error(str(exc))
    return a


def running_lifecycle(status: Path) -> int | None:
    """The lifecycle index the driver last wrote to its status file."""
    try:
        text = status.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def watch(proc: subprocess.Popen[str], status: Path, hang_seconds: float) -> int | None:
    """Waits for the driver; returns the lifecycle it hung in (the driver then stopped), or
    None when it ended by itself."""
    seen, since = None, time.monotonic()
    while True:
        try:
            proc.wait(timeout=0.5)
            return None
        except subprocess.TimeoutExpired:
            pass
        now_at = running_lifecycle(status)
        if now_at != seen:
            seen, since = now_at, time.monotonic()
        elif time.monotonic() - since > hang_seconds:
            proc.kill()          # our own child, by its handle
            proc.wait()
            return seen if seen is not None else 0


def stalled_figures(a: argparse.Namespace, check: str, lifecycle: int,
                    message: str) -> dict[str, Any]:
    return {"seed": a.seed, "ios": 0, "ios_per_s": 0, "lifecycles": lifecycle,
            "violation_count": 1,
            "violations": [{"check": check, "lifecycle": lifecycle, "round": 0,
                            "lifecycle_seed": None, "message": message}]}


def run(a: argparse.Namespace) -> tuple[int, dict[str, Any]]:
    """Builds and runs the driver under the watchdog; returns its exit status and figures."""
    exe = soak_build.build(a.target, a.spdk_src)
    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        status = Path(tmp) / "status"
        cmd = [str(exe), *driver_args(a, a.defect_mask), "--status", str(status)]
        with tempfile.TemporaryFile("w+") as out:
            proc = subprocess.Popen(cmd, stdout=out, text=True)
            hung = watch(proc, status, a.hang_seconds)
            out.seek(0)
            lines = out.read().splitlines()
        at = running_lifecycle(status)
    cmd = cmd[:-2]
    if hung is not None:
        figures = stalled_figures(a, "HANG", hung, f"lifecycle {hung} ran more than "
                                  f"{a.hang_seconds:g} s: the target hung or looped; the "
                                  f"driver was stopped")
        status_code = 1
    elif proc.returncode < 0 or proc.returncode not in (0, 1) or not lines:
        lc = at if at is not None else 0
        figures = stalled_figures(a, "CRASH", lc, f"the driver ended with status "
                                  f"{proc.returncode} in lifecycle {lc} (a crash or an "
                                  f"abort in the target)")
        status_code = 1
    else:
        for line in lines[:-1]:
            print(line)
        figures = json.loads(lines[-1])
        status_code = proc.returncode
    figures["command"] = shlex.join(cmd)
    repros = []
    for v in figures.get("violations", []):
        path = write_reproducer(a, v, exe, a.defect_mask, Path(a.reproducers))
        print(f"soak: reproducer for lifecycle {v['lifecycle']}: {path}", file=sys.stderr)
        repros.append(str(path))
    figures["reproducers"] = repros
    return status_code, figures


def main(argv: Sequence[str] | None = None) -> int:
    a = parse_args(argv)
    try:
        status, figures = run(a)
    except (soak_build.BuildError, RuntimeError, ValueError) as exc:
        print(f"soak: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(figures)
    if a.json:
        Path(a.json).write_text(text + "\n")
    print(text, flush=True)
    return 1 if figures.get("violations") or status else 0


if __name__ == "__main__":
    sys.exit(main())
