"""One NVMe-oF RDMA host (initiator), written once against the verbs and CM APIs.

:mod:`impl.host.binding` is the small interface; :mod:`impl.host.cffi_verbs` and
:mod:`impl.host.pyverbs_verbs` implement it; :mod:`impl.host.queue` is one queue's
protocol (CM private data, capsules, CQEs, CIDs, time bounds) and
:mod:`impl.host.controller` a controller's (Connect, enable, Identify, IO, shutdown).
"""

from impl.host.binding import (
    BINDINGS,
    ConnectRejected,
    NoDevice,
    Unsupported,
    VerbsError,
    binding,
)
from impl.host.controller import Controller, ControllerInfo, Io, NamespaceInfo
from impl.host.queue import CommandTimeout, Queue, QueueError, QueueFailed, Response

__all__ = ["BINDINGS", "CommandTimeout", "ConnectRejected", "Controller", "ControllerInfo",
           "Io", "NamespaceInfo", "NoDevice", "Queue", "QueueError", "QueueFailed",
           "Response", "Unsupported", "VerbsError", "binding"]
