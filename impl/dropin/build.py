"""Build simverbs as a drop-in ``libibverbs.so.1`` / ``librdmacm.so.1``, and the built-in
target linked against them.

What is built, into one directory (default ``<project>/build/dropin``):

* ``libibverbs.so.1``: every ``impl/simverbs/*.c`` (the one copy of the fabric in a
  process), exporting rdma-core's libibverbs names under rdma-core's version nodes
  (``IBVERBS_1.0`` ... ``IBVERBS_1.14``, ``IBVERBS_PRIVATE_34`` for rdma-core 44: those of
  the installed rdma-core, else of the checked-in list; :mod:`impl.dropin.abi`),
  the harness API ``sv_*`` and the CM's implementation under ``SIMVERBS_1.0``.  The
  librdmacm half of simverbs is compiled in here under ``sv_dropin_rdma_*`` names
  (``objcopy --redefine-syms``), so the two libraries share the fabric;
* ``librdmacm.so.1``: rdma-core's ``RDMACM_1.x`` names, each a tail jump into
  ``libibverbs.so.1``'s ``sv_dropin_rdma_*`` (x86-64);
* every name rdma-core exports that simverbs does not simulate is a stub that sets
  ``errno = EOPNOTSUPP`` and returns the API's failure value (NULL for the calls that return
  objects, -1 for librdmacm and rsockets, ``EOPNOTSUPP`` for libibverbs' errno-returning
  calls); ``SIMVERBS_TRACE_STUBS=1`` prints each stub call on stderr.  The old
  ``IBVERBS_1.0`` compat entry points are such stubs too;
* ``libibverbs.so`` / ``librdmacm.so`` links, and ``libnrt_builtin.so``: the built-in
  target (``impl/csrc``) plus the in-process serving glue (``serve.c``), linked against
  the two libraries (``$ORIGIN`` rpath).

The build is cached: ``STAMP`` holds a hash of every input and flag; a build whose stamp
matches compiles nothing.  Concurrent builders serialise on a lock file.
"""

from __future__ import annotations

import concurrent.futures
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from impl.dropin import abi

HERE = Path(__file__).resolve().parent          # impl/dropin
IMPL = HERE.parent
ROOT = IMPL.parent
CSRC = IMPL / "csrc"
SIMVERBS = IMPL / "simverbs"
DEFAULT_OUT = ROOT / "build" / "dropin"

CFLAGS = ["-std=gnu11", "-O2", "-g", "-fPIC", "-Wall", "-Wextra", "-Werror",
          "-fno-strict-aliasing"]
RDMA_PREFIX = "sv_dropin_"
HARNESS_NODE = "SIMVERBS_1.0"
BUILTIN_TARGET = "libnrt_builtin.so"

# Stubbed calls that return an object (or a string): their failure value is NULL.  The
# second line: names simverbs implements whose IBVERBS_1.0 compat entry is a stub.
RETURNS_POINTER = {
    "_verbs_init_and_alloc_context", "verbs_open_device", "ibv_create_ah",
    "ibv_create_ah_from_wc", "ibv_get_sysfs_path", "ibv_import_device", "ibv_import_dm",
    "ibv_import_mr", "ibv_import_pd", "ibv_qp_to_qp_ex", "ibv_reg_dmabuf_mr",
    "ibv_get_device_list", "ibv_get_device_name", "ibv_open_device", "ibv_alloc_pd",
    "ibv_reg_mr", "ibv_create_cq", "ibv_create_qp", "ibv_create_srq",
}
# libibverbs calls whose failure value is -1 with errno set (not an errno return).
RETURNS_MINUS_ONE = {
    "ibv_read_sysfs_file", "ibv_read_ibdev_sysfs_file", "ibv_get_pkey_index",
    "ibv_rate_to_mbps", "ibv_rate_to_mult", "mbps_to_ibv_rate", "mult_to_ibv_rate",
}


class BuildError(RuntimeError):
    """A compile or link step failed; the message has the compiler's words and command."""


def _run(cmd: list[str], what: str) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise BuildError(f"{what}: cannot run {cmd[0]} ({exc}); the build needs gcc and "
                         f"binutils (nm, objcopy)") from None
    if out.returncode != 0:
        tail = (out.stderr or out.stdout).strip().splitlines()[-25:]
        raise BuildError(f"{what} failed:\n  " + "\n  ".join(tail) +
                         f"\n  command: {' '.join(cmd)}")
    return out.stdout


def simverbs_sources() -> list[Path]:
    return sorted(SIMVERBS.glob("*.c"))


def target_sources() -> list[Path]:
    return sorted(p for p in CSRC.glob("*.c") if not p.name.startswith("fuzz_"))


def _inputs() -> list[Path]:
    return [*simverbs_sources(), *sorted(SIMVERBS.glob("*.h")), *target_sources(),
            *sorted(CSRC.glob("*.h")), HERE / "serve.c", HERE / "build.py", HERE / "abi.py",
            abi.ABI_FILE]


