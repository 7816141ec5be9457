"""The host's verbs binding over Debian's ``python3-pyverbs`` (rdma-core's Cython bindings).

pyverbs is imported from ``/usr/lib/python3/dist-packages`` (appended to ``sys.path``, so a
virtual environment's own packages win).  The CM id is a synchronous one
(``CMID(creator=AddrInfo)``: rdma_getaddrinfo + rdma_create_ep), the way pyverbs' own CM
tests connect; the host adds its own send and receive CQs and the QP on the id's PD.
pyverbs does not hand out a synchronous id's REJECTED event, so a rejection carries no
private data here (``reports_reject_data``); the tier's CM probes use the cffi binding.
pyverbs' ``CMID.post_send`` / ``post_recv`` are
rdma-core's ``rdma_post_send`` / ``rdma_post_recv``, which post one region from its start
and carry no work-request id; an RC queue pair completes its send queue's and its receive
queue's work requests in the order they were posted (IB 1.4 10.8.3, 10.8.6), so this
binding gives each completion the id of the oldest work request posted on that queue.
pyverbs' CM id does not hand out its QP, so "host QP to error" is not available here
(:class:`~impl.host.binding.Unsupported`).
"""

from __future__ import annotations

import collections
import contextlib
import sys
import time
import types
from typing import Any

from impl.host.binding import (
    ACCESS_DATA,
    Completion,
    ConnectRejected,
    Device,
    NoDevice,
    Unsupported,
    VerbsError,
)

DIST_PACKAGES = "/usr/lib/python3/dist-packages"
RDMA_PS_TCP = 0x0106


def _pyverbs() -> Any:
    try:
        import pyverbs
    except ImportError:
        if DIST_PACKAGES not in sys.path:
            sys.path.append(DIST_PACKAGES)
        try:
            import pyverbs  # noqa: F401
        except ImportError as exc:
            raise NoDevice(f"pyverbs cannot be imported (install Debian's python3-pyverbs): "
                           f"{exc}") from exc
    from pyverbs import cm_enums, cmid, cq, device, enums, mr, pd, qp
    from pyverbs.pyverbs_error import PyverbsError

    return types.SimpleNamespace(ce=cm_enums, cmid=cmid, cq=cq, device=device, e=enums, mr=mr,
                                 pd=pd, qp=qp, PyverbsError=PyverbsError)


class _Region:
    def __init__(self, pv: Any, pd: Any, size: int, access: int):
        self.size = size
        self.mr = pv.mr.MR(pd, max(size, 1), access)
        self.addr = int(self.mr.buf)
        self.rkey = int(self.mr.rkey)

    def write(self, offset: int, data: bytes) -> None:
        if offset < 0 or offset + len(data) > self.size:
            raise ValueError(f"write of {len(data)} bytes at {offset} outside {self.size}")
        if data:
            self.mr.write(bytes(data), len(data), offset)

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or offset + length > self.size:
            raise ValueError(f"read of {length} bytes at {offset} outside {self.size}")
        return bytes(self.mr.read(length, offset)) if length else b""


