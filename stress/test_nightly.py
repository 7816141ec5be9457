"""The nightly stress run's test: the gate's machines, round after round, until the budget
is spent (see ``stress/conftest.py`` for the options and ``stress/nightly.py`` for the
command that runs and merges it).

Hypothesis has no time budget, so each machine runs in rounds of examples, each round with
its own seed derived from the run's seed, machine and round number (``@seed``), until its
share of the budget is spent.  Inside a round, the budget is checked before each target
is built: once the deadline has passed the round is interrupted there (:class:`BudgetSpent`
is a ``KeyboardInterrupt``, the one exception Hypothesis propagates at once without
storing the example it interrupted), so a run overruns by at most about one example.  A round that found a property violation is left to shrink it (bounded by
``NRT_NIGHTLY_SHRINK_SECONDS``, default 60 s), and its machine stops there with a finding.
Every failing example lands in the nightly example database (the nightly profile's), so
the ci gate replays it.
"""

from __future__ import annotations

import functools
import json
import time
from typing import Any, Self

import pytest
from hypothesis import Phase, seed, settings
from hypothesis.errors import FlakyStrategyDefinition
from hypothesis.stateful import run_state_machine_as_test
from hypothesis.statistics import collector, describe_statistics

from conformance import checks
from conformance.figures import COLLECTOR, ON_TARGET, merge
from reports import attach
from stress import nightly

pytestmark = pytest.mark.nightly


#: No explain phase: it replays a find's variations one by one, minutes at field scale.
ROUND_PHASES = (Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink)


class BudgetSpent(KeyboardInterrupt):
    """The machine's share of the budget is spent: stop the round before the next target."""


class Budget:
    """The deadline check before each target is built, and the progress it reports."""

    def __init__(self, deadline: float, progress: nightly.Progress) -> None:
        self.deadline = deadline
        self.progress = progress
        self.violated = False
        self.last_start = time.time()
        self.longest_example = 0.0

    def __enter__(self) -> Self:
        ON_TARGET.append(self.before_target)
        checks.VIOLATION_HOOKS.append(self.saw_violation)
        return self

    def __exit__(self, *exc: object) -> None:
        ON_TARGET.remove(self.before_target)
        checks.VIOLATION_HOOKS.remove(self.saw_violation)

    def saw_violation(self, _violation: object) -> None:
        self.violated = True

    def round_started(self) -> None:
        self.violated = False
        self.last_start = time.time()

    def before_target(self) -> None:
        now = time.time()
        self.longest_example = max(self.longest_example, now - self.last_start)
        self.last_start = now
        self.progress.tick(COLLECTOR.as_dict())
        if now >= self.deadline and not self.violated:
            raise BudgetSpent


def run_machine(machine: type, deadline: float, run: nightly.NightlyRun,
                progress: nightly.Progress, base: settings | None = None) -> dict[str, Any]:
    """Rounds of ``machine`` until ``deadline`` or its first finding, under ``base`` (default:
    the loaded profile, the nightly's)."""
    name = machine.__name__
    parts: list[dict[str, Any]] = []
    findings: list[dict[str, Any]] = []
    statistics: list[str] = []
    rounds = 0
    started = time.time()
    COLLECTOR.take()
    with Budget(deadline, progress) as budget:
        while time.time() < deadline and not findings:
            round_seed = nightly.round_seed(run.seed, name, rounds)
            seed(round_seed)(machine)
            budget.round_started()
            progress.machine(name, rounds, merge(parts))
            # what --hypothesis-show-statistics prints for a @given test, for this round
            keep = functools.partial(_keep_statistics, statistics, f"{name} round {rounds} "
                                     f"(seed {round_seed})")
            try:
                with collector.with_value(keep):
                    run_state_machine_as_test(machine, settings=settings(
                        base or settings.default, max_examples=nightly.ROUND_EXAMPLES,
                        phases=ROUND_PHASES))
            except BudgetSpent:   # the loop ends: the deadline has passed
                statistics.append(f"{name} round {rounds} (seed {round_seed}): interrupted "
                                  f"by the budget, so Hypothesis kept no statistics\n")
            except Exception as exc:  # noqa: BLE001 - any failure of a round is a finding
                if interrupted_by_budget(exc):
                    statistics.append(f"{name} round {rounds} (seed {round_seed}): "
                                      f"interrupted by the budget\n")
                else:
                    findings.extend(nightly.findings_of(exc, name, run.seed, rounds,
                                                        round_seed))
            finally:
                machine._hypothesis_internal_use_seed = None  # type: ignore[attr-defined]
                parts.append(COLLECTOR.take())
                rounds += 1
    figures = merge(parts)
    progress.machine(name, rounds, figures)
    return {"machine": name, "rounds": rounds, "seconds": round(time.time() - started, 3),
            "longest_example_s": round(budget.longest_example, 3), "figures": figures,
            "findings": findings, "statistics": "\n".join(statistics)}


def interrupted_by_budget(exc: BaseException) -> bool:
    """``exc`` is Hypothesis's complaint about the test case the budget interrupted, not a
    finding: with observability on, Hypothesis freezes a test case that a
    ``KeyboardInterrupt`` ended, and when another test case had gone on from the same
    choices it raises ``FlakyStrategyDefinition`` ("the second run stopped drawing
    earlier") in place of the interrupt, which stays its context."""
    if not isinstance(exc, FlakyStrategyDefinition):
        return False
    seen: BaseException | None = exc.__context__
    while seen is not None:
        if isinstance(seen, BudgetSpent):
            return True
        seen = seen.__context__
    return False


def _keep_statistics(into: list[str], title: str, stats: Any) -> None:
    into.append(f"{title}:\n{describe_statistics(stats)}\n")


def test_nightly(shard: Any, nightly_run: nightly.NightlyRun) -> None:
    """This shard's machines, each for an equal share of what is left of the budget."""
    mine = nightly_run.machines[shard.index::shard.count]
    progress = nightly.Progress(nightly_run.out, str(shard))
    results = []
    for k, machine in enumerate(mine):
        left = nightly_run.deadline - time.time()
        share = time.time() + max(0.0, left) / (len(mine) - k)
        results.append(run_machine(machine, min(share, nightly_run.deadline), nightly_run,
                                   progress))
        # after every machine: a run stopped later still has what this one found
        nightly.write_part(nightly_run.out, str(shard), {"shard": str(shard),
                                                        "machines": results})
    figures = merge(r["figures"] for r in results)
    attach.figures({"shard": str(shard), "seed": nightly_run.seed, **figures,
                    "machines": {r["machine"]: r["figures"] for r in results}})
    findings = [f for r in results for f in r["findings"]]
    if findings:
        attach.reproducer("\n\n".join(f["reproducer"] for f in findings))
        pytest.fail(f"{len(findings)} finding(s):\n" + "\n".join(
            json.dumps({k: f[k] for k in ("machine", "property", "message", "seed")})
            for f in findings), pytrace=False)
