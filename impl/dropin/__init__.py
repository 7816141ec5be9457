"""simverbs as the process's ``libibverbs.so.1`` / ``librdmacm.so.1``, and targets served
in-process on it.

An unmodified verbs program (pyverbs, a C initiator) started with :func:`subprocess_env`
resolves libibverbs and librdmacm to simverbs' drop-in libraries (``python -m impl.dropin
build``); :func:`serve` then runs the built-in target or SPDK's ``lib/nvmf/rdma.c`` in the
same process, on the same fabric, listening through simverbs' CM.  Whenever the program
waits - polls an empty CQ, gets (or waits for) a CM event, blocks in ``ibv_get_cq_event`` -
simverbs executes the posted work and runs the target's pollers, so a program that spins
or blocks makes progress with no other thread.

    from impl import dropin
    env = dropin.subprocess_env()          # in the parent
    subprocess.run([sys.executable, "host.py"], env=env)

    # host.py, the child
    srv = dropin.serve()                   # built-in target at 192.0.2.10:4420
    ...pyverbs: AddrInfo, CMID(creator=..., qp_init_attr=...), connect, post_send...
    srv.stop()
"""

from __future__ import annotations

import ctypes
import json
import os
import socket
import tempfile
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Self

from impl.dropin import build as _build

#: Where Debian puts pyverbs (python3-pyverbs); appended to the child's PYTHONPATH.
DIST_PACKAGES = "/usr/lib/python3/dist-packages"
DEFAULT_ADDRESS = "192.0.2.10"
DEFAULT_PORT = 4420
DEFAULT_SUBNQN = "nqn.2016-06.io.nrt:cnode1"
DEFAULT_NAMESPACES = ((16384, 512),)

__all__ = ["ServeError", "Server", "active", "lib_dir", "serve", "subprocess_env"]


class ServeError(RuntimeError):
    """The target could not be served: the message says which step and why."""


def lib_dir(out: str | os.PathLike[str] | None = None) -> Path:
    """The directory holding the drop-in libraries (built, or rebuilt, if needed)."""
    return _build.build(out)


