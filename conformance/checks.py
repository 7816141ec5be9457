"""Every invariant check of the suite, one function per property (DESIGN section 6).

State machines, stress runs and self-checks call these; nothing else decides a verdict.
Each failure raises :class:`PropertyViolation` whose message starts with the property ID
and names the counts involved, e.g. ``POOL-2: data-WR pool returned 184280 of 184320``.
Checks see the target only through the facade: what the host sees, the counters the
target reports, and (white-box, where needed) request states - in the target's own
numbering, judged against the graph, names and queues its description declares
(:class:`impl.target.TargetDescription`).  A part of a check that reads something a target
may not declare takes it as an optional argument: the caller (the harness, a driver) passes
it only where :mod:`conformance.judging` says the target declares it, and the part is not
judged otherwise.  None of them looks at the defect switches.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Mapping

from impl import (
    ConnInfo,
    DestroyReport,
    DrainResult,
    GroupStats,
    Options,
    PoolCounts,
    QpairInfo,
    QpState,
    Queue,
    RequestInfo,
    Response,
    Status,
    TargetError,
)
from impl.target import TargetDescription
from impl.wire import CM_ACCEPT_SIZE, CM_REJECT_SIZE, RDMA_REJECT_NAMES


class PropertyViolation(AssertionError):
    """A property of DESIGN section 6 does not hold.  ``spec`` is its ID."""

    def __init__(self, spec: str, message: str):
        self.spec = spec
        self.detail = message
        super().__init__(f"{spec}: {message}")

    def __reduce__(self) -> tuple[object, ...]:
        return (violation, (self.spec, self.detail))


_KINDS: dict[str, type[PropertyViolation]] = {}


def violation(spec: str, message: str) -> PropertyViolation:
    """A violation of ``spec``, of a subclass of its own: Hypothesis tells failures apart by
    exception type and place, and every check fails from :func:`fail`, so without it the
    shrinker would wander from one property's failure into another's."""
    kind = _KINDS.get(spec)
    if kind is None:
        name = "PropertyViolation_" + "".join(c if c.isalnum() else "_" for c in spec)
        kind = _KINDS[spec] = type(name, (PropertyViolation,), {"__module__": __name__})
    return kind(spec, message)


#: Called with every violation before it is raised (self-check timing, stress figures).
VIOLATION_HOOKS: list[Callable[[PropertyViolation], None]] = []


def fail(spec: str, message: str) -> None:
    v = violation(spec, message)
    for hook in VIOLATION_HOOKS:
        hook(v)
    raise v


def _name(state: int, kind: type) -> str:
    """An enum member's name, or the raw value when a target reports an unknown one."""
    try:
        return kind(state).name
    except ValueError:
        return f"{kind.__name__} {state}"


# ------------------------------------------------------------------------------ POOL


def _pool_conservation(spec: str, what: str, p: PoolCounts) -> None:
    if p.duplicates:
        fail(spec, f"{what}: {p.duplicates} object(s) held in two places at once "
                   f"(ring {p.ring_free}, cached {p.cached}, held {p.held}, "
                   f"capacity {p.capacity})")
    if p.accounted != p.capacity or p.missing:
        fail(spec, f"{what}: ring free {p.ring_free} + cached {p.cached} + held by requests "
                   f"{p.held} = {p.accounted}, capacity {p.capacity} "
                   f"({p.missing} object(s) nowhere)")


def wr_pool_conserved(p: PoolCounts) -> None:
    """POOL-1: ring free + group caches + held by requests = capacity; no WR held twice."""
    _pool_conservation("POOL-1", "data-WR pool", p)


def pool_returned_at_quiescence(wr: PoolCounts | None, buf: PoolCounts | None,
                                expected_wrs: int, expected_bufs: int, *,
                                held: bool = True, target_says: str = "") -> None:
    """POOL-2 (data WRs) and POOL-3 (buffers) at quiescence: everything back in ring and
    caches, and (``held``: the target counts what requests hold) nothing held.  A pool
    given as None is not judged.  ``target_says``: the target's own words on the same
    pool (its destroy-time audit), quoted in the violation as evidence."""
    if wr is not None:
        back = wr.ring_free + wr.cached
        if (held and wr.held) or back != expected_wrs:
            fail("POOL-2", f"data-WR pool returned {back} of {expected_wrs} at quiescence"
                           + (f" ({wr.held} still held by requests)" if held else "")
                           + (f"; the target's own report at destroy: {target_says!r}"
                              if target_says else ""))
    if buf is not None:
        back = buf.ring_free + buf.cached
        if (held and buf.held) or back != expected_bufs:
            fail("POOL-3", f"data buffers returned {back} of {expected_bufs} at quiescence"
                           + (f" ({buf.held} still held)" if held else ""))


