"""An NVMe-oF controller as a host drives it over RDMA: the admin queue and I/O queues.

Bring-up follows NVMe-oF 1.1 3.3 and NVMe Base 2.0 3.5.1: RDMA CM connect of the admin
queue (QID 0), Fabrics Connect with the Connect data (SUBNQN, HOSTNQN, HOSTID, CNTLID
FFFFh for the dynamic controller model; the CQE's dword 0 gives the CNTLID), Property Get
CAP, Property Set CC (IOSQES 6, IOCQES 4, EN 1), Property Get CSTS until RDY within
CAP.TO, Identify Controller; then each I/O queue: CM connect with its QID, Fabrics Connect
naming the controller's CNTLID.  Shutdown is CC.SHN = 01b until CSTS.SHST = 10b (3.6.1).
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass, field

from impl import wire as W
from impl.host.binding import Verbs
from impl.host.queue import DEFAULT_SLOT_DATA, Queue, QueueError, Response

HOSTNQN = "nqn.2014-08.org.nvmexpress:uuid:6e7274ff-686f-7374-0000-000000000001"
HOSTID = bytes.fromhex("6e7274ff686f73740000000000000001")
#: Property offsets (NVMe Base 2.0 3.1.3).
CAP, VS, CC, CSTS = 0x00, 0x08, 0x14, 0x1C
CC_EN = 1
CC_IOSQES_64 = 6 << 16
CC_IOCQES_16 = 4 << 20
CC_SHN_NORMAL = 1 << 14
CSTS_RDY = 1
CSTS_CFS = 1 << 1
SHST_COMPLETE = 0b10
#: Identify CNS values (NVMe Base 2.0 5.17.1).
CNS_NAMESPACE, CNS_CONTROLLER = 0x00, 0x01
IDENTIFY_BYTES = 4096
LAYOUTS = ("keyed", "keyed_list", "in_capsule")


@dataclass(frozen=True)
class ControllerInfo:
    """What Identify Controller (NVMe Base 2.0 5.17.2.1; NVMe-oF 1.1 4.1 fabrics fields)
    tells a host."""

    cntlid: int
    mdts: int
    nn: int
    ioccsz: int
    iorcsz: int
    icdoff: int
    msdbd: int
    subnqn: str

    @classmethod
    def parse(cls, data: bytes) -> ControllerInfo:
        (cntlid,) = struct.unpack_from("<H", data, 78)
        (nn,) = struct.unpack_from("<I", data, 516)
        ioccsz, iorcsz, icdoff = struct.unpack_from("<IIH", data, 1792)
        return cls(cntlid, data[77], nn, ioccsz, iorcsz, icdoff, data[1803],
                   data[768:1024].rstrip(b"\0").decode(errors="replace"))

    @property
    def in_capsule_data_size(self) -> int:
        """IOCCSZ is in 16-byte units and counts the 64-byte SQE (NVMe-oF 1.1 4.1)."""
        return max(self.ioccsz * 16 - W.SQE_SIZE, 0)


@dataclass(frozen=True)
class NamespaceInfo:
    nsid: int
    num_blocks: int
    block_size: int

    @classmethod
    def parse(cls, nsid: int, data: bytes) -> NamespaceInfo:
        (nsze,) = struct.unpack_from("<Q", data, 0)
        fmt = data[26] & 0xF
        (lbaf,) = struct.unpack_from("<I", data, 128 + 4 * fmt)
        return cls(nsid, nsze, 1 << ((lbaf >> 16) & 0xFF))


@dataclass
class Io:
    """An IO in flight: where its data is in the host's slot and how to check it."""

    queue: Queue
    cid: int
    slot: int
    op: str
    nsid: int
    slba: int
    nlb: int
    length: int
    pieces: tuple[tuple[int, int], ...]   # (offset in slot, length), in descriptor order
    data: bytes = b""

    def read_back(self) -> bytes:
        return b"".join(self.queue.read_slot(self.slot, o, n) for o, n in self.pieces)


