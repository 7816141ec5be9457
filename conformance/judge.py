"""Judge one target with the gate's machines: one command for scripts and release engineers.

    python -m conformance.judge --target builtin|spdk [--spdk-src DIR]
                                [--profile ci|nightly] [--machines NAME,...]
                                [--defects NAME,...] [--max-examples N]
                                [--shrink-seconds S] [--jobs N] [--timeout S]

Runs the gate's machines (``ContentionMachine``, ``TransportMachine``, ``FaultMachine``,
``StarvationMachine`` of
``conformance/test_gate.py``) and the ERR-1 and CONN-1 drivers (``ERR``:
``conformance/test_err.py``, ``CONN``: ``conformance/test_conn.py``) in one pytest run
against the target selected (``--nrt-target``), pytest's own output going to stderr as the
progress.  A small plugin (:mod:`conformance.judge_plugin`) records every property violation
as it is raised, how each property is judged for the target (white-box, black-box, not
judged: :mod:`conformance.judging`) and each failing test's shrunk reproducer.

Prints one line per property - PASS, FAIL or NOT JUDGED with why - then, for each failed
property, its first failing example's reproducer (the ``state = ...`` and rule lines
Hypothesis printed; paste them after ``from conformance.reproduce import *``), and as its
last line one JSON object::

    {"target": ..., "target_commit": ..., "properties": {ID: "pass"|"fail"|"not judged"},
     "findings": [{"property", "message", "reproducer_steps", "seconds_to_first"}]}

``target_commit`` is the SPDK tree's commit (its COMMIT file, else its git HEAD) or this
checkout's HEAD for the built-in target; ``seconds_to_first`` counts from the start of the
run to the first violation of the property; ``reproducer_steps`` is the number of rule
steps of the shrunk reproducer (0 where the failing test is not a state machine, or where
the property was violated only while another one's failure was being shrunk).

A property passes when it was judged (white-box or black-box) and never violated.  CRASH-1
fails when the target kills the run (a signal, a dead worker) or it exceeds ``--timeout``.

Exit status: 0 when every property judged passed, 1 if any failed, 2 on a usage or build
error or when a test ended in an error that is not a property violation.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from conformance import judging
from conformance.judging import NOT_JUDGED, PROPERTIES

ROOT = Path(__file__).resolve().parent.parent
GATE_TEST = "conformance/test_gate.py::test_machine_holds_every_property"
#: What ``--machines`` selects: the gate's machines and the two drivers' test files.
MACHINES: dict[str, str] = {
    "ContentionMachine": f"{GATE_TEST}[ContentionMachine]",
    "TransportMachine": f"{GATE_TEST}[TransportMachine]",
    "FaultMachine": f"{GATE_TEST}[FaultMachine]",
    "StarvationMachine": f"{GATE_TEST}[StarvationMachine]",
    "ERR": "conformance/test_err.py",
    "CONN": "conformance/test_conn.py",
}
#: A rule call in Hypothesis's printed reproducer (invariants and teardown are not steps).
STEP_LINE = re.compile(r"^\s*state\.(?!step_invariants\b|teardown\b)\w+\(", re.MULTILINE)
PASS, FAIL = "pass", "fail"


class UsageError(Exception):
    """The run cannot start or cannot be judged (exit status 2)."""


@dataclass
class Verdict:
    status: str                        # pass, fail, not judged
    why: str = ""
    finding: dict[str, Any] | None = None
    reproducer: str = ""
    nodeid: str = ""


@dataclass
class Run:
    """What the plugin's events say about one pytest run."""

    judged: dict[str, dict[str, Any]] = field(default_factory=dict)
    violations: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    failed: list[dict[str, Any]] = field(default_factory=list)
    crashed: list[dict[str, Any]] = field(default_factory=list)
    finished: int | None = None

    @classmethod
    def read(cls, path: Path) -> Run:
        run = cls()
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except OSError:
            lines = []
        for line in lines:
            try:
                e = json.loads(line)
            except json.JSONDecodeError:
                continue   # a line cut short by a dying process
            kind = e.get("event")
            if kind == "judged":
                run.judged[e["property"]] = e
            elif kind == "violation":
                run.violations.setdefault(e["property"], []).append(e)
            elif kind == "failed":
                run.failed.append(e)
            elif kind == "crashed":
                run.crashed.append(e)
            elif kind == "finished":
                run.finished = int(e["exitstatus"])
        return run