def destroy_report_exact(report: DestroyReport, expected_wrs: int | None,
                         expected_bufs: int | None, *, audit: bool = True) -> None:
    """POOL-2 after destroy: exactly depth x multiplier came back (POOL-3: every buffer),
    and (``audit``: the report carries the target's own audit) the target's own destroy
    report agrees: expected counts right, a complaint only when something is short.  An
    expected count given as None is not judged."""
    if expected_wrs is not None and report.wr_returned != expected_wrs:
        fail("POOL-2", f"data-WR pool returned {report.wr_returned} of {expected_wrs} "
                       f"at destroy (target says: {report.message or 'nothing'})")
    if audit and expected_wrs is not None and report.wr_expected != expected_wrs:
        fail("POOL-2", f"destroy report expects {report.wr_expected} data WRs, the "
                       f"configuration gives {expected_wrs}")
    if audit and expected_bufs is not None and report.buf_expected != expected_bufs:
        fail("POOL-3", f"destroy report expects {report.buf_expected} data buffers, the "
                       f"configuration gives {expected_bufs}")
    if expected_bufs is not None and report.buf_returned != expected_bufs:
        fail("POOL-3", f"data buffers returned {report.buf_returned} of {expected_bufs} "
                       f"at destroy")
    # a complaint is judged only when every count it could be about was judged exact
    if audit and report.message and expected_wrs is not None and expected_bufs is not None:
        fail("POOL-2", f"destroy report complains although every count is exact: "
                       f"{report.message!r}")


def buffers_and_slots_conserved(buf: PoolCounts | None, qpairs: Iterable[QpairInfo], *,
                                free_state: int | None) -> None:
    """POOL-3: data buffers (unless ``buf`` is None), request slots and receive WRs of
    every qpair given are each conserved; with ``free_state`` (the target's request states
    are declared) the per-state counts account for every slot."""
    if buf is not None:
        _pool_conservation("POOL-3", "data buffers", buf)
    for q in qpairs:
        if free_state is not None:
            if sum(q.req_states) != q.depth:
                fail("POOL-3", f"qpair {q.id}: request states count {sum(q.req_states)} "
                               f"requests, depth {q.depth}")
            busy = q.depth - q.req_states[free_state]
            if busy != q.slots_used:
                fail("POOL-3", f"qpair {q.id}: request slots free {q.slots_free} + used "
                               f"{q.slots_used} vs depth {q.depth}, {busy} not free")
        if q.slots_free + q.slots_used != q.depth:
            fail("POOL-3", f"qpair {q.id}: request slots free {q.slots_free} + used "
                           f"{q.slots_used} vs depth {q.depth}")
        recvs = q.recv_posted + q.recv_in_cq + q.recv_held + q.recv_idle
        if recvs != q.depth:
            fail("POOL-3", f"qpair {q.id}: receive WRs posted {q.recv_posted} + in CQ "
                           f"{q.recv_in_cq} + held {q.recv_held} + idle {q.recv_idle} = "
                           f"{recvs}, depth {q.depth}")
        if q.state in (QpState.ACTIVE, QpState.CONNECTING) and q.recv_idle:
            fail("POOL-3", f"qpair {q.id} is live but {q.recv_idle} receive WR(s) are "
                           f"neither posted nor held (lost receives)")


# ------------------------------------------------------------------------- SM, DEPTH


def transitions_legal(transitions: Mapping[tuple[int, int], int],
                      desc: TargetDescription) -> None:
    """SM-1: every request state change so far is an edge of the legal graph the target
    declares (``desc``), named by the target's own state names."""
    for (src, dst), count in sorted(transitions.items()):
        if (src, dst) not in desc.legal:
            fail("SM-1", f"illegal request transition {desc.state_name(src)} -> "
                         f"{desc.state_name(dst)} ({count} time(s))")


def requests_consistent(qpair: int, requests: Iterable[RequestInfo],
                        desc: TargetDescription, *, queues: bool = True,
                        wrs: bool = True) -> None:
    """SM-1: every request is in a state the target declares (``desc``) and (``queues``:
    the target reports queue membership) sits in at most one pending queue, the one its
    state implies; (``wrs``: the target counts the WRs its requests hold) its WR counters
    are ordered (outstanding <= posted <= held)."""
    for r in requests:
        if not 0 <= r.state < desc.num_states:
            fail("SM-1", f"qpair {qpair} cid {r.cid} is in {desc.state_name(r.state)}, "
                         f"not one of the {desc.num_states} states the target declares")
        allowed = desc.queues_allowed(r.state)
        if queues and r.queue not in allowed:
            want = " or ".join(_name(q, Queue) for q in allowed)
            fail("SM-1", f"qpair {qpair} cid {r.cid} in {desc.state_name(r.state)} sits on "
                         f"queue {_name(r.queue, Queue)}, expected {want}")
        if wrs and not r.wrs_outstanding <= r.wrs_posted <= r.num_wrs:
            fail("SM-1", f"qpair {qpair} cid {r.cid}: WRs outstanding {r.wrs_outstanding}, "
                         f"posted {r.wrs_posted}, held {r.num_wrs} out of order")


