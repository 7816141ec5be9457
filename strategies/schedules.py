"""Schedules: who makes progress next, as a short list of small integers.

A Hypothesis rule step costs about 0.5 ms (DESIGN section 4), so a rule should not move one
micro-event at a time.  Instead a rule draws a ``Schedule`` - a few dozen steps - and the
harness executes all of it (through ``nrt_run``, say).  Shrinking still works on the steps:
Hypothesis deletes steps and lowers indices and repeat counts, so a failing interleaving
shrinks to the few deliveries and polls that matter.

Kinds, and what the index means (the harness reduces it modulo the live objects):

======  =================================================  ========
kind    micro-event                                        index
======  =================================================  ========
h2t     deliver the next host capsule to the target        qpair
t2h     execute the next posted target WR on the wire      qpair
poll    poll a poll group (reap CQEs, retry pending work)  group
bdev    complete one pending block-device IO               pending IO (nrt_run reduces it)
tick    advance time (keep-alive)                          ticks, 1..8
======  =================================================  ========

Deliveries and polls dominate; block-device completions are rarer so IO stays in flight
and pools stay loaded; ticks are rarest.  About one step in four is a *burst* that repeats
its event 2..``max_burst`` times, so one drawn element can drain a whole wire.
"""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.strategies import DrawFn, SearchStrategy

from strategies.types import Schedule, ScheduleKind, ScheduleStep

__all__ = ["SCHEDULE_KINDS", "schedule_steps", "schedules"]

SCHEDULE_KINDS: tuple[ScheduleKind, ...] = ("poll", "h2t", "t2h", "bdev", "tick")
#: Relative weight of each kind (sampled_from over a list with repeats).
_WEIGHTS: dict[ScheduleKind, int] = {"poll": 3, "h2t": 3, "t2h": 3, "bdev": 2, "tick": 1}
MAX_TICKS = 8


def schedule_steps(*, kinds: tuple[ScheduleKind, ...] = SCHEDULE_KINDS, max_index: int = 15,
                   max_burst: int = 16) -> SearchStrategy[ScheduleStep]:
    """One step: a weighted kind, a small index and (one time in four) a burst repeat.
    Shrinks toward a single poll of object 0."""
    if not kinds:
        raise ValueError("schedule_steps needs at least one kind")
    pool = [k for k in SCHEDULE_KINDS if k in kinds for _ in range(_WEIGHTS[k])]
    return _step(tuple(pool), max_index, max_burst)


@st.composite
def _step(draw: DrawFn, pool: tuple[ScheduleKind, ...], max_index: int,
          max_burst: int) -> ScheduleStep:
    kind = draw(st.sampled_from(pool))
    index = draw(st.integers(1, MAX_TICKS) if kind == "tick" else st.integers(0, max_index))
    burst = max_burst >= 2 and draw(st.integers(0, 3)) == 3
    repeat = draw(st.integers(2, max_burst)) if burst else 1
    return ScheduleStep(kind, index, repeat)


def schedules(min_size: int = 4, max_size: int = 64, *,
              kinds: tuple[ScheduleKind, ...] = SCHEDULE_KINDS, max_index: int = 15,
              max_burst: int = 16) -> SearchStrategy[Schedule]:
    """A ``Schedule`` of ``min_size..max_size`` steps (so ``min_size..max_size * max_burst``
    micro-events once bursts expand).  Shrinks toward ``min_size`` single polls."""
    if not 0 <= min_size <= max_size:
        raise ValueError(f"bad schedule size bounds {min_size}..{max_size}")
    steps = st.lists(schedule_steps(kinds=kinds, max_index=max_index, max_burst=max_burst),
                     min_size=min_size, max_size=max_size)
    return st.builds(lambda s: Schedule(tuple(s)), steps)
