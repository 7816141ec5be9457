"""The nightly stress job: the gate's machines at field scale for a time budget.

    python -m stress.nightly --minutes N [--target builtin|spdk] [--spdk-src DIR]
                             [--machines A,B] [--jobs N|auto] [--seed S] [--db DIR]
                             [--out DIR] [--scale field|ci] [--defects NAME,...]

Runs ``stress/test_nightly.py`` in one pytest run (``pytest -n JOBS``, every core with
``--jobs auto``) under the ``nightly`` profile, at field scale (``strategies/scale.py``:
up to 32 subsystems, 16 poll groups, queue depth 128, 1 MiB IO through 16 descriptors,
several controllers per subsystem with admin qpairs apart from their IO qpairs), against
the target selected.  The run's seed is printed first (``--seed`` replays it: the same
rounds draw the same examples); progress - examples, steps and IOs so far per machine,
time left - goes to stderr every few seconds; pytest's own output goes to
``OUT/pytest.log``.

The budget is wall time from the start of the command: every machine gets an equal share
and stops generating when it is spent (see ``stress/test_nightly.py``), so the run ends
about one example after ``--minutes``, or later only by the time a finding takes to shrink
(``--shrink-seconds``, default 60).

Every failing example is stored in the nightly example database (``--db``, default
``.hypothesis/nightly``, or ``NRT_NIGHTLY_DB``; ``conformance/profiles.py`` says how the
ci gate replays it and how a CI system keeps it).

Written to ``--out`` (default ``reports/stress/``): ``figures.json`` (the JSON below),
``pytest.log``, ``hypothesis-statistics.txt`` (what ``--hypothesis-show-statistics``
prints, for every round of every machine: a round the budget interrupted has none),
``hypothesis/observed/*.jsonl`` (Hypothesis's observability output, one line per test
case), ``parts/`` (each shard's figures) and ``progress/``.  Each shard also attaches its
figures to its test's report (``reports.attach.figures``: Allure's ``stress-figures.json``
with ``--alluredir``).

The last stdout line is one JSON object: ``seed``, ``minutes``, ``target``,
``target_commit``, ``scale``, ``jobs``, ``elapsed_s``, ``overrun_s``, ``examples``,
``steps``, ``ios``, ``io_per_s``, ``io_bytes``, ``faults`` (by kind), ``findings`` (each
with ``machine``, ``property``, ``message``, ``reproducer``, ``seed``, ``round_seed``),
``figures`` (everything :mod:`conformance.figures` counts, merged) and ``machines`` (the
same per machine).  Exit status 0 without findings, 1 with any, 2 on a usage or build
error or when the pytest run could not run the machines.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TEST = "stress/test_nightly.py"
DEFAULT_MINUTES = 5.0
DEFAULT_OUT = ROOT / "reports" / "stress"
DEADLINE_ENV = "NRT_NIGHTLY_DEADLINE"
SEED_ENV = "NRT_NIGHTLY_SEED"
SHRINK_ENV = "NRT_NIGHTLY_SHRINK_SECONDS"
#: Examples per round; the budget check inside a round ends it early.  Small on purpose:
#: Hypothesis spends the first tenth of a run's max_examples (up to 50) on short examples,
#: which for a state machine means its simplest step again and again (the rule with the
#: fewest arguments that may run: a restart at ci scale, an admin probe at field scale,
#: where a restart needs IO in flight); a round of 20 has about three of them.
ROUND_EXAMPLES = 20
#: Seconds between progress lines (and, at most, between a shard's progress writes).
PROGRESS_EVERY = 10.0


@dataclass(frozen=True)
class NightlyRun:
    deadline: float
    seed: int
    machines: tuple[type, ...]
    out: Path


def select_machines(names: str | None) -> tuple[type, ...]:
    """The gate's machines named in ``names`` (comma-separated; None: all of them)."""
    from conformance.gate import GATE_MACHINES

    known = {m.__name__: m for m in GATE_MACHINES}
    if not names:
        return GATE_MACHINES
    picked = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in picked if n not in known]
    if unknown or not picked:
        raise ValueError(f"unknown machine(s) {', '.join(unknown) or '(none given)'}; "
                         f"known: {', '.join(known)}")
    return tuple(known[n] for n in dict.fromkeys(picked))


