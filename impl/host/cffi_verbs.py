"""The host's verbs binding in cffi ABI mode over ``libibverbs.so.1`` and ``librdmacm.so.1``.

Nothing is compiled: the libraries are opened by soname, so the dynamic loader picks
rdma-core on a machine with a NIC and simverbs in drop-in mode (``impl.dropin``).

rdma-core's ``ibv_post_send``, ``ibv_post_recv`` and ``ibv_poll_cq`` are static inline
functions in ``<infiniband/verbs.h>`` that call through the context's ops table
(``qp->context->ops.post_send`` ...); there is no symbol to call.  This module declares the
structures' layouts exactly as rdma-core 44's headers give them (``struct ibv_context``
and its ``struct ibv_context_ops``, ``ibv_qp``, ``ibv_cq``, the work request and
completion structures, the CM id, event and connection parameters) and calls the same
function pointers the inlines do.  ``tests/host/test_cffi_layout.py`` compares every
offset declared here with ``offsetof`` from a program compiled against the real headers.

Only the prefix of a structure the host reads is declared where the host never allocates
it (``ibv_qp``, ``ibv_cq``, ``rdma_cm_id``): their sizes here are not the real ones.
"""

from __future__ import annotations

import errno as _errno
import fcntl
import os
import select
import socket
import struct
import time
from typing import Any

from cffi import FFI

from impl.host.binding import (
    ACCESS_DATA,
    Completion,
    ConnectRejected,
    Device,
    NoDevice,
    VerbsError,
)

