"""ERR-1: every malformed command gets its status and releases all it held.

Each example builds a fresh target and connects to it as a host (``conformance.malformed``),
draws one malformed capsule from what the host then knows (``strategies.malformed``: the
wire kinds of ``strategies.wire`` plus the host-dependent ones), sends its bytes, and then
checks, through :mod:`conformance.checks`:

* the capsule got exactly one response, with the status the specification gives (or an
  allowed alternative), and its qpair is unchanged and holds nothing (ERR-1);
* the pools are whole at quiescence and after destroy (POOL-1/2/3 checks);
* the target keeps serving: a well-formed command on the same qpair, and a write + read
  round trip on *another* IO qpair returning the written bytes.

``test_each_kind_is_answered`` runs every kind of ``MALFORMED_KINDS`` (one test id per
kind, so the report shows which kinds were exercised); ``test_malformed_mix`` draws from the
whole catalogue under the active profile.  A failing example notes the kind, the status
expected and got, the citation and the bytes sent.  Kinds the target is known to get wrong
go in :data:`KNOWN_TARGET_BUGS`: strict xfail per kind, left out of the mix.
"""

from __future__ import annotations

import dataclasses
import functools

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st
from hypothesis.strategies import DrawFn, SearchStrategy

from conformance import checks, judging, profiles
from conformance.harness import crash_contained, judge_destroy_report, judge_pools_at_rest
from conformance.malformed import (
    CALL_ORDER_KINDS,
    CallOutcome,
    Outcome,
    Placement,
    Snapshot,
    planned_context,
    run_call_order,
    run_malformed,
)
from impl import QpState, Response, Status, TargetError
from impl import wire as W
from impl.nvme import ErrorCode
from strategies import accepted_options
from strategies.malformed import KINDS, MALFORMED_KINDS, feasible_kinds, malformed_commands
from strategies.topology import namespaces
from strategies.types import Namespace, TransportOptions
from strategies.wire import MalformedCapsule

#: Small options for the hand-made cases (the defaults allocate 32 MiB of buffers).
SMALL = TransportOptions(num_poll_groups=2, max_queue_depth=16, max_io_size=65536,
                         io_unit_size=4096, num_shared_buffers=256, buf_cache_size=8,
                         wr_cache_size=8)

#: kind -> why the C target fails it.  Each is a strict xfail in the per-kind test (so a fix
#: turns it into a failure that asks for the entry to go) and is left out of the mix.
KNOWN_TARGET_BUGS: dict[str, str] = {}
MIX_KINDS = tuple(k for k in MALFORMED_KINDS if k not in KNOWN_TARGET_BUGS)