def depths_within_limits(q: QpairInfo, requests: Iterable[RequestInfo] | None, *,
                         slots: bool = True) -> None:
    """DEPTH-1: read depth, send depth and outstanding requests (host capsules, and with
    ``slots`` the request slots in use) within their limits, and the qpair's read-depth
    counter equals the RDMA READs actually outstanding (unless ``requests`` is None: the
    target's requests are not declared)."""
    if q.cur_read_depth > q.max_read_depth or q.max_read_depth_seen > q.max_read_depth:
        fail("DEPTH-1", f"qpair {q.id}: read depth {q.cur_read_depth} (peak "
                        f"{q.max_read_depth_seen}) exceeds {q.max_read_depth}")
    if q.cur_send_depth > q.max_send_depth or q.max_send_depth_seen > q.max_send_depth:
        fail("DEPTH-1", f"qpair {q.id}: send depth {q.cur_send_depth} (peak "
                        f"{q.max_send_depth_seen}) exceeds {q.max_send_depth}")
    if (slots and q.slots_used > q.depth) or q.host_outstanding > q.depth:
        fail("DEPTH-1", f"qpair {q.id}: {q.slots_used if slots else '?'} requests / "
                        f"{q.host_outstanding} host capsules outstanding, depth {q.depth}")
    if requests is not None and q.state == QpState.ACTIVE:
        reads = sum(r.wrs_outstanding for r in requests if r.xfer == 1)
        if reads != q.cur_read_depth:
            fail("DEPTH-1", f"qpair {q.id}: read depth counter {q.cur_read_depth} but "
                            f"{reads} RDMA READ(s) outstanding")


# ---------------------------------------------------------------------------------- CFG


def options_honoured(opts: Options, effective: Options, wr: PoolCounts | None,
                     buf: PoolCounts | None) -> None:
    """CFG-1: accepted options are honoured exactly: the target runs with them, its data-WR
    pool has exactly the configured capacity and it has exactly the configured shared
    buffers (a pool given as None is not judged)."""
    if wr is not None and wr.capacity != opts.wr_pool_capacity:
        how = (f"wr_pool_size {opts.wr_pool_size}" if opts.wr_pool_size else
               f"max_queue_depth {opts.max_queue_depth} x wr_pool_multiplier "
               f"{opts.wr_pool_multiplier}")
        fail("CFG-1", f"data-WR pool capacity {wr.capacity}, configured {how} = "
                      f"{opts.wr_pool_capacity}")
    if buf is not None and buf.capacity != opts.num_shared_buffers:
        fail("CFG-1", f"{buf.capacity} shared buffers, configured {opts.num_shared_buffers}")
    for name in (f.name for f in dataclasses.fields(opts)):
        if name == "max_send_depth" and opts.max_send_depth == 0:
            continue   # 0 asks the target to choose; the qpairs report what it chose
        if getattr(effective, name) != getattr(opts, name):
            fail("CFG-1", f"{name} is {getattr(effective, name)}, configured "
                          f"{getattr(opts, name)}")


def refusal_explained(reason: str | None, message: str | None, minimum: int | None) -> None:
    """CFG-1: options are refused exactly when the contract says so, with a message that
    names the minimum for deadlock-prone pools."""
    if reason is None and message is not None:
        fail("CFG-1", f"valid options refused: {message}")
    if reason is not None and message is None:
        fail("CFG-1", f"options accepted although {reason}")
    if minimum is not None and message is not None and not re.search(
            rf"(?<!\d){minimum}(?!\d)", message):
        fail("CFG-1", f"refusal does not name the minimum {minimum}: {message!r}")


# ------------------------------------------------------------------------ LIVE, CQE


def no_stall(result: DrainResult, outstanding: Mapping[int, Iterable[int]],
             detail: str = "") -> None:
    """LIVE-1: in liveness mode every request on a live qpair completes within the round
    bound; a full round without progress while work is outstanding is a stall."""
    waiting = {qp: sorted(cids) for qp, cids in outstanding.items() if cids}
    if result.stalled:
        fail("LIVE-1", f"stall: a full round made no progress after {result.rounds} "
                       f"round(s) with {sum(map(len, waiting.values()))} command(s) "
                       f"unanswered {waiting} {detail}".rstrip())
    if not result.quiescent:
        fail("LIVE-1", f"not quiescent after {result.rounds} rounds (bound reached) "
                       f"{detail}".rstrip())
    if waiting:
        fail("LIVE-1", f"transport quiescent but {sum(map(len, waiting.values()))} "
                       f"command(s) on live qpairs never answered: {waiting}")


def admin_not_starved(kind: str, answered: bool, rounds: int, waiting_io: int | None,
                      undelivered: bool = False) -> None:
    """LIVE-2: admin, fabrics and in-capsule commands complete while IO waits for buffers
    (``waiting_io``: how many, None where the target does not say).

    ``undelivered``: the probe never reached the target - its SEND still waits in the fabric
    for a receive (RNR) of a shared receive queue.  An SRQ is one pool of receives for every
    qpair of the group, sized by configuration, and a reliable connection's
    receiver-not-ready (RNR) NAK and retry is how a host waits for one; the target cannot
    serve what it has not received, so the bound is not judged for such a probe (LIVE-1
    still requires it to be served in the end).  With a qpair's own receives, which cover its queue, a
    host that keeps to SQSIZE never meets RNR: there it is no excuse."""
    if not answered and not undelivered:
        waiting = ("while IO may have waited for buffers" if waiting_io is None else
                   f"while {waiting_io} IO request(s) waited for buffers")
        fail("LIVE-2", f"{kind} got no response within {rounds} delivery/poll rounds "
                       f"{waiting}")


