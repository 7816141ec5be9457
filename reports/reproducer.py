"""A failure's reproducer as text a person can paste into ``python`` and see fail.

Hypothesis prints a failing state machine's steps as notes on the exception, between prose
("Failing test case: ...", "Explanation: ...", the ``@reproduce_failure`` hint).  The steps
alone do not replay the failure: the target it ran on and the defect switches it was built
with come from the environment.  :func:`pasteable` keeps only the steps and puts in front of
them a header naming the target (name, commit), the switches and the profile, and the
``replay_on(...)`` call (:mod:`conformance.reproduce`) that sets them, so that the text
fails the same property when pasted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from conformance.judging import replay_call, replay_hint


@dataclass(frozen=True)
class RunOn:
    """What a failure ran on."""

    target: str = "builtin"
    target_label: str = ""
    commit: str | None = None
    defects: str = ""
    profile: str = "ci"
    spdk_src: str | None = None
    seed: str = ""


def steps(notes: Iterable[str]) -> list[str]:
    """The Python statements among Hypothesis's notes (``state = ...``, ``state.rule(...)``),
    in order; its prose lines are left out."""
    return [n.strip("\n") for n in notes if n.startswith(("state = ", "state."))]


def pasteable(notes: Iterable[str], run: RunOn, prop: str = "", machine: str = "") -> str:
    """The reproducer: a header, the ``replay_on`` call and the steps.  Empty when the notes
    hold no steps (the failure was not in a state machine)."""
    notes = list(notes)
    body = steps(notes)
    if not body:
        return ""
    what = f"{prop} on {machine}" if prop and machine else prop or machine or "a failure"
    header = [f"# Reproducer of {what}: paste into `python` at the checkout's root.",
              f"# target: {run.target_label or run.target}"
              + (f", commit {run.commit}" if run.commit else ", commit unknown"),
              f"# defect switches: {run.defects or 'none (the target as shipped)'}",
              f"# profile: {run.profile}" + (f", seed {run.seed}" if run.seed else "")]
    hint = replay_hint(notes)
    if hint:
        header.append(f"# inside pytest: {hint} on the gate test")
    return "\n".join([*header, "from conformance.reproduce import *",
                      replay_call(run.target, run.commit, run.defects, run.profile, run.spdk_src),
                      "",
                      *body, ""])