_SCALE = "nightly" if profiles.active_profile() == "nightly" else "ci"
#: Examples per kind: 10 under ci (50 kinds, ~500 targets), a tenth of the profile otherwise.
PER_KIND_EXAMPLES = profiles.capped(10 if profiles.active_profile() == "ci" else max(
    10, settings.default.max_examples // 10))


# ------------------------------------------------------------------------- strategies

def err_options(ns: Namespace) -> SearchStrategy[TransportOptions]:
    """Accepted options pinned so the whole catalogue is feasible for ``ns``: room for an
    identify page and a longer-than-one-block SGL (max_io_size >= 8192), in-capsule data
    of one block of ``ns`` (512 bytes at least) to 4096 bytes (below max_io_size: a
    too-long in-capsule transfer exists; with 512-byte blocks, below and above the 1024
    bytes of Connect data: both ways of sending it), a few commands per queue
    (max_queue_depth >= 4) and a list of two descriptors at least."""
    return accepted_options(
        _SCALE,
        max_io_size=st.sampled_from([8192, 16384, 32768, 65536]),
        in_capsule_data_size=st.integers(max(ns.block_size, 512) // 16, 256).map(
            lambda k: 16 * k),
        max_queue_depth=st.integers(4, 32),
        max_sgl_descriptors=st.integers(2, 16),
    )


def err_namespaces() -> SearchStrategy[Namespace]:
    """Namespaces larger than the in-capsule area (32 blocks at least)."""
    return namespaces(min_blocks=32)


@st.composite
def err_setups(draw: DrawFn) -> tuple[TransportOptions, Namespace]:
    ns = draw(err_namespaces())
    return draw(err_options(ns)), ns


@st.composite
def placements(draw: DrawFn, opts: TransportOptions) -> Placement:
    group = st.integers(0, opts.num_poll_groups - 1)
    depth = st.integers(2, min(8, opts.max_queue_depth))
    return Placement(tuple(draw(group) for _ in range(4)),    # type: ignore[arg-type]
                     tuple(draw(depth) for _ in range(3)))    # type: ignore[arg-type]


def _run(data: st.DataObject, kind: str) -> Outcome:
    """One example: options, namespace and placement drawn first, then (once the driver has
    connected) the malformed capsule of ``kind``."""
    ns = data.draw(err_namespaces(), label="namespace")
    opts = data.draw(err_options(ns), label="options")
    place = data.draw(placements(opts), label="placement")
    out = run_malformed(opts, ns, kind,
                        lambda ctx: data.draw(malformed_commands(ctx, (kind,)), label="capsule"),
                        place)
    note(out.describe())
    return out


# ------------------------------------------------------------------------- verdicts

def _whole(can: judging.Scope, snap: Snapshot, wrs: int, bufs: int) -> None:
    judge_pools_at_rest(can, snap.wr, snap.buf, snap.qpairs, wrs, bufs)


def _served(kind: str, follow_ups: list, drains: list) -> None:
    """The well-formed commands after the bad input were answered with success, and reads
    returned what was written."""
    for f in follow_ups:
        if f.status is None:   # no response although the target went quiescent
            checks.no_stall(drains[-1], {f.qpair: [f.cid]},
                            f"({f.what} after {kind})")
        checks.status_as_expected("ERR-1", f.qpair, f.cid, f"{f.what} after {kind}",
                                  f.status, (Status.SUCCESS,))
        if f.want:
            checks.bytes_match(f"{f.what} on qpair {f.qpair} after {kind}", f.got, (f.want,))


def verify(out: Outcome) -> None:
    assert out.desc is not None
    can = judging.Scope(out.desc)
    checks.malformed_answered(out.kind, out.qpair, out.cid, out.responses, out.allowed,
                              out.before, out.after, out.state_after,
                              free_state=out.desc.free_state if can("ERR-1", "states") else None,
                              receives=can("ERR-1", "released"))
    for d in out.drains:
        checks.no_stall(d, {}, f"(after {out.kind})")
    _whole(can, out.released, out.expected_wrs, out.expected_bufs)
    # keeps serving: the same qpair (its state is as it must be, so it is live) and another
    assert out.same_qpair and out.other_qpair, "the driver skipped the follow-up commands"
    _served(out.kind, out.same_qpair + out.other_qpair, out.drains)
    assert out.final is not None and out.report is not None
    _whole(can, out.final, out.expected_wrs, out.expected_bufs)
    judge_destroy_report(can, out.report, out.expected_wrs, out.expected_bufs)


def verify_call(out: CallOutcome) -> None:
    assert out.desc is not None
    can = judging.Scope(out.desc)
    # after a disconnect a target may keep the qpair until its flushes are reaped (then
    # NOTCONN / STATE) or destroy it at once (then NOENT): both refusals are right
    gone = (int(ErrorCode.NOENT),) if out.kind in ("submit_after_disconnect",
                                                   "second_disconnect") else ()
    checks.call_refused(out.kind, out.error, out.code, out.mentions, also=gone)
    for d in out.drains:
        checks.no_stall(d, {}, f"(after {out.kind})")
    # the well-formed capsules sent before the refused call are each answered once
    answered = sorted(r.cid for r in out.answered)
    if answered != sorted(out.sent):
        checks.no_stall(out.drains[-1], {out.qpair: sorted(set(out.sent) - set(answered))},
                        f"(capsules before {out.kind})")
    for r in out.answered:
        checks.status_as_expected("ERR-1", out.qpair, r.cid, f"flush before {out.kind}", r.status,
                                  (Status.SUCCESS,))
    _whole(can, out.released, out.expected_wrs, out.expected_bufs)
    _served(out.kind, out.other_qpair, out.drains)
    assert out.final is not None and out.report is not None
    _whole(can, out.final, out.expected_wrs, out.expected_bufs)
    judge_destroy_report(can, out.report, out.expected_wrs, out.expected_bufs)


# ---------------------------------------------------------------------------- tests

def _kind_param(kind: str) -> object:
    if kind in KNOWN_TARGET_BUGS:
        return pytest.param(kind, marks=pytest.mark.xfail(
            strict=True, raises=checks.PropertyViolation, reason=KNOWN_TARGET_BUGS[kind]))
    return kind


@pytest.mark.spec("ERR-1")
@pytest.mark.parametrize("kind", [_kind_param(k) for k in MALFORMED_KINDS])
@settings(max_examples=PER_KIND_EXAMPLES)
@given(data=st.data())
@crash_contained
def test_each_kind_is_answered(kind: str, data: st.DataObject) -> None:
    """Every kind of the catalogue, on its own: its status, nothing held, still serving."""
    verify(_run(data, kind))


@pytest.mark.spec("ERR-1")
@given(data=st.data())
@crash_contained
def test_malformed_mix(data: st.DataObject) -> None:
    """The whole catalogue under the active profile (known target bugs left out)."""
    kind = data.draw(st.sampled_from(MIX_KINDS), label="kind")
    verify(_run(data, kind))


@pytest.mark.spec("ERR-1")
@pytest.mark.parametrize("kind", CALL_ORDER_KINDS)
@settings(max_examples=max(1, PER_KIND_EXAMPLES // 2))
@given(data=st.data())
@crash_contained
def test_call_order_error_is_refused(kind: str, data: st.DataObject) -> None:
    """Calls out of order (submit after disconnect or on a destroyed qpair, a second
    disconnect, more capsules than the queue holds, in-capsule data beyond the receive
    buffer) raise TargetError naming what is wrong; nothing leaks; other qpairs serve."""
    ns = data.draw(err_namespaces(), label="namespace")
    opts = data.draw(err_options(ns), label="options")
    place = data.draw(placements(opts), label="placement")
    verify_call(run_call_order(opts, ns, kind, place))


# ------------------------------------------------------- the suite's own preconditions

@given(setup=err_setups())
def test_pins_make_the_whole_catalogue_feasible(setup: tuple[TransportOptions, Namespace],
                                                ) -> None:
    """Under :func:`err_options` no kind is skipped as infeasible, so every test id above
    really exercises its kind."""
    opts, ns = setup
    assert feasible_kinds(planned_context(opts, ns)) == MALFORMED_KINDS


def test_every_kind_has_a_test_id() -> None:
    assert set(MIX_KINDS) | set(KNOWN_TARGET_BUGS) == set(MALFORMED_KINDS)
    assert set(KNOWN_TARGET_BUGS) <= set(MALFORMED_KINDS)
    assert set(MALFORMED_KINDS) == set(KINDS)


def _qpair_info():
    """A real, idle, connected qpair's info to spoil by hand, and the target's description."""
    from conformance.malformed import _Driver

    d = _Driver(SMALL, Namespace(512, 64), Placement(), "io")
    try:
        return d.t.qpair_info(d.io), d.desc
    finally:
        d.t.destroy()


def _violates(fn, *args) -> str:
    with pytest.raises(checks.PropertyViolation) as exc:
        fn(*args)
    assert str(exc.value).startswith("ERR-1: ")
    return str(exc.value)


def test_malformed_answered_catches_hand_made_violations() -> None:
    q, desc = _qpair_info()
    if not desc.has("RECEIVES", "REQUESTS"):
        pytest.skip(f"{desc.label} declares no RECEIVES and REQUESTS to spoil")
    answered = functools.partial(checks.malformed_answered, free_state=desc.free_state,
                                 receives=True)
    ok = Response(7, Status.INVALID_OPCODE, 0, 0, False)
    allowed = (Status.INVALID_OPCODE,)
    answered("k", q.id, 7, [ok], allowed, q, q)
    msg = _violates(answered, "io_invalid_opcode", q.id, 7,
                    [dataclasses.replace(ok, status=0)], allowed, q, q)
    assert "io_invalid_opcode" in msg and "0x0000" in msg and "0x0001" in msg
    assert "no response" in _violates(answered, "k", q.id, 7, [], allowed,
                                      q, q)
    _violates(answered, "k", q.id, 7, [ok, ok], allowed, q, q)
    _violates(answered, "k", q.id, 7, [ok], allowed, q, None)
    _violates(answered, "k", q.id, 7, [ok], allowed, q,
              dataclasses.replace(q, state=QpState.ERROR))
    _violates(answered, "k", q.id, 7, [ok], allowed, q,
              dataclasses.replace(q, slots_used=1, slots_free=q.slots_free - 1))
    assert "receive" in _violates(
        answered, "k", q.id, 7, [ok], allowed, q,
        dataclasses.replace(q, recv_posted=q.recv_posted - 1, recv_idle=1))
    # a kind that connects its queue must leave it active, and only such a kind may
    conn = dataclasses.replace(q, state=QpState.CONNECTING)
    answered("k", q.id, 7, [ok], allowed, conn, q, QpState.ACTIVE)
    assert "expected ACTIVE" in _violates(answered, "k", q.id, 7, [ok],
                                          allowed, conn, conn, QpState.ACTIVE)
    _violates(answered, "k", q.id, 7, [ok], allowed, conn, q)


def test_call_refused_catches_hand_made_violations() -> None:
    code = int(ErrorCode.NOTCONN)
    good = TargetError(code, "qpair 4097 is not connected")
    checks.call_refused("k", good, code, ("4097",))
    assert "accepted" in _violates(checks.call_refused, "k", None, code, ())
    _violates(checks.call_refused, "k", ValueError("boom"), code, ())
    _violates(checks.call_refused, "k", good, int(ErrorCode.NOENT), ())
    _violates(checks.call_refused, "k", good, code, ("4098",))
    _violates(checks.call_refused, "k", TargetError(code, " "), code, ())


def test_driver_connects_like_a_host_and_leaves_no_transport_behind() -> None:
    """A sanity check of the driver on a plain case: admin queue enabled before the I/O
    queues connect, the bytes sent are the capsule's, and it destroys what it built."""
    m = MalformedCapsule(W.Capsule(W.Sqe(opc=0x10, cid=0x99, nsid=1)), Status.INVALID_OPCODE,
                         "io_invalid_opcode", KINDS["io_invalid_opcode"].citation)
    out = run_malformed(SMALL, Namespace(512, 64), "io_invalid_opcode", m)
    assert out.raw == m.capsule.encode() and out.cid == 0x99
    assert [r.status for r in out.responses] == [Status.INVALID_OPCODE]
    assert out.before.state == QpState.ACTIVE and out.before.qid == 1
    assert out.report is not None and out.report.message == ""
    assert out.same_qpair and all(f.status == Status.SUCCESS for f in out.same_qpair)


def test_driver_sends_connect_data_from_host_memory_when_it_does_not_fit() -> None:
    """With less in-capsule room than 1024 bytes, a Connect's data goes by keyed SGL; the
    Connect still connects (a reserved-fields Connect, answered with success)."""
    small_icd = SMALL.replace(in_capsule_data_size=512)
    seen: list[MalformedCapsule] = []

    def source(ctx):
        sq = W.ConnectSqe(cid=5, qid=0, sqsize=3)
        data = W.ConnectData.make(ctx.limits.subnqn, ctx.limits.hostnqn)
        m = MalformedCapsule(W.connect_capsule(sq, data), 0, "connect_reserved_fields", "")
        seen.append(m)
        return m

    out = run_malformed(small_icd, Namespace(512, 64), "connect_reserved_fields", source)
    sent = W.Capsule.decode(out.raw)
    assert len(out.raw) == W.SQE_SIZE and sent.sqe.sgl1.is_keyed
    assert sent.sqe.sgl1.length == W.CONNECT_DATA_SIZE
    assert [r.status for r in out.responses] == [Status.SUCCESS]
    assert out.after is not None and out.after.state == QpState.ACTIVE
    assert seen and out.malformed is seen[0]