def response_expected(qpair: int, cid: int, outstanding: bool, already: bool,
                      unexpected_flag: bool) -> None:
    """CQE-1: a response answers exactly one outstanding capsule with its CID."""
    if unexpected_flag or not outstanding:
        fail("CQE-1", f"qpair {qpair}: response for CID {cid} which is not outstanding")
    if already:
        fail("CQE-1", f"qpair {qpair}: second response for CID {cid}")


def status_as_expected(spec: str, qpair: int, cid: int, what: str, status: int,
                       allowed: Iterable[int]) -> None:
    """CQE-1 / ERR-1: the response status is one the command may get."""
    allowed = tuple(allowed)
    if status not in allowed:
        fail(spec, f"qpair {qpair} CID {cid} ({what}) answered 0x{status:04x}, expected "
                   f"{' or '.join(f'0x{s:04x}' for s in allowed)}")


# ------------------------------------------------------------------------------ DATA


def bytes_match(what: str, got: bytes, candidates: Iterable[bytes]) -> None:
    """DATA-1: read-after-write returns the written bytes (one of the possible versions
    for blocks a fault left undecided), in SGE order."""
    options = tuple(candidates)
    if got in options:
        return
    first = options[0] if options else b""
    at = next((i for i, (a, b) in enumerate(zip(got, first)) if a != b), min(len(got),
                                                                             len(first)))
    fail("DATA-1", f"{what}: {len(got)} bytes differ from every one of {len(options)} "
                   f"possible version(s); first difference at byte {at}")


# ------------------------------------------------------------------------------- SHUT


def shutdown_released(report: DestroyReport, expected_wrs: int | None,
                      expected_bufs: int | None, in_flight: int, *, audit: bool = True) -> None:
    """SHUT-1: an abrupt transport destroy with IO in any state releases everything (the
    data WRs and buffers whose expected count is given), then the report is judged as any
    destroy report is (:func:`destroy_report_exact`)."""
    short = [f"{got} of {want} {what}" for got, want, what in (
        (report.wr_returned, expected_wrs, "data WRs"),
        (report.buf_returned, expected_bufs, "buffers")) if want is not None and got != want]
    if short:
        fail("SHUT-1", f"abrupt destroy with {in_flight} request(s) in flight returned "
                       f"{' and '.join(short)} (target says: {report.message or 'nothing'})")
    destroy_report_exact(report, expected_wrs, expected_bufs, audit=audit)


def qpair_released(q: QpairInfo | None, what: str) -> None:
    """SHUT-1: once a failed qpair has drained, the target has destroyed it."""
    if q is not None:
        fail("SHUT-1", f"{what}: qpair {q.id} still exists in state {_name(q.state, QpState)} "
                       f"after liveness mode")


def connection_released(conn: ConnInfo, what: str) -> None:
    """SHUT-1, as the fabric sees it: once a failed connection has drained, the target's
    queue pair is gone from the fabric (nothing of it can still answer or hold resources)."""
    if conn.target_qp_state != 0:
        fail("SHUT-1", f"{what}: the target's QP {conn.target_qp_num} is still on the fabric "
                       f"(state {conn.target_qp_state}) after liveness mode")


# ------------------------------------------------------------------------------ STATS


def group_stats_agree(group: int, stats: GroupStats, polls: int, idle_polls: int,
                      reaped: int, need_buffer: int | None, qpairs: int) -> None:
    """STATS-1: a poll group's stats (the ``nvmf_get_stats`` counters users diagnose hangs
    from) agree with what the harness saw: the polls it made and what they returned, the
    requests it sees waiting for buffers (None: the target's request states do not say),
    the qpairs it sees on the group."""
    for name, reported, seen in (("polls", stats.polls, polls),
                                 ("idle_polls", stats.idle_polls, idle_polls),
                                 ("completions", stats.completions, reaped),
                                 ("pending_data_buffer", stats.pending_data_buffer, need_buffer),
                                 ("num_qpairs", stats.num_qpairs, qpairs)):
        if seen is not None and reported != seen:
            fail("STATS-1", f"poll group {group} reports {name} = {reported}, but the harness "
                            f"saw {seen}")


def completions_accounted(reaped: int, generated: int) -> None:
    """STATS-1: at quiescence every work completion the fabric generated for the target's
    queue pairs has been reaped, and the groups' completion counters say so."""
    if reaped != generated:
        fail("STATS-1", f"the poll groups report {reaped} completions reaped, but the fabric "
                        f"generated {generated} for the target's queue pairs")


# -------------------------------------------------------------------------------- ERR


