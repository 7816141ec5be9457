"""Self-check: does the gate still catch every historical defect?

    python -m conformance.selfcheck [--switches a,b] [--no-shrink]
                                    [--shrink-seconds 60]

Runs the ``ci`` gate (the machines of :mod:`conformance.gate`, side by side in one process
each, as ``pytest -n 2`` runs them) once against the correct target and once per defect
switch, with ``NRT_DEFECTS`` set (the target reads it; no check does).  With no switch the gate must pass; with each switch it
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

#: A rule call in Hypothesis's printed reproducer (invariants and teardown are not steps).
STEP_LINE = re.compile(r"^\s*state\.(?!step_invariants\b|teardown\b)\w+\(", re.MULTILINE)


def reproducer_steps(notes: str) -> int:
    return len(STEP_LINE.findall(notes))


def run_child(switch: str, machine_name: str, shrink: bool = True,
              shrink_seconds: float = 60.0) -> dict[str, object]:
    """In this process: run the gate with ``switch`` (``""`` = none) and describe it."""
    os.environ["NRT_DEFECTS"] = switch
    from hypothesis import Phase, settings
    from hypothesis.internal.conjecture import engine
    from hypothesis.stateful import run_state_machine_as_test

    # Hypothesis gives up shrinking after MAX_SHRINKING_SECONDS (300 s); the self-check
    # bounds it lower so a dozen switches fit in minutes.  The reproducer printed is the
    # best found within the budget.
    if hasattr(engine, "MAX_SHRINKING_SECONDS"):
        engine.MAX_SHRINKING_SECONDS = shrink_seconds

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
    out: dict[str, object] = {"switch": switch, "machine": machine_name, "caught": False,
                              "property": "", "seconds": 0.0, "total_seconds": 0.0,
                              "reproducer_steps": 0, "reproducer": ""}
    for machine in GATE_MACHINES:
        if machine.__name__ != machine_name:
            continue
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


def _parse(switch: str, proc: subprocess.Popen[str], out: str, err: str) -> dict[str, object]:
    lines = [ln for ln in out.splitlines() if ln.startswith("{")]
    if not lines:
        return {"switch": switch, "caught": True, "property": "harness crash",
                "seconds": 0.0, "total_seconds": 0.0, "reproducer_steps": 0,
                "message": f"exit {proc.returncode}: {(err or out)[-500:]}"}
    return json.loads(lines[-1])


def _run_switch(switch: str, timeout: float, shrink: bool, shrink_seconds: float
                ) -> dict[str, object]:
    """Every gate machine in its own process, side by side as ``pytest -n`` runs them; the
    first machine to catch the switch wins and the others are stopped."""
    from conformance.gate import GATE_MACHINES

    procs = {}
    for machine in GATE_MACHINES:
        cmd = [sys.executable, "-m", "conformance.selfcheck", "--child", switch,
               "--machine", machine.__name__, "--shrink-seconds", str(shrink_seconds)]
        if not shrink:
            cmd.append("--no-shrink")
        procs[machine.__name__] = subprocess.Popen(cmd, stdout=subprocess.PIPE,
                                                   stderr=subprocess.PIPE, text=True)
    start = time.monotonic()
    results: list[dict[str, object]] = []
    pending = dict(procs)
    while pending:
        for name, proc in list(pending.items()):
            if proc.poll() is None:
                continue
            out, err = proc.communicate()
            results.append(_parse(switch, proc, out, err))
            del pending[name]
        if any(r["caught"] for r in results) or time.monotonic() - start > timeout:
            for proc in pending.values():
                proc.kill()
                proc.communicate()
            break
        time.sleep(0.05)
    caught = [r for r in results if r["caught"]]
    if caught:
        return min(caught, key=lambda r: float(r["seconds"]))  # type: ignore[arg-type]
    if len(results) < len(procs):
        return {"switch": switch, "caught": False, "property": "timeout", "seconds": timeout,
                "total_seconds": timeout, "reproducer_steps": 0}
    return {**results[0], "total_seconds": max(float(r["total_seconds"])  # type: ignore[arg-type]
                                                for r in results)}


def main(argv: list[str] | None = None) -> int:
    from impl import DEFECT_NAMES

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--switches", help="comma-separated subset (default: every switch)")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per run")
    ap.add_argument("--no-shrink", action="store_true",
                    help="stop at the first failure (fast; reproducer not minimal)")
    ap.add_argument("--shrink-seconds", type=float, default=60.0,
                    help="shrinking budget per switch (default 60; Hypothesis's own is 300)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--machine", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child is not None:
        print(json.dumps(run_child(args.child, args.machine, shrink=not args.no_shrink,
                                   shrink_seconds=args.shrink_seconds)))
        return 0
    switches = list(DEFECT_NAMES)
    if args.switches:
        switches = [s.strip() for s in args.switches.split(",") if s.strip()]
        unknown = sorted(set(switches) - set(DEFECT_NAMES))
        if unknown:
            ap.error(f"unknown switch(es) {', '.join(unknown)}; known: "
                     f"{', '.join(DEFECT_NAMES)}")
    runs = ["", *switches]
    print(f"self-check: the ci gate (its machines side by side), clean and with "
          f"{len(switches)} defect switch(es)", file=sys.stderr, flush=True)
    results: dict[str, dict[str, object]] = {}
    for s in runs:
        results[s] = r = _run_switch(s, args.timeout, not args.no_shrink, args.shrink_seconds)
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
        print(f"{s:<26} {'yes' if r['caught'] else 'NO':<7} {r['property']!s:<10} "
              f"{r['seconds']:>9} {r['total_seconds']:>9} {r['reproducer_steps']:>5}")
        summary[s] = {"caught": bool(r["caught"]), "property": str(r["property"]),
                      "seconds": float(r["seconds"]),  # type: ignore[arg-type]
                      "reproducer_steps": int(r["reproducer_steps"])}  # type: ignore[arg-type]
    ok = clean_passed and all(v["caught"] for v in summary.values())
    print(json.dumps({"clean_passed": clean_passed, "switches": summary}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
