"""One NVMe-oF queue over one RDMA connection: the host side of NVMe/RDMA 1.0.

* Connect (NVMe/RDMA 1.0 3.3): the RDMA_CM_REQUEST private data carries RECFMT 0, the QID,
  HRQSIZE (the receives this host posts, 1's based) and HSQSIZE (the queue's SQSIZE, 0's
  based); the target accepts with CRQSIZE or rejects with an NVMe/RDMA reject status.
* Capsules (NVMe/RDMA 1.0 2.1, 2.2): each command capsule (64-byte SQE plus in-capsule
  data or an SGL descriptor list) is one RDMA SEND from a send slot; each response is one
  16-byte CQE received into a posted receive.  Data moves by the target's RDMA READ/WRITE
  against the host's registered data region (keyed SGL data block descriptors).
* Submission queue flow control (NVMe-oF 1.1 2.4.1): at most SQSIZE commands are
  outstanding; the CQE's SQHD tells the host how far the controller has consumed.

Everything about verbs is behind :class:`impl.host.binding.Connection`; this module only
builds capsules with :mod:`impl.wire`, tracks command identifiers and parses CQEs.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from impl import wire as W
from impl.host.binding import Completion, Connection, Region, Verbs, VerbsError

#: Bytes the host reserves per command slot in its data region: the largest transfer it
#: describes with keyed descriptors.
DEFAULT_SLOT_DATA = 128 * 1024
#: wr_id tags: which kind of buffer a completion is for.
_RECV, _SEND = 1 << 32, 2 << 32


class QueueError(RuntimeError):
    """The queue cannot carry the command (it failed, or is full)."""


class QueueFailed(QueueError):
    """The connection failed (a flushed or failed work completion, or DISCONNECTED) with
    commands outstanding; ``cids`` are the commands that got no response."""

    def __init__(self, message: str, cids: Iterable[int] = ()):
        super().__init__(message)
        self.cids = tuple(cids)


class CommandTimeout(QueueError):
    """Commands got no response within their time bound."""

    def __init__(self, qid: int, cids: Iterable[int], seconds: float):
        self.qid, self.cids, self.seconds = qid, tuple(sorted(cids)), seconds
        super().__init__(f"queue {qid}: CID(s) {list(self.cids)} got no response within "
                         f"{seconds:.1f} s")


@dataclass(frozen=True)
class Response:
    """A parsed response capsule: the CQE and how long its command took."""

    cqe: W.Cqe
    seconds: float
    opcode: int

    @property
    def cid(self) -> int:
        return self.cqe.cid

    @property
    def status(self) -> int:
        return self.cqe.status

    @property
    def result(self) -> int:
        return self.cqe.cdw0

    @property
    def ok(self) -> bool:
        return self.cqe.status == W.SC_SUCCESS


@dataclass
class Outstanding:
    cid: int
    opcode: int
    slot: int
    started: float
    deadline: float


@dataclass
class Anomalies:
    """What the host saw that a correct target never sends (judged by CQE-1)."""

    unknown_cid: list[W.Cqe] = field(default_factory=list)
    wrong_sqid: list[W.Cqe] = field(default_factory=list)
    bad_sqhd: list[W.Cqe] = field(default_factory=list)
    short: list[int] = field(default_factory=list)


def cm_private_data(qid: int, depth: int, cntlid: int = W.CONNECT_CNTLID_DYNAMIC) -> bytes:
    """RDMA_CM_REQUEST private data for a queue of ``depth`` entries: HRQSIZE = depth
    (the receives this host posts), HSQSIZE = depth - 1 (SQSIZE, 0's based), as Linux's
    host sends them (NVMe/RDMA 1.0 3.3 figure 4)."""
    return W.CmRequestPrivateData(0, qid, depth, depth - 1, cntlid).encode()


class Queue:
    """A host queue pair: connect it, submit capsules, reap responses.

    ``depth`` is the queue's entries (1's based); ``icd`` the in-capsule data bytes a send
    slot holds (the target's IOCCSZ * 16 - 64 caps what it accepts); ``slot_data`` the data
    region bytes per command slot; ``timeout`` each command's default time bound."""

    def __init__(self, verbs: Verbs, address: str, port: int, *, qid: int, depth: int,
                 icd: int = 8192, slot_data: int = DEFAULT_SLOT_DATA, timeout: float = 10.0,
                 read_depth: int = 16, clock: Callable[[], float] = time.monotonic):
        if depth < 2:
            raise ValueError(f"depth={depth}: a queue has at least 2 entries")
        self.verbs, self.address, self.port = verbs, address, port
        self.qid, self.depth, self.icd, self.slot_data = qid, depth, icd, slot_data
        self.timeout, self.read_depth, self.clock = timeout, read_depth, clock
        self.conn: Connection | None = None
        self.crqsize = 0
        self.outstanding: dict[int, Outstanding] = {}
        self.responses: dict[int, Response] = {}
        self.anomalies = Anomalies()
        self.failed: str | None = None
        self.sq_tail = 0
        self.sqhd = 0
        self.submitted = 0
        self.completed = 0
        self._next_cid = 0
        self._free_slots: list[int] = []
        self._send: list[Region] = []
        self._recv: list[Region] = []
        self.data: Region | None = None
        self._sends_in_flight = 0

    # ------------------------------------------------------------------ connect
    @property
    def sqsize(self) -> int:
        """SQSIZE (0's based) this queue connects with."""
        return self.depth - 1

    @property
    def limit(self) -> int:
        """Commands that may be outstanding: SQSIZE (a queue of n entries holds n - 1),
        and no more than the target's CRQSIZE receives."""
        return max(1, min(self.sqsize, self.crqsize or self.sqsize))

    def open(self, private_data: bytes | None = None, *, timeout: float | None = None,
             responder_resources: int | None = None, initiator_depth: int | None = None
             ) -> bytes:
        """RDMA CM connect with ``private_data`` (default :func:`cm_private_data`); returns
        the accept private data.  Raises ``ConnectRejected`` / ``VerbsError``.

        The host is the responder of the target's RDMA READs (it fetches write data), so
        it offers ``responder_resources`` (its IRD, default ``read_depth``) and, as Linux's
        host does, the same initiator depth."""
        pdata = cm_private_data(self.qid, self.depth) if private_data is None else private_data
        self.conn = self.verbs.connect(
            self.address, self.port, pdata, send_depth=self.depth + 1,
            recv_depth=self.depth,
            responder_resources=self.read_depth if responder_resources is None
            else responder_resources,
            initiator_depth=self.read_depth if initiator_depth is None else initiator_depth,
            timeout=timeout or self.timeout, before_connect=self._setup)
        accept = self.conn.accept_data
        if len(accept) >= W.CM_ACCEPT_SIZE:
            self.crqsize = W.CmAcceptPrivateData.decode(accept, exact=False).crqsize
        return accept

    def _setup(self, conn: Connection) -> None:
        self._send = [conn.register(W.SQE_SIZE + self.icd) for _ in range(self.depth)]
        self._recv = [conn.register(W.CQE_SIZE) for _ in range(self.depth)]
        self.data = conn.register(self.depth * self.slot_data)
        self._free_slots = list(range(self.depth))
        for i, r in enumerate(self._recv):
            conn.post_recv(r, _RECV | i)

    # ------------------------------------------------------------------ memory
    def slot_address(self, slot: int, offset: int = 0) -> int:
        assert self.data is not None
        return self.data.addr + slot * self.slot_data + offset

    def keyed(self, slot: int, offset: int, length: int, *, rkey: int | None = None
              ) -> W.SglDescriptor:
        """A keyed data block descriptor for bytes ``offset..offset+length`` of ``slot``'s
        data area (``rkey``: another key, for the bad-rkey fault)."""
        assert self.data is not None
        if offset + length > self.slot_data:
            raise ValueError(f"{offset}+{length} bytes do not fit a {self.slot_data}-byte slot")
        return W.keyed(self.slot_address(slot, offset), length,
                       self.data.rkey if rkey is None else rkey)

    def write_slot(self, slot: int, offset: int, data: bytes) -> None:
        assert self.data is not None
        self.data.write(slot * self.slot_data + offset, data)

    def read_slot(self, slot: int, offset: int, length: int) -> bytes:
        assert self.data is not None
        return self.data.read(slot * self.slot_data + offset, length)

    # ------------------------------------------------------------------ submit
    def reserve(self) -> tuple[int, int]:
        """(cid, slot) for the next command; raises QueueError when full or failed."""
        if self.failed:
            raise QueueFailed(f"queue {self.qid} failed: {self.failed}")
        if len(self.outstanding) >= self.limit or not self._free_slots:
            raise QueueError(f"queue {self.qid}: {len(self.outstanding)} commands outstanding,"
                             f" the limit is {self.limit}")
        cid = self._next_cid
        while cid in self.outstanding:
            cid = (cid + 1) & 0xFFFF
        self._next_cid = (cid + 1) & 0xFFFF
        return cid, self._free_slots.pop(0)

    def submit(self, capsule: W.Capsule | bytes, cid: int, slot: int, *,
               timeout: float | None = None) -> int:
        """Send ``capsule`` (a Capsule, its CID set to ``cid``; or raw bytes, sent as they
        are, for malformed capsules) from ``slot``."""
        assert self.conn is not None
        raw = capsule.encode() if isinstance(capsule, W.Capsule) else bytes(capsule)
        if isinstance(capsule, W.Capsule) and capsule.sqe.cid != cid:
            raw = W.Capsule(capsule.sqe.replace(cid=cid), capsule.data).encode()
        if len(raw) > W.SQE_SIZE + self.icd:
            self._free_slots.append(slot)
            raise ValueError(f"capsule of {len(raw)} bytes exceeds the send slot "
                             f"({W.SQE_SIZE} + {self.icd})")
        self._send[slot].write(0, raw)
        now = self.clock()
        self.outstanding[cid] = Outstanding(cid, raw[0], slot, now,
                                            now + (timeout or self.timeout))
        try:
            self.conn.post_send(self._send[slot], len(raw), _SEND | cid)
        except VerbsError as exc:
            del self.outstanding[cid]
            self._free_slots.append(slot)
            self.failed = str(exc)
            raise QueueFailed(f"queue {self.qid}: {exc}") from exc
        self._sends_in_flight += 1
        self.sq_tail = (self.sq_tail + 1) % self.depth
        self.submitted += 1
        return cid

    def command(self, capsule: W.Capsule, *, timeout: float | None = None) -> Response:
        """Submit and wait for the response."""
        cid, slot = self.reserve()
        self.submit(capsule, cid, slot, timeout=timeout)
        return self.wait([cid])[cid]

    # ------------------------------------------------------------------ reap
    def poll(self) -> int:
        """Reap what has completed; returns responses parsed."""
        conn = self.conn
        if conn is None:
            return 0
        got = 0
        for wc in conn.poll_send(32):
            self._sends_in_flight -= 1
            if not wc.ok:
                self._fail(f"send completion {wc.status_name}")
        for wc in conn.poll_recv(32):
            if not wc.ok:
                self._fail(f"receive completion {wc.status_name}")
                continue
            got += self._received(wc)
        return got

    def _received(self, wc: Completion) -> int:
        i = wc.wr_id & 0xFFFF_FFFF
        if not 0 <= i < len(self._recv):
            self.anomalies.short.append(wc.byte_len)
            return 0
        region = self._recv[i]
        if wc.byte_len < W.CQE_SIZE:
            self.anomalies.short.append(wc.byte_len)
            cqe = None
        else:
            cqe = W.Cqe.decode(region.read(0, W.CQE_SIZE))
        if not self.failed and self.conn is not None:
            try:
                self.conn.post_recv(region, _RECV | i)
            except VerbsError as exc:
                self._fail(str(exc))
        if cqe is None:
            return 0
        return self._parsed(cqe)

    def _parsed(self, cqe: W.Cqe) -> int:
        cmd = self.outstanding.pop(cqe.cid, None)
        if cmd is None:
            self.anomalies.unknown_cid.append(cqe)
            return 0
        if cqe.sqid != self.qid:
            self.anomalies.wrong_sqid.append(cqe)
        if not 0 <= cqe.sqhd < self.depth:
            self.anomalies.bad_sqhd.append(cqe)
        self.sqhd = cqe.sqhd
        self._free_slots.append(cmd.slot)
        self.responses[cqe.cid] = Response(cqe, self.clock() - cmd.started, cmd.opcode)
        self.completed += 1
        return 1

    def _fail(self, why: str) -> None:
        if not self.failed:
            self.failed = why

    def wait(self, cids: Iterable[int], *, until: float | None = None) -> dict[int, Response]:
        """Poll until every CID in ``cids`` has its response; raise CommandTimeout past
        a command's deadline (or ``until``), QueueFailed if the connection fails first."""
        want = set(cids)
        out: dict[int, Response] = {}
        while True:
            for c in list(want):
                if c in self.responses:
                    out[c] = self.responses.pop(c)
                    want.discard(c)
            if not want:
                return out
            if self.poll():
                continue
            if self.failed or (self.conn is not None and self.conn.disconnected()):
                self.poll()
                missing = sorted(c for c in want if c not in self.responses)
                if missing:
                    self._fail(self.failed or "DISCONNECTED")
                    raise QueueFailed(f"queue {self.qid} failed ({self.failed}) with CID(s) "
                                      f"{missing} unanswered", missing)
                continue
            now = self.clock()
            late = [c for c in want if c in self.outstanding and (
                now > (until if until is not None else self.outstanding[c].deadline))]
            if late:
                raise CommandTimeout(self.qid, late, now - min(
                    self.outstanding[c].started for c in late))
            gone = [c for c in want if c not in self.outstanding and c not in self.responses]
            if gone:
                raise QueueError(f"queue {self.qid}: CID(s) {gone} were never submitted")

    def settle(self, seconds: float) -> None:
        """Poll for ``seconds`` (after a fault: let late completions arrive)."""
        end = self.clock() + seconds
        while self.clock() < end:
            if not self.poll() and self.conn is not None and self.conn.disconnected():
                return

    # ------------------------------------------------------------------ teardown
    def disconnect(self) -> None:
        if self.conn is not None:
            try:
                self.conn.disconnect()
            except VerbsError:
                pass

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None
        self.failed = self.failed or "closed"