def _status(status: int) -> str:
    try:
        return f"0x{status:04x} {Status(status).name}"
    except ValueError:
        return f"0x{status:04x}"


def malformed_answered(kind: str, qpair: int, cid: int, responses: Iterable[Response],
                       allowed: Iterable[int], before: QpairInfo,
                       after: QpairInfo | None, state_after: int | None = None, *,
                       free_state: int | None, receives: bool) -> None:
    """ERR-1: a malformed capsule gets exactly one response, with its CID and the status
    documented for its ``kind`` (``allowed``: the expected one first, then alternatives the
    spec leaves room for), and releases everything it held: the qpair stays in the state it
    was in (or goes to ``state_after``, for a kind whose command is valid enough to connect
    its queue), with every request slot free, every receive re-posted and nothing
    outstanding.  ``responses`` is everything reaped from the qpair once the target was
    quiescent.  Slots and receives are judged only with ``receives`` (the target counts
    them), request states only with ``free_state`` (the target declares its states)."""
    allowed = tuple(allowed)
    want = " or ".join(_status(s) for s in allowed)
    what = f"{kind} on qpair {qpair} CID {cid}"
    got = list(responses)
    mine = [r for r in got if r.cid == cid]
    if not mine:
        fail("ERR-1", f"{what}: no response (expected {want}); "
                      f"{len(got)} other response(s) {[r.cid for r in got]}")
    if len(mine) > 1 or len(got) > 1:
        fail("ERR-1", f"{what}: {len(got)} responses, CIDs {[r.cid for r in got]}, "
                      f"statuses {[_status(r.status) for r in got]}; expected one")
    rsp = mine[0]
    if rsp.unexpected:
        fail("ERR-1", f"{what}: the response is flagged unexpected by the host")
    if rsp.status not in allowed:
        fail("ERR-1", f"{what} answered {_status(rsp.status)}, expected {want}")
    if after is None:
        fail("ERR-1", f"{what}: the qpair was destroyed (was {_name(before.state, QpState)})")
    want_state = before.state if state_after is None else state_after
    if after.state != want_state:
        fail("ERR-1", f"{what}: qpair went {_name(before.state, QpState)} -> "
                      f"{_name(after.state, QpState)}, expected "
                      f"{_name(want_state, QpState)}"
                      + ("; a command error must not change it"
                         if want_state == before.state else ""))
    busy = after.depth - after.req_states[free_state] if free_state is not None else 0
    slots = after.slots_used if receives else 0
    if slots or busy or after.host_outstanding or after.host_unreaped:
        fail("ERR-1", f"{what}: still holds {slots} request slot(s) "
                      f"({busy} request(s) not FREE), {after.host_outstanding} capsule(s) "
                      f"outstanding, {after.host_unreaped} response(s) unreaped")
    if receives and (after.recv_posted != after.depth or after.recv_held):
        fail("ERR-1", f"{what}: {after.recv_posted} of {after.depth} receive WR(s) posted, "
                      f"{after.recv_held} held, {after.recv_idle} idle "
                      f"(the capsule's receive was not re-posted)")


def call_refused(kind: str, error: BaseException | None, code: int,
                 mentions: Iterable[str] = (), also: Iterable[int] = ()) -> None:
    """ERR-1: a call made out of order (submit on a failed or destroyed qpair, a second
    disconnect, IO past the queue depth, ...) is refused with a clear error: a TargetError
    with the documented code whose message names what was wrong (every string in
    ``mentions``), not silently accepted and not any other exception.  ``also``: other
    codes that are as right for the call (ENOENT for a qpair the target has already
    destroyed)."""
    if error is None:
        fail("ERR-1", f"{kind}: the call was accepted; expected it refused with code {code}")
    if not isinstance(error, TargetError):
        fail("ERR-1", f"{kind}: raised {type(error).__name__}: {error}; expected a "
                      f"TargetError with code {code}")
    if error.code != code and error.code not in set(also):
        fail("ERR-1", f"{kind}: refused with code {error.code} ({error}), expected {code}")
    if error.code != code:
        mentions = ()   # a refusal for a qpair that is gone names the handle it was given
    missing = [m for m in mentions if m not in error.message]
    if not error.message.strip() or missing:
        fail("ERR-1", f"{kind}: refusal message {error.message!r} does not say "
                      f"{' / '.join(missing) or 'anything'}")


# ------------------------------------------------------------------------------- CONN

#: Status of a Connect that names a parameter the target does not have (SCT 1h, SC 82h).
CONNECT_INVALID_PARAMETERS = 0x0182
#: The CNTLIDs a controller of the dynamic model may get (FFF0h..FFFFh are reserved).
CNTLID_MAX = 0xFFEF


def _cm(outcome: int | str) -> str:
    if outcome == "accept":
        return "accept"
    return f"reject STS {outcome:02X}h {RDMA_REJECT_NAMES.get(int(outcome), 'unknown')}"