CDEF = r"""
struct ibv_device;
struct ibv_pd { struct ibv_context *context; uint32_t handle; };
struct ibv_sge { uint64_t addr; uint32_t length; uint32_t lkey; };
struct ibv_mw_bind_info { void *mr; uint64_t addr; uint64_t length; unsigned int mw_access_flags; };
struct ibv_send_wr {
    uint64_t wr_id; struct ibv_send_wr *next; struct ibv_sge *sg_list; int num_sge;
    int opcode; unsigned int send_flags;
    union { uint32_t imm_data; uint32_t invalidate_rkey; };
    union {
        struct { uint64_t remote_addr; uint32_t rkey; } rdma;
        struct { uint64_t remote_addr; uint64_t compare_add; uint64_t swap; uint32_t rkey; } atomic;
        struct { void *ah; uint32_t remote_qpn; uint32_t remote_qkey; } ud;
    } wr;
    union { struct { uint32_t remote_srqn; } xrc; } qp_type;
    union {
        struct { void *mw; uint32_t rkey; struct ibv_mw_bind_info bind_info; } bind_mw;
        struct { void *hdr; uint16_t hdr_sz; uint16_t mss; } tso;
    };
};
struct ibv_recv_wr { uint64_t wr_id; struct ibv_recv_wr *next; struct ibv_sge *sg_list; int num_sge; };
struct ibv_wc {
    uint64_t wr_id; int status; int opcode; uint32_t vendor_err; uint32_t byte_len;
    union { uint32_t imm_data; uint32_t invalidated_rkey; };
    uint32_t qp_num; uint32_t src_qp; unsigned int wc_flags; uint16_t pkey_index;
    uint16_t slid; uint8_t sl; uint8_t dlid_path_bits;
};
struct ibv_qp; struct ibv_cq;
struct ibv_context_ops {
    void *_compat_query_device; void *_compat_query_port; void *_compat_alloc_pd;
    void *_compat_dealloc_pd; void *_compat_reg_mr; void *_compat_rereg_mr;
    void *_compat_dereg_mr; void *alloc_mw; void *bind_mw; void *dealloc_mw;
    void *_compat_create_cq;
    int (*poll_cq)(struct ibv_cq *cq, int num_entries, struct ibv_wc *wc);
    void *req_notify_cq; void *_compat_cq_event; void *_compat_resize_cq;
    void *_compat_destroy_cq; void *_compat_create_srq; void *_compat_modify_srq;
    void *_compat_query_srq; void *_compat_destroy_srq; void *post_srq_recv;
    void *_compat_create_qp; void *_compat_query_qp; void *_compat_modify_qp;
    void *_compat_destroy_qp;
    int (*post_send)(struct ibv_qp *qp, struct ibv_send_wr *wr, struct ibv_send_wr **bad_wr);
    int (*post_recv)(struct ibv_qp *qp, struct ibv_recv_wr *wr, struct ibv_recv_wr **bad_wr);
    void *_compat_create_ah; void *_compat_destroy_ah; void *_compat_attach_mcast;
    void *_compat_detach_mcast; void *_compat_async_event;
};
struct ibv_context { struct ibv_device *device; struct ibv_context_ops ops; int cmd_fd;
                     int async_fd; int num_comp_vectors; };
struct ibv_qp { struct ibv_context *context; void *qp_context; struct ibv_pd *pd;
                struct ibv_cq *send_cq; struct ibv_cq *recv_cq; void *srq; uint32_t handle;
                uint32_t qp_num; int state; int qp_type; };
struct ibv_cq { struct ibv_context *context; void *channel; void *cq_context;
                uint32_t handle; int cqe; };
struct ibv_mr { struct ibv_context *context; struct ibv_pd *pd; void *addr; size_t length;
                uint32_t handle; uint32_t lkey; uint32_t rkey; };
struct ibv_qp_cap { uint32_t max_send_wr; uint32_t max_recv_wr; uint32_t max_send_sge;
                    uint32_t max_recv_sge; uint32_t max_inline_data; };
struct ibv_qp_init_attr { void *qp_context; struct ibv_cq *send_cq; struct ibv_cq *recv_cq;
                          void *srq; struct ibv_qp_cap cap; int qp_type; int sq_sig_all; };

struct ibv_device **ibv_get_device_list(int *num_devices);
void ibv_free_device_list(struct ibv_device **list);
const char *ibv_get_device_name(struct ibv_device *device);
struct ibv_context *ibv_open_device(struct ibv_device *device);
int ibv_close_device(struct ibv_context *context);
int ibv_query_port(struct ibv_context *context, uint8_t port_num, void *port_attr);
struct ibv_pd *ibv_alloc_pd(struct ibv_context *context);
int ibv_dealloc_pd(struct ibv_pd *pd);
struct ibv_mr *ibv_reg_mr(struct ibv_pd *pd, void *addr, size_t length, int access);
int ibv_dereg_mr(struct ibv_mr *mr);
struct ibv_cq *ibv_create_cq(struct ibv_context *context, int cqe, void *cq_context,
                             void *channel, int comp_vector);
int ibv_destroy_cq(struct ibv_cq *cq);
int ibv_modify_qp(struct ibv_qp *qp, void *attr, int attr_mask);

struct rdma_event_channel { int fd; };
struct rdma_cm_id { struct ibv_context *verbs; struct rdma_event_channel *channel;
                    void *context; struct ibv_qp *qp; };
struct rdma_conn_param { const void *private_data; uint8_t private_data_len;
                         uint8_t responder_resources; uint8_t initiator_depth;
                         uint8_t flow_control; uint8_t retry_count; uint8_t rnr_retry_count;
                         uint8_t srq; uint32_t qp_num; };
struct rdma_cm_event { struct rdma_cm_id *id; struct rdma_cm_id *listen_id; int event;
                       int status; union { struct rdma_conn_param conn; char ud[64]; } param; };
struct rdma_event_channel *rdma_create_event_channel(void);
void rdma_destroy_event_channel(struct rdma_event_channel *channel);
int rdma_create_id(struct rdma_event_channel *channel, struct rdma_cm_id **id, void *context,
                   int ps);
int rdma_destroy_id(struct rdma_cm_id *id);
int rdma_resolve_addr(struct rdma_cm_id *id, void *src_addr, void *dst_addr, int timeout_ms);
int rdma_resolve_route(struct rdma_cm_id *id, int timeout_ms);
int rdma_create_qp(struct rdma_cm_id *id, struct ibv_pd *pd, struct ibv_qp_init_attr *attr);
void rdma_destroy_qp(struct rdma_cm_id *id);
int rdma_connect(struct rdma_cm_id *id, struct rdma_conn_param *conn_param);
int rdma_disconnect(struct rdma_cm_id *id);
int rdma_get_cm_event(struct rdma_event_channel *channel, struct rdma_cm_event **event);
int rdma_ack_cm_event(struct rdma_cm_event *event);
"""

