"""The hardware tier: a rule-based state machine driving a running NVMe-oF RDMA target as a
host on the wire does, judging the properties it can see black-box.

:class:`RemoteMachine` draws only what a remote target can serve: IO of drawn shapes
(Read / Write / Flush through one keyed descriptor, a keyed list or in-capsule data, one
or several in flight), admin probes, controllers connected, reconnected and added, and
host-side faults (rdma_disconnect with IO in flight, the host QP moved to error, a host
killed and reconnected, a write naming a bad rkey, malformed capsules from the ERR-1
catalogue, RDMA CM connects with drawn private data).  Delivery order, target-side faults
and white-box counters are not drawn: a remote target offers none of them.

Judged black-box (``conformance/checks.py``): CQE-1 (each CQE answers an outstanding CID
of its queue, with its SQID and an SQHD in range), DATA-1 (read-after-write bytes), LIVE-1
(every command answered within its time bound; no connection dropped without cause),
ERR-1 (malformed capsules answered with their specified status; the queue keeps serving),
CONN-1 (CM connects accepted or rejected with the NVMe/RDMA private data), SHUT-1
(reconnect works after every fault and shutdown).  With an RPC socket the target's
``nvmf_get_stats`` is read after each step and at quiescence (STATS-1: counters monotonic
and moving while IO is answered; SHUT-1: qpair counts back to baseline; LIVE-1: pending
queues drained); with a log file, the log is scanned after each shutdown cycle for the
destroy-time leak message and error lines (SHUT-1).
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from conformance import checks
from conformance.remote_target import QPAIRS, LogScan, Rpc, Target, serve, stat_totals
from impl import wire as W
from impl.host import (
    CommandTimeout,
    ConnectRejected,
    Controller,
    QueueFailed,
    VerbsError,
    binding,
)
from impl.host.binding import Unsupported
from impl.host.cffi_verbs import idle
from impl.host.queue import Queue, QueueError
from strategies import malformed as sm
from strategies.types import Namespace
from strategies.wire import Region, WireLimits, cm_private_data

#: Every rule of the machine, by name (what NRT_REMOTE_SKIP_RULES may name).
RULES = ("io", "burst", "admin_probe", "add_controller", "reconnect",
         "fault_with_io_in_flight", "errors_then_io", "bad_rkey", "malformed", "cm_connect")
#: The properties the tier judges, without and with the RPC oracle.
PROPERTIES = ("CQE-1", "DATA-1", "LIVE-1", "ERR-1", "CONN-1", "SHUT-1")
RPC_PROPERTIES = (*PROPERTIES, "STATS-1")
MAX_CONTROLLERS = 3
#: Seconds a target may take to reap a dropped connection before SHUT-1 counts it.
QUIESCE = 5.0
IO_QUEUE_DEPTH = 16
#: Malformed kinds a connected queue can carry (no setup step, no unconnected queue).
MALFORMED_KINDS = tuple(k for k, v in sm.KINDS.items() if v.queue in ("admin", "io")
                        and k not in sm.SETUP and k not in sm.CONNECTS)
#: CM private-data kinds drawn.  Not ``short``: RDMA CM carries private data in a fixed area
#: (56 bytes for RDMA_PS_TCP, zero-padded; rdma_cm(7)), so a passive side cannot tell fewer
#: than 32 bytes from 32 zero-padded ones - its answer follows from the zero fields.  Not
#: ``bad_qid``: the QIDs a remote controller grants are not known before Connect.
CM_KINDS = ("valid", "padded", "bad_recfmt", "hrqsize_zero", "hrqsize_too_large",
            "hsqsize_zero", "hsqsize_too_large")


def _bytes(seed: int, n: int) -> bytes:
    return random.Random(seed).randbytes(n)


class RemoteMachine(RuleBasedStateMachine):
    """One shutdown cycle per example: connect, draw rules, disconnect, check quiescence."""

    target: ClassVar[Target]
    timeout: ClassVar[float] = 10.0
    #: What the oracles read over the run: nvmf_get_stats calls, target-log lines scanned,
    #: shutdown cycles (reported by conformance/test_remote.py).
    seen: ClassVar[dict[str, int]] = {"rpc_calls": 0, "log_lines": 0, "cycles": 0}
    #: Rules not drawn (``NRT_REMOTE_SKIP_RULES``; set by conformance/test_remote.py).
    skipped: ClassVar[frozenset[str]] = frozenset()

    def __init__(self) -> None:
        super().__init__()
        self.t = self.target
        self.ctrls: list[Controller] = []
        self.retired: list[Queue] = []
        self.model: dict[tuple[int, int], frozenset[bytes]] = {}
        self.faults = 0
        self.rpc: Rpc | None = None
        self.log: LogScan | None = None
        self.baseline: dict[str, int] = {}
        self.last: dict[str, int] = {}
        self.read_depth = 16

    # ------------------------------------------------------------------ set-up
    @initialize(read_depth=st.sampled_from((16, 1, 2)))
    def start(self, read_depth: int) -> None:
        """Serve (in-process targets), read the baseline, connect the first controller.
        ``read_depth``: the responder resources (IRD) this example's host offers, which
        bound the target's RDMA READs outstanding per queue."""
        self.read_depth = read_depth
        serve(self.t)
        if self.t.rpc:
            self.rpc = Rpc(self.t.rpc, self.timeout, pump=self._pump)
            self.baseline = self.last = self.stats()
        if self.t.log:
            self.log = LogScan(self.t.log)
        self.ctrls.append(self.new_controller(first=True))

    def allowed(self, rule: str) -> bool:
        """Whether ``rule`` may be drawn: every rule but those ``NRT_REMOTE_SKIP_RULES``
        names (comma-separated), for a target whose known findings would hide the rest."""
        return rule not in self.skipped

    def _pump(self) -> None:
        for c in self.ctrls:
            for q in c.queues():
                q.poll()
        idle()

    def stats(self) -> dict[str, int]:
        assert self.rpc is not None
        self.seen["rpc_calls"] += 1
        return stat_totals(self.rpc.call("nvmf_get_stats"))

    def new_controller(self, *, first: bool = False) -> Controller:
        """Connect, enable and identify a controller.  A failure fails CONN-1 for the
        example's first controller, SHUT-1 (reconnect after a fault or a shutdown) after."""
        c = Controller(self.t.verbs, self.t.address, self.t.port, self.t.subnqn,
                       io_depth=IO_QUEUE_DEPTH, timeout=self.timeout,
                       read_depth=self.read_depth)
        try:
            c.connect()
        except (QueueError, VerbsError) as exc:
            c.close()
            where = f"controller bring-up on {self.t.address}:{self.t.port}"
            if first:
                checks.fail("CONN-1", f"{where} failed: {type(exc).__name__}: {exc}")
            checks.reconnected(where, exc)
        info = c.info
        assert info is not None
        for nsid in range(1, min(info.nn, 4) + 1):
            ns = c.namespace(nsid)
            if not ns.num_blocks:
                del c.namespaces[nsid]
        if not c.namespaces:
            raise QueueError(f"subsystem {self.t.subnqn} has no active namespace to test")
        return c

    # ------------------------------------------------------------------ helpers
    @contextmanager
    def live(self, what: str) -> Iterator[None]:
        """LIVE-1 around commands sent with no fault in play."""
        try:
            yield
        except CommandTimeout as exc:
            checks.answered_within(what, exc.cids, exc.seconds, self.timeout)
        except QueueFailed as exc:
            checks.connection_kept(what, str(exc))
        except QueueError as exc:   # a command of the bring-up or a probe answered an error
            checks.fail("CQE-1", f"{what}: {exc}")

    def limits(self, c: Controller) -> tuple[int, int]:
        """(largest transfer in bytes, in-capsule data bytes) the host may use."""
        info = c.info
        assert info is not None
        mps = 1 << (12 + ((c.cap >> 48) & 0xF))
        mdts = (1 << info.mdts) * mps if info.mdts else 1 << 20
        q = next(iter(c.io.values()))
        return min(mdts, q.slot_data - 1024, 64 * 1024), min(info.in_capsule_data_size, q.icd)

    def draw_io(self, data: Any, c: Controller, op: str | None = None
                ) -> tuple[str, int, int, int, str, int, int]:
        nsid = data.draw(st.sampled_from(sorted(c.namespaces)), label="nsid")
        ns = c.namespaces[nsid]
        most, icd = self.limits(c)
        op = op or data.draw(st.sampled_from(("write", "read", "read", "flush")), label="op")
        nlb = data.draw(st.integers(1, max(1, min(most // ns.block_size, 16, ns.num_blocks))),
                        label="nlb")
        slba = data.draw(st.integers(0, min(ns.num_blocks - nlb, 63)), label="slba")
        layouts = ["keyed"]
        if (c.info and c.info.msdbd >= 2) and nlb * ns.block_size >= 2:
            layouts.append("keyed_list")
        if op == "write" and 0 < nlb * ns.block_size <= icd:
            layouts.append("in_capsule")
        layout = data.draw(st.sampled_from(layouts), label="layout")
        pieces = data.draw(st.integers(2, min(4, c.info.msdbd if c.info else 2)),
                           label="pieces") if layout == "keyed_list" else 1
        seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
        return op, nsid, slba, nlb, layout, pieces, seed

    def expect_blocks(self, nsid: int, slba: int, nlb: int, bs: int, got: bytes) -> None:
        for i in range(nlb):
            want = self.model.get((nsid, slba + i))
            if want is not None:
                checks.bytes_match(f"read of NSID {nsid} LBA {slba + i}",
                                   got[i * bs:(i + 1) * bs], sorted(want))

    def record_write(self, nsid: int, slba: int, data: bytes, bs: int, *, certain: bool) -> None:
        for i in range(len(data) // bs):
            key, block = (nsid, slba + i), data[i * bs:(i + 1) * bs]
            if certain:
                self.model[key] = frozenset({block})
            elif key in self.model:
                self.model[key] = self.model[key] | {block}

    def retire(self, c: Controller) -> None:
        self.retired.extend(c.queues())
        self.ctrls.remove(c)

    def replace(self, c: Controller, what: str) -> Controller:
        """After a fault on ``c``: drop it, connect a new controller, prove it serves
        (SHUT-1: reconnect works), and check the target's qpair counts came back."""
        with_err: BaseException | None = None
        c.close()
        self.retire(c)
        try:
            n = self.new_controller()
            qid = next(iter(n.io))
            nsid = min(n.namespaces)
            rsp, _ = n.finish_io(n.start_io(qid, "flush", nsid, 0, 0))
            if not rsp.ok:
                raise QueueError(f"Flush on the new controller answered "
                                 f"{W.status_name(rsp.status)}")
        except (QueueError, VerbsError) as exc:
            with_err = exc
        checks.reconnected(what, with_err)
        self.ctrls.append(n)
        self.qpairs_settle(what)
        return n

    def expected_qpairs(self) -> dict[str, int]:
        return {"current_admin_qpairs": len(self.ctrls),
                "current_io_qpairs": sum(len(c.io) for c in self.ctrls)}

    def qpairs_settle(self, what: str) -> None:
        if self.rpc is None:
            return
        end = time.monotonic() + QUIESCE
        want = self.expected_qpairs()
        while True:
            now = self.stats()
            if all(now[k] == self.baseline.get(k, 0) + want[k] for k in QPAIRS) or \
                    time.monotonic() > end:
                break
            self._pump()
        checks.remote_qpairs_back(now, self.baseline, want, QUIESCE)

    # ------------------------------------------------------------------ rules: IO
    @precondition(lambda self: self.allowed("io"))
    @rule(data=st.data())
    def io(self, data: Any) -> None:
        """One IO, read-after-write checked against what this host wrote."""
        c = data.draw(st.sampled_from(self.ctrls), label="controller")
        qid = data.draw(st.sampled_from(sorted(c.io)), label="qid")
        op, nsid, slba, nlb, layout, pieces, seed = self.draw_io(data, c)
        bs = c.namespaces[nsid].block_size
        payload = _bytes(seed, nlb * bs) if op == "write" else b""
        before = self.stats() if self.rpc else {}
        with self.live(f"{op} of {nlb} block(s) at LBA {slba} ({layout})"):
            rsp, got = c.finish_io(c.start_io(qid, op, nsid, slba, nlb, layout=layout,
                                              pieces=pieces, data=payload))
            checks.status_as_expected("CQE-1", qid, rsp.cid, f"{op} {layout}", rsp.status,
                                      (W.SC_SUCCESS,))
            if op == "write":
                self.record_write(nsid, slba, payload, bs, certain=True)
            elif op == "read":
                self.expect_blocks(nsid, slba, nlb, bs, got)
        if self.rpc:
            checks.remote_counters_moved(self.stats(), before, 1)

    @precondition(lambda self: self.allowed("burst"))
    @rule(data=st.data())
    def burst(self, data: Any) -> None:
        """Several writes in flight on one queue, then reads of them all."""
        c = data.draw(st.sampled_from(self.ctrls), label="controller")
        qid = data.draw(st.sampled_from(sorted(c.io)), label="qid")
        q = c.io[qid]
        n = data.draw(st.integers(2, min(8, q.limit)), label="in_flight")
        nsid = min(c.namespaces)
        bs = c.namespaces[nsid].block_size
        base = data.draw(st.integers(0, max(0, min(c.namespaces[nsid].num_blocks - n, 63))))
        seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
        with self.live(f"burst of {n} writes"):
            ios = [c.start_io(qid, "write", nsid, base + i, 1, data=_bytes(seed + i, bs))
                   for i in range(n)]
            for io in ios:
                rsp, _ = c.finish_io(io)
                checks.status_as_expected("CQE-1", qid, rsp.cid, "write", rsp.status,
                                          (W.SC_SUCCESS,))
                self.record_write(nsid, io.slba, io.data, bs, certain=True)
            reads = [c.start_io(qid, "read", nsid, base + i, 1) for i in range(n)]
            for io in reads:
                rsp, got = c.finish_io(io)
                checks.status_as_expected("CQE-1", qid, rsp.cid, "read", rsp.status,
                                          (W.SC_SUCCESS,))
                self.expect_blocks(nsid, io.slba, 1, bs, got)

    @precondition(lambda self: self.allowed("admin_probe"))
    @rule(data=st.data(), probe=st.sampled_from(("identify", "vs", "csts", "keep_alive")))
    def admin_probe(self, data: Any, probe: str) -> None:
        c = data.draw(st.sampled_from(self.ctrls), label="controller")
        with self.live(f"admin {probe}"):
            if probe == "identify":
                from impl.host.controller import CNS_CONTROLLER, ControllerInfo

                info = ControllerInfo.parse(c.identify(CNS_CONTROLLER, 0))
                if info.cntlid != c.cntlid:
                    checks.fail("CONN-1", f"Identify Controller says CNTLID {info.cntlid:#x}, "
                                          f"the Connect gave {c.cntlid:#x}")
            elif probe == "keep_alive":
                rsp = c.keep_alive()
                checks.status_as_expected("CQE-1", 0, rsp.cid, "Keep Alive", rsp.status,
                                          (W.SC_SUCCESS,))
            elif probe == "csts":
                from impl.host.controller import CSTS, CSTS_RDY

                v = c.property_get(CSTS)
                if not v & CSTS_RDY:
                    checks.fail("CQE-1", f"CSTS {v:#x}: RDY cleared on an enabled controller")
            else:
                from impl.host.controller import VS

                c.property_get(VS)

    # ------------------------------------------------------------------ rules: controllers
    @precondition(lambda self: len(self.ctrls) < MAX_CONTROLLERS)
    @precondition(lambda self: self.allowed("add_controller"))
    @rule()
    def add_controller(self) -> None:
        self.ctrls.append(self.new_controller())
        self.qpairs_settle("another controller")

    @precondition(lambda self: self.allowed("reconnect"))
    @rule(data=st.data())
    def reconnect(self, data: Any) -> None:
        """Orderly: CC.SHN, CSTS.SHST complete, rdma_disconnect, then a new controller."""
        c = data.draw(st.sampled_from(self.ctrls), label="controller")
        try:
            c.shutdown()
        except QueueError as exc:
            checks.fail("SHUT-1", f"orderly shutdown (CC.SHN = 01b) did not complete: {exc}")
        c.disconnect()
        self.retire(c)
        try:
            self.ctrls.append(self.new_controller())
            err = None
        except (QueueError, VerbsError) as exc:
            err = exc
        checks.reconnected("reconnect after an orderly shutdown", err)
        self.qpairs_settle("reconnect after an orderly shutdown")

    # ------------------------------------------------------------------ rules: host faults
    def writes_in_flight(self, data: Any, c: Controller) -> list[Any]:
        """Writes of 8 blocks, each through a keyed list of up to 16 descriptors (as many
        RDMA READs, more than a small read depth lets the target post at once), then a
        drawn number of polls so the target is part way through them."""
        qid = min(c.io)
        q = c.io[qid]
        nsid = min(c.namespaces)
        bs = c.namespaces[nsid].block_size
        info = c.info
        pieces = max(2, min(16, info.msdbd if info else 2))
        n = data.draw(st.integers(0, min(4, q.limit)), label="in_flight")
        seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
        ios = []
        for i in range(n):
            payload = _bytes(seed + i, 8 * bs)
            ios.append(c.start_io(qid, "write", nsid, 8 * i, 8, layout="keyed_list",
                                  pieces=pieces, data=payload))
            self.record_write(nsid, 8 * i, payload, bs, certain=False)
        assert q.conn is not None
        for _ in range(data.draw(st.integers(0, 6), label="polls")):
            q.conn.poll_send(1)
        return ios

    @precondition(lambda self: self.allowed("fault_with_io_in_flight"))
    @rule(data=st.data(), how=st.sampled_from(("disconnect", "kill", "qp_error")))
    def fault_with_io_in_flight(self, data: Any, how: str) -> None:
        """rdma_disconnect, destroy without disconnect (a killed host), or the host QP to
        error, with writes in flight; then reconnect."""
        c = data.draw(st.sampled_from(self.ctrls), label="controller")
        ios = self.writes_in_flight(data, c)
        self.faults += 1
        if how == "disconnect":
            for q in c.queues():
                q.disconnect()
        elif how == "qp_error":
            try:
                c.io[min(c.io)].conn.qp_to_error()   # type: ignore[union-attr]
            except Unsupported:
                for q in c.queues():
                    q.disconnect()
        for q in c.queues():
            q.settle(0.01)
        self.collect(c)
        self.replace(c, f"{how} with {len(ios)} write(s) in flight")

    @precondition(lambda self: self.allowed("errors_then_io"))
    @rule(data=st.data())
    def errors_then_io(self, data: Any) -> None:
        """More error completions on one queue than it has entries (reads past the end of
        the namespace: LBA Out of Range, NVM Command Set 1.0 3.3.3.2.1), then a good read:
        each error releases what its command held (its receive, its slot), so the queue
        keeps serving (ERR-1)."""
        c = data.draw(st.sampled_from(self.ctrls), label="controller")
        qid = min(c.io)
        q = c.io[qid]
        nsid = min(c.namespaces)
        ns = c.namespaces[nsid]
        self.faults += 1
        for i in range(q.depth + 1):
            cid, slot = q.reserve()
            cap = W.Capsule.io(W.OPC_READ, cid, nsid, ns.num_blocks + i, 0,
                               (q.keyed(slot, 0, ns.block_size),))
            statuses: list[int] = []
            failure = None
            try:
                q.submit(cap, cid, slot)
                statuses.append(q.wait([cid])[cid].status)
            except CommandTimeout as exc:
                checks.answered_within(f"read past the end #{i + 1} on queue {qid}", exc.cids,
                                       exc.seconds, self.timeout)
            except QueueFailed as exc:
                failure = str(exc)
            checks.malformed_answered_on_wire(
                f"read past the end #{i + 1}", qid, cid, statuses, (W.SC_LBA_OUT_OF_RANGE,),
                W.SC_SUCCESS, failure)
        with self.live(f"a read after {q.depth + 1} error completions"):
            rsp, _ = c.finish_io(c.start_io(qid, "read", nsid, 0, 1))
            checks.malformed_answered_on_wire(
                "read past the end (the queue afterwards)", qid, rsp.cid, [W.SC_LBA_OUT_OF_RANGE],
                (W.SC_LBA_OUT_OF_RANGE,), rsp.status, None)

    @precondition(lambda self: self.allowed("bad_rkey"))
    @rule(data=st.data())
    def bad_rkey(self, data: Any) -> None:
        """A write naming a key the host never registered - in its one descriptor, or in
        one descriptor of a keyed list (the RDMA READs before it succeed): the target's
        RDMA READ fails; it answers an error or drops the connection, within the bound."""
        c = data.draw(st.sampled_from(self.ctrls), label="controller")
        qid = min(c.io)
        q = c.io[qid]
        nsid = min(c.namespaces)
        bs = c.namespaces[nsid].block_size
        assert q.data is not None and c.info is not None
        bad = (q.data.rkey ^ 0x00A5_5A00) or 0x1
        most = max(2, min(16, c.info.msdbd))
        pieces = data.draw(st.sampled_from((1, most)), label="pieces")
        which = data.draw(st.integers(0, pieces - 1), label="bad_piece")
        self.faults += 1
        for i in range(8):
            self.model.pop((nsid, 56 + i), None)
        io = c.start_io(qid, "write", nsid, 56, 8, data=bytes(8 * bs), rkey=bad,
                        layout="keyed" if pieces == 1 else "keyed_list", pieces=pieces,
                        bad_piece=which)
        try:
            rsp, _ = c.finish_io(io)
            if rsp.ok:
                checks.fail("ERR-1", f"write with rkey {bad:#x} (never registered) in "
                                     f"descriptor {which} of {pieces} answered success; the "
                                     f"target cannot have read its data")
        except CommandTimeout as exc:
            checks.answered_within("write with a bad rkey (no error, no disconnect)",
                                   exc.cids, exc.seconds, self.timeout)
        except QueueFailed:
            pass   # the target's QP went to error: the connection is gone, as allowed
        self.collect(c)
        self.replace(c, f"a write with a bad rkey in descriptor {which} of {pieces}")

    @precondition(lambda self: self.allowed("malformed"))
    @rule(data=st.data())
    def malformed(self, data: Any) -> None:
        """One capsule of the ERR-1 catalogue on a connected queue; then a well-formed
        command on the same queue."""
        c = data.draw(st.sampled_from(self.ctrls), label="controller")
        kinds = tuple(k for k in sm.feasible_kinds(self.err_context(c, c.io[min(c.io)]))
                      if k in MALFORMED_KINDS)
        if not kinds:
            return
        name = data.draw(st.sampled_from(kinds), label="kind")
        kind = sm.KINDS[name]
        q = c.admin if kind.queue == "admin" else c.io[min(c.io)]
        assert q is not None
        # keyed descriptors point into the memory of the queue the capsule goes on: a key
        # is valid only on its own connection's protection domain
        drawn = data.draw(sm.malformed_commands(self.err_context(c, q), (name,)),
                          label="malformed")
        raw = drawn.capsule.encode()
        if len(raw) > W.SQE_SIZE + q.icd:
            return   # larger than this host's send slots (its in-capsule area)
        self.faults += 1
        cid = drawn.capsule.sqe.cid
        statuses: list[int] = []
        failure: str | None = None
        _, slot = q.reserve()
        try:
            q.submit(raw, cid, slot)
            statuses.append(q.wait([cid])[cid].status)
            q.settle(0.005)
            statuses += [a.status for a in q.anomalies.unknown_cid if a.cid == cid]
            q.anomalies.unknown_cid = [a for a in q.anomalies.unknown_cid if a.cid != cid]
        except CommandTimeout as exc:
            checks.answered_within(f"malformed {drawn.kind}", exc.cids, exc.seconds,
                                   self.timeout)
        except QueueFailed as exc:
            failure = str(exc)
        follow: int | None = None
        if not failure:
            try:
                if q.qid == 0:
                    follow = c.keep_alive().status
                else:
                    follow = c.finish_io(c.start_io(q.qid, "flush", min(c.namespaces), 0, 0)
                                         )[0].status
            except (CommandTimeout, QueueError) as exc:
                failure = str(exc)
        checks.malformed_answered_on_wire(drawn.kind, q.qid, cid, statuses,
                                          (kind.status, *kind.alternatives), follow, failure)

    def err_context(self, c: Controller, q: Queue) -> sm.ErrContext:
        info = c.info
        assert info is not None and q.data is not None
        most, icd = self.limits(c)
        nss = tuple(Namespace(ns.block_size, ns.num_blocks) for ns in
                    (c.namespaces[n] for n in sorted(c.namespaces)))
        lim = WireLimits(icd, most, max(info.msdbd, 1), min(c.mqes + 1, 0xFFFF), 0xFFFE, nss,
                         (Region(q.data.rkey, q.data.addr, q.data.size),), self.t.subnqn,
                         c.hostnqn)
        return sm.ErrContext(lim, c.cntlid, c.hostid, tuple(sorted(c.io)),
                             max(c.io) + 1, 0xFFFE, info.nn)

    @precondition(lambda self: self.allowed("cm_connect"))
    @rule(data=st.data())
    def cm_connect(self, data: Any) -> None:
        """An RDMA CM connect with drawn private data (valid or with one thing wrong)."""
        c = self.ctrls[0]
        depth = min(c.mqes + 1, 0xFFFF)
        lim = WireLimits(max_queue_depth=depth, max_qid=4)
        raw, expected, kind = data.draw(cm_private_data(lim, CM_KINDS, tagged=True),
                                        label="private_data")
        ask = W.CmRequestPrivateData.decode(raw, exact=False).hrqsize if len(raw) >= 32 else 0
        self.faults += expected != "accept"
        # the probe needs the reject private data: through a binding that reports it
        verbs = self.t.verbs if self.t.verbs.reports_reject_data else binding("cffi")
        try:
            conn = verbs.connect(self.t.address, self.t.port, raw, send_depth=2,
                                        recv_depth=2, responder_resources=16,
                                        initiator_depth=16, timeout=self.timeout)
        except ConnectRejected as exc:
            checks.cm_answered_on_wire(kind, (expected,), False, exc.private_data, ask)
            return
        except VerbsError as exc:
            checks.fail("CONN-1", f"CM connect ({kind}) was neither accepted nor rejected: {exc}")
        try:
            checks.cm_answered_on_wire(kind, (expected,), True, conn.accept_data, max(ask, 1))
        finally:
            conn.disconnect()
            conn.close()
        self.qpairs_settle(f"CM connect ({kind}) closed")

    # ------------------------------------------------------------------ oracles
    def collect(self, c: Controller) -> None:
        for q in c.queues():
            a = q.anomalies
            checks.responses_well_formed(q.qid, a.unknown_cid, a.wrong_sqid, a.bad_sqhd,
                                         q.depth)

    @invariant()
    def responses_and_counters(self) -> None:
        for c in self.ctrls:
            self.collect(c)
        if self.rpc is not None and self.last:
            now = self.stats()
            checks.remote_counters_monotonic(self.last, now)
            self.last = now

    def teardown(self) -> None:
        try:
            for c in list(self.ctrls):
                try:
                    c.shutdown()
                except (QueueError, VerbsError):
                    pass
                self.collect(c)
                c.disconnect()
                self.retire(c)
            if self.rpc is not None:
                self.qpairs_settle("every controller disconnected")
                now = self.stats()
                checks.remote_pending_drained({k: now[k] for k in now if k.startswith(
                    "pending")}, QUIESCE)
        finally:
            self.t.stop()
        self.seen["cycles"] += 1
        if self.log is not None:
            lines = self.log.new_lines()
            self.seen["log_lines"] += len(lines)
            checks.target_log_clean(LogScan.leaks(lines), LogScan.errors(lines), self.faults)
