"""The hardware tier's target: a running remote NVMe-oF RDMA target, or one served in this
process on simverbs (``inproc:builtin`` / ``inproc:spdk``, through ``impl.dropin.serve``).

Settings come from the root ``conftest.py`` options, carried in the environment so a child
process sees the same: ``NRT_REMOTE`` (``ADDR[:PORT]`` or ``inproc:KIND``), ``NRT_SUBNQN``,
``NRT_RPC`` (the target's JSON-RPC unix socket), ``NRT_TARGET_LOG`` (its log file),
``NRT_HOST_BINDING`` (``cffi`` or ``pyverbs``).  Everything past :func:`open_target` is the
same for both: the host connects to ``address:port`` through the verbs and CM APIs.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from impl.host import BINDINGS, NoDevice, binding
from impl.host.binding import Verbs

DEFAULT_PORT = 4420
DEFAULT_SUBNQN = "nqn.2016-06.io.nrt:cnode1"
INPROC_ADDRESS = "192.0.2.10"
#: Namespaces an in-process target serves: (blocks, block size).
INPROC_NAMESPACES = ((2048, 512),)
INPROC_KINDS = ("builtin", "spdk")

#: rdma-core's test suite words these skips so (tests/base.py).
NO_DEVICE = "No IB devices found"
NO_PORT = "No supported port is up, can't run traffic"


class Unavailable(Exception):
    """The tier cannot run here; the message is the skip reason."""


@dataclass(frozen=True)
class Settings:
    remote: str | None
    subnqn: str
    rpc: str | None
    log: str | None
    binding: str
    defects: tuple[str, ...] = ()

    @classmethod
    def from_env(cls) -> Settings:
        name = os.environ.get("NRT_HOST_BINDING", "cffi")
        if name not in BINDINGS:
            raise ValueError(f"NRT_HOST_BINDING={name!r}: choose one of {', '.join(BINDINGS)}")
        defects = tuple(n.strip() for n in os.environ.get("NRT_DEFECTS", "").split(",")
                        if n.strip())
        return cls(os.environ.get("NRT_REMOTE") or None,
                   os.environ.get("NRT_SUBNQN") or DEFAULT_SUBNQN,
                   os.environ.get("NRT_RPC") or None, os.environ.get("NRT_TARGET_LOG") or None,
                   name, defects)

    @property
    def inproc(self) -> str | None:
        if self.remote and self.remote.startswith("inproc:"):
            return self.remote.removeprefix("inproc:")
        return None


def command_timeout() -> float:
    """Each command's time bound in seconds (LIVE-1): ``NRT_REMOTE_TIMEOUT``, default 10."""
    raw = os.environ.get("NRT_REMOTE_TIMEOUT", "").strip()
    try:
        value = float(raw) if raw else 10.0
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ValueError(f"NRT_REMOTE_TIMEOUT={raw!r}: a positive number of seconds")
    return value


def parse_address(spec: str) -> tuple[str, int]:
    """``ADDR[:PORT]`` -> (IPv4 address, port); a clear error otherwise."""
    host, _, port = spec.rpartition(":") if ":" in spec else (spec, "", "")
    if not host:
        host, port = spec, ""
    try:
        socket.inet_aton(host)
        if host.count(".") != 3:
            raise OSError
    except OSError:
        raise ValueError(f"--nrt-remote {spec!r}: ADDR must be an IPv4 address "
                         f"(NVMe/RDMA listeners are addressed by IP)") from None
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"--nrt-remote {spec!r}: PORT must be 1..65535")
    return host, int(port) if port else DEFAULT_PORT


@dataclass
class Target:
    """Where the host connects, and the oracles' sources."""

    address: str
    port: int
    subnqn: str
    rpc: str | None
    log: str | None
    kind: str
    verbs: Verbs
    server: Any = None
    defects: tuple[str, ...] = ()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None


def _check_devices(verbs: Verbs) -> None:
    try:
        devs = verbs.devices()
    except NoDevice as exc:
        raise Unavailable(str(exc)) from exc
    if not devs:
        raise Unavailable(NO_DEVICE)
    if not any(d.ports_active for d in devs):
        raise Unavailable(f"{NO_PORT} (devices: {', '.join(d.name for d in devs)})")


def open_target(settings: Settings | None = None) -> Target:
    """The target the settings name, with a host binding; raises :class:`Unavailable` with
    the skip reason where there is no address, no device or no port up."""
    s = settings or Settings.from_env()
    if not s.remote:
        raise Unavailable("no target address: give --nrt-remote ADDR[:PORT] (or "
                          "inproc:builtin / inproc:spdk under the simverbs drop-in)")
    kind = s.inproc
    if kind is not None:
        if kind not in INPROC_KINDS:
            raise ValueError(f"--nrt-remote inproc:{kind}: choose inproc:builtin or inproc:spdk")
        try:
            from impl import dropin
        except ImportError as exc:
            raise Unavailable(f"{NO_DEVICE} (inproc:{kind} needs impl.dropin, the simverbs "
                              f"drop-in: {exc})") from exc
        if not dropin.active():
            raise Unavailable(f"{NO_DEVICE} (inproc:{kind}: libibverbs in this process is "
                              f"not simverbs; run under impl.dropin.subprocess_env())")
    try:
        verbs = binding(s.binding)
    except NoDevice as exc:
        raise Unavailable(str(exc)) from exc
    _check_devices(verbs)
    if kind is None:
        address, port = parse_address(s.remote)
        return Target(address, port, s.subnqn, s.rpc, s.log, "remote", verbs)
    return Target(INPROC_ADDRESS, DEFAULT_PORT, s.subnqn, None, None, f"inproc:{kind}", verbs,
                  defects=s.defects)


