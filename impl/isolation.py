"""Crash containment (CRASH-1): run a target library in a forked child process.

A target under test - SPDK's ``rdma.c`` behind its adapter, or the built-in target in a
sanitizer build - may segfault, abort, fail an assertion, trip AddressSanitizer or spin
forever.  In-process that takes the whole test session down with it and loses the report
of every other test.  :class:`IsolatedLib` is a drop-in replacement for a cffi ``lib``
object (what :class:`impl.backends.Backend` carries and :class:`impl.target.Transport`
calls through ``self._lib``) that runs the library in a child made by ``os.fork()`` and
forwards each call over a pair of pipes.  When the child dies or stops answering, the call
raises :class:`TargetCrashed` with the signal or exit status, the call that was running and
the tail of the child's stderr (where a sanitizer report or an assertion message lands);
the parent, and every other target, carry on.

Why fork and not spawn: the child is the parent's own memory image, so it needs no
interpreter start-up, no imports and no re-compilation - a few milliseconds - and the
builtin target (``impl._nrt``) is already loaded in it.  The child only serves calls and
leaves with ``os._exit``: it never returns into the parent's code (pytest's, say).

Marshalling is derived from each function's cffi type (``ffi.typeof(builtin_lib.f)``), so
any library behind ``nrt.h`` is served without a per-function table:

* integers travel as ints;
* a pointer to an opaque struct (``struct nrt_rig *``, ``struct nrt_transport *``) is a
  handle: it travels as its address, is re-cast in the child, and a returned one is
  re-cast in the parent (so ``handle == ffi.NULL`` still holds);
* a pointer to anything else passed as cdata (an ``ffi.new`` struct or array, ``char[]``)
  travels as its bytes, and the child's bytes after the call are copied back into it, so
  output arguments are filled in;  Python ``bytes`` (for ``const void *``/``const char *``)
  travel as bytes and nothing comes back;  ``ffi.NULL`` stays NULL;
* a returned ``const char *`` comes back as a parent-owned ``char[]`` (``ffi.string`` works
  on it); integer constants (``lib.NRT_EINVAL``) are read from the builtin lib in the
  parent, with no round trip.

Each call is one ``os.write`` and one ``os.read`` each way, the message a ``marshal``-ed
tuple behind a 4-byte length (``marshal`` measured about twice as fast as ``pickle``
protocol 5 for these small tuples of ints and bytes; both ends are the same interpreter, so
its format is safe here).

One limit follows from copying: a pointer argument covers exactly the object cffi knows the
size of - a whole ``ffi.new`` array or struct.  A derived pointer (``arr + 4``, ``buf[0]``)
covers one element only.  The facade only ever passes whole objects.

A library given by path is opened in the child as a :class:`SharedObjectLib` (each symbol
looked up with ``dlsym`` and cast to its ``nrt.h`` type), not with ``ffi.dlopen``: on this
API-mode ``ffi``, ``ffi.dlopen`` hands back the builtin target's own functions.

``python -m impl.isolation --bench`` measures the cost (per-call microseconds in-process and
isolated, and the fork).
"""

from __future__ import annotations

import atexit
import builtins
import ctypes
import faulthandler
import fcntl
import gc
import marshal
import operator
import os
import re
import resource
import select
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import weakref
from typing import Any, Self

from impl._nrt import ffi
from impl._nrt import lib as _builtin_lib

__all__ = ["IsolatedLib", "SharedObjectLib", "TargetCrashed", "isolated_backend"]

#: How much of the child's stderr a crash report carries.
REPORT_TAIL = 8 * 1024
#: Seconds a hung child is given to print its report after SIGABRT before SIGKILL.
HANG_REPORT_S = 2.0

_CData = ffi.CData
_NULL = ffi.NULL
_HDR = struct.Struct("<I")
_READ_CHUNK = 1 << 20    # pieces of a large message (and the pipes' capacity)
_FIRST_READ = 1 << 16
_PR_SET_PDEATHSIG = 1
_EXIT_REQUEST = -1       # function index that asks the child to leave

try:   # loaded now, in the parent: the child must not have to load anything after fork
    _libc: Any = ctypes.CDLL(None, use_errno=True)
except OSError:   # pragma: no cover - not a glibc-like platform
    _libc = None


class TargetCrashed(Exception):
    """The isolated target died (``kind`` "signal" or "exit") or stopped answering
    ("hang", after which it was killed), or its channel was torn by an interrupt
    ("interrupted").  ``signal`` is the signal's name ("SIGSEGV"), ``exit_code`` the exit
    status, ``call`` the call in progress, ``report`` the tail of the child's stderr."""

    def __init__(self, kind: str, call: str, *, signal: str | None = None,
                 exit_code: int | None = None, report: str = "", library: str | None = None,
                 pid: int | None = None, detail: str = ""):
        self.kind = kind
        self.signal = signal
        self.exit_code = exit_code
        self.call = call
        self.report = report
        self.library = library
        self.pid = pid
        self.detail = detail
        if kind == "signal":
            what = signal or "killed by a signal"
        elif kind == "exit":
            what = f"exit status {exit_code}"
        else:
            what = kind
        head = f"target crashed: {what} in {call}"
        if detail:
            head += f" ({detail})"
        if report:
            head += "\n--- target stderr (tail) ---\n" + report.rstrip("\n")
        super().__init__(head)

    def __reduce__(self) -> Any:   # keyword-only fields: the default pickling would lose them
        return (_rebuild_crash, (self.kind, self.call, self.signal, self.exit_code, self.report,
                                 self.library, self.pid, self.detail))