def cache_key() -> str:
    h = hashlib.sha256()
    for p in _inputs():
        h.update(str(p.relative_to(ROOT)).encode() + b"\0" + p.read_bytes())
    h.update(" ".join(CFLAGS + os.environ.get("NRT_DROPIN_CFLAGS", "").split()).encode())
    h.update(abi.source()[1].encode())
    return h.hexdigest()[:20]


def _cflags() -> list[str]:
    return CFLAGS + os.environ.get("NRT_DROPIN_CFLAGS", "").split()


def _defined_globals(objs: list[Path]) -> set[str]:
    out = _run(["nm", "--defined-only", "-g", *map(str, objs)], "nm")
    return {w[2] for w in (line.split() for line in out.splitlines()) if len(w) == 3}


def _compat_name(s: abi.Symbol) -> str:
    return f"sv_compat_{s.name}_{s.version.replace('.', '_')}"


def _failure_value(s: abi.Symbol, cm: bool) -> tuple[str, str]:
    """The C return type and failure value of a stubbed call (the argument registers are
    never read, so one signature serves every call of that return kind)."""
    if s.name in RETURNS_POINTER:
        return "void *", "NULL"
    if cm or s.name in RETURNS_MINUS_ONE or not s.name.startswith(("ibv_", "_ibv")):
        return "long", "-1"     # librdmacm, rsockets, and libibverbs' -1 + errno calls
    return "long", "EOPNOTSUPP"  # libibverbs returns the errno value itself


def _stub_c(lib: str, symbols: list[abi.Symbol], defined: set[str]) -> str:
    """C for every listed name the simulation does not define, and the compat entries."""
    out = [f"/* generated by impl/dropin/build.py: what {lib} exports but simverbs does not",
           " * simulate fails with EOPNOTSUPP */",
           "#include <errno.h>", "#include <stdio.h>", "#include <stdlib.h>", "",
           "static void sv_stub_called(const char *name)", "{",
           "    if (getenv(\"SIMVERBS_TRACE_STUBS\"))",
           "        fprintf(stderr, \"simverbs: %s is not simulated (EOPNOTSUPP)\\n\", name);",
           "    errno = EOPNOTSUPP;", "}", ""]
    cm = lib.startswith("librdmacm")
    for s in symbols:
        if s.default and (s.name in defined or (cm and f"{RDMA_PREFIX}{s.name}" in defined)):
            continue
        cname = s.name if s.default else _compat_name(s)
        if s.kind == "object":
            out.append(f"char {cname}[{max(s.size, 1)}];")
        else:
            ret, val = _failure_value(s, cm)
            out.append(f"{ret} {cname}(void);")
            out.append(f"{ret} {cname}(void) {{ sv_stub_called(\"{s.name}\"); return {val}; }}")
        if not s.default:
            out.append(f'__asm__(".symver {cname}, {s.name}@{s.version}, remove");')
    return "\n".join(out) + "\n"


def _version_script(lib: abi.LibraryAbi, exported: set[str], extra: list[str] | None) -> str:
    """rdma-core's version nodes with the names each exports, ``extra`` (the harness API)
    under a node of our own.  No ``local: *``: it would also hide the compat names the
    stubs' ``.symver`` directives make (nothing else in the objects is global: simverbs'
    internals have hidden visibility)."""
    by_node: dict[str, list[str]] = {v: [] for v, _ in lib.versions}
    for s in lib.symbols:
        if s.default and s.name in exported:
            by_node[s.version].append(s.name)
        elif not s.default:      # the stub a .symver in the stubs binds to name@node
            by_node[s.version].append(_compat_name(s))
    lines = []
    for node, parent in lib.versions:
        names = "".join(f"    {n};\n" for n in sorted(set(by_node[node])))
        body = f"  global:\n{names}" if names else ""
        lines.append(f"{node} {{\n{body}}}{(' ' + parent) if parent else ''};\n")
    if extra:
        names = "".join(f"    {n};\n" for n in sorted(extra))
        lines.append(f"{HARNESS_NODE} {{\n  global:\n{names}}};\n")
    return "".join(lines)


def _forwarders_s(names: list[str]) -> str:
    out = ["/* generated by impl/dropin/build.py: librdmacm's names, each a tail jump into",
           " * libibverbs.so.1's CM (the arguments pass through untouched) */", ".text"]
    for n in names:
        out += [f".globl {n}", f".type {n}, @function", f"{n}:",
                f"    jmp {RDMA_PREFIX}{n}@PLT", f".size {n}, .-{n}"]
    out.append('.section .note.GNU-stack,"",@progbits')
    return "\n".join(out) + "\n"


