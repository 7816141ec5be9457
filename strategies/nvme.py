"""NVMe / NVMe-oF numbers the strategies speak in, copied from ``impl/csrc/nrt.h``.

The values are *copied*, not imported: ``strategies`` must stay usable against any target
(a user's own transport wrapped behind the same header), and must import without building
the C target.  ``tests/test_strategies.py`` parses ``nrt.h`` and fails if a copy drifts.

Names drop the ``NRT_`` prefix; everything else matches the header.
"""

from __future__ import annotations

from typing import Final

# ---- limits --------------------------------------------------------------------------
MAX_SGL_DESC: Final = 16  # NRT_MAX_SGL_DESC: keyed descriptors in a last-segment list
MAX_POLL_GROUPS: Final = 64  # NRT_MAX_POLL_GROUPS

# ---- defect switches (DESIGN section 2) ----------------------------------------------
DEFECT_LEAK_REMAINING_WRS: Final = 0x0001
DEFECT_NO_IDLE_PENDING_POLL: Final = 0x0002
DEFECT_FIXED_POOL_SIZE: Final = 0x0004
DEFECT_POOL_DOUBLE_PUT: Final = 0x0008
DEFECT_STALE_TRANSFER_WR: Final = 0x0010
DEFECT_STALE_READ_QUEUE_ENTRY: Final = 0x0020
DEFECT_PENDING_SEND_ONLY_ON_CQE: Final = 0x0040
DEFECT_ICD_WAITS_FOR_BUFFER: Final = 0x0080
DEFECT_POST_FAIL_COUNTER_LEAK: Final = 0x0100
DEFECT_RECV_NOT_RELEASED: Final = 0x0200
DEFECT_DOUBLE_QPAIR_DESTROY: Final = 0x0400
DEFECT_WRONG_EXPECTED_CAPACITY: Final = 0x0800

# ---- opcodes -------------------------------------------------------------------------
OPC_FLUSH: Final = 0x00
OPC_WRITE: Final = 0x01
OPC_READ: Final = 0x02
OPC_ABORT: Final = 0x08
OPC_IDENTIFY: Final = 0x06
OPC_KEEP_ALIVE: Final = 0x18
OPC_FABRICS: Final = 0x7F
FCTYPE_PROPERTY_SET: Final = 0x00
FCTYPE_CONNECT: Final = 0x01
FCTYPE_PROPERTY_GET: Final = 0x04

#: Opcodes the target implements on an IO queue / on the admin queue (fabrics aside).
NVM_OPCODES: Final = frozenset({OPC_FLUSH, OPC_WRITE, OPC_READ})
ADMIN_OPCODES: Final = frozenset({OPC_IDENTIFY, OPC_KEEP_ALIVE, OPC_ABORT})
FABRICS_FCTYPES: Final = frozenset({FCTYPE_PROPERTY_SET, FCTYPE_CONNECT, FCTYPE_PROPERTY_GET})

# ---- SGL descriptor types / subtypes (NVMe base spec) --------------------------------
SGL_TYPE_DATA_BLOCK: Final = 0x0
SGL_TYPE_LAST_SEGMENT: Final = 0x3
SGL_TYPE_KEYED_DATA: Final = 0x4
SGL_SUBTYPE_ADDRESS: Final = 0x0
SGL_SUBTYPE_OFFSET: Final = 0x1
SGL_SUBTYPE_INVALIDATE: Final = 0xF
#: Bytes per SGL descriptor on the wire (a last-segment list's length is ndesc * 16).
SGL_DESC_BYTES: Final = 16