def reproducer_lines(notes: str) -> str:
    """The part of Hypothesis's notes to replay: a state machine's ``state = ...`` through
    ``state.teardown()`` (and the ``@reproduce_failure`` line); otherwise the notes."""
    lines = notes.splitlines()
    start = next((i for i, ln in enumerate(lines) if ln.startswith("state = ")), None)
    if start is None:
        return notes.strip()
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("state.teardown()")),
               len(lines) - 1)
    keep = lines[start:end + 1]
    # Hypothesis's hints stay as comments, so the text is Python a person can paste
    hint = judging.replay_hint(lines)
    keep += [f"# inside pytest: {h}" for h in (hint, *(ln for ln in lines
                                                        if ln.startswith("@seed"))) if h]
    return "\n".join(keep)


def reproducer_steps(notes: str) -> int:
    return len(STEP_LINE.findall(reproducer_lines(notes)))


def verdicts(run: Run, returncode: int, timed_out: float | None,
             selected: list[str]) -> dict[str, Verdict]:
    """Per property: pass, fail or not judged, from the run's events and how it ended."""
    out: dict[str, Verdict] = {}
    errors = [f for f in run.failed if f["property"] is None]
    crash = None
    if timed_out is not None:
        crash = f"CRASH-1: the run exceeded {timed_out:.0f} s (a hang?)"
    elif returncode < 0:
        name = signal.Signals(-returncode).name if -returncode in signal.valid_signals() \
            else str(-returncode)
        crash = f"CRASH-1: the run was killed by {name}"
    elif run.crashed:
        crash = f"CRASH-1: {run.crashed[0]['message'].splitlines()[0]}"
    ended = run.finished is not None and crash is None
    for prop in PROPERTIES:
        seen = run.violations.get(prop, [])
        if prop == "CRASH-1" and crash is not None:
            finish = {"property": prop, "message": crash, "reproducer_steps": 0,
                      "seconds_to_first": None}
            out[prop] = Verdict(FAIL, crash, finish)
            continue
        if seen:
            first = min(seen, key=lambda v: v["seconds"])
            shrunk = next((f for f in run.failed if f["property"] == prop), None)
            message = (shrunk or first)["message"]
            notes = shrunk["notes"] if shrunk else ""
            finding = {"property": prop, "message": message,
                       "reproducer_steps": reproducer_steps(notes) if notes else 0,
                       "seconds_to_first": first["seconds"]}
            out[prop] = Verdict(FAIL, message.splitlines()[0], finding,
                                reproducer_lines(notes) if notes else "",
                                (shrunk or first)["nodeid"])
            continue
        broken = [f for f in errors if prop in f["specs"]]
        if broken:
            out[prop] = Verdict(NOT_JUDGED, f"{broken[0]['nodeid']} ended in an error: "
                                            f"{broken[0]['message'].splitlines()[0]}")
            continue
        j = run.judged.get(prop)
        if j is None:
            why = ("the run ended before it was judged" if not ended else
                   f"not run: none of the machines selected ({', '.join(selected)}) judges it")
            out[prop] = Verdict(NOT_JUDGED, why)
        elif j["mode"] == NOT_JUDGED:
            out[prop] = Verdict(NOT_JUDGED, j["why"])
        elif not ended:
            out[prop] = Verdict(NOT_JUDGED, "the run ended before its tests finished")
        else:
            out[prop] = Verdict(PASS, f"{j['mode']}: {j['why']}")
    return out