def _rebuild_crash(kind: str, call: str, sig: str | None, code: int | None, report: str,
                   library: str | None, pid: int | None, detail: str) -> TargetCrashed:
    return TargetCrashed(kind, call, signal=sig, exit_code=code, report=report,
                         library=library, pid=pid, detail=detail)


# ---------------------------------------------------------------------------------------
# Call plans: how each nrt.h function's arguments and result travel.  Computed once, at
# import, so parent and child (a fork) share them by function index.

_INT, _FLOAT, _HANDLE, _BUF, _UNSUPPORTED = range(5)
_R_VOID, _R_INT, _R_FLOAT, _R_HANDLE, _R_STRING, _R_UNSUPPORTED = range(6)


def _opaque(ctype: Any) -> bool:
    """A struct cffi does not know the layout of (declared ``struct nrt_rig;`` only).
    ``ffi.sizeof`` is the probe: reading ``.fields`` of an opaque struct trips an assertion
    inside cffi."""
    if ctype.kind not in ("struct", "union"):
        return False
    try:
        ffi.sizeof(ctype)
    except ffi.error:
        return True
    return False


def _arg_code(t: Any) -> int:
    if t.kind == "primitive":
        return _FLOAT if t.cname in ("float", "double", "long double") else _INT
    if t.kind == "enum":
        return _INT
    if t.kind == "pointer":
        return _HANDLE if _opaque(t.item) else _BUF
    return _UNSUPPORTED


def _result_code(t: Any) -> int:
    if t.kind == "void":
        return _R_VOID
    if t.kind in ("primitive", "enum"):
        if t.cname in ("float", "double", "long double"):
            return _R_FLOAT
        if t.cname == "char":
            return _R_UNSUPPORTED
        return _R_INT
    if t.kind == "pointer":
        if t.item.kind == "primitive" and t.item.cname == "char":
            return _R_STRING
        return _R_HANDLE   # opaque, or any pointer: only its address means anything here
    return _R_UNSUPPORTED


class _Plan:
    __slots__ = ("args", "codes", "ftype", "index", "name", "rcode", "result")

    def __init__(self, index: int, name: str, ftype: Any):
        self.index = index
        self.name = name
        self.ftype = ftype
        self.args = tuple(ftype.args)
        self.codes = tuple(_arg_code(a) for a in self.args)
        self.result = ftype.result
        self.rcode = _result_code(ftype.result)


def _plans() -> tuple[dict[str, _Plan], list[_Plan], dict[str, int]]:
    by_name: dict[str, _Plan] = {}
    consts: dict[str, int] = {}
    for name in sorted(dir(_builtin_lib)):
        obj = getattr(_builtin_lib, name)
        if isinstance(obj, int):
            consts[name] = obj
            continue
        try:
            ftype = ffi.typeof(obj)
        except TypeError:
            continue
        if ftype.kind == "function":
            by_name[name] = _Plan(len(by_name), name, ftype)
    return by_name, list(by_name.values()), consts


_PLANS, _PLAN_LIST, _CONSTS = _plans()


def _call_repr(name: str, args: tuple[Any, ...]) -> str:
    parts = []
    for a in args:
        r = repr(a)
        parts.append(r if len(r) <= 72 else r[:60] + f"...<{len(r)} chars>")
    return f"{name}({', '.join(parts)})"


# ---------------------------------------------------------------------------------------
# A target library opened by path


def _contract_attr(lib: Any, name: str, function: Any) -> Any:
    """An ``nrt.h`` name on a lib-like object: an integer constant from the builtin lib, or
    ``function(plan)`` for a function; kept in the object's ``__dict__`` so later look-ups
    skip ``__getattr__``."""
    if name.startswith("__"):
        raise AttributeError(name)
    if name in _CONSTS:
        value: Any = _CONSTS[name]
    else:
        plan = _PLANS.get(name)
        if plan is None:
            raise AttributeError(f"the target contract (nrt.h) has no {name!r}")
        value = function(plan)
    lib.__dict__[name] = value
    return value