def subprocess_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a child whose dynamic loader must find simverbs as
    libibverbs/librdmacm (``LD_LIBRARY_PATH``), and which may import Debian's pyverbs
    (``/usr/lib/python3/dist-packages`` appended to ``PYTHONPATH``).

    PYTHONPATH entries come before site-packages in ``sys.path``, so the interpreter's own
    site-packages (the venv's) go in just ahead of dist-packages: the venv's packages
    (cffi, its ``_cffi_backend``) win over Debian's, and only pyverbs comes from there."""
    import site
    env = dict(os.environ if base is None else base)
    d = str(lib_dir())
    env["LD_LIBRARY_PATH"] = d + (os.pathsep + env["LD_LIBRARY_PATH"]
                                  if env.get("LD_LIBRARY_PATH") else "")
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if DIST_PACKAGES not in paths:
        paths += [p for p in site.getsitepackages() if p != DIST_PACKAGES and p not in paths]
        paths.append(DIST_PACKAGES)
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def active() -> bool:
    """True in a process whose ``libibverbs.so.1`` is simverbs."""
    try:
        lib = ctypes.CDLL("libibverbs.so.1")
    except OSError:
        return False
    return hasattr(lib, "sv_fabric_current")


# ---------------------------------------------------------------------------------------
# the served target

_GLUE_CDEF = """
struct nrt_dropin_server;
int nrt_dropin_fabric(uint32_t ipv4, char *err, size_t errlen);
struct nrt_dropin_server *nrt_dropin_attach(struct nrt_transport *t, uint32_t ipv4, char *err,
                                            size_t errlen);
int nrt_dropin_detach(struct nrt_dropin_server *s);
int nrt_dropin_progress(struct nrt_dropin_server *s);
uint64_t nrt_dropin_passes(struct nrt_dropin_server *s);
int nrt_dropin_stats_json(struct nrt_dropin_server *s, char *buf, size_t len);
int nrt_dropin_set_log_file(const char *path);
"""

_ffi: Any = None


def _ffi_for_targets() -> Any:
    """One ABI-mode ffi typed by nrt.h (the same declarations the in-process build uses)."""
    global _ffi
    if _ffi is None:
        import cffi

        from impl._build import read_cdef
        f = cffi.FFI()
        f.cdef(read_cdef() + _GLUE_CDEF)
        _ffi = f
    return _ffi


def _ipv4(address: str) -> int:
    try:
        packed = socket.inet_aton(address)
    except OSError:
        raise ServeError(f"address {address!r} is no dotted IPv4 address") from None
    return int.from_bytes(packed, "little")      # network order, as a uint32_t in memory


def _target_library(target: str, spdk_src: str | os.PathLike[str] | None) -> Path:
    if target == "builtin":
        return lib_dir() / _build.BUILTIN_TARGET
    if target == "spdk":
        spdk_src = spdk_src or os.environ.get("NRT_SPDK_SRC")
        if not spdk_src:
            raise ServeError("serve(target='spdk') needs spdk_src (or NRT_SPDK_SRC), an SPDK "
                             "source tree")
        from impl.spdk import build as spdk_build
        return spdk_build.build(spdk_src, dropin=lib_dir())
    raise ServeError(f"unknown target {target!r}: 'builtin' or 'spdk'")


class Server:
    """A target served in-process; see :func:`serve`.  ``stop()`` (or leaving the ``with``
    block) stops the RPC server, detaches the target from the fabric's progress and
    destroys it, appending its destroy report to the log."""

    def __init__(self, *, target: str, library: Path, address: str, port: int, subnqn: str,
                 namespaces: Iterable[tuple[int, int]], options: Mapping[str, int] | None,
                 log_path: str | os.PathLike[str] | None = None,
                 rpc_socket: str | os.PathLike[str] | None = None):
        if not active():
            raise ServeError("this process's libibverbs.so.1 is not simverbs: start it with "
                             "impl.dropin.subprocess_env()")
        if not 0 < port < 65536:
            raise ServeError(f"port {port} is not in 1..65535")
        self.target = target
        self.address = address
        self.port = port
        self.subnqn = subnqn
        self._tmp = tempfile.mkdtemp(prefix="nrt-serve-")
        self.log_path = str(log_path or Path(self._tmp) / "target.log")
        self.rpc_socket = str(rpc_socket or Path(self._tmp) / "rpc.sock")
        self._ffi = ffi = _ffi_for_targets()
        self._lib = lib = ffi.dlopen(str(library))
        self._t: Any = ffi.NULL
        self._s: Any = ffi.NULL
        self._rpc: _RpcServer | None = None
        self._stopped = False
        err = ffi.new("char[]", 256)
        self._log(f"serving {target} ({library}) at {address}:{port} {subnqn}")
        self._self_logged = lib.nrt_dropin_set_log_file(self.log_path.encode()) == 1
        if lib.nrt_dropin_fabric(_ipv4(address), err, 256) < 0:
            raise ServeError(f"fabric: {ffi.string(err).decode()}")
        opts = ffi.new("struct nrt_opts *")
        lib.nrt_opts_default(opts)
        for name, value in (options or {}).items():
            if not hasattr(opts, name):
                raise ServeError(f"unknown option {name!r} (struct nrt_opts has no such field)")
            setattr(opts, name, value)
        if target == "spdk":
            lib.nrt_opts_fit(opts)
        t = lib.nrt_transport_create(opts, err, 256)
        if t == ffi.NULL:
            raise ServeError(f"transport: {ffi.string(err).decode()}")
        self._t = t
        try:
            self._check(lib.nrt_listen(t, _ipv4(address), port), "listen")
            sub = self._check(lib.nrt_subsystem_add(t, subnqn.encode()), "subsystem")
            for blocks, block_size in namespaces:
                self._check(lib.nrt_namespace_add(t, sub, block_size, blocks), "namespace")
            s = lib.nrt_dropin_attach(t, _ipv4(address), err, 256)
            if s == ffi.NULL:
                raise ServeError(f"attach: {ffi.string(err).decode()}")
            self._s = s
            self._rpc = _RpcServer(self.rpc_socket, self.stats)
        except BaseException:
            self.stop()
            raise

    def _check(self, rc: int, what: str) -> int:
        if rc < 0:
            msg = self._ffi.string(self._lib.nrt_transport_error(self._t)).decode()
            raise ServeError(f"{what}: {msg} ({rc})")
        return rc

    def _log(self, line: str) -> None:
        with open(self.log_path, "a", encoding="utf-8") as f:
            f.write(line.rstrip("\n") + "\n")

    def stats(self) -> dict[str, Any]:
        """``nvmf_get_stats``' result, as the RPC server answers it."""
        if self._s == self._ffi.NULL:
            raise ServeError("the server is stopped")
        size = 1 << 16
        while True:
            buf = self._ffi.new("char[]", size)
            n = self._lib.nrt_dropin_stats_json(self._s, buf, size)
            if n < 0:
                raise ServeError(f"statistics: error {n}")
            if n < size:
                return json.loads(self._ffi.string(buf).decode())
            size = n + 1

    def progress(self) -> int:
        """One pass of the target's pollers by hand (what autoprogress does)."""
        return int(self._lib.nrt_dropin_progress(self._s))

    def set_block_io_auto(self, on: bool) -> None:
        """Block IO completes at once (the default while served) or waits (a test that
        needs a command outstanding)."""
        if self._t == self._ffi.NULL:
            raise ServeError("the server is stopped")
        self._lib.nrt_bdev_set_auto(self._t, 1 if on else 0)

    @property
    def passes(self) -> int:
        """How often the target's pollers have run."""
        return int(self._lib.nrt_dropin_passes(self._s)) if self._s != self._ffi.NULL else 0

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        if self._rpc is not None:
            self._rpc.close()
        ffi, lib = self._ffi, self._lib
        if self._s != ffi.NULL:
            lib.nrt_dropin_detach(self._s)
            self._s = ffi.NULL
        if self._t != ffi.NULL:
            report = ffi.new("struct nrt_destroy_report *")
            rc = lib.nrt_transport_destroy(self._t, report)
            self._t = ffi.NULL
            message = ffi.string(report.message).decode(errors="replace")
            if self._self_logged:
                lib.nrt_dropin_set_log_file(ffi.NULL)    # the target's own log: closed
            self._log(f"destroyed ({rc}): wr {report.wr_returned}/{report.wr_expected}, "
                      f"buffers {report.buf_returned}/{report.buf_expected}"
                      + (f": {message}" if message and not self._self_logged else ""))

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<dropin.Server {self.target} {self.address}:{self.port} {self.subnqn}>"


def serve(target: str = "builtin", spdk_src: str | os.PathLike[str] | None = None,
          address: str = DEFAULT_ADDRESS, port: int = DEFAULT_PORT,
          subnqn: str = DEFAULT_SUBNQN,
          namespaces: Iterable[tuple[int, int]] = DEFAULT_NAMESPACES,
          options: Mapping[str, int] | None = None, **kw: Any) -> Server:
    """Start ``target`` in this process, listening on ``address:port`` (IPv4, RDMA port
    space) through simverbs' CM, with one subsystem ``subnqn`` holding ``namespaces``
    (``(blocks, block_size)`` each).  ``options`` overrides fields of ``struct nrt_opts``
    (SPDK's target then fits them to what it honours).  ``spdk_src`` (default
    ``$NRT_SPDK_SRC``) is the SPDK tree for ``target="spdk"``, built against the drop-in
    libraries on first use (cached under ``$NRT_SPDK_CACHE``).  Block IO completes at once
    (``Server.set_block_io_auto`` changes that).  The process must have simverbs as its
    libibverbs (:func:`subprocess_env`); ``log_path`` / ``rpc_socket`` keywords choose where
    the log and the RPC socket go (default: a fresh temporary directory)."""
    library = _target_library(target, spdk_src)
    return Server(target=target, library=library, address=address, port=port, subnqn=subnqn,
                  namespaces=tuple(namespaces), options=options, **kw)


# ---------------------------------------------------------------------------------------
# JSON-RPC 2.0 on a unix socket: nvmf_get_stats

class _RpcServer:
    """Answers JSON-RPC 2.0 requests (one JSON object after another on a stream, as SPDK's
    rpc.py sends them) on a unix socket, in a thread of its own; only ``nvmf_get_stats``."""

    def __init__(self, path: str, stats: Any):
        self._stats = stats
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if os.path.exists(path):
            os.unlink(path)
        self._sock.bind(path)
        self._sock.listen(8)
        self._path = path
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="nrt-dropin-rpc", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            with conn:
                self._session(conn)

    def _session(self, conn: socket.socket) -> None:
        buf = ""
        dec = json.JSONDecoder()
        while not self._closed.is_set():
            try:
                chunk = conn.recv(65536)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk.decode(errors="replace")
            while buf.strip():
                try:
                    req, end = dec.raw_decode(buf.lstrip())
                except json.JSONDecodeError:
                    if len(buf) > 1 << 20:
                        conn.sendall(_error(None, -32700, "Parse error").encode())
                        return
                    break
                buf = buf.lstrip()[end:]
                conn.sendall(self._answer(req).encode())

    def _answer(self, req: Any) -> str:
        if not isinstance(req, dict) or req.get("jsonrpc") != "2.0" or "method" not in req:
            return _error(req.get("id") if isinstance(req, dict) else None, -32600,
                          "Invalid Request")
        rid = req.get("id")
        if req["method"] != "nvmf_get_stats":
            return _error(rid, -32601, "Method not found")
        try:
            result = self._stats()
        except (ServeError, OSError, ValueError) as exc:   # the client hears why
            return _error(rid, -32603, str(exc))
        return json.dumps({"jsonrpc": "2.0", "id": rid, "result": result})

    def close(self) -> None:
        self._closed.set()
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()
        self._thread.join(timeout=5)
        try:
            os.unlink(self._path)
        except OSError:
            pass


def _error(rid: Any, code: int, message: str) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": rid, "error": {"code": code, "message": message}})