def _parse(argv: list[str] | None) -> argparse.Namespace:
    from impl.backends import TARGETS

    ap = argparse.ArgumentParser(prog="python -m conformance.judge",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--target", choices=TARGETS, default="builtin")
    ap.add_argument("--spdk-src", metavar="DIR", help="the SPDK tree (for --target spdk)")
    ap.add_argument("--profile", choices=("ci", "nightly"), default="ci")
    ap.add_argument("--machines", metavar="NAME,...",
                    help=f"a subset of {', '.join(MACHINES)} (default: all)")
    ap.add_argument("--defects", metavar="NAME,...",
                    default=os.environ.get("NRT_DEFECTS") or None,
                    help="defect switches to build the target with (default: NRT_DEFECTS; a "
                         "target declaring DEFECTS only)")
    ap.add_argument("--max-examples", type=int, metavar="N",
                    help="at most N examples per test (a quick look; default: the profile's)")
    ap.add_argument("--shrink-seconds", type=float, default=60.0, metavar="S",
                    help="shrinking budget per failure (default 60)")
    ap.add_argument("--jobs", type=int, default=2, metavar="N",
                    help="pytest-xdist workers (default 2; 1 runs in one process)")
    ap.add_argument("--timeout", type=float, default=3600.0, metavar="S",
                    help="seconds before the run counts as hung (CRASH-1)")
    ap.add_argument("--json", type=Path, metavar="FILE", help="also write the JSON here")
    args = ap.parse_args(argv)
    names = [n.strip() for n in (args.machines or ",".join(MACHINES)).split(",") if n.strip()]
    unknown = [n for n in names if n not in MACHINES]
    if unknown or not names:
        ap.error(f"unknown machine(s) {', '.join(unknown) or '(none given)'}; known: "
                 f"{', '.join(MACHINES)}")
    args.machines = names
    if args.target == "spdk" and not args.spdk_src:
        ap.error("--target spdk needs --spdk-src DIR")
    if args.max_examples is not None and args.max_examples < 1:
        ap.error("--max-examples must be at least 1")
    return args


def _target(args: argparse.Namespace) -> tuple[Any, Any]:
    """The backend (built if need be) and its description; UsageError if neither can be had."""
    try:
        return judging.load_target(args.target, args.spdk_src, args.defects)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


def _pytest_command(args: argparse.Namespace) -> list[str]:
    cmd = [sys.executable, "-m", "pytest", "-p", "conformance.judge_plugin",
           "-p", "no:cacheprovider", "-q", "-rfE", "--nrt-target", args.target,
           "--nrt-profile", args.profile]
    if args.spdk_src:
        cmd += ["--nrt-spdk-src", str(Path(args.spdk_src).resolve())]
    if args.defects:
        cmd += ["--nrt-defects", args.defects]
    if args.jobs > 1:
        cmd += ["-n", str(args.jobs)]
    return cmd + [MACHINES[m] for m in args.machines]


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    try:
        backend, desc = _target(args)
    except UsageError as exc:
        print(f"judge: {exc}", file=sys.stderr)
        return 2
    env = dict(os.environ)
    env.pop("NRT_DEFECTS", None)   # --defects (NRT_DEFECTS by default) goes as pytest's option
    if args.max_examples is not None:
        env["NRT_MAX_EXAMPLES"] = str(args.max_examples)
    env["NRT_JUDGE_SHRINK_SECONDS"] = str(args.shrink_seconds)
    cmd = _pytest_command(args)
    print(f"judge: {desc.label} ({args.target}, commit {backend.commit or 'unknown'}), "
          f"profile {args.profile}, machines {', '.join(args.machines)}", file=sys.stderr)
    print(f"judge: {' '.join(cmd)}", file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory(prefix="nrt-judge-") as tmp:
        events = Path(tmp) / "events.jsonl"
        env["NRT_JUDGE_EVENTS"] = str(events)
        env["NRT_JUDGE_START"] = repr(time.time())
        timed_out = None
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=sys.stderr, stderr=sys.stderr,
                                start_new_session=True)
        try:
            rc = proc.wait(timeout=args.timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            rc = proc.wait()
            timed_out = args.timeout
        run = Run.read(events)
    if timed_out is None and rc in (2, 3, 4, 5):   # interrupted, internal, usage, nothing
        print(f"judge: pytest could not run the machines (exit status {rc}; see above)",
              file=sys.stderr)
        return 2
    results = verdicts(run, rc, timed_out, args.machines)
    return report(args, backend, desc, run, results)


def report(args: argparse.Namespace, backend: Any, desc: Any, run: Run,
           results: dict[str, Verdict]) -> int:
    out = sys.stdout
    print(f"\n{desc.label}: {len(PROPERTIES)} properties", file=out)
    for prop, v in results.items():
        print(f"{prop:<8} {v.status.upper():<10} {v.why}", file=out)
    for prop, v in results.items():
        if v.status == FAIL and v.reproducer:
            print(f"\n--- {prop}: first failing example ({v.nodeid}); paste into "
                  f"`python` at the checkout's root", file=out)
            print("from conformance.reproduce import *", file=out)
            spdk_src = str(Path(args.spdk_src).resolve()) if args.spdk_src else None
            print(judging.replay_call(args.target, backend.commit, args.defects or "",
                                      args.profile, spdk_src), file=out)
            print(v.reproducer, file=out)
    errors = [f for f in run.failed if f["property"] is None]
    for e in errors:
        print(f"\nERROR {e['nodeid']} ({e['when']}): {e['message'].splitlines()[0]}", file=out)
    line = {"target": desc.name, "target_commit": backend.commit,
            "properties": {p: v.status for p, v in results.items()},
            "findings": [v.finding for v in results.values() if v.finding is not None]}
    text = json.dumps(line)
    if args.json:
        args.json.write_text(text + "\n", encoding="utf-8")
    print(text, file=out, flush=True)
    if any(v.status == FAIL for v in results.values()):
        return 1
    return 2 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