#: rdma_cm_event_type values (``<rdma/rdma_cma.h>``).
CM_EVENTS = ("ADDR_RESOLVED", "ADDR_ERROR", "ROUTE_RESOLVED", "ROUTE_ERROR",
             "CONNECT_REQUEST", "CONNECT_RESPONSE", "CONNECT_ERROR", "UNREACHABLE",
             "REJECTED", "ESTABLISHED", "DISCONNECTED", "DEVICE_REMOVAL",
             "MULTICAST_JOIN", "MULTICAST_ERROR", "ADDR_CHANGE", "TIMEWAIT_EXIT")
RDMA_PS_TCP = 0x0106
IBV_QPT_RC = 2
IBV_WR_SEND = 2
IBV_SEND_SIGNALED = 1 << 1
IBV_QP_STATE = 1
IBV_QPS_ERR = 6
IBV_PORT_ACTIVE = 4
#: sizeof(struct ibv_qp_attr) and sizeof(struct ibv_port_attr) are below this; the host
#: fills only their first field (qp_state / state), so a zeroed buffer of this size serves.
ATTR_BUFFER = 512

ffi = FFI()
ffi.cdef(CDEF)
_libs: dict[str, Any] = {}


def libs() -> tuple[Any, Any]:
    """(libibverbs, librdmacm), opened once by soname."""
    if not _libs:
        try:
            _libs["ibv"] = ffi.dlopen("libibverbs.so.1")
            _libs["cm"] = ffi.dlopen("librdmacm.so.1")
        except OSError as exc:
            raise NoDevice(f"No IB devices found (libibverbs.so.1 / librdmacm.so.1 "
                           f"cannot be loaded: {exc})") from exc
    return _libs["ibv"], _libs["cm"]


def _fail(call: str) -> VerbsError:
    e = ffi.errno
    return VerbsError(f"{call} failed: errno {e} ({os.strerror(e) if e else 'no errno'})")


class _Region:
    def __init__(self, ibv: Any, pd: Any, size: int, access: int):
        self.size = size
        self._buf = ffi.new("char[]", max(size, 1))
        self._mr = ibv.ibv_reg_mr(pd, self._buf, max(size, 1), access)
        if self._mr == ffi.NULL:
            raise _fail(f"ibv_reg_mr({size} bytes, access {access:#x})")
        self._ibv = ibv
        self.addr = int(ffi.cast("uintptr_t", self._buf))
        self.rkey = int(self._mr.rkey)
        self.lkey = int(self._mr.lkey)

    def write(self, offset: int, data: bytes) -> None:
        if offset < 0 or offset + len(data) > self.size:
            raise ValueError(f"write of {len(data)} bytes at {offset} outside {self.size}")
        ffi.memmove(self._buf + offset, data, len(data))

    def read(self, offset: int, length: int) -> bytes:
        if offset < 0 or offset + length > self.size:
            raise ValueError(f"read of {length} bytes at {offset} outside {self.size}")
        return bytes(ffi.buffer(self._buf + offset, length))

    def close(self) -> None:
        if self._mr is not None:
            self._ibv.ibv_dereg_mr(self._mr)
            self._mr = None