def round_seed(run_seed: int, machine: str, round_no: int) -> int:
    """The seed of one round: the same run seed gives every machine the same rounds."""
    digest = hashlib.sha256(f"{run_seed}:{machine}:{round_no}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _leaves(exc: BaseException) -> list[BaseException]:
    inner = getattr(exc, "exceptions", None)
    if not inner:
        return [exc]
    return [leaf for e in inner for leaf in _leaves(e)]


def findings_of(exc: BaseException, machine: str, run_seed: int, round_no: int,
                seed_of_round: int) -> list[dict[str, Any]]:
    """One finding per failure in ``exc`` (Hypothesis raises a group for several)."""
    from conformance import checks
    from conformance.judge import reproducer_lines

    out = []
    for leaf in _leaves(exc):
        notes = getattr(leaf, "__notes__", None) or getattr(exc, "__notes__", [])
        prop = leaf.spec if isinstance(leaf, checks.PropertyViolation) else None
        message = str(leaf) if prop else f"{type(leaf).__name__}: {leaf}"
        out.append({"machine": machine, "property": prop, "message": message[:2000],
                    "reproducer": ("from conformance.reproduce import *\n\n"
                                   + reproducer_lines("\n".join(notes))),
                    "seed": run_seed, "round": round_no, "round_seed": seed_of_round})
    return out


def write_part(out: Path, shard: str, part: dict[str, Any]) -> None:
    (out / "parts").mkdir(parents=True, exist_ok=True)
    (out / "parts" / f"{shard}.json").write_text(json.dumps(part, indent=1) + "\n",
                                                  encoding="utf-8")


class Progress:
    """A shard's progress file (``OUT/progress/SHARD.json``): per machine, the figures of
    its finished rounds plus those of the round running."""

    def __init__(self, out: Path, shard: str) -> None:
        self.path = out / "progress" / f"{shard}.json"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.done: dict[str, dict[str, Any]] = {}
        self.current = ""
        self.last_write = 0.0

    def machine(self, name: str, rounds: int, figures: dict[str, Any]) -> None:
        self.current = name
        self.done[name] = {"rounds": rounds, **{k: figures.get(k, 0) for k in (
            "examples", "steps", "ios")}}
        self._write(self.done)

    def tick(self, running: dict[str, Any]) -> None:
        if time.time() - self.last_write < PROGRESS_EVERY / 2 or not self.current:
            return
        now = dict(self.done)
        base = now.get(self.current, {})
        now[self.current] = {**base, **{k: base.get(k, 0) + running.get(k, 0)
                                        for k in ("examples", "steps", "ios")}}
        self._write(now)

    def _write(self, data: dict[str, Any]) -> None:
        self.last_write = time.time()
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        tmp.replace(self.path)


# ------------------------------------------------------------------------- the command


def _parse(argv: list[str] | None) -> argparse.Namespace:
    from impl.backends import TARGETS

    ap = argparse.ArgumentParser(prog="python -m stress.nightly",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=DEFAULT_MINUTES, metavar="N",
                    help=f"wall-time budget in minutes, fractions allowed (default "
                         f"{DEFAULT_MINUTES:g})")
    ap.add_argument("--target", choices=TARGETS, default="builtin")
    ap.add_argument("--spdk-src", metavar="DIR", help="the SPDK tree (for --target spdk)")
    ap.add_argument("--machines", metavar="A,B", help="a subset of the gate's machines "
                                                      "(default all)")
    ap.add_argument("--jobs", default="auto", metavar="N|auto",
                    help="pytest-xdist workers (default auto: every core; 1: one process)")
    ap.add_argument("--seed", type=int, metavar="S", help="the run's seed (default random)")
    ap.add_argument("--db", type=Path, metavar="DIR",
                    help="the nightly example database (default NRT_NIGHTLY_DB or "
                         ".hypothesis/nightly)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR",
                    help="figures and artifacts (default reports/stress)")
    ap.add_argument("--scale", choices=("field", "ci"), default="field",
                    help="the strategies' scale (default field)")
    ap.add_argument("--defects", metavar="NAME,...",
                    help="build the target with these defect switches (to prove the run "
                         "catches them; a target declaring DEFECTS only)")
    ap.add_argument("--shrink-seconds", type=float, default=60.0, metavar="S",
                    help="shrinking budget per finding (default 60)")
    args = ap.parse_args(argv)
    if not args.minutes > 0:
        ap.error(f"--minutes {args.minutes:g}: a positive number of minutes")
    if args.jobs == "auto":
        args.jobs = os.cpu_count() or 1
    else:
        try:
            args.jobs = int(args.jobs)
        except ValueError:
            ap.error(f"--jobs {args.jobs!r}: a number of workers or 'auto'")
        if args.jobs < 1:
            ap.error("--jobs must be at least 1")
    try:
        args.machine_names = [m.__name__ for m in select_machines(args.machines)]
    except ValueError as exc:
        ap.error(str(exc))
    if args.target == "spdk" and not args.spdk_src:
        ap.error("--target spdk needs --spdk-src DIR")
    if args.seed is None:
        import random

        args.seed = random.SystemRandom().randrange(1 << 32)
    return args


def _target(args: argparse.Namespace) -> tuple[Any, Any]:
    """The backend (built if need be) and its description; ValueError if not to be had."""
    from conformance import judging

    return judging.load_target(args.target, args.spdk_src, args.defects)


def pytest_command(args: argparse.Namespace) -> list[str]:
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfE",
           "--hypothesis-show-statistics", "--nrt-profile", "nightly",
           "--nrt-scale", args.scale, "--nrt-target", args.target,
           "--nrt-minutes", repr(args.minutes), "--nrt-seed", str(args.seed),
           "--nrt-machines", ",".join(args.machine_names), "--nrt-out", str(args.out)]
    if args.spdk_src:
        cmd += ["--nrt-spdk-src", str(Path(args.spdk_src).resolve())]
    if args.db:
        cmd += ["--nrt-nightly-db", str(args.db.resolve())]
    if args.defects:
        cmd += ["--nrt-defects", args.defects]
    if args.jobs > 1:
        cmd += ["-n", str(min(args.jobs, len(args.machine_names)))]
    return [*cmd, TEST]