def _build_into(work: Path) -> None:
    libs, _origin = abi.source()
    verbs_abi, cm_abi = libs["libibverbs.so.1"], libs["librdmacm.so.1"]
    flags = _cflags()
    objs_dir = work / "obj"
    objs_dir.mkdir()
    jobs = []
    sv_objs = []
    for c in simverbs_sources():
        o = objs_dir / f"sv_{c.stem}.o"
        sv_objs.append(o)
        jobs.append(([ "gcc", *flags, f"-I{SIMVERBS}", "-c", str(c), "-o", str(o)], str(c)))
    tg_objs = []
    for c in [*target_sources(), HERE / "serve.c"]:
        o = objs_dir / f"tg_{c.stem}.o"
        tg_objs.append(o)
        jobs.append((["gcc", *flags, f"-I{CSRC}", f"-I{SIMVERBS}", "-c", str(c), "-o", str(o)],
                     str(c)))
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as ex:
        for f in [ex.submit(_run, cmd, f"compiling {what}") for cmd, what in jobs]:
            f.result()

    # the CM's names move aside: librdmacm.so.1 forwards to them
    cm_names = sorted({s.name for s in cm_abi.symbols})
    redefine = work / "rdma_names.txt"
    redefine.write_text("".join(f"{n} {RDMA_PREFIX}{n}\n" for n in cm_names))
    for o in sv_objs:
        _run(["objcopy", f"--redefine-syms={redefine}", str(o)], f"renaming in {o.name}")
    defined = _defined_globals(sv_objs)
    harness = sorted(n for n in defined if n.startswith("sv_") and
                     not n.startswith("sv__"))

    stubs_c = work / "ibverbs_stubs.c"
    stubs_c.write_text(_stub_c("libibverbs.so.1", verbs_abi.symbols, defined))
    stub_o = objs_dir / "ibverbs_stubs.o"
    _run(["gcc", *flags, "-Wno-unused-parameter", "-c", str(stubs_c), "-o", str(stub_o)],
         "compiling the libibverbs stubs")
    exported = (defined | {s.name for s in verbs_abi.symbols}) - set(harness)
    vs = work / "libibverbs.map"
    vs.write_text(_version_script(verbs_abi, exported, harness))
    _run(["gcc", "-shared", "-Wl,-soname,libibverbs.so.1", f"-Wl,--version-script={vs}",
          "-Wl,--no-undefined", *map(str, sv_objs), str(stub_o), "-o",
          str(work / "libibverbs.so.1")], "linking libibverbs.so.1")

    implemented_cm = [n for n in cm_names if f"{RDMA_PREFIX}{n}" in defined]
    fwd = work / "rdmacm_forwarders.S"
    fwd.write_text(_forwarders_s(implemented_cm))
    cm_stubs = work / "rdmacm_stubs.c"
    cm_stubs.write_text(_stub_c("librdmacm.so.1", cm_abi.symbols, defined))
    cm_objs = [objs_dir / "rdmacm_forwarders.o", objs_dir / "rdmacm_stubs.o"]
    _run(["gcc", "-fPIC", "-c", str(fwd), "-o", str(cm_objs[0])], "assembling the forwarders")
    _run(["gcc", *flags, "-c", str(cm_stubs), "-o", str(cm_objs[1])],
         "compiling the librdmacm stubs")
    cvs = work / "librdmacm.map"
    cvs.write_text(_version_script(cm_abi, {s.name for s in cm_abi.symbols}, None))
    _run(["gcc", "-shared", "-Wl,-soname,librdmacm.so.1", f"-Wl,--version-script={cvs}",
          "-Wl,--no-undefined", *map(str, cm_objs), "-o", str(work / "librdmacm.so.1"),
          f"-L{work}", "-l:libibverbs.so.1"], "linking librdmacm.so.1")
    for so in ("libibverbs", "librdmacm"):
        (work / f"{so}.so").symlink_to(f"{so}.so.1")

    _run(["gcc", "-shared", "-Wl,--no-undefined", *map(str, tg_objs), "-o",
          str(work / BUILTIN_TARGET), f"-L{work}", "-l:libibverbs.so.1", "-l:librdmacm.so.1",
          "-Wl,-rpath,$ORIGIN", "-lpthread"], f"linking {BUILTIN_TARGET}")
    shutil.rmtree(objs_dir)


def build(out: str | os.PathLike[str] | None = None, *, force: bool = False) -> Path:
    """The directory holding the drop-in libraries and the built-in target, built if its
    stamp does not match the inputs."""
    out_dir = Path(out) if out is not None else DEFAULT_OUT
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    key = cache_key()
    lock_path = out_dir.parent / f".{out_dir.name}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stamp = out_dir / "STAMP"
        if not force and stamp.is_file() and stamp.read_text().strip() == key:
            return out_dir
        work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
        try:
            _build_into(work)
            (work / "STAMP").write_text(key + "\n")
            if out_dir.exists():
                shutil.rmtree(out_dir)
            work.rename(out_dir)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
    return out_dir
