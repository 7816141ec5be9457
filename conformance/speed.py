"""Gate speed and determinism figures.

    python -m conformance.speed [--examples 300] [--machine NAME] [--runs 2]

Runs each gate machine's generation phase under the ``ci`` profile (no shrinking: the
correct target passes) and prints, per machine: rule steps, micro-events the rules
scheduled through the facade, state changes the target counted (including liveness mode's
deliveries and polls), and their rates.  Each run also prints a digest of what the
targets did (every step's pool counters and progress counter); with ``--runs 2`` the
command checks the digests agree — the gate is deterministic.  The last line is one JSON
object.  Figures only: nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time

from hypothesis import Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from conformance import harness, profiles
from conformance.gate import GATE_MACHINES


def measure(machine: type, examples: int) -> dict[str, object]:
    created: list[harness.Harness] = []
    original = harness.Harness.__init__

    def tracking_init(self: harness.Harness, *a: object, **k: object) -> None:
        original(self, *a, **k)  # type: ignore[arg-type]
        created.append(self)

    # the gate's own class (same derandomized seed, so the same examples as the gate)
    run_settings = settings(machine.TestCase.settings, max_examples=examples,
                            phases=[Phase.explicit, Phase.generate])
    harness.Harness.__init__ = tracking_init  # type: ignore[method-assign]
    start = time.perf_counter()
    try:
        run_state_machine_as_test(machine, settings=run_settings)
        passed = True
    except AssertionError:
        passed = False
    finally:
        harness.Harness.__init__ = original  # type: ignore[method-assign]
    seconds = time.perf_counter() - start
    digest = hashlib.sha256()
    for h in created:
        digest.update(json.dumps(h.timeline, sort_keys=True).encode())
        digest.update(str(h.events).encode())
    steps = sum(h.steps for h in created)
    events = sum(h.events for h in created)
    changes = sum(h.target_events for h in created)
    return {"machine": machine.__name__, "passed": passed, "seconds": round(seconds, 2),
            "targets": len(created), "steps": steps, "micro_events": events,
            "target_state_changes": changes,
            "state_changes_per_s": round(changes / seconds, 1),
            "steps_per_s": round(steps / seconds, 1),
            "micro_events_per_s": round(events / seconds, 1),
            "digest": digest.hexdigest()[:16]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--examples", type=int, default=300, help="examples per machine")
    ap.add_argument("--machine", help="only this machine (default: every gate machine)")
    ap.add_argument("--runs", type=int, default=2, help="runs to compare (default 2)")
    args = ap.parse_args(argv)
    profiles.load("ci")
    machines = [m for m in GATE_MACHINES if not args.machine or m.__name__ == args.machine]
    if not machines:
        ap.error(f"no gate machine {args.machine!r}; known: "
                 f"{', '.join(m.__name__ for m in GATE_MACHINES)}")
    rows = []
    for run in range(1, args.runs + 1):
        for m in machines:
            print(f"run {run}: {m.__name__} ({args.examples} examples)...", file=sys.stderr,
                  flush=True)
            rows.append({"run": run, **measure(m, args.examples)})
    print(f"{'run':>3} {'machine':<18} {'pass':<5} {'s':>7} {'steps':>7} {'events':>9} "
          f"{'steps/s':>8} {'events/s':>10} {'changes/s':>10} digest")
    for r in rows:
        print(f"{r['run']:>3} {r['machine']:<18} {r['passed']!s:<5} {r['seconds']:>7} "
              f"{r['steps']:>7} {r['micro_events']:>9} {r['steps_per_s']:>8} "
              f"{r['micro_events_per_s']:>10} {r['state_changes_per_s']:>10} {r['digest']}")
    deterministic = all(
        len({r["digest"] for r in rows if r["machine"] == m.__name__}) == 1 for m in machines)
    print(json.dumps({"deterministic": deterministic, "runs": rows}))
    return 0 if deterministic and all(r["passed"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
