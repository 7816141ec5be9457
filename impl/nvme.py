"""Named constants of the target's contract (``impl/csrc/nrt.h``), as Python enums.

Values are read from the compiled module, so the header stays the single source.
"""

from __future__ import annotations

import enum

from impl._nrt import lib


def _members(prefix: str) -> dict[str, int]:
    return {
        name[len(prefix):]: getattr(lib, name)
        for name in dir(lib)
        if name.startswith(prefix) and isinstance(getattr(lib, name), int)
    }


Opcode = enum.IntEnum("Opcode", _members("NRT_OPC_"))
FabricsType = enum.IntEnum("FabricsType", _members("NRT_FCTYPE_"))
Status = enum.IntEnum("Status", _members("NRT_SC_"))
ReqState = enum.IntEnum(
    "ReqState", {k: v for k, v in _members("NRT_REQ_").items() if k != "NSTATES"}
)
Queue = enum.IntEnum("Queue", _members("NRT_QUEUE_"))
QpState = enum.IntEnum("QpState", _members("NRT_QP_"))
Event = enum.IntEnum("Event", _members("NRT_EV_"))
AsyncEventType = enum.IntEnum("AsyncEventType", _members("NRT_ASYNC_"))
ErrorCode = enum.IntEnum("ErrorCode", {
    name: getattr(lib, f"NRT_E{name}") for name in
    ("INVAL", "NOENT", "NOMEM", "BUSY", "NOTCONN", "NETDOWN", "LIMIT", "MSGSIZE", "STATE")})

SGL_TYPE_DATA_BLOCK = lib.NRT_SGL_TYPE_DATA_BLOCK
SGL_TYPE_LAST_SEGMENT = lib.NRT_SGL_TYPE_LAST_SEGMENT
SGL_TYPE_KEYED_DATA = lib.NRT_SGL_TYPE_KEYED_DATA
SGL_SUBTYPE_ADDRESS = lib.NRT_SGL_SUBTYPE_ADDRESS
SGL_SUBTYPE_OFFSET = lib.NRT_SGL_SUBTYPE_OFFSET
SGL_SUBTYPE_INVALIDATE = lib.NRT_SGL_SUBTYPE_INVALIDATE
MAX_SGL_DESC = lib.NRT_MAX_SGL_DESC
NUM_REQ_STATES = lib.NRT_REQ_NSTATES


class Defect(enum.IntFlag):
    """Defect switches (DESIGN section 2), chosen at transport creation."""

    NONE = 0
    LEAK_REMAINING_WRS = lib.NRT_DEFECT_LEAK_REMAINING_WRS
    NO_IDLE_PENDING_POLL = lib.NRT_DEFECT_NO_IDLE_PENDING_POLL
    FIXED_POOL_SIZE = lib.NRT_DEFECT_FIXED_POOL_SIZE
    POOL_DOUBLE_PUT = lib.NRT_DEFECT_POOL_DOUBLE_PUT
    STALE_TRANSFER_WR = lib.NRT_DEFECT_STALE_TRANSFER_WR
    STALE_READ_QUEUE_ENTRY = lib.NRT_DEFECT_STALE_READ_QUEUE_ENTRY
    PENDING_SEND_ONLY_ON_CQE = lib.NRT_DEFECT_PENDING_SEND_ONLY_ON_CQE
    ICD_WAITS_FOR_BUFFER = lib.NRT_DEFECT_ICD_WAITS_FOR_BUFFER
    POST_FAIL_COUNTER_LEAK = lib.NRT_DEFECT_POST_FAIL_COUNTER_LEAK
    RECV_NOT_RELEASED = lib.NRT_DEFECT_RECV_NOT_RELEASED
    DOUBLE_QPAIR_DESTROY = lib.NRT_DEFECT_DOUBLE_QPAIR_DESTROY
    WRONG_EXPECTED_CAPACITY = lib.NRT_DEFECT_WRONG_EXPECTED_CAPACITY

    @classmethod
    def by_name(cls, name: str) -> Defect:
        """``"leak_remaining_wrs"`` -> ``Defect.LEAK_REMAINING_WRS``; clear error otherwise."""
        try:
            return cls[name.upper()]
        except KeyError:
            known = ", ".join(sorted(m.name.lower() for m in cls if m.name != "NONE"))
            raise ValueError(f"unknown defect switch {name!r}; known: {known}") from None


DEFECT_NAMES: tuple[str, ...] = tuple(m.name.lower() for m in Defect if m.name != "NONE")
