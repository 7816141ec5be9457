"""Stress figures: what the machines made the target do, counted as it happens.

One collector per process (:data:`COLLECTOR`), fed by the harness from a few call sites
(a target built, an IO answered, a fault injected, the invariants of a step, liveness
mode's drain, a target destroyed).  It holds counters only and never judges anything; the
nightly job (``stress/nightly.py``) reads and resets it per round and merges the rounds of
every worker.

Figures (the keys of :meth:`Figures.as_dict`):

* ``examples``: examples that built their target; ``restarts``: targets built again after
  an abrupt destroy in the same example; ``steps``: rule steps whose invariants ran;
* ``ios``: IO commands answered (any status), ``io_bytes``: the bytes they moved, and
  ``ios_submitted``;
* ``faults``: faults injected, by kind (``bad_key`` is a keyed descriptor with a wrong
  key: a remote access error);
* ``max_outstanding``: the most capsules one qpair had outstanding at a step, beside
  ``max_queue_depth_configured``, the deepest queue a target was built with;
* ``max_read_depth`` / ``max_send_depth``: the highest read and send depths a qpair
  reached (the target's own high-water marks, where it reports them);
* ``wr_low_water`` / ``buf_low_water``: the fewest free data WRs (ring + caches) and free
  data buffers seen at a step, and the same as a fraction of the pool
  (``wr_low_water_fraction``, ``buf_low_water_fraction``; 0.0 means the pool ran dry);
* ``drains``, ``drain_rounds_max``, ``drain_rounds_total``: liveness mode's rounds to
  quiescence (``drains_stalled`` counts drains that stopped without reaching it);
* ``max_subsystems`` / ``max_qpairs``: the largest topology a target was built with.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["COLLECTOR", "ON_TARGET", "Figures", "merge"]

#: Called (no arguments) just before each target is built.  The nightly job's time budget
#: stops generation here, between examples.
ON_TARGET: list[Callable[[], None]] = []


@dataclass
class Figures:
    """Counters for one process (or, merged, for a whole run)."""

    examples: int = 0
    restarts: int = 0
    steps: int = 0
    ios: int = 0
    io_bytes: int = 0
    ios_submitted: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    max_outstanding: int = 0
    max_queue_depth_configured: int = 0
    max_read_depth: int = 0
    max_send_depth: int = 0
    wr_low_water: int | None = None
    wr_low_water_fraction: float | None = None
    buf_low_water: int | None = None
    buf_low_water_fraction: float | None = None
    drains: int = 0
    drains_stalled: int = 0
    drain_rounds_max: int = 0
    drain_rounds_total: int = 0
    max_subsystems: int = 0
    max_qpairs: int = 0
    #: the last target was destroyed abruptly: the next one built is its restart
    _restarting: bool = field(default=False, repr=False)

    # ------------------------------------------------------------------ harness call sites
    def target_starting(self) -> None:
        for hook in ON_TARGET:
            hook()

    def target_built(self, subsystems: int, qpairs: int, queue_depth: int) -> None:
        if self._restarting:
            self.restarts += 1
        else:
            self.examples += 1
        self._restarting = False
        self.max_subsystems = max(self.max_subsystems, subsystems)
        self.max_qpairs = max(self.max_qpairs, qpairs)
        self.max_queue_depth_configured = max(self.max_queue_depth_configured, queue_depth)

    def io_submitted(self) -> None:
        self.ios_submitted += 1

    def io_answered(self, nbytes: int) -> None:
        self.ios += 1
        self.io_bytes += nbytes

    def fault(self, kind: str) -> None:
        self.faults[kind] += 1

    def step(self, outstanding: Iterable[int], infos: Iterable[Any]) -> None:
        """One step's invariants ran: ``outstanding`` capsules per qpair (the host's view)
        and the qpair infos the invariants read."""
        self.steps += 1
        self.max_outstanding = max(self.max_outstanding, max(outstanding, default=0))
        for info in infos:
            self.max_read_depth = max(self.max_read_depth, info.max_read_depth_seen,
                                      info.cur_read_depth)
            self.max_send_depth = max(self.max_send_depth, info.max_send_depth_seen,
                                      info.cur_send_depth)

    def pools(self, rows: Iterable[Mapping[str, int]], wr_capacity: int,
              buf_capacity: int) -> None:
        """A target's pool timeline (one row a step): the low-water marks."""
        for row in rows:
            if "wr_ring" in row and wr_capacity:
                free = row["wr_ring"] + row.get("wr_cached", 0)
                if self.wr_low_water is None or free < self.wr_low_water:
                    self.wr_low_water = free
                frac = round(free / wr_capacity, 4)
                if self.wr_low_water_fraction is None or frac < self.wr_low_water_fraction:
                    self.wr_low_water_fraction = frac
            if "buf_ring" in row and buf_capacity:
                free = row["buf_ring"] + row.get("buf_cached", 0)
                if self.buf_low_water is None or free < self.buf_low_water:
                    self.buf_low_water = free
                frac = round(free / buf_capacity, 4)
                if self.buf_low_water_fraction is None or frac < self.buf_low_water_fraction:
                    self.buf_low_water_fraction = frac

    def destroyed_abruptly(self) -> None:
        """An abrupt destroy (SHUT-1): in the gate's machines a restart follows it."""
        self._restarting = True

    def drained(self, rounds: int, quiescent: bool) -> None:
        self.drains += 1
        self.drains_stalled += not quiescent
        self.drain_rounds_max = max(self.drain_rounds_max, rounds)
        self.drain_rounds_total += rounds

    # ----------------------------------------------------------------------- reading
    def as_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__ if not k.startswith("_")}
        out["faults"] = dict(sorted(self.faults.items()))
        return out

    def take(self) -> dict[str, Any]:
        """The figures so far, and start again from zero."""
        out = self.as_dict()
        self.__init__()  # type: ignore[misc]
        return out


_MAX = ("max_outstanding", "max_queue_depth_configured", "max_read_depth", "max_send_depth",
        "drain_rounds_max", "max_subsystems", "max_qpairs")
_MIN = ("wr_low_water", "wr_low_water_fraction", "buf_low_water", "buf_low_water_fraction")


def merge(parts: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Several :meth:`Figures.as_dict` results as one: counts add up, highs take the
    highest, low-water marks the lowest (None where no part saw the pool)."""
    total = Figures().as_dict()
    faults: Counter[str] = Counter()
    for p in parts:
        for k, v in p.items():
            if k not in total:
                continue
            if k == "faults":
                faults.update(v)
            elif k in _MAX:
                total[k] = max(total[k], v)
            elif k in _MIN:
                if v is not None and (total[k] is None or v < total[k]):
                    total[k] = v
            else:
                total[k] += v
    total["faults"] = dict(sorted(faults.items()))
    return total


#: The process's collector; the harness feeds it.
COLLECTOR = Figures()
