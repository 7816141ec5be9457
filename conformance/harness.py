"""The harness: drives one target from strategy values and keeps the reference model.

It turns drawn values (options, topology, IO shapes, schedules, faults) into facade calls,
reaps every response into the model, and calls :mod:`conformance.checks` for verdicts.
State machines (the gate), stress runs and self-checks all use it.  It never looks at the
options' defect switches: it passes them through to the target untouched.

It judges a target by what the target declares (:meth:`impl.Transport.describe`): each part
of a property whose introspection the target does not declare is left out, as
:mod:`conformance.judging` says, and how every property is judged is recorded there.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from conformance import checks, judging
from conformance.figures import COLLECTOR as FIGURES
from conformance.model import Command, ControllerModel, NamespaceModel, QpairModel, pattern
from impl import (
    Capsule,
    DestroyReport,
    Opcode,
    Options,
    OptionsRefused,
    PoolCounts,
    QpairInfo,
    Queue,
    Status,
    TargetError,
    Transport,
    connect_capsule,
    enable_capsule,
    in_capsule,
    keyed,
)
from impl.isolation import TargetCrashed
from impl.wire import CONNECT_DATA_SIZE
from strategies.configs import ControllerSpec, GateConfig
from strategies.shapes import IoShape, realize
from strategies.types import (
    Fault,
    FaultPlan,
    IoCommand,
    Namespace,
    Schedule,
    SglLayout,
    TransportOptions,
)

#: Delivery/poll rounds a targeted command (probe, connect) gets before LIVE-2 fails.
PROBE_ROUNDS = 4
#: Host-memory slack per CID for descriptor gaps.
GAP_SLACK = 16 * 2 * 64 + 64
#: What the gate's machines judge (ERR-1 and CONN-1 have their own drivers).
PROPERTIES = ("POOL-1", "POOL-2", "POOL-3", "LIVE-1", "LIVE-2", "CQE-1", "DATA-1", "SM-1",
              "DEPTH-1", "CFG-1", "SHUT-1", "STATS-1", "CRASH-1")


class Harness:
    """One target under test plus its reference model."""

    def __init__(self, config: GateConfig, *, defects: int = 0):
        FIGURES.target_starting()
        self.config = config
        opts = config.options
        # the drawn options moved to the nearest ones this target honours exactly as asked
        # (the built-in target keeps them all): CFG-1 then holds it to every one of them
        self.options = Options.from_any(opts, defects=defects | opts.defects).fitted()
        self.strategy_options: TransportOptions = opts.replace(**{
            f.name: getattr(self.options, f.name) for f in dataclasses.fields(opts)
            if f.name != "defects"})
        try:
            self.t = Transport(self.options)
        except OptionsRefused as exc:
            # how each property is judged is recorded (and impossible asks refused) first
            judging.start(judging.describe_target(), PROPERTIES, self.options.defects)
            checks.fail("CFG-1", f"valid options refused: {exc.message}")
        self.desc = self.t.describe()
        try:
            self.can = judging.start(self.desc, PROPERTIES, self.options.defects)
        except judging.CannotJudge:
            self.t.destroy()
            raise
        self.alive = True
        global _latest
        _latest = weakref.ref(self)
        self.io_error_statuses: set[int] = set()
        self.write_tag = 0
        self.events = 0           # micro-events executed through the facade
        self.steps = 0
        self.timeline: list[dict[str, int | str]] = []   # pool samples (pool_row)
        self.target_events = 0    # state changes the target counted, read before destroy
        can = self.can
        checks.options_honoured(self.options, self.t.effective_options,
                                self.t.wr_pool() if can("CFG-1", "wr_capacity") else None,
                                self.t.buf_pool() if can("CFG-1", "buffers") else None)
        self.t.set_bdev_auto(False)
        self.ports = [self.t.add_port() for _ in range(config.topology.num_ports)]
        self.port_is_up = {p: True for p in self.ports}
        self.window = self.options.max_io_size + GAP_SLACK
        total_depth = sum(q.depth for q in config.topology.qpairs()) + 4 * 16
        self.host_size = total_depth * self.window + 4096 * 64
        self.mkey = self.t.register_memory(self.host_size)
        self.host_used = 0
        self.controllers: list[ControllerModel] = []
        self.qpairs: list[QpairModel] = []
        self.subsystems: list[tuple[int, list[NamespaceModel]]] = []
        for sub in config.topology.subsystems:
            s = self.t.add_subsystem()
            models = []
            for ns in sub.namespaces:
                nsid = self.t.add_namespace(s, ns.block_size, ns.num_blocks)
                models.append(NamespaceModel(s, nsid, ns.block_size, ns.num_blocks))
            self.subsystems.append((s, models))
        for (s, models), sub in zip(self.subsystems, config.topology.subsystems):
            for ctrl in sub.controllers:
                spec = ControllerSpec(ctrl.admin.port, ctrl.admin.group, ctrl.admin.depth,
                                      tuple((q.port, q.group, q.depth) for q in ctrl.io))
                self._connect_controller(s, models, spec, settle=True)
        FIGURES.target_built(len(self.subsystems), len(self.qpairs),
                             self.options.max_queue_depth)

    # ---------------------------------------------------------------- topology helpers
    def _new_qpair(self, ctrl: ControllerModel, port: int, group: int, depth: int,
                   qid: int) -> QpairModel | None:
        if self.host_used + depth * self.window > self.host_size:
            return None    # out of host memory for more connections: skip quietly
        try:
            handle = self.t.create_qpair(port, group, depth, qid)
        except TargetError:
            return None    # table full or port down: the connection is refused
        qp = QpairModel(handle, group, port, depth, qid, ctrl, self.window, self.host_used)
        self.host_used += depth * self.window
        self.qpairs.append(qp)
        return qp

    def _connect_controller(self, subsystem: int, models: list[NamespaceModel],
                            spec: ControllerSpec, settle: bool) -> None:
        opts = self.options
        ctrl = ControllerModel(subsystem, models)
        port = self._up_port(spec.admin_port)
        if port is None:
            return
        depth = max(2, min(spec.admin_depth, opts.max_queue_depth))
        admin = self._new_qpair(ctrl, port, spec.admin_group % opts.num_poll_groups, depth, 0)
        if admin is None:
            return
        ctrl.admin = admin
        self.controllers.append(ctrl)
        rsp = self._connect(admin, subsystem, 0, 0, settle)
        if rsp is None:
            return
        ctrl.cntlid = rsp
        if not self._enable(admin, settle):
            return
        for qid, (p, g, d) in enumerate(spec.io, start=1):
            port = self._up_port(p)
            if port is None:
                continue
            qp = self._new_qpair(ctrl, port, g % opts.num_poll_groups,
                                 max(2, min(d, opts.max_queue_depth)), qid)
            if qp is None:
                continue
            ctrl.io.append(qp)
            self._connect(qp, subsystem, qid, ctrl.cntlid, settle)

    def _connect(self, qp: QpairModel, subsystem: int, qid: int, cntlid: int,
                 settle: bool) -> int | None:
        cap = connect_capsule(0, subsystem, qid=qid, cntlid=cntlid, sqsize=qp.depth - 1)
        cmd = Command(0, f"connect qid {qid}", "connect")
        if not self._submit(qp, cap, cmd):
            return None
        if settle:
            self.t.drain(64)
            self.collect()
        else:
            # LIVE-2 holds for commands that need no data buffer: a Connect whose 1024
            # bytes cannot ride in the capsule waits for buffers like any IO (liveness
            # mode still judges it, LIVE-1)
            self._await(qp, cmd, "fabrics CONNECT",
                        strict=self.options.in_capsule_data_size >= CONNECT_DATA_SIZE)
        return cmd.result

    def _enable(self, qp: QpairModel, settle: bool) -> bool:
        """Property Set CC.EN = 1 on the admin queue (NVMe base 3.5.1), before IO queues."""
        cid = qp.free_cid()
        if cid is None:
            return False
        cmd = Command(cid, "property set CC.EN", "connect")
        if not self._submit(qp, enable_capsule(cid), cmd):
            return False
        if settle:
            self.t.drain(64)
            self.collect()
        else:
            self._await(qp, cmd, "property set CC.EN")
        return cid not in qp.outstanding and not qp.failed

    def _up_port(self, index: int) -> int | None:
        up = [p for p in self.ports if self.port_is_up[p]]
        return up[index % len(up)] if up else None

    # ---------------------------------------------------------------------- queries
    def live_qpairs(self) -> list[QpairModel]:
        return [q for q in self.qpairs if not q.failed]

    def live_io_qpairs(self) -> list[QpairModel]:
        return [q for q in self.qpairs if not q.failed and q.qid != 0 and
                q.controller.cntlid]

    def existing_qpairs(self) -> list[QpairModel]:
        return [q for q in self.qpairs if not q.gone]

    def in_flight(self) -> int:
        return sum(len(q.outstanding) for q in self.qpairs)

    # ---------------------------------------------------------------------- submission
    def _submit(self, qp: QpairModel, cap: Capsule, cmd: Command, icd: bytes = b"") -> bool:
        try:
            self.t.submit(qp.handle, cap, icd)
        except TargetError as exc:
            self._refresh_states()
            if not qp.failed:
                checks.fail("CQE-1", f"qpair {qp.handle} is live but refused capsule CID "
                                     f"{cmd.cid}: {exc}")
            return False
        qp.outstanding[cmd.cid] = cmd
        return True

    def _busy(self, ns: NamespaceModel, lo: int, hi: int, write: bool) -> bool:
        for q in self.qpairs:
            for c in q.outstanding.values():
                r = c.lba_range
                if c.ns is ns and r and r[0] < hi and lo < r[1] and (write or c.data):
                    return True
        return False

    def submit_io(self, shape: IoShape, *, bad_key: bool = False) -> bool:
        """Submit the command ``shape`` stands for; False if nothing could take it."""
        live = self.live_io_qpairs()
        if not live:
            return False
        qp = live[shape.qpair % len(live)]
        cid = qp.free_cid()
        if cid is None:
            return False
        usable = [n for n in qp.controller.namespaces
                  if n.block_size <= self.options.max_io_size or shape.op == "flush"]
        if not usable:
            return False   # no block of these namespaces fits max_io_size
        nsm = usable[shape.namespace % len(usable)]
        ns = Namespace(nsm.block_size, nsm.num_blocks)
        cmd_io = realize(shape, ns, self.strategy_options, nsm.nsid)
        if cmd_io.op != "flush":
            slba = self._free_lba(nsm, cmd_io)
            if slba is None:
                return False
            cmd_io = realize(shape, ns, self.strategy_options, nsm.nsid, slba=slba)
        sent = self._submit_io(qp, cid, nsm, cmd_io, bad_key)
        if sent:
            FIGURES.io_submitted()
            if bad_key:
                FIGURES.fault("bad_key")
        return sent

    def _free_lba(self, nsm: NamespaceModel, io: IoCommand) -> int | None:
        n = io.nlb + 1
        write = io.op == "write"
        starts = [io.slba] + list(range(0, nsm.num_blocks - n + 1, n))
        for slba in starts:
            if not self._busy(nsm, slba, slba + n, write):
                return slba
        return None

    def _submit_io(self, qp: QpairModel, cid: int, nsm: NamespaceModel, io: IoCommand,
                   bad_key: bool) -> bool:
        base = qp.base + cid * qp.window
        label = f"{io.op} nsid {io.nsid} lba {io.slba}+{io.nlb + 1}"
        allowed = (Status.SUCCESS, *sorted(self.io_error_statuses))
        if io.layout is None:
            cap = Capsule(Opcode.FLUSH, cid, nsid=io.nsid)
            return self._submit(qp, cap, Command(cid, label, "io", io, nsm, allowed=allowed))
        length = io.layout.length
        data = None
        if io.op == "write":
            self.write_tag += 1
            data = pattern(self.write_tag, io.slba, length, nsm.block_size)
        if io.layout.kind == "in_capsule":
            cap = Capsule.with_data(Opcode.WRITE, cid, [in_capsule(length)], nsid=io.nsid,
                                    slba=io.slba, nlb=io.nlb)
            cmd = Command(cid, label + " in-capsule", "io", io, nsm, data, allowed=allowed)
            return self._submit(qp, cap, cmd, icd=data or b"")
        ranges, pos = [], 0
        key = self.t.invalid_key() if bad_key else self.mkey
        for off, n in zip(io.layout.offsets, io.layout.lengths):
            ranges.append((base + off, n))
            if data is not None:
                self.t.write_memory(self.mkey, base + off, data[pos:pos + n])
            pos += n
        descs = [keyed(a, n, key) for a, n in ranges]
        opcode = Opcode.WRITE if io.op == "write" else Opcode.READ
        cap = Capsule.with_data(opcode, cid, descs, nsid=io.nsid, slba=io.slba, nlb=io.nlb)
        cmd = Command(cid, f"{label} x{len(descs)} desc", "io", io, nsm, data, tuple(ranges),
                      allowed)
        if bad_key:
            cmd.lost = True   # a remote access error takes the qpair down: none or one
        return self._submit(qp, cap, cmd)

    # ------------------------------------------------------------------------ progress
    def run_schedule(self, schedule: Schedule, passes: int = 1,
                     plan: FaultPlan = ()) -> None:
        """Run ``schedule`` ``passes`` times in C, firing each ``(at_step, fault)`` of
        ``plan`` just before step ``at_step`` of the first pass."""
        cut = 0
        for at, fault in sorted(plan, key=lambda p: p[0]):
            at = min(at, len(schedule.steps))
            self._run_words(Schedule(schedule.steps[cut:at]))
            cut = at
            if not self.alive:
                return
            self.fault(fault)
            if not self.alive:
                return
        self._run_words(Schedule(schedule.steps[cut:]))
        for _ in range(passes - 1):
            self._run_words(schedule)
        if self.alive:
            self.probe_where_io_waits()

    def _run_words(self, schedule: Schedule) -> None:
        existing = self.existing_qpairs()
        groups = self.options.num_poll_groups

        def resolve(kind: str, index: int) -> int | None:
            if kind in ("h2t", "t2h"):
                if not existing:
                    return None
                return existing[index % len(existing)].handle % Transport.HANDLE_SLOTS
            if kind == "poll":
                return index % groups
            return index

        words = schedule.to_words(resolve)
        self.events += len(words)
        self.t.run(words)
        self.collect()

    def collect(self) -> None:
        """Reap every response into the model, then notice failed and destroyed qpairs."""
        for qp in self.qpairs:
            if qp.gone:
                continue
            try:
                responses = self.t.reap(qp.handle)
            except TargetError:
                responses = []
            for r in responses:
                self._on_response(qp, r.cid, r.status, r.result, r.unexpected)
        self._refresh_states()

    def _on_response(self, qp: QpairModel, cid: int, status: int, result: int,
                     unexpected: bool) -> None:
        cmd = qp.outstanding.pop(cid, None)
        checks.response_expected(qp.handle, cid, cmd is not None, False, unexpected)
        assert cmd is not None
        cmd.result = result
        if cmd.kind == "io":
            FIGURES.io_answered(cmd.io.layout.length if cmd.io and cmd.io.layout else 0)
        if cmd.kind == "connect":
            checks.status_as_expected("CQE-1", qp.handle, cid, cmd.label, status,
                                      (Status.SUCCESS,))
            return
        if not cmd.lost:
            checks.status_as_expected("CQE-1", qp.handle, cid, cmd.label, status, cmd.allowed)
        io, ns = cmd.io, cmd.ns
        if io is None or ns is None or io.op == "flush":
            return
        if io.op == "write":
            assert cmd.data is not None
            if status == Status.SUCCESS:
                ns.write_acknowledged(io.slba, cmd.data)
            else:
                ns.write_undecided(io.slba, cmd.data)
        elif status == Status.SUCCESS:
            got = b"".join(self.t.read_memory(self.mkey, off, n) for off, n in cmd.host_ranges)
            self._check_blocks(f"qpair {qp.handle} CID {cid} {cmd.label}", ns, io.slba, got)

    def _check_blocks(self, what: str, ns: NamespaceModel, slba: int, got: bytes) -> None:
        bs = ns.block_size
        for i in range(len(got) // bs):
            checks.bytes_match(f"{what}, block {slba + i}", got[i * bs:(i + 1) * bs],
                               ns.candidates(slba + i))

    def _refresh_states(self) -> None:
        """Which connections failed, from what the fabric did rather than from what the
        target says: the fabric put a QP of it in error (port down, qpair error, host or
        target disconnect, a remote access error), or the target destroyed its qpair.  An
        admin connection's failure ends the association, so the model fails the
        controller's IO connections with it (NVMe-oF 1.1, 3.x: the association is the admin
        queue's).  The target is then judged against this prediction: a failed connection
        must be released by the end of liveness mode (SHUT-1), and nothing on it counts as
        a live answer (CQE-1)."""
        for qp in self.qpairs:
            if qp.gone:
                continue
            conn = self.t.conn_info(qp.handle)
            if conn.failed:
                self._mark_failed(qp)
            if conn.qpair < 0:
                self._mark_failed(qp)
                qp.gone = True
                qp.outstanding.clear()   # lost capsules: their qpair is gone for good
        for ctrl in self.controllers:
            if ctrl.admin is not None and ctrl.admin.failed:
                for io in ctrl.io:
                    self._mark_failed(io)

    def _mark_failed(self, qp: QpairModel) -> None:
        if qp.failed:
            return
        qp.failed = True
        for cmd in qp.outstanding.values():
            cmd.lost = True
            if cmd.io is not None and cmd.io.op == "write" and cmd.ns and cmd.data:
                cmd.ns.write_undecided(cmd.io.slba, cmd.data)

    def _await(self, qp: QpairModel, cmd: Command, kind: str, strict: bool = True) -> bool:
        """Deliver only this qpair's wires and poll its group, a few rounds (LIVE-2; only
        ``strict`` waits fail it)."""
        waiting = (self.t.group_stats(qp.group).pending_data_buffer
                   if self.can("LIVE-2", "aimed") else None)
        undelivered = False
        for _ in range(PROBE_ROUNDS):
            undelivered = self._deliver_host_sends(qp)
            while self.t.poll(qp.group):
                pass
            if cmd.kind == "io":   # an IO probe needs the block device too
                while self.t.bdev_complete(0):
                    pass
                while self.t.poll(qp.group):
                    pass
            while self.t.deliver_t2h(qp.handle):
                pass
            while self.t.poll(qp.group):
                pass
            self.collect()
            if cmd.cid not in qp.outstanding or qp.outstanding[cmd.cid] is not cmd:
                return True
            if qp.failed:
                return False
        if strict:
            checks.admin_not_starved(kind, False, PROBE_ROUNDS, waiting, undelivered)
        return False

    def _deliver_host_sends(self, qp: QpairModel) -> bool:
        """Deliver every capsule the qpair's host side has posted; True if one is left
        waiting for a receive of a shared receive queue (the fabric counted an RNR wait on
        the last attempt).  Only asked of a target that shares its receives."""
        shared = self.desc.has("SHARED_RECEIVES")
        # a SEND that finds no receive executes nothing (so it is always the last attempt)
        before = self.t.fabric_stats().rnr_waits if shared else 0
        while self.t.deliver_h2t(qp.handle):
            pass
        return shared and self.t.fabric_stats().rnr_waits > before

    # -------------------------------------------------------------------------- rules
    def admin_probe(self, which: int) -> None:
        """LIVE-2: a keep-alive or property get on an admin qpair, or (``which`` 6, 7) a
        one-block in-capsule write on an IO qpair, completes promptly: none needs a data
        buffer, so none may wait behind IO that does."""
        if which >= 6 and self._in_capsule_probe(which):
            return
        admins = self._where_io_waits([c.admin for c in self.controllers
                                       if c.admin and not c.admin.failed and c.cntlid])
        if not admins:
            return
        qp = admins[which % len(admins)]
        cid = qp.free_cid()
        if cid is None:
            return
        if which % 2:
            cap = Capsule(Opcode.KEEP_ALIVE, cid)
            cmd = Command(cid, "keep-alive", "probe")
        else:
            cap = Capsule(Opcode.FABRICS, cid, fctype=4, cdw10=0x08)   # property get VS
            cmd = Command(cid, "property get VS", "probe")
        if self._submit(qp, cap, cmd):
            self._await(qp, cmd, cmd.label)

    def probe_where_io_waits(self) -> None:
        """LIVE-2 whenever it can bite: if IO waits for buffers on a poll group, an admin
        qpair there (keep-alive) or else an IO qpair there (one-block in-capsule write) must
        still be served.  Where the target keeps no group stats nothing says where IO
        waits, and the probes of the rules are the only ones."""
        if not self.can("LIVE-2", "aimed"):
            return
        for g in range(self.options.num_poll_groups):
            if not self.t.group_stats(g).pending_data_buffer:
                continue
            admins = [c.admin for c in self.controllers if c.admin and c.admin.group == g
                      and not c.admin.failed and c.cntlid]
            if admins:
                qp = admins[0]
                cid = qp.free_cid()
                if cid is not None:
                    cmd = Command(cid, "keep-alive", "probe")
                    if self._submit(qp, Capsule(Opcode.KEEP_ALIVE, cid), cmd):
                        self._await(qp, cmd, cmd.label)
                return
            ios = [q for q in self.live_io_qpairs() if q.group == g]
            if ios and self._in_capsule_probe(0, ios):
                return

    def _where_io_waits(self, qpairs: list[QpairModel]) -> list[QpairModel]:
        """The qpairs on poll groups where IO waits for buffers (a probe there tests
        LIVE-2), or all of them if no group has such IO (or the target does not say)."""
        if not self.can("LIVE-2", "aimed"):
            return qpairs
        waiting = {g for g in range(self.options.num_poll_groups)
                   if self.t.group_stats(g).pending_data_buffer}
        return [q for q in qpairs if q.group in waiting] or qpairs

    def _in_capsule_probe(self, which: int, among: list[QpairModel] | None = None) -> bool:
        live = among if among is not None else self._where_io_waits(self.live_io_qpairs())
        if not live:
            return False
        qp = live[which % len(live)]
        cid = qp.free_cid()
        fits = [n for n in qp.controller.namespaces
                if n.block_size <= min(self.options.in_capsule_data_size,
                                       self.options.max_io_size)]
        if cid is None or not fits:
            return False
        nsm = fits[0]
        io = IoCommand("write", nsm.nsid, 0, 0, SglLayout("in_capsule", (nsm.block_size,), (0,)))
        slba = self._free_lba(nsm, io)
        if slba is None:
            return False
        io = dataclasses.replace(io, slba=slba)
        if self._submit_io(qp, cid, nsm, io, False):
            self._await(qp, qp.outstanding[cid], "in-capsule write")
        return True

    def connect_controller(self, spec: ControllerSpec) -> None:
        if not self.subsystems:
            return
        s, models = self.subsystems[spec.subsystem % len(self.subsystems)]
        self._connect_controller(s, models, spec, settle=False)

    def fault(self, f: Fault) -> None:
        FIGURES.fault(f.kind)
        t = self.t
        live = self.live_qpairs()
        if f.kind == "bdev_error":
            status = f.status or Status.INTERNAL_ERROR
            t.bdev_inject_error(max(1, f.count), status)
            self.io_error_statuses.add(status)
            for qp in self.qpairs:   # IO already in flight may now fail too
                for cmd in qp.outstanding.values():
                    if cmd.kind == "io":
                        cmd.allowed = (*cmd.allowed, status)
        elif f.kind in ("port_down", "port_up"):
            port = self.ports[f.target % len(self.ports)]
            if f.kind == "port_down":
                t.port_down(port)
            else:
                t.port_up(port)
            self.port_is_up[port] = f.kind == "port_up"
        elif f.kind == "transport_destroy":
            self.shutdown()
            return
        elif live:
            # a qpair fault bites where IO is in flight: prefer qpairs with commands out
            busy = [q for q in live if q.outstanding]
            pool = busy or live
            qp = pool[f.target % len(pool)]
            if f.kind == "qpair_error":
                t.inject_qpair_error(qp.handle)
            elif f.kind == "host_disconnect":
                t.host_disconnect(qp.handle)
            elif f.kind == "qpair_disconnect":
                t.disconnect_qpair(qp.handle)
            elif f.kind == "post_fail":
                t.fail_posts(qp.handle, max(1, f.count))
        self._refresh_states()

    def shutdown(self) -> None:
        """SHUT-1: abrupt transport destroy with IO in whatever state it is in."""
        in_flight = self.in_flight()
        FIGURES.pools(self.timeline, self.options.wr_pool_capacity,
                      self.options.num_shared_buffers)
        FIGURES.destroyed_abruptly()
        self.target_events = self.t.progress
        report = self.t.destroy()
        self.alive = False
        can = self.can
        checks.shutdown_released(
            report, self.options.wr_pool_capacity if can("SHUT-1", "destroy_wrs") else None,
            self.options.num_shared_buffers if can("SHUT-1", "destroy_bufs") else None,
            in_flight, audit=_audit(can))

    # -------------------------------------------------------------------------- checks
    def check_step(self) -> None:
        """Invariants that hold after every step: POOL-1, POOL-3, SM-1, DEPTH-1."""
        if not self.alive:
            return
        t, can, desc = self.t, self.can, self.desc
        if can("POOL-1", "conservation"):
            checks.wr_pool_conserved(t.wr_pool())
        requests = can("SM-1", "states")
        # without slot and depth counts nothing says a qpair is idle: read its requests
        known_idle = desc.has("RECEIVES", "DEPTHS")
        infos = []
        for qp in self.existing_qpairs():
            info = t.qpair_info(qp.handle)
            if info is None:
                continue
            reqs = None
            if requests:
                busy = not known_idle or info.slots_used or info.cur_read_depth
                reqs = t.requests(qp.handle) if busy else []
                checks.requests_consistent(qp.handle, reqs, desc,
                                           queues=can("SM-1", "queues"),
                                           wrs=can("SM-1", "wr_order"))
            if can("DEPTH-1", "limits"):
                checks.depths_within_limits(info, reqs if can("DEPTH-1", "reads") else None,
                                            slots=can("DEPTH-1", "slots"))
            infos.append(info)
        checks.buffers_and_slots_conserved(
            t.buf_pool() if can("POOL-3", "buffers") else None,
            infos if can("POOL-3", "slots") else (),
            free_state=desc.free_state if can("POOL-3", "states") else None)
        if can("SM-1", "transitions"):
            checks.transitions_legal(t.transitions(), desc)
        if can("STATS-1", "counters"):
            self._check_stats(infos)
        FIGURES.step((len(q.outstanding) for q in self.qpairs), infos)

    def _check_stats(self, infos: list) -> None:  # type: ignore[type-arg]
        """STATS-1 for every poll group, from the qpair infos of this step."""
        t = self.t
        need_buffer = self.desc.states_on(Queue.PENDING_BUF)
        pending = self.can("STATS-1", "pending")
        for g in range(self.options.num_poll_groups):
            view = t.group_view(g)
            mine = [i for i in infos if i.group == g]
            waiting = sum(i.req_states[s] for i in mine for s in need_buffer) if pending \
                else None
            checks.group_stats_agree(g, t.group_stats(g), view.polls, view.idle_polls,
                                     view.reaped, waiting, len(mine))

    def release(self) -> None:
        """Destroy the target without judging it (the example ended in an exception)."""
        if not self.alive:
            return
        self.alive = False
        try:
            self.t.destroy()
        except (TargetError, TargetCrashed):
            pass   # a target that already failed or crashed has nothing more to give back

    def finish(self) -> None:
        """Liveness mode, then destroy: LIVE-1, CQE-1, SHUT-1, POOL-2, DATA-1."""
        if not self.alive:
            return
        t = self.t
        for qp in self.existing_qpairs():
            try:
                t.fail_posts(qp.handle, 0)
            except TargetError:
                pass
        t.bdev_inject_error(0, 0)
        # a round completes at least one RDMA READ per request still transferring, so a
        # request of many WRs at a small read depth (field scale: 1 MiB in 512-byte units)
        # takes WRs / read depth rounds; a round without progress is a stall at any bound
        per_request = -(-self.options.max_wrs_per_request // self.options.max_read_depth)
        bound = 64 + 16 * self.in_flight() * max(1, per_request)
        result = t.drain(bound)
        FIGURES.drained(result.rounds, result.quiescent)
        FIGURES.pools(self.timeline, self.options.wr_pool_capacity,
                      self.options.num_shared_buffers)
        self.collect()
        self.sample("teardown")   # the state the checks below judge the pools in
        waiting = {qp.handle: [c for c, cmd in qp.outstanding.items() if not cmd.lost]
                   for qp in self.qpairs if not qp.failed}
        checks.no_stall(result, waiting, self._stall_detail() if not result.quiescent else "")
        for qp in self.qpairs:
            if qp.failed:
                what = f"failed qpair (qid {qp.qid}, group {qp.group})"
                checks.qpair_released(t.qpair_info(qp.handle), what)
                checks.connection_released(t.conn_info(qp.handle), what)
        can = self.can
        if result.quiescent and can("STATS-1", "counters"):
            reaped = sum(t.group_stats(g).completions
                         for g in range(self.options.num_poll_groups))
            checks.completions_accounted(reaped, t.target_completions())
        for _, models in self.subsystems:
            for ns in models:
                got = t.read_namespace(ns.subsystem, ns.nsid, 0, ns.num_blocks * ns.block_size)
                self._check_blocks(f"namespace {ns.subsystem}/{ns.nsid} after liveness mode",
                                   ns, 0, got)
        wr = t.wr_pool() if self.desc.has("WR_POOL") else None
        buf = t.buf_pool() if self.desc.has("BUF_POOL") else None
        self.target_events = t.progress
        report = None
        if (wr is not None and self.desc.has("DESTROY_REPORT")
                and wr.ring_free + wr.cached != self.options.wr_pool_capacity):
            # short at rest: destroy now, so that the finding quotes the target's own
            # destroy-time audit of the same pool (SPDK's "wr pool count is X but should
            # be Y") beside the counts
            report = t.destroy()
            self.alive = False
        judge_pools_at_rest(can, wr, buf, (), self.options.wr_pool_capacity,
                            self.options.num_shared_buffers,
                            target_says=report.message if report is not None else "")
        if report is None:
            report = t.destroy()
            self.alive = False
        judge_destroy_report(can, report, self.options.wr_pool_capacity,
                             self.options.num_shared_buffers)

    def _stall_detail(self) -> str:
        parts = []
        for qp in self.existing_qpairs():
            if self.desc.has("REQUESTS"):   # evidence only: what each request waits in
                for r in self.t.requests(qp.handle):
                    parts.append(f"qpair {qp.handle} cid {r.cid} in "
                                 f"{self.desc.state_name(r.state)}")
            else:
                parts.append(f"qpair {qp.handle}: {len(qp.outstanding)} capsule(s) "
                             f"unanswered")
        for g in range(self.options.num_poll_groups if self.desc.has("GROUP_STATS") else 0):
            st = self.t.group_stats(g)
            if st.pending_data_buffer:
                parts.append(f"group {g} pending_data_buffer {st.pending_data_buffer}")
        return "(" + "; ".join(parts[:8]) + ")" if parts else ""

    def pool_row(self, phase: str = "step") -> dict[str, int | str]:
        """One sample of the pool timeline attached to reports: ``phase`` says when it was
        taken (after a step, at teardown once liveness mode has drained, at a violation)."""
        row: dict[str, int | str] = {"step": self.steps, "phase": phase}
        if not self.alive:
            return row
        if self.desc.has("WR_POOL"):
            wr = self.t.wr_pool()
            row.update(wr_capacity=wr.capacity, wr_ring=wr.ring_free, wr_cached=wr.cached)
            if self.desc.has("WR_HELD"):
                row.update(wr_held=wr.held, wr_missing=wr.missing)
        if self.desc.has("BUF_POOL"):
            buf = self.t.buf_pool()
            row.update(buf_capacity=buf.capacity, buf_ring=buf.ring_free,
                       buf_cached=buf.cached)
            if self.desc.has("WR_HELD"):
                row["buf_held"] = buf.held
        row["in_flight"] = self.in_flight()
        return row

    def sample(self, phase: str) -> dict[str, int | str] | None:
        """Record a pool sample outside the per-step ones (nothing once destroyed)."""
        if not self.alive:
            return None
        row = self.pool_row(phase)
        self.timeline.append(row)
        return row


#: The harness built last in this process: the one a violation being raised belongs to
#: (the reports plugin samples its pools at that moment).
_latest: weakref.ref[Harness] | None = None


def latest() -> Harness | None:
    """The harness built last in this process, if it still exists."""
    return _latest() if _latest is not None else None


# ------------------------------------------------------------------ shared by the drivers


def _audit(can: judging.Scope) -> bool:
    """The destroy report carries the target's own audit for a pool that is judged."""
    return can("POOL-2", "report") or can("POOL-3", "buffers_report")