class CffiConnection:
    """An RC QP connected through the CM, posting and polling through the ops table."""

    def __init__(self, verbs: CffiVerbs, address: str, port: int, private_data: bytes, *,
                 send_depth: int, recv_depth: int, responder_resources: int,
                 initiator_depth: int, timeout: float):
        self._ibv, self._cm = libs()
        cm = self._cm
        self._regions: list[_Region] = []
        self._disconnected = False
        self._closed = False
        self._pd = self._scq = self._rcq = ffi.NULL
        self._qp_made = False
        self.accept_data = b""
        # work requests, scatter entries and completions are reused: a provider copies a
        # work request when it is posted, so its memory is free again when the call returns
        self._swr = ffi.new("struct ibv_send_wr *")
        self._ssge = ffi.new("struct ibv_sge *")
        self._sbad = ffi.new("struct ibv_send_wr **")
        self._rwr = ffi.new("struct ibv_recv_wr *")
        self._rsge = ffi.new("struct ibv_sge *")
        self._rbad = ffi.new("struct ibv_recv_wr **")
        self._wcs = ffi.new("struct ibv_wc[]", 32)
        self._ch = cm.rdma_create_event_channel()
        if self._ch == ffi.NULL:
            raise _fail("rdma_create_event_channel")
        fd = int(self._ch.fd)
        if fd >= 0:
            fl = fcntl.fcntl(fd, fcntl.F_GETFL)
            fcntl.fcntl(fd, fcntl.F_SETFL, fl | os.O_NONBLOCK)
        idp = ffi.new("struct rdma_cm_id **")
        if cm.rdma_create_id(self._ch, idp, ffi.NULL, RDMA_PS_TCP):
            err = _fail("rdma_create_id")
            cm.rdma_destroy_event_channel(self._ch)
            raise err
        self._id = idp[0]
        try:
            self._establish(address, port, private_data, send_depth, recv_depth,
                            responder_resources, initiator_depth, timeout)
        except BaseException:
            self.close()
            raise

    # ---- connection setup (RDMA CM active side)
    def _establish(self, address: str, port: int, pdata: bytes, send_depth: int,
                   recv_depth: int, rr: int, idepth: int, timeout: float) -> None:
        ibv, cm = self._ibv, self._cm
        ms = max(1, int(timeout * 1000))
        sin = ffi.new("char[16]")
        ffi.memmove(sin, struct.pack("<H", socket.AF_INET) + struct.pack(">H", port)
                    + socket.inet_aton(address) + bytes(8), 16)
        if cm.rdma_resolve_addr(self._id, ffi.NULL, sin, ms):
            raise _fail(f"rdma_resolve_addr({address}:{port})")
        self._expect("ADDR_RESOLVED", timeout)
        if cm.rdma_resolve_route(self._id, ms):
            raise _fail("rdma_resolve_route")
        self._expect("ROUTE_RESOLVED", timeout)
        ctx = self._id.verbs
        self._pd = ibv.ibv_alloc_pd(ctx)
        if self._pd == ffi.NULL:
            raise _fail("ibv_alloc_pd")
        self._scq = ibv.ibv_create_cq(ctx, send_depth, ffi.NULL, ffi.NULL, 0)
        self._rcq = ibv.ibv_create_cq(ctx, recv_depth, ffi.NULL, ffi.NULL, 0)
        if self._scq == ffi.NULL or self._rcq == ffi.NULL:
            raise _fail("ibv_create_cq")
        attr = ffi.new("struct ibv_qp_init_attr *")
        attr.send_cq, attr.recv_cq, attr.qp_type, attr.sq_sig_all = (
            self._scq, self._rcq, IBV_QPT_RC, 0)
        attr.cap.max_send_wr, attr.cap.max_recv_wr = send_depth, recv_depth
        attr.cap.max_send_sge = attr.cap.max_recv_sge = 1
        if cm.rdma_create_qp(self._id, self._pd, attr):
            raise _fail("rdma_create_qp")
        self._qp_made = True
        self._qp = self._id.qp
        self._verbs_ctx = self._qp.context

    def post_connect(self, pdata: bytes, rr: int, idepth: int) -> None:
        param = ffi.new("struct rdma_conn_param *")
        data = ffi.new("char[]", pdata or b"\0")
        param.private_data, param.private_data_len = data, len(pdata)
        param.responder_resources, param.initiator_depth = rr, idepth
        param.retry_count, param.rnr_retry_count = 7, 7
        if self._cm.rdma_connect(self._id, param):
            raise _fail("rdma_connect")

    def finish_connect(self, timeout: float) -> None:
        kind, status, data = self._next_event(timeout)
        if kind == "ESTABLISHED":
            self.accept_data = data
            return
        if kind == "REJECTED":
            raise ConnectRejected(f"RDMA CM connect rejected (status {status}, "
                                  f"{len(data)} bytes of private data)", data)
        raise VerbsError(f"RDMA CM connect: {kind} (status {status}), expected ESTABLISHED")

    # ---- CM events
    def _next_event(self, timeout: float) -> tuple[str, int, bytes]:
        cm = self._cm
        evp = ffi.new("struct rdma_cm_event **")
        deadline = time.monotonic() + timeout
        fd = int(self._ch.fd)
        while True:
            if cm.rdma_get_cm_event(self._ch, evp) == 0:
                ev = evp[0]
                kind = CM_EVENTS[ev.event] if 0 <= ev.event < len(CM_EVENTS) else str(ev.event)
                n = int(ev.param.conn.private_data_len)
                p = ev.param.conn.private_data
                data = bytes(ffi.buffer(p, n)) if p != ffi.NULL and n else b""
                status = int(ev.status)
                cm.rdma_ack_cm_event(ev)
                if kind == "DISCONNECTED":
                    self._disconnected = True
                return kind, status, data
            if ffi.errno not in (_errno.EAGAIN, _errno.EWOULDBLOCK):
                raise _fail("rdma_get_cm_event")
            left = deadline - time.monotonic()
            if left <= 0:
                raise VerbsError(f"no RDMA CM event within {timeout:.1f} s")
            if fd >= 0:
                try:
                    select.select([fd], [], [], min(left, 0.001))
                except (OSError, ValueError):
                    pass

    def _expect(self, want: str, timeout: float) -> None:
        kind, status, _ = self._next_event(timeout)
        if kind != want:
            raise VerbsError(f"RDMA CM: {kind} (status {status}), expected {want}")

    def disconnected(self) -> bool:
        if not self._disconnected and not self._closed:
            evp = ffi.new("struct rdma_cm_event **")
            while self._cm.rdma_get_cm_event(self._ch, evp) == 0:
                if evp[0].event == CM_EVENTS.index("DISCONNECTED"):
                    self._disconnected = True
                self._cm.rdma_ack_cm_event(evp[0])
        return self._disconnected

    # ---- memory and work requests
    def register(self, size: int, access: int = ACCESS_DATA) -> _Region:
        r = _Region(self._ibv, self._pd, size, access)
        self._regions.append(r)
        return r

    def post_send(self, region: _Region, length: int, wr_id: int) -> None:
        sge, wr = self._ssge, self._swr
        sge.addr, sge.length, sge.lkey = region.addr, length, region.lkey
        wr.wr_id, wr.next, wr.sg_list, wr.num_sge = wr_id, ffi.NULL, sge, 1
        wr.opcode, wr.send_flags = IBV_WR_SEND, IBV_SEND_SIGNALED
        rc = self._verbs_ctx.ops.post_send(self._qp, wr, self._sbad)
        if rc:
            raise VerbsError(f"ibv_post_send failed: {rc} ({os.strerror(rc)})")

    def post_recv(self, region: _Region, wr_id: int) -> None:
        sge, wr = self._rsge, self._rwr
        sge.addr, sge.length, sge.lkey = region.addr, region.size, region.lkey
        wr.wr_id, wr.next, wr.sg_list, wr.num_sge = wr_id, ffi.NULL, sge, 1
        rc = self._verbs_ctx.ops.post_recv(self._qp, wr, self._rbad)
        if rc:
            raise VerbsError(f"ibv_post_recv failed: {rc} ({os.strerror(rc)})")

    def _poll(self, cq: Any, most: int) -> list[Completion]:
        wcs = self._wcs
        n = self._verbs_ctx.ops.poll_cq(cq, min(most, 32), wcs)
        if n < 0:
            raise VerbsError(f"ibv_poll_cq failed: {n}")
        return [Completion(wcs[i].wr_id, wcs[i].status, wcs[i].byte_len) for i in range(n)]

    def poll_send(self, most: int = 16) -> list[Completion]:
        return self._poll(self._scq, most)

    def poll_recv(self, most: int = 16) -> list[Completion]:
        return self._poll(self._rcq, most)

    # ---- teardown and faults
    def disconnect(self) -> None:
        if not self._closed and self._cm.rdma_disconnect(self._id):
            raise _fail("rdma_disconnect")

    def qp_to_error(self) -> None:
        attr = ffi.new("char[]", ATTR_BUFFER)
        ffi.cast("int *", attr)[0] = IBV_QPS_ERR   # struct ibv_qp_attr: qp_state first
        if self._ibv.ibv_modify_qp(self._qp, attr, IBV_QP_STATE):
            raise _fail("ibv_modify_qp(IBV_QPS_ERR)")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        ibv, cm = self._ibv, self._cm
        if self._qp_made:
            cm.rdma_destroy_qp(self._id)
        for r in self._regions:
            r.close()
        for cq in (self._scq, self._rcq):
            if cq != ffi.NULL:
                ibv.ibv_destroy_cq(cq)
        if self._pd != ffi.NULL:
            ibv.ibv_dealloc_pd(self._pd)
        cm.rdma_destroy_id(self._id)
        cm.rdma_destroy_event_channel(self._ch)


