"""The one small interface an NVMe-oF RDMA host needs from the verbs and CM APIs.

Two bindings implement it: :mod:`impl.host.cffi_verbs` (cffi in ABI mode over
``libibverbs.so.1`` / ``librdmacm.so.1``) and :mod:`impl.host.pyverbs_verbs` (Debian's
``python3-pyverbs``).  Whatever the loader resolves those libraries to - rdma-core with a
NIC, or simverbs in drop-in mode - the host above this interface is the same.

Work requests: every send and receive posts one registered region from its start (a host
keeps one region per send slot and per receive slot), so no binding needs scatter lists.
Completions come back on two completion queues, one for sends and one for receives: a
flushed completion's opcode is undefined (IB 1.4 11.4.2.1), so the queue says which it was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

#: ibv_wc_status values the host tells apart (rdma-core ``enum ibv_wc_status``).
WC_SUCCESS = 0
WC_REM_ACCESS_ERR = 10
WC_WR_FLUSH_ERR = 5

WC_STATUS_NAMES = {0: "SUCCESS", 1: "LOC_LEN_ERR", 2: "LOC_QP_OP_ERR", 3: "LOC_EEC_OP_ERR",
                   4: "LOC_PROT_ERR", 5: "WR_FLUSH_ERR", 6: "MW_BIND_ERR", 7: "BAD_RESP_ERR",
                   8: "LOC_ACCESS_ERR", 9: "REM_INV_REQ_ERR", 10: "REM_ACCESS_ERR",
                   11: "REM_OP_ERR", 12: "RETRY_EXC_ERR", 13: "RNR_RETRY_EXC_ERR"}

#: Remote access a host grants its data regions: the target RDMA READs write data from
#: them and RDMA WRITEs read data into them (NVMe/RDMA 1.0 2.2, keyed SGL data transfers).
ACCESS_LOCAL_WRITE = 1
ACCESS_REMOTE_WRITE = 1 << 1
ACCESS_REMOTE_READ = 1 << 2
ACCESS_DATA = ACCESS_LOCAL_WRITE | ACCESS_REMOTE_WRITE | ACCESS_REMOTE_READ


class VerbsError(RuntimeError):
    """A verbs or CM call failed; the message names the call and errno."""


class NoDevice(VerbsError):
    """No RDMA device, or none with a port up: the hardware tier skips with this reason."""


class ConnectRejected(VerbsError):
    """The target rejected the RDMA CM connect; ``private_data`` is what it sent (the
    NVMe/RDMA reject private data, NVMe/RDMA 1.0 3.3 figure 6, when it sent one)."""

    def __init__(self, message: str, private_data: bytes):
        super().__init__(message)
        self.private_data = private_data


class Unsupported(VerbsError):
    """The binding cannot do this (e.g. pyverbs' CM id does not expose its QP)."""


@dataclass(frozen=True)
class Device:
    name: str
    ports_active: int


@dataclass(frozen=True)
class Completion:
    """One work completion: the ``wr_id`` it was posted with, ``status`` (ibv_wc_status),
    ``byte_len`` (receives: bytes received)."""

    wr_id: int
    status: int
    byte_len: int = 0

    @property
    def ok(self) -> bool:
        return self.status == WC_SUCCESS

    @property
    def status_name(self) -> str:
        return WC_STATUS_NAMES.get(self.status, f"status {self.status}")


class Region(Protocol):
    """Registered host memory: ``size`` bytes at virtual address ``addr`` under ``rkey``."""

    addr: int
    rkey: int
    size: int

    def write(self, offset: int, data: bytes) -> None: ...
    def read(self, offset: int, length: int) -> bytes: ...


class Connection(Protocol):
    """One RC queue pair connected through the RDMA CM."""

    #: The private data the target accepted with (NVMe/RDMA 1.0 3.3 figure 5).
    accept_data: bytes

    def register(self, size: int, access: int = ACCESS_DATA) -> Region: ...
    def post_send(self, region: Region, length: int, wr_id: int) -> None: ...
    def post_recv(self, region: Region, wr_id: int) -> None: ...
    def poll_send(self, most: int = 16) -> list[Completion]: ...
    def poll_recv(self, most: int = 16) -> list[Completion]: ...
    def disconnected(self) -> bool: ...
    def disconnect(self) -> None: ...
    def qp_to_error(self) -> None: ...
    def close(self) -> None: ...


class Verbs(Protocol):
    """A binding: finds devices and opens connections."""

    name: str
    #: Whether ConnectRejected carries the target's reject private data.
    reports_reject_data: bool

    def devices(self) -> list[Device]: ...

    def connect(self, address: str, port: int, private_data: bytes, *, send_depth: int,
                recv_depth: int, responder_resources: int, initiator_depth: int,
                timeout: float, before_connect: Callable[[Connection], None] | None = None,
                ) -> Connection:
        """Resolve, create the QP, call ``before_connect`` (the host posts its receives
        there), then ``rdma_connect`` with ``private_data`` and wait for ESTABLISHED;
        :class:`ConnectRejected` on REJECTED."""
        ...


def binding(name: str) -> Verbs:
    """The binding called ``name`` (``cffi`` or ``pyverbs``); a clear error otherwise."""
    if name == "cffi":
        from impl.host.cffi_verbs import CffiVerbs

        return CffiVerbs()
    if name == "pyverbs":
        from impl.host.pyverbs_verbs import PyverbsVerbs

        return PyverbsVerbs()
    raise ValueError(f"unknown host binding {name!r}: choose cffi or pyverbs")


BINDINGS = ("cffi", "pyverbs")
