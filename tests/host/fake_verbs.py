"""A fake verbs binding with a tiny NVMe-oF controller behind it, for the host's protocol
tests: no verbs library, no simverbs.  Each posted SEND is parsed as a command capsule and
answered at once by a CQE in the oldest posted receive; keyed descriptors are served by
copying from / into the host's fake regions (the target's RDMA READ / WRITE).

``quirks`` make it misbehave on purpose so the host's checks can be seen to fail:
``wrong_cid`` (answer with CID + 1), ``duplicate`` (answer every command twice),
``wrong_sqid``, ``silent`` (never answer IO), ``reject`` (reject every CM connect with
STS 06h), ``corrupt_read`` (flip a byte of read data)."""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass, field

from impl import wire as W
from impl.host.binding import ACCESS_DATA, Completion, ConnectRejected, Device


class FakeRegion:
    def __init__(self, fabric: FakeFabric, size: int):
        self.size = size
        self.buf = bytearray(size)
        self.addr = fabric.next_addr
        fabric.next_addr += (size + 0xFFF) & ~0xFFF
        self.rkey = fabric.next_key
        fabric.next_key += 1
        fabric.regions[self.rkey] = self

    def write(self, offset: int, data: bytes) -> None:
        assert 0 <= offset and offset + len(data) <= self.size
        self.buf[offset:offset + len(data)] = data

    def read(self, offset: int, length: int) -> bytes:
        assert 0 <= offset and offset + length <= self.size
        return bytes(self.buf[offset:offset + length])


@dataclass
class FakeFabric:
    """The fake target's state, shared by every connection."""

    subnqn: str = "nqn.2016-06.io.nrt:cnode1"
    blocks: int = 256
    block_size: int = 512
    quirks: frozenset[str] = frozenset()
    next_addr: int = 0x7F00_0000_0000
    next_key: int = 0x100
    regions: dict[int, FakeRegion] = field(default_factory=dict)
    media: bytearray = field(default_factory=bytearray)
    controllers: dict[int, dict[str, int]] = field(default_factory=dict)
    connects: int = 0

    def __post_init__(self) -> None:
        self.media = bytearray(self.blocks * self.block_size)

    def rdma(self, d: W.SglDescriptor, data: bytes | None = None) -> bytes:
        r = self.regions.get(d.key)
        off = d.address - r.addr if r else -1
        if r is None or off < 0 or off + d.length > r.size:
            raise PermissionError(f"remote access error: key {d.key:#x}")
        if data is None:
            return r.read(off, d.length)
        r.write(off, data)
        return b""