_idle_channel: list[Any] = []


def idle(seconds: float = 0.0002) -> None:
    """Let the fabric move while the host has nothing to poll: ask an empty, non-blocking
    CM event channel for an event (an in-process simverbs target progresses then; on a
    NIC it costs one read), then sleep ``seconds``."""
    try:
        _, cm = libs()
    except NoDevice:
        time.sleep(seconds)
        return
    if not _idle_channel:
        ch = cm.rdma_create_event_channel()
        if ch == ffi.NULL:
            time.sleep(seconds)
            return
        if int(ch.fd) >= 0:
            fcntl.fcntl(int(ch.fd), fcntl.F_SETFL,
                        fcntl.fcntl(int(ch.fd), fcntl.F_GETFL) | os.O_NONBLOCK)
        _idle_channel.append(ch)
    evp = ffi.new("struct rdma_cm_event **")
    if cm.rdma_get_cm_event(_idle_channel[0], evp) == 0:
        cm.rdma_ack_cm_event(evp[0])
    time.sleep(seconds)


class CffiVerbs:
    name = "cffi"
    reports_reject_data = True

    def devices(self) -> list[Device]:
        ibv, _ = libs()
        n = ffi.new("int *")
        lst = ibv.ibv_get_device_list(n)
        if lst == ffi.NULL:
            return []
        out = []
        try:
            for i in range(n[0]):
                dev = lst[i]
                name = ffi.string(ibv.ibv_get_device_name(dev)).decode()
                ctx = ibv.ibv_open_device(dev)
                active = 0
                if ctx != ffi.NULL:
                    for p in range(1, 9):
                        attr = ffi.new("char[]", ATTR_BUFFER)
                        if ibv.ibv_query_port(ctx, p, attr):
                            break
                        active += ffi.cast("int *", attr)[0] == IBV_PORT_ACTIVE
                    ibv.ibv_close_device(ctx)
                out.append(Device(name, active))
        finally:
            ibv.ibv_free_device_list(lst)
        return out

    def connect(self, address: str, port: int, private_data: bytes, *, send_depth: int,
                recv_depth: int, responder_resources: int, initiator_depth: int,
                timeout: float, before_connect: Any = None) -> CffiConnection:
        c = CffiConnection(self, address, port, private_data, send_depth=send_depth,
                           recv_depth=recv_depth, responder_resources=responder_resources,
                           initiator_depth=initiator_depth, timeout=timeout)
        try:
            if before_connect is not None:
                before_connect(c)
            c.post_connect(private_data, responder_resources, initiator_depth)
            c.finish_connect(timeout)
        except BaseException:
            c.close()
            raise
        return c