def connect_answered(kind: str, allowed: Iterable[int | str], info: ConnInfo, depth: int,
                     ird: int, qpair: QpairInfo | None = None) -> None:
    """CONN-1: an RDMA CM connect request gets the answer NVMe/RDMA 1.0 3.3 gives it.

    ``allowed`` lists the outcomes the request may get: ``"accept"`` and/or reject STS
    values (figure 6).  Accepted: RECFMT 0 and the 32 bytes of accept private data (figure
    5), CRQSIZE = ``depth``, the negotiated depth (min(HRQSIZE, HSQSIZE + 1, the target's
    maximum queue depth)), a target qpair of that depth (``qpair``, when given), and no more
    outstanding RDMA READs asked of the host (its responder resources) than the ``ird`` it
    offered.  Rejected: the reject private data with RECFMT 0 and an allowed STS, and no
    target qpair left behind."""
    allowed = tuple(allowed)
    want = " or ".join(_cm(o) for o in allowed)
    what = f"{kind} connect (connection {info.conn})"
    if info.state == ConnInfo.ESTABLISHED:
        if "accept" not in allowed:
            fail("CONN-1", f"{what} was accepted with CRQSIZE {info.crqsize}, expected {want}")
        if info.accept_len < CM_ACCEPT_SIZE or info.accept_recfmt != 0:
            fail("CONN-1", f"{what}: accept private data of {info.accept_len} bytes with "
                           f"RECFMT {info.accept_recfmt}, expected {CM_ACCEPT_SIZE} with RECFMT 0")
        if info.crqsize != depth:
            fail("CONN-1", f"{what}: CRQSIZE {info.crqsize}, the negotiated depth is {depth}")
        if info.qpair < 0 or (qpair is not None and qpair.depth != info.crqsize):
            fail("CONN-1", f"{what}: accepted with CRQSIZE {info.crqsize} but the target "
                           + ("has no qpair for it" if info.qpair < 0 or qpair is None
                              else f"qpair {qpair.id} has depth {qpair.depth}"))
        if info.responder_resources > ird:
            fail("CONN-1", f"{what}: the target may have {info.responder_resources} RDMA "
                           f"READs outstanding, the host offered IRD {ird} (its responder "
                           f"resources)")
    elif info.state == ConnInfo.REJECTED:
        if info.accept_len < CM_REJECT_SIZE:
            fail("CONN-1", f"{what}: rejected with {info.accept_len} bytes of private data, "
                           f"expected the {CM_REJECT_SIZE}-byte NVMe/RDMA reject ({want})")
        if info.reject_sts not in allowed:
            fail("CONN-1", f"{what} was rejected with {_cm(info.reject_sts)}, expected {want}")
        if info.reject_recfmt != 0:
            fail("CONN-1", f"{what}: reject RECFMT {info.reject_recfmt}, expected 0")
        if info.qpair >= 0:
            fail("CONN-1", f"{what} was rejected but target qpair {info.qpair} exists")
    else:
        fail("CONN-1", f"{what} was neither accepted nor rejected (connection state "
                       f"{info.state}), expected {want}")


def connect_refused(what: str, rsp: Response | None, in_data: bool, offset: int) -> None:
    """CONN-1: a Connect naming something the target does not have (a SUBNQN of no
    subsystem, the CNTLID of no live controller) is answered Connect Invalid Parameters
    (SCT 1h, SC 82h), with CQE dword 0 naming the parameter: IATTR (bit 16) 1 if it is in
    the Connect data, 0 in the SQE, and IPO (bits 15:0) its byte offset there (NVMe-oF 1.1
    3.3, figure 21)."""
    if rsp is None:
        fail("CONN-1", f"{what}: no response")
    if rsp.status != CONNECT_INVALID_PARAMETERS:
        fail("CONN-1", f"{what} answered {_status(rsp.status)}, expected 0x0182 Connect "
                       f"Invalid Parameters")
    iattr, ipo = (rsp.result >> 16) & 1, rsp.result & 0xFFFF
    if iattr != int(in_data) or ipo != offset:
        where = "data" if in_data else "SQE"
        fail("CONN-1", f"{what}: Connect Invalid Parameters names IATTR {iattr} IPO {ipo}, "
                       f"expected the parameter at byte {offset} of the Connect {where} "
                       f"(IATTR {int(in_data)} IPO {offset})")


def connect_joined(what: str, rsp: Response | None, cntlid: int | None,
                   qpair: QpairInfo | None = None) -> None:
    """CONN-1: a valid Connect succeeds, with the controller's CNTLID in CQE dword 0 bits
    15:0 (NVMe-oF 1.1 3.3, figure 21): for an admin queue (``cntlid`` None) a new controller
    of the dynamic model (CNTLID 0..FFEFh); for an I/O queue the CNTLID its data named, the
    live controller it joined, and the target's qpair (``qpair``, when given) belongs to that
    controller."""
    if rsp is None:
        fail("CONN-1", f"{what}: no response")
    if rsp.status != Status.SUCCESS:
        fail("CONN-1", f"{what} answered {_status(rsp.status)}, expected success")
    got = rsp.result & 0xFFFF
    if cntlid is None and got > CNTLID_MAX:
        fail("CONN-1", f"{what}: controller ID {got:#06x} is not one of the dynamic model "
                       f"(0..{CNTLID_MAX:#06x})")
    if cntlid is not None and got != cntlid:
        fail("CONN-1", f"{what}: joined controller {got:#06x}, the Connect named {cntlid:#06x}")
    if qpair is not None and qpair.cntlid != got:
        fail("CONN-1", f"{what}: the response says controller {got:#06x}, the target's qpair "
                       f"{qpair.id} belongs to {qpair.cntlid:#06x}")