def _progress_line(out: Path, deadline: float) -> str:
    machines: dict[str, dict[str, Any]] = {}
    for p in sorted((out / "progress").glob("*.json")):
        try:
            machines.update(json.loads(p.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError):
            continue
    left = max(0, int(deadline - time.time()))
    parts = [f"{n} {m.get('examples', 0)} ex {m.get('steps', 0)} steps {m.get('ios', 0)} IOs"
             for n, m in sorted(machines.items())]
    return f"nightly: {left // 60}:{left % 60:02d} left | " + (" | ".join(parts) or
                                                               "starting")


def _statistics(log: str) -> str:
    """The Hypothesis statistics section of pytest's output."""
    m = re.search(r"^=+ Hypothesis Statistics =+$", log, re.MULTILINE)
    if m is None:
        return ""
    rest = log[m.start():]
    end = re.search(r"^=+ (?!Hypothesis Statistics)", rest[1:], re.MULTILINE)
    return rest if end is None else rest[:end.start() + 1]


def read_parts(out: Path) -> list[dict[str, Any]]:
    parts = []
    for p in sorted((out / "parts").glob("*.json")):
        try:
            parts.append(json.loads(p.read_text(encoding="utf-8")))
        except (OSError, json.JSONDecodeError):
            continue
    return parts


def summary(args: argparse.Namespace, backend: Any, parts: Iterable[dict[str, Any]],
            elapsed: float, rc: int, log_tail: str, killed_after: float | None = None,
            ) -> dict[str, Any]:
    from conformance.figures import merge

    results = [r for p in parts for r in p["machines"]]
    figures = merge(r["figures"] for r in results)
    findings = [f for r in results for f in r["findings"]]
    if killed_after is not None:
        findings.append({"machine": None, "property": None,
                         "message": f"the run was stopped {killed_after:.0f} s after its "
                                    f"budget: a finding still shrinking, or a hang (machines "
                                    f"that finished are above; pytest.log has the rest)",
                         "reproducer": "", "seed": args.seed, "round": None,
                         "round_seed": None})
    elif rc not in (0, 1) or (rc == 1 and not findings):
        findings.append({"machine": None, "property": "CRASH-1" if rc < 0 else None,
                         "message": f"the nightly's pytest run ended with status {rc} "
                                    f"without a finding of its own: {log_tail[-1500:]}",
                         "reproducer": "", "seed": args.seed, "round": None,
                         "round_seed": None})
    busy = max((r["seconds"] for r in results), default=0.0) or elapsed
    budget = args.minutes * 60
    return {
        "seed": args.seed, "minutes": args.minutes, "target": args.target,
        "target_commit": getattr(backend, "commit", None), "scale": args.scale,
        "jobs": args.jobs, "machines_run": args.machine_names,
        "elapsed_s": round(elapsed, 2), "budget_s": round(budget, 2),
        "overrun_s": round(max(0.0, elapsed - budget), 2),
        "longest_example_s": max((r["longest_example_s"] for r in results), default=0.0),
        "examples": figures["examples"], "steps": figures["steps"], "ios": figures["ios"],
        "io_per_s": round(figures["ios"] / busy, 1) if busy else 0.0,
        "io_bytes": figures["io_bytes"], "faults": figures["faults"],
        "findings": findings, "figures": figures,
        "machines": {r["machine"]: {"rounds": r["rounds"], "seconds": r["seconds"],
                                    **r["figures"]} for r in results},
        "db": str(args.db.resolve()) if args.db else None, "out": str(args.out),
    }


def main(argv: list[str] | None = None) -> int:
    start = time.time()
    args = _parse(argv)
    args.out = args.out.resolve()
    print(f"nightly: seed {args.seed} (replay with --seed {args.seed}), {args.minutes:g} min, "
          f"scale {args.scale}, machines {', '.join(args.machine_names)}", file=sys.stderr,
          flush=True)
    try:
        backend, desc = _target(args)
    except ValueError as exc:
        print(f"nightly: {exc}", file=sys.stderr)
        return 2
    for sub in ("parts", "progress"):
        for p in (args.out / sub).glob("*.json"):
            p.unlink()
    args.out.mkdir(parents=True, exist_ok=True)
    deadline = start + args.minutes * 60
    env = dict(os.environ)
    env.pop("NRT_DEFECTS", None)   # --defects goes as pytest's option
    env[DEADLINE_ENV] = repr(deadline)
    env[SHRINK_ENV] = str(args.shrink_seconds)
    env["HYPOTHESIS_EXPERIMENTAL_OBSERVABILITY"] = "1"
    env["HYPOTHESIS_EXPERIMENTAL_OBSERVABILITY_NOCOVER"] = "1"   # coverage: slow on 3.11
    env["HYPOTHESIS_STORAGE_DIRECTORY"] = str(args.out / "hypothesis")
    cmd = pytest_command(args)
    print(f"nightly: {desc.label} ({args.target}, commit {backend.commit or 'unknown'}); "
          f"{' '.join(cmd)}", file=sys.stderr, flush=True)
    log_path = args.out / "pytest.log"
    grace = args.shrink_seconds + 120.0
    killed_after = None
    with log_path.open("w", encoding="utf-8") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            while True:
                try:
                    rc = proc.wait(timeout=min(PROGRESS_EVERY, max(1.0, args.minutes * 6)))
                    break
                except subprocess.TimeoutExpired:
                    print(_progress_line(args.out, deadline), file=sys.stderr, flush=True)
                    if time.time() > deadline + grace:
                        os.killpg(proc.pid, signal.SIGKILL)
                        rc = proc.wait()
                        killed_after = time.time() - deadline
                        break
        except KeyboardInterrupt:
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait()
            raise
    elapsed = time.time() - start
    text = log_path.read_text(encoding="utf-8", errors="replace")
    if rc in (2, 3, 4, 5):   # interrupted, internal error, usage error, nothing collected
        print(text[-3000:], file=sys.stderr)
        print(f"nightly: pytest could not run the machines (exit status {rc}; log "
              f"{log_path})", file=sys.stderr)
        return 2
    parts = read_parts(args.out)
    rounds = [r.get("statistics", "") for p in parts for r in p["machines"]]
    pytest_section = _statistics(text)   # only @given tests have one
    (args.out / "hypothesis-statistics.txt").write_text("\n".join(
        [*filter(None, rounds), *([pytest_section] if "during" in pytest_section else [])]),
        encoding="utf-8")
    line = summary(args, backend, parts, elapsed, rc, text, killed_after)
    body = json.dumps(line)
    (args.out / "figures.json").write_text(json.dumps(line, indent=1) + "\n", encoding="utf-8")
    print(_progress_line(args.out, deadline), file=sys.stderr)
    for f in line["findings"]:
        print(f"\nFINDING {f['machine']}: {f['property']}: {f['message'].splitlines()[0]}\n"
              f"{f['reproducer']}", file=sys.stderr)
    print(body, flush=True)
    return 1 if line["findings"] else 0


if __name__ == "__main__":
    sys.exit(main())