class SharedObjectLib:
    """A ``lib`` over a shared object exporting ``nrt.h``, typed by the builtin ``ffi``.

    ``ffi.dlopen(path)`` cannot be used for this: ``impl._nrt.ffi`` is an out-of-line
    *API-mode* ffi, and the functions of a lib it dlopens are its own compiled-in wrappers -
    a call goes to the builtin target, whatever the library.  Here each function is looked
    up in the library itself (``dlsym`` through ctypes) and cast to its ``nrt.h`` function
    type, so cffi calls that address with the builtin ffi's argument conversion and checks.
    Integer constants come from the builtin lib."""

    def __init__(self, path: str | os.PathLike[str]):
        self._path = os.fspath(path)
        self._dll = ctypes.CDLL(self._path, mode=os.RTLD_NOW | os.RTLD_LOCAL)

    def __getattr__(self, name: str) -> Any:
        return _contract_attr(self, name, self._function)

    def _function(self, plan: _Plan) -> Any:
        try:
            sym = getattr(self._dll, plan.name)
        except AttributeError:
            raise AttributeError(f"{self._path}: undefined symbol {plan.name}") from None
        return ffi.cast(plan.ftype, ctypes.cast(sym, ctypes.c_void_p).value)

    def __repr__(self) -> str:
        return f"<SharedObjectLib {self._path}>"


# ---------------------------------------------------------------------------------------
#: A frame of glibc's ``backtrace_symbols_fd`` in a shared object, by offset only:
#: ``/path/libx.so(+0x4d3bf)[0x7f...]``.
_FRAME = re.compile(r"^(?P<obj>/[^\s(]+\.so[.\d]*)\(\+(?P<off>0x[0-9a-f]+)\)\[0x[0-9a-f]+\]$",
                    re.MULTILINE)


#: A backtrace frame in the interpreter that called the target (cffi, libpython, python).
_INTERPRETER_FRAME = re.compile(r"^/\S*(?:libpython[\d.]*\.so|_cffi_backend\S*\.so|/python[\d.]*)"
                                r"[.\d]*\(")


def symbolized(report: str) -> str:
    """``report`` with each backtrace frame given only as an offset into a shared object
    followed by the function and source line (``addr2line``, inlined frames included), so a
    crash or hang of a target built with debug information names its line (unchanged where
    ``addr2line`` is missing or says nothing); runs of the interpreter's own frames below
    the target's are counted, not listed."""
    frames = list(_FRAME.finditer(report))
    if not frames:
        return report
    where: dict[tuple[str, str], str] = {}
    by_obj: dict[str, list[str]] = {}
    for m in frames:
        by_obj.setdefault(m["obj"], [])
        if m["off"] not in by_obj[m["obj"]]:
            by_obj[m["obj"]].append(m["off"])
    for obj, offs in by_obj.items():
        try:
            out = subprocess.run(["addr2line", "-f", "-i", "-a", "-e", obj, *offs],
                                 capture_output=True, text=True, timeout=20, check=False)
        except (OSError, subprocess.SubprocessError):
            continue
        # -a: each address is printed first, then (function, file:line) pairs for it
        current, names = None, []
        lines = out.stdout.splitlines()
        i = 0
        while i < len(lines):
            if lines[i].startswith("0x"):
                if current is not None:
                    where[(obj, current)] = " <- ".join(names)
                current, names = hex(int(lines[i], 16)), []
                i += 1
                continue
            func = lines[i]
            loc = lines[i + 1] if i + 1 < len(lines) else "??"
            if func != "??":
                names.append(f"{func} at {loc}")
            i += 2
        if current is not None:
            where[(obj, current)] = " <- ".join(names)

    def annotate(m: re.Match[str]) -> str:
        named = where.get((m["obj"], hex(int(m["off"], 16))), "")
        return f"{m[0]}  {named}" if named else m[0]

    out: list[str] = []
    skipped = 0
    for line in _FRAME.sub(annotate, report).split("\n"):
        if _INTERPRETER_FRAME.match(line):
            skipped += 1
            continue
        if skipped:
            out.append(f"({skipped} frames of the Python interpreter)")
            skipped = 0
        out.append(line)
    if skipped:
        out.append(f"({skipped} frames of the Python interpreter)")
    return "\n".join(out)


# The channel: one child, its pipes and its stderr log.

_live: weakref.WeakSet[_Channel] = weakref.WeakSet()