class FakeConnection:
    def __init__(self, fabric: FakeFabric, private_data: bytes):
        self.fabric = fabric
        self.req = W.CmRequestPrivateData.decode(private_data, exact=False)
        self.accept_data = W.CmAcceptPrivateData(0, self.req.hrqsize).encode()
        self.recvs: deque[tuple[FakeRegion, int]] = deque()
        self.send_wcs: list[Completion] = []
        self.recv_wcs: list[Completion] = []
        self.cntlid = -1
        self.qid = self.req.qid
        self.sqhd = 0
        self.errored = False
        self.gone = False

    def register(self, size: int, access: int = ACCESS_DATA) -> FakeRegion:
        return FakeRegion(self.fabric, size)

    def post_recv(self, region: FakeRegion, wr_id: int) -> None:
        self.recvs.append((region, wr_id))

    def post_send(self, region: FakeRegion, length: int, wr_id: int) -> None:
        self.send_wcs.append(Completion(wr_id, 0 if not self.errored else 5))
        if self.errored:
            return
        cap = W.Capsule.decode(region.read(0, length))
        self.sqhd = (self.sqhd + 1) % (self.req.hsqsize + 1)
        answers = self.answer(cap)
        for cqe in answers:
            self.respond(cqe, io=not cap.sqe.is_fabrics)

    def respond(self, cqe: W.Cqe, *, io: bool) -> None:
        q = self.fabric.quirks if io and self.qid else frozenset()
        if "wrong_cid" in q:
            cqe = cqe.replace(cid=(cqe.cid + 1) & 0xFFFF)
        if "wrong_sqid" in q:
            cqe = cqe.replace(sqid=cqe.sqid + 1)
        for _ in range(2 if "duplicate" in q else 1):
            region, wr_id = self.recvs.popleft()
            region.write(0, cqe.encode())
            self.recv_wcs.append(Completion(wr_id, 0, W.CQE_SIZE))

    def cqe(self, sqe: W.Sqe, status: int = 0, cdw0: int = 0, cdw1: int = 0) -> W.Cqe:
        return W.Cqe.make(sqe.cid, status, sqhd=self.sqhd, sqid=self.qid, cdw0=cdw0,
                          cdw1=cdw1)

    def answer(self, cap: W.Capsule) -> list[W.Cqe]:
        sqe, f = cap.sqe, self.fabric
        if sqe.is_fabrics and sqe.fctype == W.FCTYPE_CONNECT:
            data = W.ConnectData.decode(f.rdma(sqe.sgl1)) if sqe.sgl1.is_keyed else \
                W.ConnectData.decode(cap.data[:1024])
            if data.subnqn.decode() != f.subnqn:
                return [self.cqe(sqe, W.SC_CONNECT_INVALID_PARAMETERS, 1 << 16 | 256)]
            if self.qid == 0:
                self.cntlid = len(f.controllers) + 1
                f.controllers[self.cntlid] = {"cc": 0}
            else:
                self.cntlid = data.cntlid
            f.connects += 1
            return [self.cqe(sqe, 0, self.cntlid)]
        if sqe.is_fabrics:
            p = W.PropertySqe.from_sqe(sqe)
            ctrl = f.controllers[self.cntlid]
            if p.fctype == W.FCTYPE_PROPERTY_SET:
                ctrl["cc"] = p.value
                return [self.cqe(sqe)]
            cap_reg = 127 | 1 << 16 | 20 << 24
            cc = ctrl["cc"]
            shst = 0b10 if (cc >> 14) & 3 else 0
            value = {0x00: cap_reg, 0x08: 0x10300, 0x14: cc, 0x1C: (cc & 1) | shst << 2}.get(
                p.ofst)
            if value is None:
                return [self.cqe(sqe, W.SC_INVALID_FIELD)]
            return [self.cqe(sqe, 0, value & 0xFFFF_FFFF, value >> 32)]
        if self.qid == 0 and sqe.opc == W.OPC_IDENTIFY:
            page = bytearray(4096)
            if sqe.cdw10 & 0xFF == 1:
                struct.pack_into("<H", page, 78, self.cntlid)
                page[77] = 5
                struct.pack_into("<I", page, 516, 1)
                struct.pack_into("<IIH", page, 1792, (8192 + 64) // 16, 1, 0)
                page[1803] = 16
                page[768:768 + len(f.subnqn)] = f.subnqn.encode()
            else:
                struct.pack_into("<Q", page, 0, f.blocks)
                struct.pack_into("<I", page, 128, (f.block_size.bit_length() - 1) << 16)
            f.rdma(sqe.sgl1, bytes(page))
            return [self.cqe(sqe)]
        if self.qid == 0 and sqe.opc == W.OPC_KEEP_ALIVE:
            return [self.cqe(sqe)]
        if self.qid and sqe.opc in (W.OPC_READ, W.OPC_WRITE, W.OPC_FLUSH):
            if "silent" in f.quirks:
                return []
            if sqe.opc == W.OPC_FLUSH:
                return [self.cqe(sqe)]
            start, n = sqe.slba * f.block_size, (sqe.nlb + 1) * f.block_size
            if start + n > len(f.media):
                return [self.cqe(sqe, W.SC_LBA_OUT_OF_RANGE)]
            descs = cap.data_descriptors()
            try:
                if sqe.opc == W.OPC_WRITE:
                    if sqe.sgl1.type == W.SGL_TYPE_DATA_BLOCK:
                        data = cap.data[sqe.sgl1.address:sqe.sgl1.address + sqe.sgl1.length]
                    else:
                        data = b"".join(f.rdma(d) for d in descs)
                    f.media[start:start + n] = data
                else:
                    data = bytearray(f.media[start:start + n])
                    if "corrupt_read" in f.quirks:
                        data[0] ^= 0xFF
                    pos = 0
                    for d in descs:
                        f.rdma(d, bytes(data[pos:pos + d.length]))
                        pos += d.length
            except PermissionError:
                self.errored = True
                for region, wr_id in self.recvs:
                    self.recv_wcs.append(Completion(wr_id, 5))
                self.recvs.clear()
                self.gone = True
                return []
            return [self.cqe(sqe)]
        return [self.cqe(sqe, W.SC_INVALID_OPCODE)]

    def poll_send(self, most: int = 16) -> list[Completion]:
        out, self.send_wcs = self.send_wcs[:most], self.send_wcs[most:]
        return out

    def poll_recv(self, most: int = 16) -> list[Completion]:
        out, self.recv_wcs = self.recv_wcs[:most], self.recv_wcs[most:]
        return out

    def disconnected(self) -> bool:
        return self.gone

    def disconnect(self) -> None:
        self.gone = True

    def qp_to_error(self) -> None:
        self.errored = True
        for _region, wr_id in self.recvs:
            self.recv_wcs.append(Completion(wr_id, 5))
        self.recvs.clear()

    def close(self) -> None:
        self.gone = True


class FakeVerbs:
    name = "fake"
    reports_reject_data = True

    def __init__(self, fabric: FakeFabric | None = None):
        self.fabric = fabric or FakeFabric()

    def devices(self) -> list[Device]:
        return [Device("fake0", 1)]

    def connect(self, address, port, private_data, *, send_depth, recv_depth,
                responder_resources, initiator_depth, timeout, before_connect=None):
        if "reject" in self.fabric.quirks:
            raise ConnectRejected("rejected", W.CmRejectPrivateData(0, 6).encode())
        c = FakeConnection(self.fabric, private_data)
        if before_connect is not None:
            before_connect(c)
        return c