def judge_pools_at_rest(can: judging.Scope, wr: PoolCounts | None, buf: PoolCounts | None,
                        qpairs: Iterable[QpairInfo], expected_wrs: int,
                        expected_bufs: int, target_says: str = "") -> None:
    """POOL-1, POOL-2 and POOL-3 at a quiescent point (counts read there: None where the
    target does not declare them), each part only where ``can`` allows it."""
    if wr is not None and can("POOL-1", "conservation"):
        checks.wr_pool_conserved(wr)
    checks.buffers_and_slots_conserved(
        buf if can("POOL-3", "buffers") else None,
        qpairs if can("POOL-3", "slots") else (),
        free_state=can.desc.free_state if can("POOL-3", "states") else None)
    checks.pool_returned_at_quiescence(
        wr if can("POOL-2", "returned") else None,
        buf if can("POOL-3", "buffers_returned") else None,
        expected_wrs, expected_bufs, held=can.desc.has("WR_HELD"), target_says=target_says)


def judge_destroy_report(can: judging.Scope, report: DestroyReport, expected_wrs: int,
                         expected_bufs: int) -> None:
    """POOL-2 and POOL-3 after destroy, each part only where ``can`` allows it."""
    checks.destroy_report_exact(
        report, expected_wrs if can("POOL-2", "returned") else None,
        expected_bufs if can("POOL-3", "buffers_returned") else None, audit=_audit(can))


@contextlib.contextmanager
def contained(during: str) -> Iterator[None]:
    """A target that crashes, aborts, trips a sanitizer or hangs under ``during`` (the
    facade's crash containment raises :class:`~impl.isolation.TargetCrashed`) fails CRASH-1
    there, so it is shrunk and reported as any property is.  An interrupt is not a crash."""
    try:
        yield
    except TargetCrashed as exc:
        if exc.kind == "interrupted":
            raise
        checks.target_survived(exc, during)


def crash_contained(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A test body whose target crash fails CRASH-1 (see :func:`contained`); put it under
    Hypothesis's ``@given`` so each example's crash is one."""

    @functools.wraps(fn)
    def body(*args: Any, **kwargs: Any) -> Any:
        with contained(fn.__name__):
            return fn(*args, **kwargs)

    return body