class _Channel:
    """The parent's end of one child.  Kept apart from :class:`IsolatedLib` so the call
    closures (cached on the lib) reference this and not the lib: no cycle, and the lib's
    ``__del__`` runs as soon as the last reference goes."""

    def __init__(self, library: str | None, watchdog_s: float):
        self.library = library
        self.watchdog_ms = None if watchdog_s is None else max(1, int(watchdog_s * 1000))
        self.watchdog_s = watchdog_s
        self.dead: TargetCrashed | None = None
        self.closed = False
        self.closed_why = "the isolated target library is closed"
        self.pid = 0
        self._lock = threading.Lock()
        self._w = self._r = self._log = -1
        # unnamed, so nothing is left behind; the parent keeps a descriptor to read it
        with tempfile.TemporaryFile(prefix="nrt-target-stderr-") as log:
            self._log = os.dup(log.fileno())
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        try:
            self._start(library, req_r, req_w, rep_r, rep_w)
        except BaseException:
            for fd in (req_r, req_w, rep_r, rep_w, self._log):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self._log = -1
            raise
        _live.add(self)
        start = ("dlopen", (library,)) if library else ("start", ())
        status, *rest = marshal.loads(self.roundtrip(None, *start))
        if status != 0:
            self.close()
            raise _child_error(rest)

    def _start(self, library: str | None, req_r: int, req_w: int, rep_r: int,
               rep_w: int) -> None:
        for fd in (req_r, rep_w):   # fewer wake-ups for large buffers; best effort
            try:
                fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, _READ_CHUNK)
            except (OSError, AttributeError):
                pass
        siblings = [fd for ch in list(_live) for fd in (ch._w, ch._r, ch._log) if fd >= 0]
        parent = os.getpid()
        from_main_thread = threading.current_thread() is threading.main_thread()
        pid = os.fork()
        if pid == 0:   # the child: never returns
            _child_main(library, req_r, rep_w, self._log, (req_w, rep_r, *siblings), parent,
                        from_main_thread)
        self.pid = pid
        os.close(req_r)
        os.close(rep_w)
        self._w, self._r = req_w, rep_r
        self._poll = select.poll()
        self._poll.register(rep_r, select.POLLIN | select.POLLHUP | select.POLLERR)

    # -- the round trip ---------------------------------------------------------------
    def roundtrip(self, payload: bytes | None, name: str, args: tuple[Any, ...]) -> bytes:
        """Send one request (``None``: only wait for the child's hello), return the reply.
        One call at a time: requests from two threads must not interleave on the pipe."""
        try:
            with self._lock:
                if self.dead is not None:   # died while this thread waited for the lock
                    raise self.dead.with_traceback(None)
                if payload is not None:
                    self._send(_HDR.pack(len(payload)) + payload, name, args)
                return self._recv(name, args)
        except TargetCrashed:
            raise
        except BaseException:
            # Ctrl-C (or anything else) between request and reply leaves the reply unread:
            # the channel is out of step for good, so end the child rather than misread.
            if self.dead is None and not self.closed:
                self._kill()
                self.dead = TargetCrashed("interrupted", _call_repr(name, args),
                                          library=self.library, pid=self.pid,
                                          report=self._tail(),
                                          detail="the caller was interrupted mid-call, killed")
                self._release()
            raise

    def _send(self, data: bytes, name: str, args: tuple[Any, ...]) -> None:
        try:
            _write_all(self._w, data)
            return
        except OSError:   # EPIPE: the child is gone (SIGPIPE is ignored by Python)
            pass
        self._died(name, args)

    def _recv(self, name: str, args: tuple[Any, ...]) -> Any:
        # The watchdog bounds each wait for reply bytes (a reply larger than the pipe
        # arrives in pieces, each of which restarts it).
        msg = _read_message(self._r, self._poll.poll, self.watchdog_ms)
        if msg is _HUNG:
            self._hung(name, args)
        if msg is None:
            self._died(name, args)
        return msg

    # -- death ----------------------------------------------------------------------
    def _died(self, name: str, args: tuple[Any, ...]) -> None:
        status = self._reap(timeout=2.0)
        call = _call_repr(name, args)
        if status is None:   # closed its pipe yet still running: treat as a hang
            self._kill()
            self.dead = TargetCrashed("hang", call, library=self.library, pid=self.pid,
                                      report=self._tail(), detail="reply pipe closed, killed")
        elif os.WIFSIGNALED(status):
            sig = os.WTERMSIG(status)
            try:
                sname = signal.Signals(sig).name
            except ValueError:
                sname = f"signal {sig}"
            self.dead = TargetCrashed("signal", call, signal=sname, library=self.library,
                                      pid=self.pid, report=self._tail())
        else:
            code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else status
            self.dead = TargetCrashed("exit", call, exit_code=code, library=self.library,
                                      pid=self.pid, report=self._tail())
        self._release()
        raise self.dead

    def _hung(self, name: str, args: tuple[Any, ...]) -> None:
        # Ask a hung child where it is before killing it: SIGABRT, for which a target
        # library may print a backtrace (the SPDK adapter does) on its way out.  A child
        # that is not gone within HANG_REPORT_S is killed anyway.
        try:
            os.kill(self.pid, signal.SIGABRT)
        except ProcessLookupError:
            pass
        if self._reap(HANG_REPORT_S) is None:
            self._kill()
        self.dead = TargetCrashed("hang", _call_repr(name, args), library=self.library,
                                  pid=self.pid, report=self._tail(),
                                  detail=f"no reply within {self.watchdog_s:g} s, killed")
        self._release()
        raise self.dead

    def _reap(self, timeout: float) -> int | None:
        """The child's wait status, waiting up to ``timeout``; ``None`` if still running."""
        end = time.monotonic() + timeout
        delay = 0.0005
        while True:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:   # reaped elsewhere (a SIGCHLD handler): unknown
                return 0
            if pid:
                return status
            if time.monotonic() >= end:
                return None
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def _kill(self) -> None:
        """SIGKILL and reap; the descriptors stay open (the stderr log is still to read)."""
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass

    def _tail(self) -> str:
        if self._log < 0:
            return ""
        try:
            size = os.fstat(self._log).st_size
            start = max(0, size - _REPORT_SEARCH)
            data = os.pread(self._log, size - start, start)
        except OSError:
            return ""
        return symbolized(_report(data).decode("utf-8", "replace"))

    def _release(self) -> None:
        for attr in ("_w", "_r", "_log"):
            fd = getattr(self, attr)
            if fd >= 0:
                setattr(self, attr, -1)
                try:
                    os.close(fd)
                except OSError:
                    pass
        _live.discard(self)

    # -- ending -----------------------------------------------------------------------
    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.dead is None and self._w >= 0:
            if not self._lock.acquire(blocking=False):
                # another thread is mid-call: a request now would interleave.  Its read
                # sees EOF and releases the descriptors.
                self._kill()
                return
            try:
                payload = marshal.dumps((_EXIT_REQUEST, 0, ()))
                os.write(self._w, _HDR.pack(len(payload)) + payload)
            except OSError:
                pass
            finally:
                self._lock.release()
            os.close(self._w)   # EOF for the child too, should it miss the request
            self._w = -1
            if self._reap(timeout=1.0) is None:
                self._kill()
        self._release()

    def tail(self) -> str:
        return self._tail()