class PyverbsConnection:
    def __init__(self, pv: Any, address: str, port: int, *, send_depth: int,
                 recv_depth: int, timeout: float):
        self._pv = pv
        self.accept_data = b""
        self._sent: collections.deque[int] = collections.deque()
        self._recvd: collections.deque[int] = collections.deque()
        self._regions: list[_Region] = []
        self._disconnected = False
        self._closed = False
        try:
            # rdma_getaddrinfo + rdma_create_ep: a synchronous id bound to its device, with
            # the device's PD (rdma-core sets id->pd); our CQs; rdma_create_qp on that PD.
            ai = pv.cmid.AddrInfo(dst=address, dst_service=str(port),
                                  port_space=RDMA_PS_TCP)
            self._probe = None
            self._id = pv.cmid.CMID(creator=ai)
            ctx = self._id.context
            self._scq = pv.cq.CQ(ctx, send_depth)
            self._rcq = pv.cq.CQ(ctx, recv_depth)
            cap = pv.qp.QPCap(max_send_wr=send_depth, max_recv_wr=recv_depth,
                              max_send_sge=1, max_recv_sge=1)
            init = pv.qp.QPInitAttr(qp_type=pv.e.IBV_QPT_RC, scq=self._scq, rcq=self._rcq,
                                    cap=cap)
            self._pd = self._id.pd
            try:
                pv.mr.MR(self._pd, 64, pv.e.IBV_ACCESS_LOCAL_WRITE).close()
                self._id.create_qp(init)
            except pv.PyverbsError:
                # A provider that sets id->pd only when rdma_create_ep makes the QP: a
                # second id with the QP (on our CQs, from the device's shared context),
                # whose PD the MRs then share.  (Not a PD of our own: pyverbs' CMID.close()
                # forgets a PD it was given without freeing it.)
                self._probe = self._id
                self._id = pv.cmid.CMID(creator=ai, qp_init_attr=init)
                self._pd = self._id.pd
        except pv.PyverbsError as exc:
            raise VerbsError(f"pyverbs connection setup: {exc}") from exc

    def connect(self, private_data: bytes, rr: int, idepth: int) -> None:
        """rdma_connect on the synchronous id: returns once ESTABLISHED.  A rejection
        raises :class:`ConnectRejected` without its private data: pyverbs does not hand
        out the REJECTED event of a synchronous id (``reports_reject_data`` is False)."""
        pv = self._pv
        param = pv.cmid.ConnParam(resources=rr, depth=idepth, retry=7, rnr_retry=7,
                                  data_len=len(private_data))
        param.set_private_data(bytes(private_data))
        try:
            self._id.connect(param)
        except pv.PyverbsError as exc:
            if "111" in str(exc) or "refused" in str(exc).lower():
                raise ConnectRejected(f"RDMA CM connect rejected: {exc}", b"") from exc
            raise VerbsError(f"rdma_connect: {exc}") from exc

    def register(self, size: int, access: int = ACCESS_DATA) -> _Region:
        r = _Region(self._pv, self._pd, size, access)
        self._regions.append(r)
        return r

    def post_send(self, region: _Region, length: int, wr_id: int) -> None:
        try:
            self._id.post_send(region.mr, self._pv.e.IBV_SEND_SIGNALED, length)
        except self._pv.PyverbsError as exc:
            raise VerbsError(f"rdma_post_send: {exc}") from exc
        self._sent.append(wr_id)

    def post_recv(self, region: _Region, wr_id: int) -> None:
        try:
            self._id.post_recv(region.mr, region.size)
        except self._pv.PyverbsError as exc:
            raise VerbsError(f"rdma_post_recv: {exc}") from exc
        self._recvd.append(wr_id)

    @staticmethod
    def _poll(cq: Any, ids: collections.deque[int], most: int) -> list[Completion]:
        n, wcs = cq.poll(most)
        out = []
        for wc in wcs[:n]:
            wr_id = ids.popleft() if ids else -1
            out.append(Completion(wr_id, int(wc.status), int(wc.byte_len)))
        return out

    def poll_send(self, most: int = 16) -> list[Completion]:
        return self._poll(self._scq, self._sent, most)

    def poll_recv(self, most: int = 16) -> list[Completion]:
        return self._poll(self._rcq, self._recvd, most)

    def disconnected(self) -> bool:
        return self._disconnected

    def disconnect(self) -> None:
        try:
            self._id.disconnect()
        except self._pv.PyverbsError as exc:
            raise VerbsError(f"rdma_disconnect: {exc}") from exc
        self._disconnected = True

    def qp_to_error(self) -> None:
        raise Unsupported("pyverbs' CMID does not expose its QP: no host QP-to-error fault")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for obj in (*[r.mr for r in self._regions], self._id, self._scq, self._rcq,
                    *((self._probe,) if self._probe is not None else ())):
            with contextlib.suppress(Exception):   # a connection the target dropped
                obj.close()


class PyverbsVerbs:
    name = "pyverbs"
    reports_reject_data = False

    def __init__(self) -> None:
        self._pv = _pyverbs()

    def devices(self) -> list[Device]:
        pv = self._pv
        out = []
        for dev in pv.device.get_device_list():
            name = dev.name.decode() if isinstance(dev.name, bytes) else str(dev.name)
            active = 0
            try:
                with pv.device.Context(name=name) as ctx:
                    ports = ctx.query_device().phys_port_cnt
                    for p in range(1, ports + 1):
                        active += ctx.query_port(p).state == pv.e.IBV_PORT_ACTIVE
            except pv.PyverbsError:
                pass
            out.append(Device(name, active))
        return out

    def connect(self, address: str, port: int, private_data: bytes, *, send_depth: int,
                recv_depth: int, responder_resources: int, initiator_depth: int,
                timeout: float, before_connect: Any = None) -> PyverbsConnection:
        deadline = time.monotonic() + timeout
        c = PyverbsConnection(self._pv, address, port, send_depth=send_depth,
                              recv_depth=recv_depth, timeout=timeout)
        try:
            if before_connect is not None:
                before_connect(c)
            if time.monotonic() > deadline:
                raise VerbsError(f"RDMA CM address and route resolution took over {timeout} s")
            c.connect(private_data, responder_resources, initiator_depth)
        except BaseException:
            c.close()
            raise
        return c
