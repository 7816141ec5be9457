"""Fault plans: which faults fire, and when.

A plan is a short, step-sorted tuple of ``(at_step, Fault)``; a harness fires each fault
just before its step.  Plans are small (at most ``max_faults``) and shrink toward no
faults at all, so a failure that needs no fault is reported without one.

=================  =====================================================  ==================
kind               what the harness does                                  parameters
=================  =====================================================  ==================
qpair_error        ``nrt_qpair_inject_error``: flush everything           target: qpair
port_down          ``nrt_port_down``: every qpair on the port to error    target: port
port_up            ``nrt_port_up``                                        target: port
post_fail          ``nrt_qpair_fail_posts``: next ``count`` posts ENOMEM  target, count 1..8
bdev_error         ``nrt_bdev_inject_error``: next ``count`` IOs fail     count 1..4, status
host_disconnect    ``nrt_host_disconnect``                                target: qpair
qpair_disconnect   ``nrt_qpair_disconnect`` (target side, IO in flight)   target: qpair
transport_destroy  ``nrt_transport_destroy`` with IO in any state         (last, at most one)
=================  =====================================================  ==================

``target`` is a small index the harness reduces modulo the live qpairs or ports.
"""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.strategies import DrawFn, SearchStrategy

from strategies import nvme
from strategies.types import Fault, FaultKind, FaultPlan

__all__ = ["BDEV_ERROR_STATUSES", "FAULT_KINDS", "fault_plans", "faults"]

FAULT_KINDS: tuple[FaultKind, ...] = ("qpair_error", "port_down", "port_up", "post_fail",
                                      "bdev_error", "host_disconnect", "qpair_disconnect",
                                      "transport_destroy")
#: Statuses a failing block device reports (media and internal errors).
BDEV_ERROR_STATUSES: tuple[int, ...] = (nvme.SC_UNRECOVERED_READ_ERROR,
                                        nvme.SC_DATA_TRANSFER_ERROR, nvme.SC_INTERNAL_ERROR)


def faults(*, kinds: tuple[FaultKind, ...] = FAULT_KINDS,
           max_target: int = 15) -> SearchStrategy[Fault]:
    """A single fault of one of ``kinds`` with its parameters."""
    bad = set(kinds) - set(FAULT_KINDS)
    if bad or not kinds:
        raise ValueError(f"bad fault kinds {sorted(bad) or kinds}")
    return _fault(tuple(kinds), max_target)


@st.composite
def _fault(draw: DrawFn, kinds: tuple[FaultKind, ...], max_target: int) -> Fault:
    kind = draw(st.sampled_from(kinds))
    if kind == "transport_destroy":
        return Fault(kind)
    if kind == "bdev_error":
        return Fault(kind, count=draw(st.integers(1, 4)),
                     status=draw(st.sampled_from(BDEV_ERROR_STATUSES)))
    target = draw(st.integers(0, max_target))
    if kind == "post_fail":
        return Fault(kind, target, count=draw(st.integers(1, 8)))
    return Fault(kind, target)


def fault_plans(*, max_faults: int = 3, max_step: int = 64,
                kinds: tuple[FaultKind, ...] = FAULT_KINDS,
                max_target: int = 15) -> SearchStrategy[FaultPlan]:
    """``0..max_faults`` faults at steps ``0..max_step``, sorted by step.

    ``transport_destroy`` appears at most once and nothing follows it (the transport is
    gone); faults drawn after it are dropped.  Shrinks toward the empty plan."""
    return _plan(max_faults, max_step, faults(kinds=kinds, max_target=max_target))


@st.composite
def _plan(draw: DrawFn, max_faults: int, max_step: int,
          fault: SearchStrategy[Fault]) -> FaultPlan:
    drawn = draw(st.lists(st.tuples(st.integers(0, max_step), fault), max_size=max_faults))
    plan: list[tuple[int, Fault]] = []
    for step, f in sorted(drawn, key=lambda p: p[0]):  # stable: equal steps keep draw order
        plan.append((step, f))
        if f.kind == "transport_destroy":
            break
    return tuple(plan)