# A sanitizer report opens with its verdict ("==123==ERROR: AddressSanitizer: heap-use-
# after-free ...", UBSan's "file.c:12:3: runtime error: ...") and goes on with stacks that
# easily exceed the tail kept: the verdict must not be the part cut off.
_SANITIZER_HEAD = re.compile(rb"==\d+==ERROR: |: runtime error: |WARNING: \w+Sanitizer: ")
_REPORT_SEARCH = 256 * 1024


def _report(data: bytes) -> bytes:
    """The last :data:`REPORT_TAIL` bytes of ``data`` - unless a sanitizer verdict lies
    before them, then the verdict's first half of that and the last half."""
    if len(data) <= REPORT_TAIL:
        return data
    tail = data[-REPORT_TAIL:]
    heads = list(_SANITIZER_HEAD.finditer(data, 0, len(data) - REPORT_TAIL))
    if not heads:
        return tail
    start = data.rfind(b"\n", 0, heads[-1].start()) + 1
    half = REPORT_TAIL // 2 - 64
    cut = len(data) - half - (start + half)
    return data[start:start + half] + f"\n[... {cut} bytes ...]\n".encode() + data[-half:]


def _child_error(rest: list[Any]) -> BaseException:
    """The exception a Python-level failure in the child (a bad argument, a missing symbol)
    maps to in the parent: the same builtin type, so callers see what in-process cffi raises."""
    tname, msg = rest
    etype = getattr(builtins, tname, None)
    if isinstance(etype, type) and issubclass(etype, Exception):
        try:
            return etype(msg)
        except Exception:  # noqa: BLE001, S110 - a type that takes no message: say it plainly
            pass
    return RuntimeError(f"{tname}: {msg}")


_close_all_registered = False


def _disown_all() -> None:
    """In any process forked from one that owns children (multiprocessing, a test that
    forks): the copies of the channels share the owner's pipes, so using or closing one
    would steal the owner's replies or end its child.  Mark them unusable instead."""
    owner = os.getppid()
    for ch in list(_live):
        ch.closed = True
        ch.closed_why = f"the isolated target belongs to process {owner}, not this fork"
    _live.clear()


os.register_at_fork(after_in_child=_disown_all)


def _close_all() -> None:
    for ch in list(_live):
        try:
            ch.close()
        except Exception:  # noqa: BLE001, S110 - at exit, end every child whatever one does
            pass


# ---------------------------------------------------------------------------------------
# The child


def _child_main(library: str | None, req_r: int, rep_w: int, log: int,
                inherited: tuple[int, ...], parent: int, from_main_thread: bool) -> None:
    """Everything the child does; it leaves with ``os._exit`` on every path."""
    code = 0
    try:
        os.dup2(log, 2)       # first: whatever goes wrong from here on is in the report
        os.close(log)
        for fd in inherited:   # the parent's ends of this and every other child's pipes:
            try:               # holding them would hide EOF from those children
                os.close(fd)
            except OSError:
                pass
        signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the parent's to handle
        # a crash (or the SIGABRT a hang is ended with) leaves a report, never a core file
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        # a target library may add what it knows to a crash report (the SPDK adapter
        # prints a C backtrace on a fatal signal) where the crash ends only this child
        os.environ["NRT_ISOLATED_CHILD"] = "1"
        # PDEATHSIG fires when the forking *thread* ends, so only tie it to the main thread;
        # from another thread the child still leaves on EOF when the parent goes away.
        if from_main_thread and _libc is not None:
            try:
                _libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
            except Exception:  # noqa: BLE001, S110 - best effort; EOF on the pipe still ends it
                pass
        if os.getppid() != parent:   # the parent died before the prctl took effect
            os._exit(0)
        # pytest's faulthandler (inherited) would dump the Python stack - always this
        # serving loop, plus the parent's frames at fork - to the parent's stderr: noise.
        # The signal itself and the target's own stderr tell what happened.
        faulthandler.disable()
        gc.disable()   # nothing cyclic is made here, and no collector pauses a call
        try:
            target = _builtin_lib if library is None else SharedObjectLib(library)
        except Exception as exc:  # noqa: BLE001 - the parent raises it as the constructor's error
            _child_send(rep_w, marshal.dumps((1, type(exc).__name__, str(exc))))
            os._exit(0)
        _child_send(rep_w, marshal.dumps((0,)))
        _serve(target, req_r, rep_w)
    except BaseException:  # noqa: BLE001 - the child must never unwind into the parent's code
        try:
            traceback.print_exc(file=sys.stderr)
            sys.stderr.flush()
        except BaseException:  # noqa: BLE001, S110 - already on the way out
            pass
        code = 70
    finally:
        os._exit(code)


