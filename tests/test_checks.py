"""Tests of the suite's own property checks (``conformance/checks.py``).

Every check must pass on a hand-made consistent input and raise
:class:`~conformance.checks.PropertyViolation` with the right property ID on each hand-made
violation.  The inputs are the facade's result dataclasses built directly: no target runs.

Every violation is also required to go through ``checks.fail`` (so ``VIOLATION_HOOKS`` see it
before it is raised) and to carry a message that starts with its ID.

Tests marked ``xfail(strict=True)`` document gaps in the checks: a violation the check should
catch but does not.  When a check is fixed, its xfail turns into a strict failure; delete the
marker then.

The SM-1 and request-state checks judge a target against the description it declares; here
that is :data:`DESC`, made by hand with its own state numbering (the built-in target's
states in reverse order), so a check that fell back on any one target's numbering would
fail here.  The built-in target's own declared graph is checked for soundness at the end.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
from collections import deque
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import pytest

from conformance import checks
from conformance.checks import PropertyViolation
from impl import (
    ConnInfo,
    DestroyReport,
    DrainResult,
    GroupStats,
    Options,
    OptionsRefused,
    PoolCounts,
    QpairInfo,
    QpState,
    Queue,
    RequestInfo,
    Response,
    Status,
    TargetError,
)
from impl.nvme import ErrorCode
from impl.target import CAPABILITIES, TargetDescription

# ----------------------------------------------------------------- a hand-made description

_NAMES = ("FREE", "NEW", "NEED_BUFFER", "TRANSFER_TO_CTRLR_PENDING", "TRANSFERRING_H2C",
          "READY_TO_EXECUTE", "EXECUTING", "EXECUTED", "TRANSFER_TO_HOST_PENDING",
          "READY_TO_COMPLETE", "TRANSFERRING_C2H", "COMPLETING", "COMPLETED")
#: The request states of the hand-made target, numbered backwards (FREE is 12).
S = enum.IntEnum("S", {name: len(_NAMES) - 1 - i for i, name in enumerate(_NAMES)})
NUM_STATES = len(S)

#: Its legal graph: abnormal completion may cut in from any state not waiting on a
#: completion; waiting states leave only through their completion.
LEGAL: frozenset[tuple[int, int]] = frozenset({
    (S.FREE, S.NEW),
    (S.NEW, S.NEED_BUFFER), (S.NEW, S.READY_TO_EXECUTE), (S.NEW, S.READY_TO_COMPLETE),
    (S.NEW, S.COMPLETED),
    (S.NEED_BUFFER, S.TRANSFER_TO_CTRLR_PENDING), (S.NEED_BUFFER, S.READY_TO_EXECUTE),
    (S.NEED_BUFFER, S.COMPLETED),
    (S.TRANSFER_TO_CTRLR_PENDING, S.TRANSFERRING_H2C),
    (S.TRANSFER_TO_CTRLR_PENDING, S.COMPLETED),
    (S.TRANSFERRING_H2C, S.READY_TO_EXECUTE), (S.TRANSFERRING_H2C, S.COMPLETED),
    (S.READY_TO_EXECUTE, S.EXECUTING), (S.READY_TO_EXECUTE, S.COMPLETED),
    (S.EXECUTING, S.EXECUTED),
    (S.EXECUTED, S.TRANSFER_TO_HOST_PENDING), (S.EXECUTED, S.READY_TO_COMPLETE),
    (S.EXECUTED, S.COMPLETED),
    (S.TRANSFER_TO_HOST_PENDING, S.TRANSFERRING_C2H),
    (S.TRANSFER_TO_HOST_PENDING, S.COMPLETED),
    (S.READY_TO_COMPLETE, S.COMPLETING), (S.READY_TO_COMPLETE, S.COMPLETED),
    (S.TRANSFERRING_C2H, S.COMPLETED),
    (S.COMPLETING, S.COMPLETED),
    (S.COMPLETED, S.FREE),
})

#: The one queue each state implies; every other state sits on no queue.
QUEUE_OF_STATE = {
    S.NEED_BUFFER: Queue.PENDING_BUF,
    S.TRANSFER_TO_CTRLR_PENDING: Queue.PENDING_READ,
    S.TRANSFER_TO_HOST_PENDING: Queue.PENDING_WRITE,
    S.READY_TO_COMPLETE: Queue.PENDING_SEND,
}

DESC = TargetDescription(
    name="hand-made", version="test", caps=frozenset(CAPABILITIES), num_states=NUM_STATES,
    free_state=S.FREE, state_names=tuple(S(i).name for i in range(NUM_STATES)),
    queue_of_state=MappingProxyType({int(s): int(QUEUE_OF_STATE.get(s, Queue.NONE))
                                     for s in S}),
    legal=LEGAL)

# ------------------------------------------------------------------------------ builders


def pool(capacity: int = 64, ring_free: int = 40, cached: int = 8, held: int = 16,
         duplicates: int = 0, missing: int = 0, get_failures: int = 0) -> PoolCounts:
    """A balanced pool by default: 40 + 8 + 16 = 64."""
    return PoolCounts(capacity, ring_free, cached, held, duplicates, missing, get_failures)


def idle_pool(capacity: int = 64, cached: int = 8) -> PoolCounts:
    return pool(capacity, capacity - cached, cached, 0)


def states(**counts: int) -> tuple[int, ...]:
    """``req_states`` with the given per-state counts (by state name, in DESC's numbering)."""
    out = [0] * NUM_STATES
    for name, n in counts.items():
        out[S[name]] = n
    return tuple(out)


def qpair(**kw: Any) -> QpairInfo:
    """An idle, ACTIVE, fully consistent qpair of depth 4; ``kw`` overrides fields."""
    idle = QpairInfo(
        id=4097, qid=1, group=0, port=0, state=QpState.ACTIVE, cntlid=1, depth=4,
        max_read_depth=16, max_send_depth=8, cur_read_depth=0, cur_send_depth=0,
        slots_free=4, slots_used=0, recv_posted=4, recv_in_cq=0, recv_held=0, recv_idle=0,
        pending_read=0, pending_write=0, pending_send=0, wire_h2t=0, wire_t2h=0,
        host_outstanding=0, host_unreaped=0, max_read_depth_seen=0, max_send_depth_seen=0,
        req_states=states(FREE=4),
    )
    return dataclasses.replace(idle, **kw)


def busy_qpair(**kw: Any) -> QpairInfo:
    """ACTIVE, depth 4, two requests busy (one NEW, one in an RDMA READ), consistent."""
    busy = qpair(slots_free=2, slots_used=2, recv_posted=2, recv_held=2, cur_read_depth=1,
                 max_read_depth_seen=1, cur_send_depth=1, max_send_depth_seen=2,
                 host_outstanding=2, req_states=states(FREE=2, NEW=1, TRANSFERRING_H2C=1))
    return dataclasses.replace(busy, **kw)


def request(**kw: Any) -> RequestInfo:
    new = RequestInfo(slot=0, cid=7, opcode=0x01, state=S.NEW, queue=Queue.NONE, xfer=0,
                      length=4096, num_bufs=0, num_wrs=0, wrs_posted=0, wrs_outstanding=0)
    return dataclasses.replace(new, **kw)


def report(wr: int = 2048, buf: int = 4095, **kw: Any) -> DestroyReport:
    """An exact destroy report: everything came back, no complaint."""
    exact = DestroyReport(wr_expected=wr, wr_returned=wr, buf_expected=buf, buf_returned=buf,
                          requests_released=0, message="")
    return dataclasses.replace(exact, **kw)


def violates(spec: str, fn: Callable[..., None], *args: Any, **kw: Any) -> str:
    """Assert ``fn(*args, **kw)`` raises a PropertyViolation for ``spec`` through
    ``checks.fail`` (the hooks see it, before it is raised); return its message."""
    seen: list[tuple[PropertyViolation, bool]] = []

    def hook(v: PropertyViolation) -> None:
        seen.append((v, v.__traceback__ is None))

    checks.VIOLATION_HOOKS.append(hook)
    try:
        with pytest.raises(PropertyViolation) as exc:
            fn(*args, **kw)
    finally:
        checks.VIOLATION_HOOKS.remove(hook)
    v = exc.value
    assert v.spec == spec, f"expected {spec}, got {v}"
    msg = str(v)
    assert msg.startswith(f"{spec}: ") and len(msg) > len(spec) + 2
    assert seen == [(v, True)], "the violation did not go through checks.fail and its hooks"
    return msg


def passes(fn: Callable[..., None], *args: Any, **kw: Any) -> None:
    """``fn`` accepts the input and calls no hook."""
    seen: list[PropertyViolation] = []
    checks.VIOLATION_HOOKS.append(seen.append)
    try:
        fn(*args, **kw)
    finally:
        checks.VIOLATION_HOOKS.remove(seen.append)
    assert seen == []


def conserved(buf: PoolCounts | None, qpairs: Any, free_state: int | None = S.FREE) -> None:
    """``checks.buffers_and_slots_conserved`` with DESC's free state unless told otherwise."""
    checks.buffers_and_slots_conserved(buf, qpairs, free_state=free_state)


# ------------------------------------------------------------------ PropertyViolation, hooks


def test_property_violation_carries_spec_and_prefixed_message() -> None:
    v = PropertyViolation("POOL-2", "data-WR pool returned 1 of 2")
    assert v.spec == "POOL-2"
    assert str(v) == "POOL-2: data-WR pool returned 1 of 2"
    assert isinstance(v, AssertionError)


def test_violation_hooks_see_the_violation_before_it_is_raised() -> None:
    calls: list[str] = []

    def first(v: PropertyViolation) -> None:
        assert v.__traceback__ is None          # not raised yet
        calls.append(f"first {v.spec}")

    def second(v: PropertyViolation) -> None:
        calls.append(f"second {v.spec}")

    checks.VIOLATION_HOOKS.extend([first, second])
    try:
        with pytest.raises(PropertyViolation) as exc:
            checks.fail("LIVE-1", "stall")
    finally:
        checks.VIOLATION_HOOKS.remove(first)
        checks.VIOLATION_HOOKS.remove(second)
    assert calls == ["first LIVE-1", "second LIVE-1"]
    assert exc.value.spec == "LIVE-1"


def test_a_hook_that_raises_preempts_the_violation() -> None:
    """Hooks run strictly before the raise: a hook's own exception is what propagates."""

    class Seen(Exception):
        pass

    def hook(v: PropertyViolation) -> None:
        raise Seen(v.spec)

    checks.VIOLATION_HOOKS.append(hook)
    try:
        with pytest.raises(Seen, match="SM-1"):
            checks.transitions_legal({(S.FREE, S.EXECUTED): 1}, DESC)
    finally:
        checks.VIOLATION_HOOKS.remove(hook)


def test_hooks_are_not_called_when_a_check_passes() -> None:
    passes(checks.wr_pool_conserved, pool())


# ------------------------------------------------------------------------------ POOL-1


@pytest.mark.spec("POOL-1")
def test_wr_pool_conserved_passes_when_counts_add_up() -> None:
    passes(checks.wr_pool_conserved, pool())
    passes(checks.wr_pool_conserved, idle_pool())
    passes(checks.wr_pool_conserved, pool(get_failures=9))   # failures are not a leak


@pytest.mark.spec("POOL-1")
@pytest.mark.parametrize("counts", [
    {"ring_free": 39},                          # one WR missing (accounted 63 of 64)
    {"held": 17},                               # one WR too many (accounted 65 of 64)
    {"cached": 0, "ring_free": 0, "held": 0},   # everything lost
    {"missing": 1},                             # the pool's own scan finds one nowhere
], ids=["one-missing", "one-extra", "all-lost", "missing-flag"])
def test_wr_pool_conserved_catches_an_imbalance(counts: dict[str, int]) -> None:
    msg = violates("POOL-1", checks.wr_pool_conserved, pool(**counts))
    assert "capacity 64" in msg


@pytest.mark.spec("POOL-1")
def test_wr_pool_conserved_catches_duplicates_even_when_counts_add_up() -> None:
    p = pool(duplicates=1)
    assert p.accounted == p.capacity and not p.missing
    msg = violates("POOL-1", checks.wr_pool_conserved, p)
    assert "two places" in msg and "data-WR pool" in msg


# ------------------------------------------------------------------------------ POOL-2


@pytest.mark.spec("POOL-2", "POOL-3")
def test_pool_returned_at_quiescence_passes_when_everything_is_back() -> None:
    passes(checks.pool_returned_at_quiescence, idle_pool(64), idle_pool(128, 32), 64, 128)


@pytest.mark.spec("POOL-2")
def test_pool_returned_at_quiescence_catches_wrs_still_held() -> None:
    msg = violates("POOL-2", checks.pool_returned_at_quiescence, pool(), idle_pool(128), 64,
                   128)
    assert "48 of 64" in msg and "16 still held" in msg


@pytest.mark.spec("POOL-2")
def test_pool_returned_at_quiescence_catches_wrs_short_with_nothing_held() -> None:
    wr = pool(ring_free=55, cached=8, held=0, missing=1)
    msg = violates("POOL-2", checks.pool_returned_at_quiescence, wr, idle_pool(128), 64, 128)
    assert "63 of 64" in msg


@pytest.mark.spec("POOL-3")
def test_pool_returned_at_quiescence_catches_buffers_short() -> None:
    buf = pool(128, ring_free=100, cached=27, held=0, missing=1)
    msg = violates("POOL-3", checks.pool_returned_at_quiescence, idle_pool(64), buf, 64, 128)
    assert "127 of 128" in msg


@pytest.mark.spec("POOL-3")
def test_pool_returned_at_quiescence_catches_buffers_held() -> None:
    buf = pool(128, ring_free=100, cached=27, held=1)
    msg = violates("POOL-3", checks.pool_returned_at_quiescence, idle_pool(64), buf, 64, 128)
    assert "1 still held" in msg


@pytest.mark.spec("POOL-2", "POOL-3")
def test_destroy_report_exact_passes_on_an_exact_report() -> None:
    passes(checks.destroy_report_exact, report(184320, 4095), 184320, 4095)


@pytest.mark.spec("POOL-2")
def test_destroy_report_exact_catches_wrs_short_and_names_both_counts() -> None:
    rep = report(184320, 4095, wr_returned=184280,
                 message="data-WR pool returned 184280 of 184320")
    msg = violates("POOL-2", checks.destroy_report_exact, rep, 184320, 4095)
    assert "184280 of 184320" in msg
    assert "target says: data-WR pool returned 184280 of 184320" in msg


@pytest.mark.spec("POOL-2")
def test_destroy_report_exact_catches_wrs_short_with_a_silent_target() -> None:
    msg = violates("POOL-2", checks.destroy_report_exact, report(wr_returned=2047), 2048,
                   4095)
    assert "2047 of 2048" in msg and "target says: nothing" in msg


@pytest.mark.spec("POOL-2")
def test_destroy_report_exact_catches_a_wrong_expected_count_false_alarm() -> None:
    """Everything came back, but the target expects another capacity (and so may raise a
    false alarm): the report itself is wrong."""
    rep = report(2048, 4095, wr_expected=2048 * 2,
                 message="data-WR pool returned 2048 of 4096")
    msg = violates("POOL-2", checks.destroy_report_exact, rep, 2048, 4095)
    assert "expects 4096" in msg and "gives 2048" in msg


@pytest.mark.spec("POOL-2")
def test_destroy_report_exact_catches_a_complaint_when_every_count_is_exact() -> None:
    msg = violates("POOL-2", checks.destroy_report_exact,
                   report(message="pool leaked 3 WRs"), 2048, 4095)
    assert "pool leaked 3 WRs" in msg


@pytest.mark.spec("POOL-3")
def test_destroy_report_exact_catches_buffers_short() -> None:
    msg = violates("POOL-3", checks.destroy_report_exact, report(buf_returned=4094), 2048,
                   4095)
    assert "4094 of 4095" in msg


@pytest.mark.spec("POOL-3")
def test_destroy_report_exact_catches_a_wrong_buffer_expectation() -> None:
    """The target's report expects 4096 buffers while 4095 are configured, and stays silent
    (all counts otherwise exact).  The docstring promises the report's expected count is
    right; only the WR half is checked."""
    violates("POOL-3", checks.destroy_report_exact, report(buf_expected=4096), 2048, 4095)


# ------------------------------------------------------------------------------ POOL-3


@pytest.mark.spec("POOL-3")
def test_buffers_and_slots_conserved_passes_on_consistent_qpairs() -> None:
    passes(conserved, pool(128, 100, 20, 8), [qpair(), busy_qpair()])
    passes(conserved, idle_pool(128), [])
    # receives not posted are fine once the qpair is no longer live
    dead = qpair(state=QpState.ERROR, recv_posted=1, recv_idle=3)
    passes(conserved, idle_pool(128), [dead])
    # receives sitting in the CQ count too
    passes(conserved, idle_pool(128),
           [qpair(recv_posted=2, recv_in_cq=2)])


@pytest.mark.spec("POOL-3")
@pytest.mark.parametrize("buf", [
    pool(128, 100, 20, 7),
    pool(128, 100, 20, 8, duplicates=1),
    pool(128, 100, 20, 8, missing=1),
], ids=["one-missing", "duplicate", "missing-flag"])
def test_buffers_and_slots_conserved_catches_a_buffer_imbalance(buf: PoolCounts) -> None:
    msg = violates("POOL-3", conserved, buf, [qpair()])
    assert "data buffers" in msg


@pytest.mark.spec("POOL-3")
@pytest.mark.parametrize("q", [
    qpair(slots_free=3),                                           # free + used != depth
    qpair(slots_free=3, slots_used=1),                             # used but every req FREE
    busy_qpair(req_states=states(FREE=3, NEW=1)),                  # 1 busy vs 2 used
    busy_qpair(slots_free=3, slots_used=1),                        # 2 busy vs 1 used
], ids=["sum", "used-but-free", "fewer-busy", "more-busy"])
def test_buffers_and_slots_conserved_catches_a_slot_mismatch(q: QpairInfo) -> None:
    msg = violates("POOL-3", conserved, idle_pool(128),
                   [qpair(id=1), q])
    assert "request slots" in msg and "qpair 4097" in msg


@pytest.mark.spec("POOL-3")
@pytest.mark.parametrize("q", [
    qpair(recv_posted=3),
    qpair(recv_posted=4, recv_held=1),
    busy_qpair(recv_in_cq=1),
    qpair(state=QpState.ERROR, recv_posted=0, recv_idle=3),
], ids=["one-lost", "one-extra", "extra-in-cq", "error-qpair-one-lost"])
def test_buffers_and_slots_conserved_catches_receive_wrs_not_adding_up(q: QpairInfo) -> None:
    msg = violates("POOL-3", conserved, idle_pool(128), [q])
    assert "receive WRs" in msg and "depth 4" in msg


@pytest.mark.spec("POOL-3")
@pytest.mark.parametrize("state", [QpState.ACTIVE, QpState.CONNECTING])
def test_buffers_and_slots_conserved_catches_idle_receives_on_a_live_qpair(state: int) -> None:
    q = qpair(state=state, recv_posted=3, recv_idle=1)
    msg = violates("POOL-3", conserved, idle_pool(128), [q])
    assert "lost receives" in msg and "1 receive" in msg


@pytest.mark.spec("POOL-3")
def test_buffers_and_slots_conserved_catches_a_request_counted_in_two_states() -> None:
    """Depth 4, one slot used, yet the per-state counts total 5 (FREE 3 + NEW 1 + EXECUTING 1):
    a request is counted twice.  Only ``depth - FREE`` is compared with the slots."""
    q = qpair(slots_free=3, slots_used=1, recv_posted=3, recv_held=1, host_outstanding=1,
              req_states=states(FREE=3, NEW=1, EXECUTING=1))
    violates("POOL-3", conserved, idle_pool(128), [q])


# ------------------------------------------------------------------------------- SM-1


@pytest.mark.spec("SM-1")
def test_transitions_legal_passes_on_a_legal_map() -> None:
    passes(checks.transitions_legal, {}, DESC)
    passes(checks.transitions_legal, {edge: 3 for edge in LEGAL}, DESC)
    passes(checks.transitions_legal, {(S.FREE, S.NEW): 10, (S.NEW, S.READY_TO_EXECUTE): 10,
                                      (S.READY_TO_EXECUTE, S.EXECUTING): 10}, DESC)


@pytest.mark.spec("SM-1")
@pytest.mark.parametrize("edge", [
    (S.FREE, S.EXECUTED), (S.EXECUTING, S.COMPLETED), (S.TRANSFERRING_C2H, S.FREE),
    (S.COMPLETED, S.NEW), (S.NEW, S.NEW), (S.FREE, 99),
], ids=lambda e: f"{e[0]}-{e[1]}")
def test_transitions_legal_catches_an_illegal_edge(edge: tuple[int, int]) -> None:
    legal = {(S.FREE, S.NEW): 5, (S.NEW, S.COMPLETED): 5}
    msg = violates("SM-1", checks.transitions_legal, {**legal, edge: 2}, DESC)
    assert "(2 time(s))" in msg


@pytest.mark.spec("SM-1")
def test_transitions_legal_names_the_states() -> None:
    msg = violates("SM-1", checks.transitions_legal, {(S.FREE, S.EXECUTED): 1}, DESC)
    assert "FREE -> EXECUTED" in msg
    msg = violates("SM-1", checks.transitions_legal, {(S.NEW, 99): 1}, DESC)
    assert "NEW -> state 99 (undeclared)" in msg


@pytest.mark.spec("SM-1")
def test_transitions_legal_judges_the_graph_the_target_declares() -> None:
    """The same counts pass or fail with the graph: a target declaring another lifecycle is
    judged by its own."""
    other = dataclasses.replace(DESC, legal=frozenset({(S.FREE, S.EXECUTED),
                                                       (S.EXECUTED, S.FREE)}))
    passes(checks.transitions_legal, {(S.FREE, S.EXECUTED): 1}, other)
    msg = violates("SM-1", checks.transitions_legal, {(S.FREE, S.NEW): 1}, other)
    assert "FREE -> NEW" in msg
    renamed = dataclasses.replace(DESC, state_names=tuple(f"st{i}" for i in range(NUM_STATES)))
    msg = violates("SM-1", checks.transitions_legal, {(S.FREE, S.EXECUTED): 1}, renamed)
    assert f"st{int(S.FREE)} -> st{int(S.EXECUTED)}" in msg


@pytest.mark.spec("SM-1")
def test_requests_consistent_passes_for_every_state_on_its_queue() -> None:
    reqs = [request(slot=i, cid=i, state=s, queue=QUEUE_OF_STATE.get(s, Queue.NONE))
            for i, s in enumerate(S)]
    passes(checks.requests_consistent, 4097, reqs, DESC)
    passes(checks.requests_consistent, 4097, [], DESC)
    passes(checks.requests_consistent, 4097, [
        request(state=S.TRANSFERRING_H2C, xfer=1, num_wrs=4, wrs_posted=4, wrs_outstanding=4),
        request(state=S.TRANSFERRING_H2C, xfer=1, num_wrs=4, wrs_posted=2, wrs_outstanding=1),
        request(state=S.TRANSFER_TO_CTRLR_PENDING, queue=Queue.PENDING_READ, xfer=1,
                num_wrs=4, wrs_posted=0, wrs_outstanding=0),
    ], DESC)


@pytest.mark.spec("SM-1")
@pytest.mark.parametrize("state,queue", [
    (S.NEED_BUFFER, Queue.PENDING_READ),
    (S.NEED_BUFFER, Queue.NONE),
    (S.TRANSFER_TO_CTRLR_PENDING, Queue.PENDING_BUF),
    (S.TRANSFER_TO_HOST_PENDING, Queue.PENDING_SEND),
    (S.READY_TO_COMPLETE, Queue.NONE),
    (S.EXECUTING, Queue.PENDING_BUF),
    (S.FREE, Queue.PENDING_READ),           # a stale queue entry of a freed request
], ids=lambda x: x.name)
def test_requests_consistent_catches_a_request_on_the_wrong_queue(state: int,
                                                                  queue: int) -> None:
    reqs = [request(slot=0, cid=1), request(slot=1, cid=9, state=state, queue=queue)]
    msg = violates("SM-1", checks.requests_consistent, 4097, reqs, DESC)
    assert "cid 9" in msg and S(state).name in msg and Queue(queue).name in msg


@pytest.mark.spec("SM-1")
@pytest.mark.parametrize("wrs", [(4, 3, 4), (4, 5, 5), (0, 0, 1)],
                         ids=["outstanding>posted", "posted>held", "outstanding-no-wrs"])
def test_requests_consistent_catches_wr_counters_out_of_order(wrs: tuple[int, int, int]
                                                              ) -> None:
    num, posted, outstanding = wrs
    r = request(state=S.TRANSFERRING_H2C, xfer=1, num_wrs=num, wrs_posted=posted,
                wrs_outstanding=outstanding)
    msg = violates("SM-1", checks.requests_consistent, 4097, [r], DESC)
    assert f"outstanding {outstanding}, posted {posted}, held {num}" in msg


@pytest.mark.spec("SM-1")
def test_requests_consistent_reports_an_unknown_queue_value_as_sm1() -> None:
    violates("SM-1", checks.requests_consistent, 4097, [request(queue=9)], DESC)


@pytest.mark.spec("SM-1")
def test_requests_consistent_catches_a_state_the_target_never_declared() -> None:
    msg = violates("SM-1", checks.requests_consistent, 4097, [request(state=NUM_STATES)],
                   DESC)
    assert f"not one of the {NUM_STATES} states" in msg


@pytest.mark.spec("SM-1")
def test_requests_consistent_without_queues_judges_only_the_rest() -> None:
    """A target that does not report queue membership: the queue part is not judged (its
    queue field means nothing), the WR counters still are."""
    wrong_queue = request(state=S.NEED_BUFFER, queue=Queue.NONE)
    passes(checks.requests_consistent, 4097, [wrong_queue], DESC, queues=False)
    violates("SM-1", checks.requests_consistent, 4097,
             [request(state=S.NEW, num_wrs=1, wrs_posted=2)], DESC, queues=False)
    # no WR counts declared: only the states are judged
    passes(checks.requests_consistent, 4097, [request(state=S.NEW, num_wrs=1, wrs_posted=2)],
           DESC, wrs=False)
    violates("SM-1", checks.requests_consistent, 4097, [request(state=NUM_STATES)], DESC,
             queues=False, wrs=False)


# ---------------------------------------------------------------------------- DEPTH-1


@pytest.mark.spec("DEPTH-1")
def test_depths_within_limits_passes_on_a_consistent_qpair() -> None:
    passes(checks.depths_within_limits, qpair(), [])
    reads = [request(state=S.TRANSFERRING_H2C, xfer=1, num_wrs=2, wrs_posted=2,
                     wrs_outstanding=1),
             request(state=S.TRANSFERRING_C2H, xfer=2, num_wrs=3, wrs_posted=3,
                     wrs_outstanding=3)]      # RDMA WRITEs do not count as read depth
    passes(checks.depths_within_limits, busy_qpair(), reads)
    # at the limits exactly
    full = busy_qpair(cur_read_depth=16, max_read_depth_seen=16, cur_send_depth=8,
                      max_send_depth_seen=8)
    passes(checks.depths_within_limits, full,
           [request(xfer=1, num_wrs=16, wrs_posted=16, wrs_outstanding=16)])
    # the counter/READs cross-check applies to ACTIVE qpairs only
    passes(checks.depths_within_limits, busy_qpair(state=QpState.ERROR), [])


@pytest.mark.spec("DEPTH-1")
@pytest.mark.parametrize("kw,words", [
    ({"cur_read_depth": 17, "max_read_depth_seen": 17}, "read depth 17"),
    ({"max_read_depth_seen": 17}, "peak 17"),
    ({"cur_send_depth": 9, "max_send_depth_seen": 9}, "send depth 9"),
    ({"max_send_depth_seen": 9}, "peak 9"),
    ({"slots_used": 5}, "5 requests"),
    ({"host_outstanding": 5}, "5 host capsules"),
], ids=["read", "read-peak", "send", "send-peak", "slots", "host"])
def test_depths_within_limits_catches_a_limit_exceeded(kw: dict[str, int], words: str
                                                       ) -> None:
    q = busy_qpair(state=QpState.ERROR, **kw)     # ERROR: only the limits are in play
    msg = violates("DEPTH-1", checks.depths_within_limits, q, [])
    assert words in msg


@pytest.mark.spec("DEPTH-1")
@pytest.mark.parametrize("outstanding", [0, 2], ids=["leaked-counter", "uncounted-read"])
def test_depths_within_limits_catches_a_read_counter_mismatch(outstanding: int) -> None:
    r = request(state=S.TRANSFERRING_H2C, xfer=1, num_wrs=2, wrs_posted=2,
                wrs_outstanding=outstanding)
    msg = violates("DEPTH-1", checks.depths_within_limits, busy_qpair(), [r])
    assert f"read depth counter 1 but {outstanding} RDMA READ(s)" in msg


@pytest.mark.spec("DEPTH-1")
def test_depths_within_limits_reads_a_generator_of_requests() -> None:
    r = request(xfer=1, num_wrs=1, wrs_posted=1, wrs_outstanding=1)
    passes(checks.depths_within_limits, busy_qpair(), (x for x in [r]))


# ------------------------------------------------------------------------------ CFG-1


def _pools_for(opts: Options) -> tuple[PoolCounts, PoolCounts]:
    return (idle_pool(opts.wr_pool_capacity, 0), idle_pool(opts.num_shared_buffers, 0))


@pytest.mark.spec("CFG-1")
@pytest.mark.parametrize("opts", [Options(), Options(wr_pool_size=3000),
                                  Options(max_queue_depth=32, wr_pool_multiplier=3)],
                         ids=["default", "explicit-pool", "multiplier"])
def test_options_honoured_passes_when_everything_is_as_configured(opts: Options) -> None:
    passes(checks.options_honoured, opts, opts, *_pools_for(opts))
    # max_send_depth 0 means "derived": the resolved value differs and that is fine
    resolved = dataclasses.replace(opts, max_send_depth=2 * opts.max_queue_depth)
    passes(checks.options_honoured, opts, resolved, *_pools_for(opts))


@pytest.mark.spec("CFG-1")
def test_options_honoured_catches_a_wr_pool_capacity_mismatch() -> None:
    opts = Options()
    wr, buf = _pools_for(opts)
    msg = violates("CFG-1", checks.options_honoured, opts, opts, idle_pool(1024, 0), buf)
    assert "capacity 1024" in msg and "128 x wr_pool_multiplier 16 = 2048" in msg
    sized = Options(wr_pool_size=3000)
    msg = violates("CFG-1", checks.options_honoured, sized, sized, wr, buf)
    assert "wr_pool_size 3000 = 3000" in msg and "capacity 2048" in msg


@pytest.mark.spec("CFG-1")
def test_options_honoured_catches_a_buffer_count_mismatch() -> None:
    opts = Options()
    wr, _ = _pools_for(opts)
    msg = violates("CFG-1", checks.options_honoured, opts, opts, wr, idle_pool(4096, 0))
    assert "4096 shared buffers, configured 4095" in msg


@pytest.mark.spec("CFG-1")
@pytest.mark.parametrize("name", ["max_queue_depth", "max_io_size", "io_unit_size",
                                  "in_capsule_data_size", "max_read_depth", "max_sge",
                                  "num_poll_groups", "wr_cache_size", "buf_cache_size"])
def test_options_honoured_catches_an_option_not_in_effect(name: str) -> None:
    opts = Options()
    effective = dataclasses.replace(opts, **{name: getattr(opts, name) + 1})
    msg = violates("CFG-1", checks.options_honoured, opts, effective, *_pools_for(opts))
    assert name in msg


@pytest.mark.spec("CFG-1")
@pytest.mark.parametrize("name,value", [("max_send_depth", 64), ("max_sgl_descriptors", 4)])
def test_options_honoured_catches_an_explicit_option_ignored(name: str, value: int) -> None:
    opts = Options(**{name: value})
    effective = dataclasses.replace(opts, **{name: value * 2})
    violates("CFG-1", checks.options_honoured, opts, effective, *_pools_for(opts))


@pytest.mark.spec("CFG-1")
def test_refusal_explained_passes_when_target_and_contract_agree() -> None:
    passes(checks.refusal_explained, None, None, None)                 # valid, accepted
    passes(checks.refusal_explained, "io_unit_size 0", "io_unit_size 0 out of range", None)
    passes(checks.refusal_explained, "pool too small",
           "data-WR pool of 100 could deadlock: minimum is 2048", 2048)


@pytest.mark.spec("CFG-1")
def test_refusal_explained_catches_valid_options_refused() -> None:
    msg = violates("CFG-1", checks.refusal_explained, None, "max_sge 16 out of range", None)
    assert "valid options refused: max_sge 16 out of range" in msg


@pytest.mark.spec("CFG-1")
def test_refusal_explained_catches_invalid_options_accepted() -> None:
    msg = violates("CFG-1", checks.refusal_explained, "max_queue_depth 0", None, None)
    assert "accepted although max_queue_depth 0" in msg
    violates("CFG-1", checks.refusal_explained, "pool too small", None, 2048)


@pytest.mark.spec("CFG-1")
def test_refusal_explained_catches_a_refusal_not_naming_the_minimum() -> None:
    msg = violates("CFG-1", checks.refusal_explained, "pool too small",
                   "data-WR pool of 100 could deadlock", 2048)
    assert "minimum 2048" in msg


@pytest.mark.spec("CFG-1")
def test_refusal_explained_catches_a_refusal_naming_another_number() -> None:
    violates("CFG-1", checks.refusal_explained, "pool too small",
             "data-WR pool of 100 could deadlock: minimum is 20480", 2048)


# ----------------------------------------------------------------------------- LIVE-1/2


@pytest.mark.spec("LIVE-1")
def test_no_stall_passes_when_quiescent_and_everything_answered() -> None:
    ok = DrainResult(rounds=3, quiescent=True, stalled=False, progress=12)
    passes(checks.no_stall, ok, {})
    passes(checks.no_stall, ok, {4097: [], 4098: ()}, "detail")


@pytest.mark.spec("LIVE-1")
def test_no_stall_catches_a_stall() -> None:
    stalled = DrainResult(rounds=5, quiescent=False, stalled=True, progress=0)
    msg = violates("LIVE-1", checks.no_stall, stalled, {4097: [3, 1], 4098: []},
                   "qpair 4097 cid 1 in NEED_BUFFER")
    assert "stall" in msg and "after 5 round(s)" in msg
    assert "2 command(s) unanswered {4097: [1, 3]}" in msg
    assert msg.endswith("qpair 4097 cid 1 in NEED_BUFFER")


@pytest.mark.spec("LIVE-1")
def test_no_stall_catches_a_stall_with_nothing_waiting_on_the_host() -> None:
    stalled = DrainResult(rounds=5, quiescent=False, stalled=True, progress=0)
    violates("LIVE-1", checks.no_stall, stalled, {})


@pytest.mark.spec("LIVE-1")
def test_no_stall_catches_not_quiescent_within_the_bound() -> None:
    busy = DrainResult(rounds=64, quiescent=False, stalled=False, progress=640)
    msg = violates("LIVE-1", checks.no_stall, busy, {})
    assert "not quiescent after 64 rounds" in msg


@pytest.mark.spec("LIVE-1")
def test_no_stall_catches_quiescent_but_unanswered() -> None:
    done = DrainResult(rounds=3, quiescent=True, stalled=False, progress=7)
    msg = violates("LIVE-1", checks.no_stall, done, {4097: [], 4098: [5]})
    assert "1 command(s) on live qpairs never answered: {4098: [5]}" in msg


@pytest.mark.spec("LIVE-2")
def test_admin_not_starved() -> None:
    passes(checks.admin_not_starved, "keep_alive", True, 16, 40)
    msg = violates("LIVE-2", checks.admin_not_starved, "keep_alive", False, 16, 40)
    assert "keep_alive" in msg and "16" in msg and "40 IO request(s)" in msg


# ------------------------------------------------------------------------------- CQE-1


@pytest.mark.spec("CQE-1")
def test_response_expected_passes_for_an_outstanding_cid() -> None:
    passes(checks.response_expected, 4097, 3, True, False, False)


@pytest.mark.spec("CQE-1")
@pytest.mark.parametrize("outstanding,already,flag,words", [
    (False, False, False, "not outstanding"),      # unknown CID
    (True, False, True, "not outstanding"),        # the host itself flags it unexpected
    (False, False, True, "not outstanding"),
    (True, True, False, "second response"),
], ids=["unknown", "flagged", "both", "second"])
def test_response_expected_catches_an_unexpected_response(outstanding: bool, already: bool,
                                                          flag: bool, words: str) -> None:
    msg = violates("CQE-1", checks.response_expected, 4097, 3, outstanding, already, flag)
    assert words in msg and "CID 3" in msg and "qpair 4097" in msg


@pytest.mark.spec("CQE-1", "ERR-1")
@pytest.mark.parametrize("spec", ["CQE-1", "ERR-1"])
def test_status_as_expected(spec: str) -> None:
    passes(checks.status_as_expected, spec, 4097, 3, "read", 0, (0,))
    passes(checks.status_as_expected, spec, 4097, 3, "read", 0x0006, iter((0, 0x0006)))
    msg = violates(spec, checks.status_as_expected, spec, 4097, 3, "read lba 0+1", 0x0002,
                   (0, 0x0006))
    assert "CID 3 (read lba 0+1) answered 0x0002, expected 0x0000 or 0x0006" in msg


@pytest.mark.spec("CQE-1")
def test_status_as_expected_marks_cqe1() -> None:
    violates("CQE-1", checks.status_as_expected, "CQE-1", 1, 1, "connect", 1, (0,))


@pytest.mark.spec("ERR-1")
def test_status_as_expected_marks_err1() -> None:
    violates("ERR-1", checks.status_as_expected, "ERR-1", 1, 1, "flush", 0, (1,))


# ------------------------------------------------------------------------------ DATA-1


@pytest.mark.spec("DATA-1")
def test_bytes_match_passes_when_a_candidate_matches() -> None:
    old, new = bytes(16), bytes(range(16))
    passes(checks.bytes_match, "block 0", new, (new,))
    passes(checks.bytes_match, "block 0", new, (old, new))
    passes(checks.bytes_match, "block 0", old, iter([old, new]))


@pytest.mark.spec("DATA-1")
def test_bytes_match_catches_no_candidate_and_names_the_first_differing_byte() -> None:
    want = bytes(range(16))
    got = bytearray(want)
    got[5] ^= 0xFF
    got[9] ^= 0xFF
    msg = violates("DATA-1", checks.bytes_match, "qpair 1 CID 2, block 7", bytes(got),
                   (want, bytes(16)))
    assert "qpair 1 CID 2, block 7" in msg
    assert "16 bytes differ from every one of 2 possible version(s)" in msg
    assert msg.endswith("first difference at byte 5")


@pytest.mark.spec("DATA-1")
def test_bytes_match_catches_a_short_read() -> None:
    want = bytes(range(16))
    msg = violates("DATA-1", checks.bytes_match, "b", want[:10], (want,))
    assert msg.endswith("first difference at byte 10")


@pytest.mark.spec("DATA-1")
def test_bytes_match_catches_anything_when_there_is_no_candidate() -> None:
    msg = violates("DATA-1", checks.bytes_match, "b", b"x", ())
    assert "0 possible version(s)" in msg


@pytest.mark.spec("DATA-1")
def test_bytes_match_catches_sge_order_swapped_across_blocks() -> None:
    """Two 512-byte blocks of distinct pattern data land in the wrong order."""
    from conformance.model import pattern

    data = pattern(1, 10, 1024, 512)
    swapped = data[512:] + data[:512]
    violates("DATA-1", checks.bytes_match, "b", swapped, (data,))
    # cut at a non-16-byte boundary inside one block: also caught
    violates("DATA-1", checks.bytes_match, "b", data[100:512] + data[:100], (data[:512],))


@pytest.mark.spec("DATA-1")
def test_bytes_match_catches_sge_order_swapped_inside_a_block() -> None:
    from conformance.model import pattern

    block = pattern(1, 10, 512, 512)
    swapped = block[256:] + block[:256]     # two SGEs of 256 bytes, delivered in reverse
    violates("DATA-1", checks.bytes_match, "b", swapped, (block,))


# ------------------------------------------------------------------------------ SHUT-1


@pytest.mark.spec("SHUT-1", "POOL-2")
def test_shutdown_released_passes_on_an_exact_report() -> None:
    passes(checks.shutdown_released, report(2048, 4095, requests_released=7), 2048, 4095, 7)


@pytest.mark.spec("SHUT-1")
@pytest.mark.parametrize("kw,words", [
    ({"wr_returned": 2040, "message": "data-WR pool returned 2040 of 2048"},
     "2040 of 2048 data WRs"),
    ({"buf_returned": 4000}, "4000 of 4095 buffers"),
    ({"wr_returned": 0, "buf_returned": 0}, "0 of 2048 data WRs and 0 of 4095"),
], ids=["wrs", "bufs", "both"])
def test_shutdown_released_catches_anything_not_released(kw: dict[str, Any], words: str
                                                         ) -> None:
    msg = violates("SHUT-1", checks.shutdown_released, report(**kw), 2048, 4095, 12)
    assert words in msg and "12 request(s) in flight" in msg
    assert f"target says: {kw.get('message') or 'nothing'}" in msg


@pytest.mark.spec("POOL-2")
def test_shutdown_released_still_checks_the_report_itself() -> None:
    """All counts back, but the report is wrong: that is POOL-2 (destroy_report_exact)."""
    violates("POOL-2", checks.shutdown_released, report(wr_expected=4096), 2048, 4095, 3)
    violates("POOL-2", checks.shutdown_released, report(message="leak"), 2048, 4095, 3)


@pytest.mark.spec("SHUT-1")
def test_qpair_released() -> None:
    passes(checks.qpair_released, None, "failed qpair")
    q = busy_qpair(state=QpState.ERROR)
    msg = violates("SHUT-1", checks.qpair_released, q, "failed qpair (qid 1, group 0)")
    assert "failed qpair (qid 1, group 0)" in msg and "qpair 4097" in msg
    assert "state ERROR" in msg
    # even one that holds nothing: a failed qpair must be gone
    violates("SHUT-1", checks.qpair_released, qpair(state=QpState.DESTROYED), "x")


@pytest.mark.spec("SHUT-1")
def test_connection_released() -> None:
    passes(checks.connection_released, conn(state=4, target_qp_state=0), "failed qpair")
    msg = violates("SHUT-1", checks.connection_released, conn(target_qp_state=6),
                   "failed qpair (qid 1, group 0)")
    assert "QP 512 is still on the fabric (state 6)" in msg


# ------------------------------------------------------- parts a target does not declare


@pytest.mark.spec("POOL-2", "POOL-3")
def test_pools_not_declared_are_not_judged() -> None:
    """A pool passed as None (the target does not declare it) is not judged, and without
    held counts only what came back is."""
    short = idle_pool(64, 0)
    passes(checks.pool_returned_at_quiescence, None, None, 128, 256)
    passes(checks.pool_returned_at_quiescence, short, None, 64, 256)
    violates("POOL-3", checks.pool_returned_at_quiescence, None, short, 64, 128)
    # nothing said about held: judged by what is back only
    held_unknown = pool(64, 56, 8, 5)
    passes(checks.pool_returned_at_quiescence, held_unknown, None, 64, 0, held=False)
    msg = violates("POOL-2", checks.pool_returned_at_quiescence, pool(64, 50, 8, 0), None,
                   64, 0, held=False)
    assert "returned 58 of 64 at quiescence" in msg and "held" not in msg


@pytest.mark.spec("POOL-2", "POOL-3")
def test_destroy_report_parts_not_declared_are_not_judged() -> None:
    passes(checks.destroy_report_exact, report(buf_returned=0, buf_expected=0), 2048, None)
    passes(checks.destroy_report_exact, report(wr_returned=0, wr_expected=0), None, 4095)
    violates("POOL-3", checks.destroy_report_exact, report(buf_returned=1), None, 4095)
    # without the target's own audit: its expected counts and complaints are not judged
    passes(checks.destroy_report_exact, report(wr_expected=1, buf_expected=1,
                                               message="count is 2048 but should be 1"),
           2048, 4095, audit=False)
    msg = violates("POOL-2", checks.destroy_report_exact, report(wr_returned=2040,
                                                                 message="short"),
                   2048, 4095, audit=False)
    assert "target says: short" in msg
    # a complaint cannot be judged against counts that were not judged
    passes(checks.destroy_report_exact, report(message="buffers short"), 2048, None)


@pytest.mark.spec("SHUT-1")
def test_shutdown_released_judges_only_the_pools_given() -> None:
    passes(checks.shutdown_released, report(buf_returned=0, buf_expected=0), 2048, None, 1)
    msg = violates("SHUT-1", checks.shutdown_released, report(wr_returned=1), 2048, None, 1)
    assert "1 of 2048 data WRs" in msg and "buffers" not in msg


@pytest.mark.spec("POOL-3")
def test_slots_without_request_states_and_buffers_without_a_pool() -> None:
    """free_state None (no request states declared): the per-state counts are not read."""
    nonsense = busy_qpair(req_states=states(FREE=4, NEW=3))
    passes(conserved, None, [nonsense], None)
    violates("POOL-3", conserved, None, [nonsense])
    violates("POOL-3", conserved, None, [qpair(slots_free=3)], None)


@pytest.mark.spec("DEPTH-1")
def test_depths_without_requests_or_slots() -> None:
    r = request(xfer=1, num_wrs=2, wrs_posted=2, wrs_outstanding=2)
    passes(checks.depths_within_limits, busy_qpair(), None)     # no requests: no cross-check
    violates("DEPTH-1", checks.depths_within_limits, busy_qpair(), [r])
    passes(checks.depths_within_limits, busy_qpair(state=QpState.ERROR, slots_used=9), None,
           slots=False)
    violates("DEPTH-1", checks.depths_within_limits, busy_qpair(state=QpState.ERROR,
                                                                host_outstanding=5), None,
             slots=False)


@pytest.mark.spec("CFG-1")
def test_options_honoured_without_pools() -> None:
    opts = Options()
    passes(checks.options_honoured, opts, opts, None, None)
    passes(checks.options_honoured, opts, opts, None, idle_pool(4095, 0))
    violates("CFG-1", checks.options_honoured, opts, opts, None, idle_pool(4094, 0))
    violates("CFG-1", checks.options_honoured, opts, dataclasses.replace(opts, max_sge=1),
             None, None)


@pytest.mark.spec("STATS-1")
def test_group_stats_without_request_states() -> None:
    passes(checks.group_stats_agree, 0, gstats(pending=7), 10, 4, 12, None, 2)
    violates("STATS-1", checks.group_stats_agree, 0, gstats(), 11, 4, 12, None, 2)


@pytest.mark.spec("LIVE-2")
def test_a_probe_left_waiting_for_a_shared_receive_is_not_judged() -> None:
    passes(checks.admin_not_starved, "keep-alive", False, 4, 3, True)
    violates("LIVE-2", checks.admin_not_starved, "keep-alive", False, 4, 3, False)


def test_admin_not_starved_where_nothing_says_how_much_io_waits() -> None:
    msg = violates("LIVE-2", checks.admin_not_starved, "keep-alive", False, 4, None)
    assert "while IO may have waited for buffers" in msg


@pytest.mark.spec("ERR-1")
def test_malformed_answered_without_slots_receives_or_states() -> None:
    """receives False / free_state None: the counts the target does not declare are not
    read; what the host saw still is."""
    q = qpair()
    unknown = qpair(slots_used=3, recv_posted=0, recv_held=2, req_states=states(NEW=4))
    checks.malformed_answered("k", q.id, 7, [OK_RSP], (INVALID_OPCODE,), q, unknown,
                              free_state=None, receives=False)
    with pytest.raises(PropertyViolation, match="1 capsule"):
        checks.malformed_answered("k", q.id, 7, [OK_RSP], (INVALID_OPCODE,), q,
                                  dataclasses.replace(unknown, host_outstanding=1),
                                  free_state=None, receives=False)
    with pytest.raises(PropertyViolation, match="not FREE"):
        checks.malformed_answered("k", q.id, 7, [OK_RSP], (INVALID_OPCODE,), q, unknown,
                                  free_state=S.FREE, receives=False)


# ------------------------------------------------------------------------------- ERR-1

INVALID_OPCODE = int(Status.INVALID_OPCODE)
OK_RSP = Response(cid=7, status=INVALID_OPCODE, sqhd=0, result=0, unexpected=False)


def _answered(responses: list[Response] | None = None, after: QpairInfo | None | str = "same",
              before: QpairInfo | None = None, allowed: tuple[int, ...] = (INVALID_OPCODE,)
              ) -> None:
    before = before or qpair()
    checks.malformed_answered("io_invalid_opcode", before.id, 7,
                              [OK_RSP] if responses is None else responses, allowed,
                              before, before if after == "same" else after,
                              free_state=S.FREE, receives=True)


@pytest.mark.spec("ERR-1")
def test_malformed_answered_passes_on_a_clean_answer() -> None:
    passes(_answered)
    passes(_answered, [dataclasses.replace(OK_RSP, status=0x0002)],
           allowed=(INVALID_OPCODE, 0x0002))
    conn = qpair(state=QpState.CONNECTING)
    passes(_answered, before=conn, after=conn)


@pytest.mark.spec("ERR-1")
@pytest.mark.parametrize("responses,words", [
    ([], "no response"),
    ([dataclasses.replace(OK_RSP, cid=8)], "no response"),
    ([OK_RSP, OK_RSP], "2 responses"),
    ([OK_RSP, dataclasses.replace(OK_RSP, cid=8)], "2 responses, CIDs [7, 8]"),
    ([dataclasses.replace(OK_RSP, unexpected=True)], "flagged unexpected"),
    ([dataclasses.replace(OK_RSP, status=0)], "answered 0x0000 SUCCESS, expected 0x0001"),
], ids=["none", "other-cid", "twice", "extra", "unexpected", "status"])
def test_malformed_answered_catches_a_wrong_answer(responses: list[Response],
                                                   words: str) -> None:
    msg = violates("ERR-1", _answered, responses)
    assert words in msg and "io_invalid_opcode on qpair 4097 CID 7" in msg


@pytest.mark.spec("ERR-1")
@pytest.mark.parametrize("after,words", [
    (None, "destroyed (was ACTIVE)"),
    (qpair(state=QpState.ERROR), "ACTIVE -> ERROR"),
    (qpair(slots_used=1, slots_free=3, req_states=states(FREE=3, NEW=1)),
     "1 request slot(s)"),
    (qpair(req_states=states(FREE=3, COMPLETING=1)), "(1 request(s) not FREE)"),
    (qpair(host_outstanding=1), "1 capsule(s) outstanding"),
    (qpair(host_unreaped=1), "1 response(s) unreaped"),
    (qpair(recv_posted=3, recv_idle=1), "3 of 4 receive WR(s) posted"),
    (qpair(recv_posted=3, recv_held=1), "1 held"),
    (qpair(recv_posted=4, recv_held=1), "4 of 4 receive WR(s) posted, 1 held"),
    (qpair(recv_posted=3, recv_in_cq=1), "3 of 4 receive WR(s) posted"),
], ids=["destroyed", "state", "slot", "not-free", "outstanding", "unreaped", "recv-idle",
        "recv-held", "recv-held-extra", "recv-in-cq"])
def test_malformed_answered_catches_something_not_released(after: QpairInfo | None,
                                                           words: str) -> None:
    msg = violates("ERR-1", _answered, after=after)
    assert words in msg


@pytest.mark.spec("ERR-1")
def test_call_refused() -> None:
    code = int(ErrorCode.NOTCONN)
    good = TargetError(code, "qpair 4097 is not connected")
    passes(checks.call_refused, "submit", good, code, ("4097", "not connected"))
    passes(checks.call_refused, "submit", good, code)
    passes(checks.call_refused, "opts", OptionsRefused(int(ErrorCode.INVAL), "max_sge 0"),
           int(ErrorCode.INVAL), ("max_sge",))
    assert "accepted" in violates("ERR-1", checks.call_refused, "submit", None, code, ())
    assert "raised ValueError: boom" in violates("ERR-1", checks.call_refused, "submit",
                                                 ValueError("boom"), code, ())
    assert f"refused with code {code}" in violates("ERR-1", checks.call_refused, "submit",
                                                   good, int(ErrorCode.NOENT), ())
    assert "does not say 4098" in violates("ERR-1", checks.call_refused, "submit", good,
                                           code, ("4097", "4098"))
    assert "anything" in violates("ERR-1", checks.call_refused, "submit",
                                  TargetError(code, "  "), code, ())


# ----------------------------------------------------------------------------- STATS


def gstats(polls: int = 10, idle: int = 4, completions: int = 12, pending: int = 1,
           qpairs: int = 2) -> GroupStats:
    return GroupStats(polls, idle, completions, 5, pending, qpairs, 0, 0, 0)


def test_group_stats_agree_with_what_the_harness_saw() -> None:
    checks.group_stats_agree(0, gstats(), 10, 4, 12, 1, 2)


@pytest.mark.parametrize("seen, field", [
    ((11, 4, 12, 1, 2), "polls"),
    ((10, 3, 12, 1, 2), "idle_polls"),
    ((10, 4, 13, 1, 2), "completions"),
    ((10, 4, 12, 0, 2), "pending_data_buffer"),
    ((10, 4, 12, 1, 3), "num_qpairs"),
])
def test_group_stats_that_disagree_fail_stats_1(seen: tuple[int, ...], field: str) -> None:
    with pytest.raises(PropertyViolation, match=rf"^STATS-1: poll group 0 reports {field} ="):
        checks.group_stats_agree(0, gstats(), *seen)


def test_completions_reaped_match_the_fabric() -> None:
    checks.completions_accounted(40, 40)
    with pytest.raises(PropertyViolation, match=r"^STATS-1: .* 39 completions reaped, .* 40"):
        checks.completions_accounted(39, 40)


# ------------------------------------------------------------- every check, every hook


def test_every_public_check_is_covered_here() -> None:
    """A new check added to checks.py must get its tests in this file."""
    import inspect

    public = {n for n, f in vars(checks).items()
              if inspect.isfunction(f) and f.__module__ == checks.__name__
              and not n.startswith("_") and n != "fail"}
    covered = {
        "wr_pool_conserved", "pool_returned_at_quiescence", "destroy_report_exact",
        "buffers_and_slots_conserved", "transitions_legal", "requests_consistent",
        "depths_within_limits", "options_honoured", "refusal_explained", "no_stall",
        "admin_not_starved", "response_expected", "status_as_expected", "bytes_match",
        "shutdown_released", "qpair_released", "connection_released", "malformed_answered",
        "call_refused",
        "group_stats_agree", "completions_accounted", "target_survived", "violation",
        "connect_answered", "connect_refused", "connect_joined",
        # black-box forms for a remote target (the hardware tier)
        "responses_well_formed", "answered_within", "connection_kept",
        "malformed_answered_on_wire", "cm_answered_on_wire", "reconnected",
        "remote_counters_monotonic", "remote_counters_moved", "remote_qpairs_back",
        "remote_pending_drained", "target_log_clean",
    }
    assert public == covered


# ------------------------------------------------------------------------------ CONN-1


def conn(**kw: Any) -> ConnInfo:
    """An accepted connection: CRQSIZE 8, 32 bytes of accept data with RECFMT 0, target
    qpair 4097, the target asking the host for 4 outstanding RDMA READs."""
    accepted = ConnInfo(conn=1, state=ConnInfo.ESTABLISHED, qpair=4097, reject_sts=0,
                        reject_recfmt=0, crqsize=8, accept_recfmt=0, accept_len=32,
                        initiator_depth=0, responder_resources=4, reserved=0, host_qp_num=256,
                        target_qp_num=512, host_qp_state=3, target_qp_state=3)
    return dataclasses.replace(accepted, **kw)


def rejected(sts: int = 0x05, **kw: Any) -> ConnInfo:
    """A rejected connection: 4 bytes of reject data (RECFMT 0, STS ``sts``), no qpair."""
    fields = {"state": ConnInfo.REJECTED, "qpair": -1, "reject_sts": sts, "crqsize": 0,
              "accept_len": 4, "responder_resources": 0, "target_qp_num": 0, **kw}
    return conn(**fields)


def _cm(info: ConnInfo, allowed: tuple[int | str, ...] = ("accept",), depth: int = 8,
        ird: int = 16, q: QpairInfo | None | str = "auto") -> None:
    checks.connect_answered("valid", allowed, info, depth, ird,
                            qpair(depth=8, recv_posted=8, slots_free=8,
                                  req_states=states(FREE=8)) if q == "auto" else q)


@pytest.mark.spec("CONN-1")
def test_connect_answered_passes_on_a_right_answer() -> None:
    passes(_cm, conn())
    passes(_cm, conn(), q=None)
    passes(_cm, conn(), ("accept", 0x07), ird=4)
    passes(_cm, rejected(0x05), (0x05, 0x04), q=None)
    passes(_cm, rejected(0x07), (0x07,), q=None)


@pytest.mark.spec("CONN-1")
@pytest.mark.parametrize("info,kw,words", [
    (conn(), {"allowed": (0x05,)}, "accepted with CRQSIZE 8, expected reject STS 05h"),
    (conn(accept_len=4), {}, "accept private data of 4 bytes"),
    (conn(accept_recfmt=1), {}, "with RECFMT 1"),
    (conn(crqsize=7), {}, "CRQSIZE 7, the negotiated depth is 8"),
    (conn(), {"depth": 16}, "CRQSIZE 8, the negotiated depth is 16"),
    (conn(qpair=-1), {"q": None}, "the target has no qpair for it"),
    (conn(), {"q": qpair(depth=4)}, "qpair 4097 has depth 4"),
    (conn(responder_resources=16), {"ird": 4}, "16 RDMA READs outstanding, the host offered IRD 4"),
    (conn(responder_resources=1), {"ird": 0}, "offered IRD 0"),
    (rejected(0x05), {"allowed": ("accept",)}, "reject STS 05h INVALID_HRQSIZE, expected accept"),
    (rejected(0x04), {"allowed": (0x05,)}, "STS 04h INVALID_HSQSIZE, expected reject STS 05h"),
    (rejected(0x07), {"allowed": ("accept",)}, "STS 07h INVALID_IRD, expected accept"),
    (rejected(0x05, accept_len=0), {"allowed": (0x05,)}, "0 bytes of private data"),
    (rejected(0x05, reject_recfmt=1), {"allowed": (0x05,)}, "reject RECFMT 1"),
    (rejected(0x05, qpair=4097), {"allowed": (0x05,)}, "target qpair 4097 exists"),
    (conn(state=1), {}, "neither accepted nor rejected (connection state 1)"),
], ids=["accepted-not-rejected", "accept-len", "accept-recfmt", "crqsize", "depth", "no-qpair",
        "qpair-depth", "ird", "ird-0", "rejected-not-accepted", "wrong-sts", "ird-reject",
        "reject-len", "reject-recfmt", "reject-qpair", "pending"])
def test_connect_answered_catches_a_wrong_answer(info: ConnInfo, kw: dict[str, Any],
                                                 words: str) -> None:
    msg = violates("CONN-1", _cm, info, **kw)
    assert words in msg and "valid connect (connection 1)" in msg


CONNECT_OK = Response(cid=3, status=0, sqhd=0, result=0x0001, unexpected=False)
#: Connect Invalid Parameters naming SUBNQN: IATTR 1 (in the data), IPO 256.
BAD_SUBNQN = Response(cid=3, status=0x0182, sqhd=0, result=1 << 16 | 256, unexpected=False)


@pytest.mark.spec("CONN-1")
def test_connect_refused() -> None:
    passes(checks.connect_refused, "admin Connect", BAD_SUBNQN, True, 256)
    passes(checks.connect_refused, "I/O Connect", dataclasses.replace(
        BAD_SUBNQN, result=1 << 16 | 16), True, 16)
    passes(checks.connect_refused, "I/O Connect", dataclasses.replace(
        BAD_SUBNQN, result=42), False, 42)
    assert "no response" in violates("CONN-1", checks.connect_refused, "c", None, True, 256)
    assert "answered 0x0000 SUCCESS, expected 0x0182" in violates(
        "CONN-1", checks.connect_refused, "c", CONNECT_OK, True, 256)
    assert "answered 0x0184" in violates("CONN-1", checks.connect_refused, "c",
                                         dataclasses.replace(BAD_SUBNQN, status=0x0184),
                                         True, 256)
    assert "IATTR 1 IPO 256, expected the parameter at byte 16" in violates(
        "CONN-1", checks.connect_refused, "c", BAD_SUBNQN, True, 16)
    assert "IATTR 0 IPO 256" in violates("CONN-1", checks.connect_refused, "c",
                                         dataclasses.replace(BAD_SUBNQN, result=256), True, 256)
    assert "of the Connect SQE" in violates("CONN-1", checks.connect_refused, "c", BAD_SUBNQN,
                                            False, 256)


@pytest.mark.spec("CONN-1")
def test_connect_joined() -> None:
    passes(checks.connect_joined, "admin Connect", CONNECT_OK, None, qpair(cntlid=1))
    passes(checks.connect_joined, "admin Connect", dataclasses.replace(CONNECT_OK, result=0),
           None)
    passes(checks.connect_joined, "I/O Connect", CONNECT_OK, 1, qpair(cntlid=1))
    assert "no response" in violates("CONN-1", checks.connect_joined, "c", None, None)
    assert "answered 0x0182 CONNECT_INVALID_PARAM, expected success" in violates(
        "CONN-1", checks.connect_joined, "c", BAD_SUBNQN, None)
    assert "0xfff0 is not one of the dynamic model" in violates(
        "CONN-1", checks.connect_joined, "c", dataclasses.replace(CONNECT_OK, result=0xFFF0),
        None)
    assert "joined controller 0x0001, the Connect named 0x0002" in violates(
        "CONN-1", checks.connect_joined, "c", CONNECT_OK, 2)
    assert "qpair 4097 belongs to 0x0002" in violates(
        "CONN-1", checks.connect_joined, "c", CONNECT_OK, 1, qpair(cntlid=2))


@pytest.mark.spec("ERR-1")
def test_malformed_answered_state_after() -> None:
    """A kind whose command connects its queue (a Connect with only reserved fields set)
    must leave it ACTIVE; any other kind must not change the state."""
    answered_in = functools.partial(checks.malformed_answered, free_state=S.FREE,
                                    receives=True)
    connecting = qpair(state=QpState.CONNECTING)
    passes(answered_in, "k", 4097, 7, [OK_RSP], (INVALID_OPCODE,), connecting,
           qpair(), QpState.ACTIVE)
    assert "CONNECTING -> CONNECTING, expected ACTIVE" in violates(
        "ERR-1", answered_in, "k", 4097, 7, [OK_RSP], (INVALID_OPCODE,),
        connecting, connecting, QpState.ACTIVE)
    assert "a command error must not change it" in violates(
        "ERR-1", answered_in, "k", 4097, 7, [OK_RSP], (INVALID_OPCODE,),
        connecting, qpair())


# --------------------------------------------------- a target's declared graph is sound


def _reachable(start: int, edges: frozenset[tuple[int, int]]) -> set[int]:
    seen, todo = {start}, deque([start])
    while todo:
        s = todo.popleft()
        for a, b in edges:
            if a == s and b not in seen:
                seen.add(b)
                todo.append(b)
    return seen


@pytest.fixture(scope="module")
def selected() -> TargetDescription:
    """What the target under test (``--nrt-target``) declares."""
    from conformance import judging

    return judging.describe_target()


@pytest.fixture(scope="module")
def builtin() -> TargetDescription:
    from conformance import judging
    from impl import backends

    return judging.describe_target(backends.builtin())


@pytest.mark.spec("SM-1")
def test_declared_graph_is_a_lifecycle(selected: TargetDescription) -> None:
    """SM-1 judges against the graph a target declares, so that graph must be a request
    lifecycle: every state reachable from the free state, the free state reachable from
    every state (no request can be trapped), no self-loops, only declared states and
    queues, the free state on no queue."""
    d = selected
    states_ = set(range(d.num_states))
    assert {x for edge in d.legal for x in edge} <= states_
    reach = _reachable(d.free_state, d.legal)
    assert reach == states_, f"unreachable from {d.state_name(d.free_state)}: " \
        f"{sorted(d.state_name(s) for s in states_ - reach)}"
    trapped = [d.state_name(s) for s in states_ if d.free_state not in _reachable(s, d.legal)]
    assert not trapped, f"cannot return to the free state from {trapped}"
    assert not any(a == b for a, b in d.legal)
    assert set(d.queue_of_state) == states_
    assert set(d.queue_of_state.values()) <= {int(q) for q in Queue}
    assert d.queue_of_state[d.free_state] == Queue.NONE
    assert len(set(d.state_names)) == d.num_states, "state names must be distinct"


@pytest.mark.spec("SM-1")
def test_builtin_graph_completed_only_frees_and_free_only_starts(builtin: TargetDescription
                                                                 ) -> None:
    n = {name: i for i, name in enumerate(builtin.state_names)}
    legal = builtin.legal
    assert {b for a, b in legal if a == n["COMPLETED"]} == {n["FREE"]}
    assert {b for a, b in legal if a == n["FREE"]} == {n["NEW"]}
    assert {a for a, b in legal if b == n["FREE"]} == {n["COMPLETED"]}


@pytest.mark.spec("SM-1")
def test_builtin_graph_waiting_states_leave_only_through_their_completion(
        builtin: TargetDescription) -> None:
    n = {name: i for i, name in enumerate(builtin.state_names)}
    out = {s: {b for a, b in builtin.legal if a == s} for s in range(builtin.num_states)}
    assert out[n["EXECUTING"]] == {n["EXECUTED"]}
    assert out[n["TRANSFERRING_C2H"]] == {n["COMPLETED"]}
    assert out[n["COMPLETING"]] == {n["COMPLETED"]}


@pytest.mark.spec("SM-1")
def test_builtin_queue_of_state_maps_each_pending_queue_to_one_state(
        builtin: TargetDescription) -> None:
    queued = {s: q for s, q in builtin.queue_of_state.items() if q != Queue.NONE}
    assert set(queued.values()) == {q for q in Queue if q != Queue.NONE}
    assert len(set(queued.values())) == len(queued)


def test_hand_made_description_matches_the_builtin_lifecycle_by_name(
        builtin: TargetDescription) -> None:
    """DESC above is the built-in lifecycle under another numbering: the same edges by name."""
    by_name = {(DESC.state_name(a), DESC.state_name(b)) for a, b in DESC.legal}
    assert by_name == {(builtin.state_name(a), builtin.state_name(b)) for a, b in builtin.legal}
    assert DESC.free_state != builtin.free_state


# ------------------------------------------------------------------------------ CRASH-1


class _Crash(Exception):
    def __init__(self, report: str = ""):
        super().__init__("target crashed: SIGSEGV in nrt_rig_run(...)")
        self.kind, self.report = "signal", report


@pytest.mark.spec("CRASH-1")
def test_target_survived() -> None:
    passes(checks.target_survived, None, "submit (step 3)")
    msg = violates("CRASH-1", checks.target_survived, _Crash(), "submit (step 3)")
    assert msg == "CRASH-1: target crashed: SIGSEGV in nrt_rig_run(...) during submit (step 3)"
    msg = violates("CRASH-1", checks.target_survived,
                   _Crash("==1==ERROR: AddressSanitizer: heap-use-after-free"), "storm")
    assert "the target's last words:\n==1==ERROR: AddressSanitizer" in msg


@pytest.mark.spec("CRASH-1")
def test_a_crash_report_is_quoted_once() -> None:
    from impl.isolation import TargetCrashed

    crash = TargetCrashed("hang", "nrt_rig_run(...)", report="backtrace: frame one",
                          detail="no reply within 30 s, killed")
    msg = violates("CRASH-1", checks.target_survived, crash, "storm (step 3)")
    assert msg.count("frame one") == 1
    assert msg.splitlines()[0] == ("CRASH-1: target crashed: hang in nrt_rig_run(...) (no reply "
                                   "within 30 s, killed) during storm (step 3); the target's "
                                   "last words:")


def test_each_property_fails_as_a_type_of_its_own() -> None:
    """Hypothesis tells failures apart by type and place: all are raised in checks.fail, so
    each property needs its own type, or shrinking wanders between properties."""
    import pickle

    a, b = checks.violation("POOL-2", "x"), checks.violation("SHUT-1", "y")
    assert isinstance(a, PropertyViolation) and type(a) is not type(b)
    assert type(a) is type(checks.violation("POOL-2", "z"))
    back = pickle.loads(pickle.dumps(a))
    assert type(back) is type(a) and str(back) == "POOL-2: x" and back.spec == "POOL-2"


# ------------------------------------------- black-box forms (the hardware tier)


def test_target_log_clean_fails_on_a_leak_and_on_errors_without_faults() -> None:
    with pytest.raises(checks.PropertyViolation, match="SHUT-1: the target logged a leak"):
        checks.target_log_clean(["transport wr pool count is 1 but should be 2"], [], 3)
    with pytest.raises(checks.PropertyViolation, match="without faults"):
        checks.target_log_clean([], ["*ERROR*: x"], 0)
    checks.target_log_clean([], ["*ERROR*: after a malformed capsule"], 1)


def test_remote_stats_checks_fail_on_what_they_guard() -> None:
    with pytest.raises(checks.PropertyViolation, match="STATS-1: .*backwards"):
        checks.remote_counters_monotonic({"polls": 5}, {"polls": 4})
    with pytest.raises(checks.PropertyViolation, match="did not move"):
        checks.remote_counters_moved({"polls": 5, "completions": 3, "requests": 1},
                                     {"polls": 5, "completions": 3, "requests": 1}, 1)
    with pytest.raises(checks.PropertyViolation, match="SHUT-1: nvmf_get_stats qpair"):
        checks.remote_qpairs_back({"current_admin_qpairs": 1, "current_io_qpairs": 0},
                                  {"current_admin_qpairs": 0, "current_io_qpairs": 0}, {}, 5)
    with pytest.raises(checks.PropertyViolation, match="LIVE-1: nvmf_get_stats pending"):
        checks.remote_pending_drained({"pending_rdma_read": 1}, 5)


def test_black_box_wire_checks_fail_on_what_they_guard() -> None:
    with pytest.raises(checks.PropertyViolation, match="CQE-1: queue 1: response"):
        checks.responses_well_formed(1, [7], [], [], 16)
    with pytest.raises(checks.PropertyViolation, match="SQID"):
        checks.responses_well_formed(1, [], [2], [], 16)
    with pytest.raises(checks.PropertyViolation, match="LIVE-1"):
        checks.answered_within("write", [3], 10.0, 10.0)
    with pytest.raises(checks.PropertyViolation, match="ERR-1: .*answered 0x0000"):
        checks.malformed_answered_on_wire("psdt_prp", 1, 5, [0], (0x002,), 0, None)
    with pytest.raises(checks.PropertyViolation, match="stopped serving"):
        checks.malformed_answered_on_wire("psdt_prp", 1, 5, [0x002], (0x002,), None, None)
    with pytest.raises(checks.PropertyViolation, match="CONN-1: .*rejected with"):
        checks.cm_answered_on_wire("bad_recfmt", (2,), False, b"\0\0\x05\0", 32)
    with pytest.raises(checks.PropertyViolation, match="CONN-1: .*was accepted"):
        checks.cm_answered_on_wire("short", (1,), True, bytes(32), 32)
    with pytest.raises(checks.PropertyViolation, match="SHUT-1: .*reconnecting failed"):
        checks.reconnected("after a fault", RuntimeError("refused"))
    checks.cm_answered_on_wire("valid", ("accept",), True, b"\0\0\x10\0" + bytes(28), 16)


def test_connection_kept_fails_when_the_target_dropped_a_clean_connection() -> None:
    with pytest.raises(checks.PropertyViolation, match="LIVE-1: .*dropped the connection"):
        checks.connection_kept("read", "receive completion WR_FLUSH_ERR")
    checks.connection_kept("read", None)
    checks.reconnected("after a fault", None)
    checks.answered_within("write", [], 1.0, 10.0)
    checks.responses_well_formed(1, [], [], [], 16)
    with pytest.raises(checks.PropertyViolation, match="SQHD"):
        checks.responses_well_formed(1, [], [], [40], 16)
