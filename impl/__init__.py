"""The compact C NVMe-oF RDMA target, simverbs under it, and its Python facade.

Import from here: ``from impl import Transport, Options, Capsule, keyed``.  The C target is
compiled by cffi when the package is installed (``pip install -e .``); ``python
impl/_build.py`` rebuilds it in place.
"""

from impl.nvme import (
    DEFECT_NAMES,
    AsyncEventType,
    Defect,
    Event,
    FabricsType,
    Opcode,
    QpState,
    Queue,
    ReqState,
    Status,
)
from impl.target import (
    AsyncEvent,
    Capsule,
    ConnInfo,
    DestroyReport,
    DrainResult,
    FabricStats,
    GroupStats,
    Options,
    OptionsRefused,
    PoolCounts,
    QpairInfo,
    RequestInfo,
    Response,
    SglDesc,
    TargetError,
    Transport,
    Workload,
    connect_capsule,
    enable_capsule,
    event,
    in_capsule,
    keyed,
    last_segment,
)

__all__ = [
    "DEFECT_NAMES", "AsyncEvent", "AsyncEventType", "Capsule", "ConnInfo", "Defect",
    "DestroyReport", "DrainResult", "Event", "FabricStats", "FabricsType", "GroupStats", "Opcode", "Options", "OptionsRefused",
    "PoolCounts", "QpState", "QpairInfo", "Queue", "ReqState", "RequestInfo", "Response",
    "SglDesc", "Status", "TargetError", "Transport", "Workload", "connect_capsule", "enable_capsule", "event",
    "in_capsule", "keyed", "last_segment",
]