def _child_send(fd: int, payload: bytes) -> None:
    _write_all(fd, _HDR.pack(len(payload)) + payload)


def _write_all(fd: int, data: bytes) -> None:
    n = os.write(fd, data)
    if n != len(data):   # only a message larger than the pipe comes out in pieces
        view = memoryview(data)[n:]
        while view:
            view = view[os.write(fd, view):]


_HUNG = object()


def _read_message(fd: int, poll: Any = None, timeout_ms: int | None = None) -> Any:
    """One length-prefixed message (its payload as a memoryview), ``None`` on EOF, or
    ``_HUNG`` if ``poll(timeout_ms)`` saw nothing arrive in time.  The first read asks for
    a modest size: ``os.read`` allocates what it is asked for, and a large allocation per
    call (an mmap and its page faults) costs more than the round trip itself.  Only a
    message known to be larger is read in large pieces."""
    if timeout_ms is not None and not poll(timeout_ms):
        return _HUNG
    data = os.read(fd, _FIRST_READ)
    if not data:
        return None
    have = len(data)
    if have >= 4:
        need = _HDR.unpack_from(data)[0] + 4
        if have == need:   # the usual case: the whole message in one read
            return memoryview(data)[4:]
    chunks = [data]
    need = -1
    while need < 0 or have < need:
        if need < 0 and have >= 4:
            need = _HDR.unpack_from(b"".join(chunks))[0] + 4
            continue
        if timeout_ms is not None and not poll(timeout_ms):
            return _HUNG
        more = os.read(fd, _READ_CHUNK if need < 0 else min(need - have, _READ_CHUNK))
        if not more:
            return None
        chunks.append(more)
        have += len(more)
    return memoryview(b"".join(chunks))[4:]


def _serve(target: Any, req_r: int, rep_w: int) -> None:
    loads, dumps = marshal.loads, marshal.dumps
    cast, from_buffer, string = ffi.cast, ffi.from_buffer, ffi.string
    fns: dict[int, Any] = {}
    plans = _PLAN_LIST
    while True:
        data = _read_message(req_r)
        if data is None:
            return   # the parent is gone
        index, wmask, args = loads(data)
        if index == _EXIT_REQUEST:
            return
        try:
            plan = plans[index]
            fn = fns.get(index)
            if fn is None:
                fn = fns[index] = getattr(target, plan.name)
            cargs = []
            outs = []
            codes = plan.codes
            types = plan.args
            for i, a in enumerate(args):
                c = codes[i]
                if c == _HANDLE:
                    cargs.append(cast(types[i], a))
                elif c == _BUF:
                    if a is None:
                        cargs.append(_NULL)
                    elif wmask >> i & 1:
                        # the parent's cdata bytes, writable here; returned after the call
                        b = bytearray(a)
                        outs.append(b)
                        cargs.append(from_buffer(types[i], b))
                    else:
                        # bytes: cffi passes them as is (a bytes object always carries a
                        # terminating NUL, so a char * argument stays a C string)
                        cargs.append(a)
                else:
                    cargs.append(a)
            r = fn(*cargs)
            rc = plan.rcode
            if rc == _R_HANDLE:
                r = int(cast("uintptr_t", r))
            elif rc == _R_STRING:
                r = None if r == _NULL else string(r)
            reply = dumps((0, r, outs))
        except Exception as exc:  # noqa: BLE001 - cffi's refusal, raised again in the parent
            reply = dumps((1, type(exc).__name__, str(exc)))
        _child_send(rep_w, reply)


# ---------------------------------------------------------------------------------------
# The lib


