"""Count what one gate machine finds over many examples, not only its first failure.

The judge stops at an example's first failure and the ci profile draws the same examples
every run, so a finding that comes after another one (say the SRQ-mode SIGSEGV behind the
poller loop of docs/spdk-findings.md item 9) is never seen again.  This runs ``N``
examples of a machine, generation only (no shrinking), records each example's first
property violation (the property, the rule it happened in and the message's first line,
with addresses and handle numbers blanked) and goes on to the next example.

Run from the project root::

    NRT_SRQ=on python docs/reproducers/tally_gate_findings.py --spdk-src DIR \\
        --machine ContentionMachine --examples 40

Output: one line per example with a failure, then the counts by kind.  The examples are
the ci profile's derandomized draw for this script (the same every run, not the judge's).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def _kind(exc: BaseException, during: str) -> str:
    first = str(exc).splitlines()[0]
    first = re.sub(r"0x[0-9a-f]+", "0x…", first)
    first = re.sub(r"<cdata [^>]*>", "<…>", first)
    first = re.sub(r"(?<![A-Z]-)\b\d+(\.\d+)?\b", "N", first)   # not a property ID
    return f"{during.split(' ')[0]}: {first[:160]}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--spdk-src", required=True, help="the SPDK tree to judge")
    ap.add_argument("--machine", default="ContentionMachine",
                    help="a machine of conformance.machines (default ContentionMachine)")
    ap.add_argument("--examples", type=int, default=40, help="examples to run (default 40)")
    ap.add_argument("--details", action="store_true",
                    help="print each failure's whole message (a crash's backtrace with it)")
    args = ap.parse_args(argv)
    os.environ["NRT_TARGET"] = "spdk"
    os.environ["NRT_SPDK_SRC"] = str(Path(args.spdk_src).resolve())

    from hypothesis import Phase, settings
    from hypothesis.stateful import precondition, rule, run_state_machine_as_test

    import conformance.profiles  # noqa: F401  (registers the ci profile)
    from conformance import machines
    from conformance.checks import PropertyViolation

    base = getattr(machines, args.machine, None)
    if base is None:
        ap.error(f"no machine {args.machine!r} in conformance.machines")
    seen: list[str] = []
    state = {"failed": False, "examples": 0}
    original = machines.contained

    @contextlib.contextmanager
    def recorded(during: str) -> Iterator[None]:
        try:
            with original(during):
                yield
        except PropertyViolation as exc:
            if not state["failed"]:
                state["failed"] = True
                kind = _kind(exc, during)
                seen.append(kind)
                print(f"example {state['examples']}: {kind}", flush=True)
                if args.details:
                    print("    " + str(exc).replace("\n", "\n    "), flush=True)

    machines.contained = recorded

    class Tallied(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__()
            state["failed"] = False
            state["examples"] += 1

        def _alive(self) -> bool:
            return not state["failed"] and super()._alive()

        def _may_restart(self) -> bool:
            return not state["failed"] and super()._may_restart()

        @precondition(lambda self: state["failed"])
        @rule()
        def after_the_failure(self) -> None:
            """Nothing: the example has failed and every other rule is off."""

    profile = settings.get_profile("ci")
    run = settings(profile, max_examples=args.examples, phases=(Phase.generate,),
                   print_blob=False)
    started = time.monotonic()
    run_state_machine_as_test(Tallied, settings=run)
    took = time.monotonic() - started
    print(f"\n{state['examples']} examples of {args.machine} in {took:.0f} s, "
          f"{len(seen)} with a failure:")
    for kind, n in collections.Counter(seen).most_common():
        print(f"{n:4d}  {kind}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