# ------------------------------------------------------------------------------ CRASH


def target_survived(crash: BaseException | None, during: str) -> None:
    """CRASH-1: the target did not crash, abort, trip a sanitizer or hang; ``crash`` is what
    the facade's crash containment raised instead of an answer (its ``kind``: signal, exit,
    hang; ``report``: the tail of the target's stderr, a sanitizer's report), if anything."""
    if crash is None:
        return
    report = str(getattr(crash, "report", "") or "").strip()
    head = str(crash).split("\n--- target stderr", 1)[0]   # the report follows once, below
    fail("CRASH-1", f"{head} during {during}"
                    + (f"; the target's last words:\n{report[-1500:]}" if report else ""))


# ------------------------------------------------------- black-box forms for a remote target
# The hardware tier (conformance/remote.py) sees a target only as a host on the wire does:
# the CQEs it receives, the bytes it reads back, the RDMA CM events, and (optionally) the
# target's nvmf_get_stats and log.  These are the properties' black-box parts in that form.


def responses_well_formed(qid: int, unknown_cid: Iterable[object], wrong_sqid: Iterable[object],
                          bad_sqhd: Iterable[object], depth: int) -> None:
    """CQE-1 (black-box): every CQE the host received answers an outstanding command of its
    queue (no CID that is not outstanding, no second response), names the queue's SQID and
    an SQHD inside the queue (NVMe Base 2.0 4.6: SQ Identifier, SQ Head Pointer)."""
    unknown = [getattr(c, "cid", c) for c in unknown_cid]
    if unknown:
        fail("CQE-1", f"queue {qid}: response(s) for CID(s) {unknown} not outstanding "
                      f"(a second response, or one for a command never sent)")
    sqids = [getattr(c, "sqid", c) for c in wrong_sqid]
    if sqids:
        fail("CQE-1", f"queue {qid}: response(s) name SQID(s) {sqids}")
    heads = [getattr(c, "sqhd", c) for c in bad_sqhd]
    if heads:
        fail("CQE-1", f"queue {qid}: SQHD {heads} outside a queue of {depth} entries")


def answered_within(what: str, cids: Iterable[int], seconds: float, bound: float) -> None:
    """LIVE-1 (black-box, with a time bound): every command on a live queue is answered
    within ``bound`` seconds; ``cids`` are the ones that were not."""
    late = sorted(cids)
    if late:
        fail("LIVE-1", f"{what}: CID(s) {late} unanswered after {seconds:.1f} s "
                       f"(bound {bound:.1f} s) on a live connection")


def connection_kept(what: str, failure: str | None) -> None:
    """LIVE-1 (black-box): a target does not drop a connection the host did nothing wrong
    on; ``failure`` is how the connection failed, if it did."""
    if failure:
        fail("LIVE-1", f"{what}: the target dropped the connection ({failure}) although the "
                       f"host sent only well-formed commands and injected no fault")


def malformed_answered_on_wire(kind: str, qid: int, cid: int, statuses: Iterable[int],
                               allowed: Iterable[int], follow_up: int | None,
                               failure: str | None) -> None:
    """ERR-1 (black-box): a malformed capsule gets exactly one response with its CID and a
    status its specification allows, the connection stays up, and the queue keeps serving
    (``follow_up``: the status of a well-formed command sent after it, None if it got
    none)."""
    allowed = tuple(allowed)
    got = list(statuses)
    want = " or ".join(_status(s) for s in allowed)
    what = f"{kind} on queue {qid} CID {cid}"
    if failure and not got:
        fail("ERR-1", f"{what}: no response; the connection failed ({failure}); expected {want}")
    if len(got) != 1:
        fail("ERR-1", f"{what}: {len(got)} responses {[_status(s) for s in got]}, expected one")
    if got[0] not in allowed:
        fail("ERR-1", f"{what} answered {_status(got[0])}, expected {want}")
    if failure:
        fail("ERR-1", f"{what}: answered, then the connection failed ({failure})")
    if follow_up != Status.SUCCESS:
        fail("ERR-1", f"{what}: the queue stopped serving: a well-formed command after it "
                      + ("got no response" if follow_up is None
                         else f"answered {_status(follow_up)}"))