class IsolatedLib:
    """A cffi ``lib`` whose functions run in a forked child (see the module docstring).

    ``library``: the shared object the child opens (:class:`SharedObjectLib`); ``None``
    serves the builtin target (``impl._nrt.lib``).  ``watchdog_s``: how long one call may take before
    the child counts as hung and is killed (``None``: wait forever).

    A call that kills the child raises :class:`TargetCrashed`; so does every later call.
    :meth:`close` ends the child (garbage collection and interpreter exit do too)."""

    def __init__(self, library: str | os.PathLike[str] | None = None, *,
                 watchdog_s: float | None = 30.0):
        global _close_all_registered
        if not _close_all_registered:
            atexit.register(_close_all)
            _close_all_registered = True
        self._library = None if library is None else os.fspath(library)
        self._ch = _Channel(self._library, watchdog_s)

    # -- state ------------------------------------------------------------------------
    @property
    def library(self) -> str | None:
        return self._library

    @property
    def pid(self) -> int:
        return self._ch.pid

    @property
    def crashed(self) -> TargetCrashed | None:
        """The crash, once there was one."""
        return self._ch.dead

    @property
    def alive(self) -> bool:
        return self._ch.dead is None and not self._ch.closed

    def stderr_tail(self) -> str:
        """The last :data:`REPORT_TAIL` bytes the child wrote to stderr so far."""
        return self._ch.tail()

    def close(self) -> None:
        self._ch.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        ch = self.__dict__.get("_ch")
        if ch is not None:
            try:
                ch.close()
            except Exception:  # noqa: BLE001, S110 - a finalizer must not raise
                pass

    def __repr__(self) -> str:
        state = "alive" if self.alive else ("crashed" if self.crashed else "closed")
        what = self._library or "builtin"
        return f"<IsolatedLib {what} pid={self.pid} {state}>"

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(_PLANS) | set(_CONSTS))

    # -- attributes: constants locally, functions through the child ---------------------
    def __getattr__(self, name: str) -> Any:
        return _contract_attr(self, name, lambda plan: _forwarder(self.__dict__["_ch"], plan))


def _forwarder(ch: _Channel, plan: _Plan) -> Any:
    """The parent-side function for ``plan``: marshal, one round trip, unmarshal."""
    name, index, codes, types = plan.name, plan.index, plan.codes, plan.args
    nargs = len(codes)
    rcode, rtype = plan.rcode, plan.result
    dumps, loads = marshal.dumps, marshal.loads
    index_of = operator.index
    cast, buffer, memmove, new = ffi.cast, ffi.buffer, ffi.memmove, ffi.new
    typeof = ffi.typeof
    ok_types: list[set[Any]] = [set() for _ in codes]

    def check_ptr(i: int, a: Any) -> None:
        """cffi's own rule for a pointer argument: the same pointer type, an array of the
        item type, a ``void *`` either way; cached per argument."""
        t = typeof(a)
        if t in ok_types[i]:
            return
        want = types[i]
        if t.kind in ("pointer", "array") and (t is want or t.item is want.item
                                               or want.item.kind == "void"
                                               or t.item.kind == "void"):
            ok_types[i].add(t)
            return
        raise TypeError(f"{name}() argument {i + 1}: expected '{want.cname}', "
                        f"got '{t.cname}'")

    def call(*args: Any) -> Any:
        if ch.dead is not None:
            raise ch.dead.with_traceback(None)
        if ch.closed:
            raise RuntimeError(f"{name}(): {ch.closed_why}")
        if len(args) != nargs:
            raise TypeError(f"{name}() expected {nargs} arguments, got {len(args)}")
        wire: list[Any] = []
        back: list[Any] = []
        wmask = 0
        for i in range(nargs):
            a = args[i]
            c = codes[i]
            if c == _INT:
                wire.append(index_of(a))
            elif c == _HANDLE:
                if not isinstance(a, _CData):
                    raise TypeError(f"{name}() argument {i + 1}: expected "
                                    f"'{types[i].cname}', got {type(a).__name__}")
                check_ptr(i, a)
                wire.append(int(cast("uintptr_t", a)))
            elif c == _BUF:
                if isinstance(a, bytes):
                    wire.append(a)
                elif isinstance(a, _CData):
                    if a == _NULL:
                        wire.append(None)
                    else:
                        check_ptr(i, a)
                        wire.append(buffer(a)[:])
                        back.append(a)
                        wmask |= 1 << i
                elif a is None:
                    raise TypeError(f"{name}() argument {i + 1}: use ffi.NULL, not None")
                else:
                    raise TypeError(f"{name}() argument {i + 1}: expected "
                                    f"'{types[i].cname}', got {type(a).__name__}")
            elif c == _FLOAT:
                wire.append(float(a))
            else:
                raise TypeError(f"{name}(): argument {i + 1} of type '{types[i].cname}' "
                                "cannot cross the process boundary")
        if rcode == _R_UNSUPPORTED:
            raise TypeError(f"{name}(): a '{rtype.cname}' result cannot cross the process "
                            "boundary")
        reply = loads(ch.roundtrip(dumps((index, wmask, wire)), name, args))
        if reply[0] != 0:
            raise _child_error(reply[1:])
        _, r, outs = reply
        for a, data in zip(back, outs):
            memmove(a, data, len(data))
        if rcode == _R_HANDLE:
            return cast(rtype, r)
        if rcode == _R_STRING:
            return cast(rtype, 0) if r is None else new("char[]", r)
        return r

    call.__name__ = call.__qualname__ = name
    return call


def isolated_backend(base: Any = None, *, watchdog_s: float | None = 30.0) -> Any:
    """``base`` (an :class:`impl.backends.Backend`, default the builtin one) with its lib
    replaced by an :class:`IsolatedLib` over the same library."""
    import dataclasses

    from impl import backends

    base = backends.builtin() if base is None else base
    return dataclasses.replace(base, lib=IsolatedLib(base.library, watchdog_s=watchdog_s))


# ---------------------------------------------------------------------------------------
# Benchmark