def serve(t: Target) -> Target:
    """Start the in-process target (a fresh one per shutdown cycle); no-op for a remote."""
    if not t.kind.startswith("inproc:") or t.server is not None:
        return t
    from impl import dropin

    kind = t.kind.removeprefix("inproc:")
    # serve()'s options are struct nrt_opts fields; defect switches are its defects mask
    options = {"defects": _defect_mask(t.defects)} if t.defects else None
    t.server = dropin.serve(target=kind, spdk_src=os.environ.get("NRT_SPDK_SRC") or None,
                            address=t.address, port=t.port, subnqn=t.subnqn,
                            namespaces=INPROC_NAMESPACES, options=options)
    t.address, t.port = t.server.address, t.server.port
    t.rpc = str(t.server.rpc_socket) if t.server.rpc_socket else None
    t.log = str(t.server.log_path) if t.server.log_path else None
    return t


def _defect_mask(names: tuple[str, ...]) -> int:
    from impl import Defect

    mask = 0
    for n in names:
        mask |= int(Defect.by_name(n))
    return mask


# ----------------------------------------------------------------------------- RPC oracle

#: nvmf_get_stats device counters that only grow.
CUMULATIVE = ("polls", "idle_polls", "completions", "requests", "total_send_wrs",
              "send_doorbell_updates", "total_recv_wrs", "recv_doorbell_updates")
PENDING = ("pending_data_buffer", "pending_free_request", "pending_rdma_read",
           "pending_rdma_write", "pending_rdma_send", "pending_bdev_io")
QPAIRS = ("current_admin_qpairs", "current_io_qpairs")


class RpcError(RuntimeError):
    pass


@dataclass
class Rpc:
    """A JSON-RPC 2.0 client over a unix socket (SPDK's ``scripts/rpc.py`` protocol).
    ``pump`` runs while waiting for the answer (in-process targets progress when the host
    polls)."""

    path: str
    timeout: float = 10.0
    pump: Callable[[], object] | None = None
    _id: int = 0

    def call(self, method: str, params: dict[str, Any] | None = None) -> Any:
        self._id += 1
        req = {"jsonrpc": "2.0", "method": method, "id": self._id}
        if params:
            req["params"] = params
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(self.timeout)
            try:
                s.connect(self.path)
                s.sendall(json.dumps(req).encode())
            except OSError as exc:
                raise RpcError(f"{method}: cannot reach {self.path}: {exc}") from exc
            s.setblocking(False)
            buf, end = b"", time.monotonic() + self.timeout
            dec = json.JSONDecoder()
            while True:
                try:
                    chunk = s.recv(65536)
                    if not chunk:
                        raise RpcError(f"{method}: {self.path} closed before answering")
                    buf += chunk
                    try:
                        obj, _ = dec.raw_decode(buf.decode())
                        break
                    except ValueError:
                        continue
                except BlockingIOError:
                    if time.monotonic() > end:
                        raise RpcError(f"{method}: no answer from {self.path} within "
                                       f"{self.timeout} s") from None
                    if self.pump is not None:
                        self.pump()
                    else:
                        time.sleep(0.001)
        if "error" in obj:
            raise RpcError(f"{method}: {obj['error']}")
        return obj.get("result")


def stat_totals(stats: dict[str, Any]) -> dict[str, int]:
    """Sum nvmf_get_stats over poll groups and RDMA devices: the cumulative counters, the
    pending ones and the current qpair counts."""
    out: dict[str, int] = dict.fromkeys((*CUMULATIVE, *PENDING, *QPAIRS, "admin_qpairs",
                                         "io_qpairs", "completed_nvme_io"), 0)
    for g in stats.get("poll_groups", []):
        for k in (*QPAIRS, "admin_qpairs", "io_qpairs", "pending_bdev_io", "completed_nvme_io"):
            out[k] += int(g.get(k, 0))
        for t in g.get("transports", []):
            if t.get("trtype", "RDMA").upper() != "RDMA":
                continue
            out["pending_data_buffer"] += int(t.get("pending_data_buffer", 0))
            for d in t.get("devices", []):
                for k in (*CUMULATIVE, "pending_free_request", "pending_rdma_read",
                          "pending_rdma_write", "pending_rdma_send"):
                    out[k] += int(d.get(k, 0))
    return out


# ----------------------------------------------------------------------------- log oracle

#: SPDK lib/nvmf/rdma.c at transport destroy: "transport wr pool count is %zu but should be
#: %u"; the built-in target logs the same words for its WR and buffer pools.
LEAK = re.compile(r"(wr|buffer) pool count is \d+ but should be \d+")
#: SPDK's log level tag for SPDK_ERRLOG ("*ERROR*"), and a plain "ERROR".
ERROR = re.compile(r"\*ERROR\*|\bERROR\b")


@dataclass
class LogScan:
    """Reads what a target appended to its log since the last scan."""

    path: str
    offset: int = 0
    seen: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        p = Path(self.path)
        self.offset = p.stat().st_size if p.exists() else 0

    def new_lines(self) -> list[str]:
        p = Path(self.path)
        if not p.exists():
            return []
        with p.open("rb") as f:
            f.seek(self.offset)
            data = f.read()
        self.offset += len(data)
        lines = data.decode(errors="replace").splitlines()
        self.seen.extend(lines)
        return lines

    @staticmethod
    def leaks(lines: list[str]) -> list[str]:
        return [ln for ln in lines if LEAK.search(ln)]

    @staticmethod
    def errors(lines: list[str]) -> list[str]:
        return [ln for ln in lines if ERROR.search(ln) and not LEAK.search(ln)]