def cm_answered_on_wire(kind: str, allowed: Iterable[int | str], accepted: bool,
                        private_data: bytes, depth: int) -> None:
    """CONN-1 (black-box): an RDMA CM connect request gets the answer NVMe/RDMA 1.0 3.3
    gives it, as the host sees it: accepted with the 32-byte accept private data (RECFMT 0,
    CRQSIZE at most the ``depth`` asked for), or rejected with the reject private data
    (RECFMT 0, an allowed STS)."""
    allowed = tuple(allowed)
    want = " or ".join(_cm(o) for o in allowed)
    if accepted:
        if "accept" not in allowed:
            fail("CONN-1", f"{kind} connect was accepted, expected {want}")
        if len(private_data) < CM_ACCEPT_SIZE:
            fail("CONN-1", f"{kind} connect accepted with {len(private_data)} bytes of private "
                           f"data, expected {CM_ACCEPT_SIZE}")
        recfmt, crqsize = int.from_bytes(private_data[0:2], "little"), int.from_bytes(
            private_data[2:4], "little")
        if recfmt != 0 or not 1 <= crqsize <= depth:
            fail("CONN-1", f"{kind} connect accepted with RECFMT {recfmt} CRQSIZE {crqsize}, "
                           f"expected RECFMT 0 and CRQSIZE 1..{depth}")
        return
    if len(private_data) < CM_REJECT_SIZE:
        fail("CONN-1", f"{kind} connect rejected with {len(private_data)} bytes of private "
                       f"data, expected the {CM_REJECT_SIZE}-byte NVMe/RDMA reject ({want})")
    recfmt, sts = int.from_bytes(private_data[0:2], "little"), int.from_bytes(
        private_data[2:4], "little")
    if sts not in allowed:
        fail("CONN-1", f"{kind} connect was rejected with {_cm(sts)}, expected {want}")
    if recfmt != 0:
        fail("CONN-1", f"{kind} connect: reject RECFMT {recfmt}, expected 0")


def reconnected(what: str, error: BaseException | None) -> None:
    """SHUT-1 (black-box): after a fault or a shutdown the host can connect again - a new
    controller comes up and serves IO - so the target released what the old one held."""
    if error is not None:
        fail("SHUT-1", f"{what}: reconnecting failed: {type(error).__name__}: {error}")


def remote_counters_monotonic(before: Mapping[str, int], after: Mapping[str, int]) -> None:
    """STATS-1 (black-box, from nvmf_get_stats): cumulative counters never go backwards."""
    back = {k: (before[k], after[k]) for k in before if k in after and after[k] < before[k]}
    if back:
        fail("STATS-1", f"nvmf_get_stats counters went backwards: {back}")


def remote_counters_moved(after_io: Mapping[str, int], before_io: Mapping[str, int],
                          commands: int) -> None:
    """STATS-1 (black-box): while the host had ``commands`` outstanding, the target's pollers
    polled and its devices counted completions."""
    if commands <= 0:
        return
    still = [k for k in ("polls", "completions", "requests") if k in after_io
             and after_io[k] <= before_io.get(k, 0)]
    if still:
        fail("STATS-1", f"nvmf_get_stats {still} did not move while the host had {commands} "
                        f"command(s) answered: before {dict(before_io)}, after {dict(after_io)}")


def remote_qpairs_back(now: Mapping[str, int], baseline: Mapping[str, int],
                       expected_extra: Mapping[str, int], waited: float) -> None:
    """SHUT-1 (black-box): once the host's connections are gone (or down to the ones it
    still holds, ``expected_extra``), the target's current qpair counts are back to where
    they were."""
    wrong = {k: (now.get(k, 0), baseline.get(k, 0) + expected_extra.get(k, 0))
             for k in ("current_admin_qpairs", "current_io_qpairs")
             if now.get(k, 0) != baseline.get(k, 0) + expected_extra.get(k, 0)}
    if wrong:
        fail("SHUT-1", f"nvmf_get_stats qpair counts (now, expected) {wrong} after "
                       f"{waited:.1f} s of quiescence")


def remote_pending_drained(pending: Mapping[str, int], waited: float) -> None:
    """LIVE-1 (black-box): with nothing outstanding, no request waits on any of the target's
    pending queues (data buffer, free request, RDMA READ/WRITE/SEND, bdev IO)."""
    busy = {k: v for k, v in pending.items() if v}
    if busy:
        fail("LIVE-1", f"nvmf_get_stats pending counters {busy} after {waited:.1f} s with "
                       f"nothing outstanding")


def target_log_clean(leaks: Iterable[str], errors: Iterable[str], faults: int) -> None:
    """SHUT-1 (black-box, from the target's log): no destroy-time leak message (SPDK's
    ``transport wr pool count is N but should be M``); and in a cycle without host faults
    or malformed commands (``faults`` 0), no error line."""
    leaks = list(leaks)
    if leaks:
        fail("SHUT-1", f"the target logged a leak at destroy: {leaks[0]!r}"
                       + (f" (+{len(leaks) - 1} more)" if len(leaks) > 1 else ""))
    errors = list(errors)
    if errors and not faults:
        fail("SHUT-1", f"the target logged {len(errors)} error line(s) in a cycle without "
                       f"faults: {errors[0]!r}")