def _per_call_us(fn: Any, n: int, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter_ns() - t0) / n / 1000)
    return best


def _call_figures(lb: Any, n: int) -> dict[str, float]:
    """Microseconds per call of three representative calls through ``lb``."""
    opts = ffi.new("struct nrt_opts *")
    _builtin_lib.nrt_opts_default(opts)
    opts.num_poll_groups = 2
    err = ffi.new("char[]", 256)
    rig = lb.nrt_rig_create(opts, err, 256)
    assert rig != ffi.NULL, ffi.string(err)
    port = lb.nrt_rig_port_add(rig)
    params = ffi.new("struct nrt_connect_params *")
    lb.nrt_connect_params_default(params, port, 0, 0, 32)
    conn = lb.nrt_rig_connect(rig, params)
    assert conn >= 0
    info = ffi.new("struct nrt_qpair_info *")
    events = ffi.new("uint32_t[]", [(lb.NRT_EV_POLL << 24) | (i % 2) for i in range(32)])
    calls = {
        "nrt_rig_progress": lambda: lb.nrt_rig_progress(rig),
        "nrt_rig_qpair_info": lambda: lb.nrt_rig_qpair_info(rig, conn, info),
        "nrt_rig_run_32": lambda: lb.nrt_rig_run(rig, events, 32),
    }
    out = {name: _per_call_us(fn, n) for name, fn in calls.items()}
    lb.nrt_rig_destroy(rig, ffi.NULL)
    return out


def _facade_workload_ms(backend: Any) -> float:
    """Connect, enable, then 200 x (Property Get, drain, reap, qpair_info) via Transport."""
    from impl import Capsule, Opcode, Options, Transport, connect_capsule, enable_capsule

    t0 = time.perf_counter()
    with Transport(Options(num_poll_groups=2, max_queue_depth=16), backend=backend) as t:
        port = t.add_port()
        sub = t.add_subsystem()
        t.add_namespace(sub, 512, 1024)
        qp = t.create_qpair(port, 0, 4)
        for cap in (connect_capsule(1, sub, sqsize=3), enable_capsule(2)):
            t.submit(qp, cap)
            t.drain()
            t.reap(qp)
        for i in range(200):
            t.submit(qp, Capsule(Opcode.FABRICS, 3 + i,
                                 fctype=_builtin_lib.NRT_FCTYPE_PROPERTY_GET, cdw10=0))
            t.drain()
            t.reap(qp)
            t.qpair_info(qp)
    return (time.perf_counter() - t0) * 1000


def bench(n: int = 5000) -> dict[str, float]:
    """Per-call cost in-process and isolated, fork cost, and a facade workload; prints a
    table and, last, one JSON line of the figures."""
    import json

    from impl import backends

    figures: dict[str, float] = {}
    inproc = _call_figures(_builtin_lib, n * 10)
    with IsolatedLib(None) as iso:
        isolated = _call_figures(iso, n)
    for name in inproc:
        figures[f"{name}_us_inproc"] = round(inproc[name], 3)
        figures[f"{name}_us_isolated"] = round(isolated[name], 3)

    k = 40   # fork: create (fork + the child's hello), then close
    t_create = t_close = 0.0
    for _ in range(k):
        t0 = time.perf_counter()
        x = IsolatedLib(None)
        t1 = time.perf_counter()
        x.close()
        t_create += t1 - t0
        t_close += time.perf_counter() - t1
    figures["fork_ms"] = round(t_create / k * 1000, 3)
    figures["close_ms"] = round(t_close / k * 1000, 3)

    inproc_ms = min(_facade_workload_ms(backends.builtin()) for _ in range(3))
    isob = isolated_backend()
    iso_ms = min(_facade_workload_ms(isob) for _ in range(3))
    isob.lib.close()
    figures["facade_workload_ms_inproc"] = round(inproc_ms, 2)
    figures["facade_workload_ms_isolated"] = round(iso_ms, 2)

    print(f"{'call':<24}{'in-process us':>16}{'isolated us':>14}{'overhead us':>14}")
    for name in inproc:
        a, b = inproc[name], isolated[name]
        print(f"{name:<24}{a:>16.3f}{b:>14.3f}{b - a:>14.3f}")
    print(f"fork (create IsolatedLib, child ready): {figures['fork_ms']:.3f} ms; "
          f"close: {figures['close_ms']:.3f} ms")
    print(f"facade workload (connect, enable, 200 x submit/drain/reap/qpair_info): "
          f"{inproc_ms:.2f} ms in-process, {iso_ms:.2f} ms isolated "
          f"({iso_ms / inproc_ms:.1f}x)")
    print(json.dumps(figures, sort_keys=True))
    return figures


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m impl.isolation", description=__doc__.split("\n")[0])
    ap.add_argument("--bench", action="store_true", help="measure the cost of isolation")
    ap.add_argument("-n", type=int, default=5000, help="calls per isolated measurement")
    ns = ap.parse_args(argv)
    if not ns.bench:
        ap.print_help()
        return 2
    bench(ns.n)
    return 0


if __name__ == "__main__":
    sys.exit(main())