# ---- NVMe status: (status code type << 8) | status code -------------------------------
SC_SUCCESS: Final = 0x0000
SC_INVALID_OPCODE: Final = 0x0001
SC_INVALID_FIELD: Final = 0x0002
SC_DATA_TRANSFER_ERROR: Final = 0x0004
SC_INTERNAL_ERROR: Final = 0x0006
SC_INVALID_NAMESPACE: Final = 0x000B
SC_COMMAND_SEQUENCE_ERROR: Final = 0x000C
SC_INVALID_SGL_SEG_DESC: Final = 0x000D
SC_INVALID_NUM_SGL_DESC: Final = 0x000E
SC_DATA_SGL_LENGTH_INVALID: Final = 0x000F
SC_SGL_DESC_TYPE_INVALID: Final = 0x0011
SC_SGL_OFFSET_INVALID: Final = 0x0016
SC_LBA_OUT_OF_RANGE: Final = 0x0080
SC_NAMESPACE_NOT_READY: Final = 0x0082
SC_CONNECT_INVALID_PARAM: Final = 0x0182
SC_UNRECOVERED_READ_ERROR: Final = 0x0281

#: Readable names for reports and assertion messages.
STATUS_NAMES: Final[dict[int, str]] = {
    SC_SUCCESS: "SUCCESS",
    SC_INVALID_OPCODE: "INVALID_OPCODE",
    SC_INVALID_FIELD: "INVALID_FIELD",
    SC_DATA_TRANSFER_ERROR: "DATA_TRANSFER_ERROR",
    SC_INTERNAL_ERROR: "INTERNAL_ERROR",
    SC_INVALID_NAMESPACE: "INVALID_NAMESPACE",
    SC_COMMAND_SEQUENCE_ERROR: "COMMAND_SEQUENCE_ERROR",
    SC_INVALID_SGL_SEG_DESC: "INVALID_SGL_SEG_DESC",
    SC_INVALID_NUM_SGL_DESC: "INVALID_NUM_SGL_DESC",
    SC_DATA_SGL_LENGTH_INVALID: "DATA_SGL_LENGTH_INVALID",
    SC_SGL_DESC_TYPE_INVALID: "SGL_DESC_TYPE_INVALID",
    SC_SGL_OFFSET_INVALID: "SGL_OFFSET_INVALID",
    SC_LBA_OUT_OF_RANGE: "LBA_OUT_OF_RANGE",
    SC_NAMESPACE_NOT_READY: "NAMESPACE_NOT_READY",
    SC_CONNECT_INVALID_PARAM: "CONNECT_INVALID_PARAM",
    SC_UNRECOVERED_READ_ERROR: "UNRECOVERED_READ_ERROR",
}

# ---- micro-events for nrt_run(): word = (kind << 24) | arg ---------------------------
EV_DELIVER_H2T: Final = 1
EV_DELIVER_T2H: Final = 2
EV_POLL: Final = 3
EV_BDEV: Final = 4
EV_TICK: Final = 5
EV_ACCEPT: Final = 6   # the target processes its CM and async events
EV_ARG_MASK: Final = 0x00FF_FFFF
#: Schedule kind name -> NRT_EV_* number.
EVENT_KINDS: Final[dict[str, int]] = {
    "h2t": EV_DELIVER_H2T,
    "t2h": EV_DELIVER_T2H,
    "poll": EV_POLL,
    "bdev": EV_BDEV,
    "tick": EV_TICK,
}

# ---- controller properties (NVMe-oF Property Get/Set offsets) -------------------------
PROP_CAP: Final = 0x00
PROP_VS: Final = 0x08
PROP_CC: Final = 0x14
PROP_CSTS: Final = 0x1C
#: Offsets the target serves with Property Get.
PROPERTY_OFFSETS: Final = (PROP_CAP, PROP_VS, PROP_CC, PROP_CSTS)
#: CC with EN=1, IOSQES=6 (64-byte SQE), IOCQES=4 (16-byte CQE): what a host writes after
#: connecting.  The only Property Set value the well-formed admin strategy produces, because
#: clearing EN or setting SHN would reset or shut down the controller under the harness.
CC_ENABLE: Final = 0x0046_0001

# ---- identify ------------------------------------------------------------------------
CNS_NAMESPACE: Final = 0x00
CNS_CONTROLLER: Final = 0x01
IDENTIFY_DATA_BYTES: Final = 4096