@dataclass
class Controller:
    verbs: Verbs
    address: str
    port: int
    subnqn: str
    hostnqn: str = HOSTNQN
    hostid: bytes = HOSTID
    admin_depth: int = 32
    io_depth: int = 32
    io_queues: int = 1
    timeout: float = 10.0
    icd: int = 8192
    slot_data: int = DEFAULT_SLOT_DATA
    first_qid: int = 1
    read_depth: int = 16
    cntlid: int = -1
    cap: int = 0
    info: ControllerInfo | None = None
    admin: Queue | None = None
    io: dict[int, Queue] = field(default_factory=dict)
    namespaces: dict[int, NamespaceInfo] = field(default_factory=dict)

    # ------------------------------------------------------------------ bring-up
    def new_queue(self, qid: int, depth: int) -> Queue:
        return Queue(self.verbs, self.address, self.port, qid=qid, depth=depth, icd=self.icd,
                     slot_data=self.slot_data, timeout=self.timeout, read_depth=self.read_depth)

    def connect_capsule(self, q: Queue, cntlid: int, *, kato: int = 0) -> W.Capsule:
        """A Fabrics Connect for ``q`` whose 1024-byte data goes by a keyed descriptor to
        slot 0 of the queue's data area (as Linux's host sends it; NVMe-oF 1.1 3.3)."""
        data = W.ConnectData.make(self.subnqn, self.hostnqn, self.hostid, cntlid).encode()
        q.write_slot(0, 0, data)
        sqe = W.ConnectSqe(0, q.qid, q.sqsize, 0, kato, 0, q.keyed(0, 0, len(data)))
        return W.Capsule(sqe.sqe())

    def fabrics_connect(self, q: Queue, cntlid: int) -> Response:
        cid, slot = q.reserve()
        if slot != 0:
            raise QueueError(f"queue {q.qid}: Connect must be its first command")
        q.submit(self.connect_capsule(q, cntlid), cid, slot)
        return q.wait([cid])[cid]

    def connect(self) -> Controller:
        """Connect the admin queue, enable the controller, identify it, connect the I/O
        queues.  Raises QueueError / VerbsError / ConnectRejected with what failed."""
        self.admin = self.new_queue(0, self.admin_depth)
        self.admin.open()
        rsp = self.fabrics_connect(self.admin, W.CONNECT_CNTLID_DYNAMIC)
        if not rsp.ok:
            raise QueueError(f"admin Connect answered {W.status_name(rsp.status)}")
        self.cntlid = rsp.result & 0xFFFF
        self.cap = self.property_get(CAP, wide=True)
        self.enable()
        self.info = ControllerInfo.parse(self.identify(CNS_CONTROLLER, 0))
        for i in range(self.io_queues):
            self.add_io_queue(self.first_qid + i)
        return self

    def add_io_queue(self, qid: int, depth: int | None = None) -> Queue:
        q = self.new_queue(qid, depth or min(self.io_depth, self.mqes + 1))
        q.open()
        rsp = self.fabrics_connect(q, self.cntlid)
        if not rsp.ok:
            q.close()
            raise QueueError(f"I/O queue {qid} Connect answered {W.status_name(rsp.status)}")
        self.io[qid] = q
        return q

    @property
    def mqes(self) -> int:
        """CAP.MQES: maximum queue entries, 0's based (bits 15:0)."""
        return self.cap & 0xFFFF if self.cap else 0xFFFF

    @property
    def ready_timeout(self) -> float:
        """CAP.TO (bits 31:24) in 500 ms units: how long CSTS.RDY may take."""
        return max(((self.cap >> 24) & 0xFF) * 0.5, 1.0)

    # ------------------------------------------------------------------ admin commands
    def _admin(self) -> Queue:
        if self.admin is None:
            raise QueueError("not connected")
        return self.admin

    def property_get(self, ofst: int, *, wide: bool = False) -> int:
        rsp = self._admin().command(W.Capsule(W.PropertySqe(
            W.FCTYPE_PROPERTY_GET, 0, ofst, 1 if wide else 0).sqe()))
        if not rsp.ok:
            raise QueueError(f"Property Get {ofst:#x} answered {W.status_name(rsp.status)}")
        return rsp.cqe.cdw0 | (rsp.cqe.cdw1 << 32 if wide else 0)

    def property_set(self, ofst: int, value: int) -> Response:
        return self._admin().command(W.Capsule(W.PropertySqe(
            W.FCTYPE_PROPERTY_SET, 0, ofst, 0, value).sqe()))

    def enable(self) -> None:
        """CC.EN = 1, then CSTS.RDY = 1 within CAP.TO (NVMe Base 2.0 3.5.1)."""
        rsp = self.property_set(CC, CC_EN | CC_IOSQES_64 | CC_IOCQES_16)
        if not rsp.ok:
            raise QueueError(f"Property Set CC.EN answered {W.status_name(rsp.status)}")
        self._wait_csts(lambda v: v & CSTS_RDY, "CSTS.RDY = 1")

    def _wait_csts(self, done, what: str) -> int:
        end = time.monotonic() + self.ready_timeout
        while True:
            v = self.property_get(CSTS)
            if v & CSTS_CFS:
                raise QueueError(f"CSTS.CFS set (controller fatal status) waiting for {what}")
            if done(v):
                return v
            if time.monotonic() > end:
                raise QueueError(f"{what} not reached within CAP.TO "
                                 f"({self.ready_timeout:.1f} s); CSTS = {v:#x}")

    def shutdown(self) -> None:
        """CC.SHN = 01b, then CSTS.SHST = 10b (NVMe Base 2.0 3.6.1)."""
        cc = self.property_get(CC)
        rsp = self.property_set(CC, (cc & ~(3 << 14)) | CC_SHN_NORMAL)
        if not rsp.ok:
            raise QueueError(f"Property Set CC.SHN answered {W.status_name(rsp.status)}")
        self._wait_csts(lambda v: (v >> 2) & 3 == SHST_COMPLETE, "CSTS.SHST = 10b")

    def identify_capsule(self, cns: int, nsid: int, q: Queue, slot: int) -> W.Capsule:
        sqe = W.Sqe(opc=W.OPC_IDENTIFY, nsid=nsid, cdw10=cns,
                    sgl1=q.keyed(slot, 0, IDENTIFY_BYTES))
        return W.Capsule(sqe)

    def identify(self, cns: int, nsid: int) -> bytes:
        q = self._admin()
        cid, slot = q.reserve()
        q.submit(self.identify_capsule(cns, nsid, q, slot), cid, slot)
        rsp = q.wait([cid])[cid]
        if not rsp.ok:
            raise QueueError(f"Identify CNS {cns:#x} NSID {nsid} answered "
                             f"{W.status_name(rsp.status)}")
        return q.read_slot(slot, 0, IDENTIFY_BYTES)

    def namespace(self, nsid: int) -> NamespaceInfo:
        if nsid not in self.namespaces:
            self.namespaces[nsid] = NamespaceInfo.parse(nsid, self.identify(CNS_NAMESPACE, nsid))
        return self.namespaces[nsid]

    def keep_alive(self) -> Response:
        return self._admin().command(W.Capsule(W.Sqe(opc=W.OPC_KEEP_ALIVE)))

    # ------------------------------------------------------------------ IO
    def start_io(self, qid: int, op: str, nsid: int, slba: int, nlb: int, *,
                 layout: str = "keyed", pieces: int = 1, data: bytes = b"",
                 rkey: int | None = None, bad_piece: int | None = None) -> Io:
        """Submit a Read, Write or Flush of ``nlb`` blocks (1's based) at ``slba``; the data
        of a write is ``data``.  ``layout``: one keyed descriptor, a last-segment list of
        ``pieces`` keyed descriptors (placed in the slot in reverse order, so SGE order is
        visible), or in-capsule data (writes).  ``rkey`` overrides the key (a fault) of
        every descriptor, or with ``bad_piece`` of that descriptor only."""
        q = self.io[qid]
        ns = self.namespace(nsid)
        length = 0 if op == "flush" else nlb * ns.block_size
        if op == "write" and len(data) != length:
            raise ValueError(f"write of {nlb} blocks needs {length} bytes, got {len(data)}")
        cid, slot = q.reserve()
        try:
            cap, spans = self._io_capsule(q, slot, op, nsid, slba, nlb, length, layout,
                                          pieces, data, rkey, bad_piece, cid)
        except BaseException:
            q._free_slots.append(slot)
            raise
        io = Io(q, cid, slot, op, nsid, slba, nlb, length, spans, data)
        q.submit(cap, cid, slot)
        return io

    def _io_capsule(self, q: Queue, slot: int, op: str, nsid: int, slba: int, nlb: int,
                    length: int, layout: str, pieces: int, data: bytes, rkey: int | None,
                    bad_piece: int | None = None, cid: int = 0
                    ) -> tuple[W.Capsule, tuple[tuple[int, int], ...]]:
        opc = {"read": W.OPC_READ, "write": W.OPC_WRITE, "flush": W.OPC_FLUSH}[op]
        nlb0 = max(nlb - 1, 0)
        if op == "flush":
            return W.Capsule.io(opc, cid, nsid, 0, 0), ()
        if layout == "in_capsule":
            if op != "write":
                raise ValueError("in-capsule data is for writes")
            return W.Capsule.io(opc, cid, nsid, slba, nlb0, icd=data), ()
        n = 1 if layout == "keyed" else max(2, pieces)
        sizes = [length // n + (1 if i < length % n else 0) for i in range(n)]
        if min(sizes) < 1:
            raise ValueError(f"{length} bytes cannot be split into {n} descriptors")
        # reverse placement with a 64-byte gap between pieces
        offsets, at = [0] * n, 0
        for i in reversed(range(n)):
            offsets[i] = at
            at += sizes[i] + 64
        if at > q.slot_data:
            raise ValueError(f"{length} bytes in {n} pieces do not fit a {q.slot_data}-byte slot")
        spans = tuple(zip(offsets, sizes))
        pos = 0
        for off, size in spans:
            q.write_slot(slot, off, data[pos:pos + size] if op == "write" else bytes(size))
            pos += size
        descs = [q.keyed(slot, off, size,
                         rkey=rkey if bad_piece is None or bad_piece % n == i else None)
                 for i, (off, size) in enumerate(spans)]
        if layout == "keyed":
            return W.Capsule.io(opc, cid, nsid, slba, nlb0, descs), spans
        return W.Capsule.io(opc, cid, nsid, slba, nlb0, descs), spans

    def finish_io(self, io: Io) -> tuple[Response, bytes]:
        """Wait for ``io``'s response; a successful read's bytes in descriptor order."""
        rsp = io.queue.wait([io.cid])[io.cid]
        got = io.read_back() if io.op == "read" and rsp.ok else b""
        return rsp, got

    # ------------------------------------------------------------------ teardown
    def queues(self) -> list[Queue]:
        return [q for q in (self.admin, *self.io.values()) if q is not None]

    def disconnect(self) -> None:
        """rdma_disconnect every queue (I/O queues first), then free them."""
        for q in reversed(self.queues()):
            q.disconnect()
        self.close()

    def close(self) -> None:
        for q in reversed(self.queues()):
            q.close()
        self.admin, self.io = None, {}
