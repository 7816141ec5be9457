"""Self-check: does the gate still catch every historical defect?

    python -m conformance.selfcheck [--switches a,b] [--jobs 2]

Runs the ``ci`` gate (the machines of :mod:`conformance.gate`) once against the correct
target and once per defect switch, each in its own process with ``NRT_DEFECTS`` set (the
target reads it; no check does).  With no switch the gate must pass; with each switch it
must fail through a generic property.  Prints a table — caught or not, the property that
caught it, seconds to the first violation, seconds in all (with shrinking), steps in the
shrunk reproducer — and, as its last line, one JSON object::

    {"clean_passed": bool, "switches": {name: {"caught": bool, "property": str,
     "seconds": float, "reproducer_steps": int}}}

Exit status 0 only if the clean run passed and every switch was caught.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

#: A rule call in Hypothesis's printed reproducer (invariants and teardown are not steps).
STEP_LINE = re.compile(r"^\s*state\.(?!step_invariants\b|teardown\b)\w+\(", re.M)


def reproducer_steps(notes: str) -> int:
    return len(STEP_LINE.findall(notes))


def run_child(switch: str, shrink: bool = True) -> dict[str, object]:
    """In this process: run the gate with ``switch`` (``""`` = none) and describe it."""
    os.environ["NRT_DEFECTS"] = switch
    from hypothesis import Phase, settings
    from hypothesis.stateful import run_state_machine_as_test

    from conformance import checks, profiles
    from conformance.gate import GATE_MACHINES

    profiles.load("ci")
    if not shrink:
        settings.register_profile("ci-no-shrink", settings.get_profile("ci"),
                                  phases=[Phase.explicit, Phase.generate])
        settings.load_profile("ci-no-shrink")
    start = time.monotonic()
    first: dict[str, object] = {}

    def record(v: checks.PropertyViolation) -> None:
        first.setdefault("seconds", round(time.monotonic() - start, 2))
        first.setdefault("property", v.spec)

    checks.VIOLATION_HOOKS.append(record)
    out: dict[str, object] = {"switch": switch, "caught": False, "property": "",
                              "seconds": 0.0, "total_seconds": 0.0, "reproducer_steps": 0,
                              "reproducer": ""}
    for machine in GATE_MACHINES:
        try:
            run_state_machine_as_test(machine)
        except BaseException as exc:  # noqa: BLE001 - any failure is the gate failing
            notes = "\n".join(getattr(exc, "__notes__", []))
            spec = exc.spec if isinstance(exc, checks.PropertyViolation) else (
                f"error: {type(exc).__name__}")
            out.update(caught=True, property=spec, reproducer=notes,
                       reproducer_steps=reproducer_steps(notes),
                       seconds=first.get("seconds", round(time.monotonic() - start, 2)),
                       message=str(exc).splitlines()[0][:300])
            break
    out["total_seconds"] = round(time.monotonic() - start, 2)
    return out


def _spawn(switch: str, timeout: float, shrink: bool) -> dict[str, object]:
    cmd = [sys.executable, "-m", "conformance.selfcheck", "--child", switch]
    if not shrink:
        cmd.append("--no-shrink")
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"switch": switch, "caught": False, "property": "timeout", "seconds": timeout,
                "total_seconds": timeout, "reproducer_steps": 0}
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        return {"switch": switch, "caught": False, "property": "harness crash",
                "seconds": 0.0, "total_seconds": 0.0, "reproducer_steps": 0,
                "message": (done.stderr or done.stdout)[-500:]}
    return json.loads(lines[-1])


def main(argv: list[str] | None = None) -> int:
    from impl import DEFECT_NAMES

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--switches", help="comma-separated subset (default: every switch)")
    ap.add_argument("--jobs", type=int, default=2, help="runs in parallel (default 2)")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per run")
    ap.add_argument("--no-shrink", action="store_true",
                    help="stop at the first failure (fast; reproducer not minimal)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child is not None:
        print(json.dumps(run_child(args.child, shrink=not args.no_shrink)))
        return 0
    switches = list(DEFECT_NAMES)
    if args.switches:
        switches = [s.strip() for s in args.switches.split(",") if s.strip()]
        unknown = sorted(set(switches) - set(DEFECT_NAMES))
        if unknown:
            ap.error(f"unknown switch(es) {', '.join(unknown)}; known: "
                     f"{', '.join(DEFECT_NAMES)}")
    runs = ["", *switches]
    print(f"self-check: the ci gate, clean and with {len(switches)} defect switch(es), "
          f"{args.jobs} at a time", file=sys.stderr, flush=True)
    results: dict[str, dict[str, object]] = {}
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = {s: pool.submit(_spawn, s, args.timeout, not args.no_shrink) for s in runs}
        for s, fut in futures.items():
            results[s] = fut.result()
            r = results[s]
            print(f"  done: {s or '(none)'}: "
                  f"{'caught by ' + str(r['property']) if r['caught'] else 'passed'} "
                  f"in {r['total_seconds']} s", file=sys.stderr, flush=True)
    clean = results[""]
    clean_passed = not clean["caught"]
    print(f"\n{'switch':<26} {'caught':<7} {'property':<10} {'first (s)':>9} "
          f"{'total (s)':>9} {'steps':>5}")
    print(f"{'(none)':<26} {'-':<7} {'pass' if clean_passed else 'FAIL':<10} "
          f"{'':>9} {clean['total_seconds']:>9} {'':>5}")
    if not clean_passed:
        print(f"  clean run failed: {clean.get('message', '')}")
        print(clean.get("reproducer", ""))
    summary: dict[str, dict[str, object]] = {}
    for s in switches:
        r = results[s]
        print(f"{s:<26} {'yes' if r['caught'] else 'NO':<7} {str(r['property']):<10} "
              f"{r['seconds']:>9} {r['total_seconds']:>9} {r['reproducer_steps']:>5}")
        summary[s] = {"caught": bool(r["caught"]), "property": str(r["property"]),
                      "seconds": float(r["seconds"]),  # type: ignore[arg-type]
                      "reproducer_steps": int(r["reproducer_steps"])}  # type: ignore[arg-type]
    ok = clean_passed and all(v["caught"] for v in summary.values())
    print(json.dumps({"clean_passed": clean_passed, "switches": summary}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
