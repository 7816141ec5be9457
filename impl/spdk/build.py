"""Build SPDK's NVMe-oF RDMA transport from a user's SPDK tree onto simverbs.

``python -m impl.spdk.build DIR`` (or :func:`build`) compiles, out of tree:

* from ``DIR`` (read-only is fine): ``lib/{json,thread,trace,util,log,ut_mock,dma}`` and the
  RDMA provider layer (``lib/rdma`` up to v24.05, ``lib/rdma_provider`` + ``lib/rdma_utils``
  after), each ``*.c`` except the ones that need hardware-specific code or other libraries;
* the adapter (``impl/spdk/adapter.c``), which ``#include``s SPDK's ``lib/nvmf/rdma.c``,
  ``lib/nvmf/transport.c``, SPDK's own buffer pools (``lib/thread/iobuf.c``; a tree without
  it gets its test double ``test/common/lib/test_iobuf.c``) and its test environment
  (``test/common/lib/test_env.c``) the way SPDK's own unit test does, and provides what
  SPDK's nvmf core would (``impl/spdk/core.c`` is included by it);
* the project's own C: simverbs, the controller emulation and the rig;

into one shared object exporting the ``nrt.h`` contract, opened with ``ffi.dlopen``.

What differs between SPDK releases is found the way ``configure`` finds it, by compiling
small probes against the tree's headers (:data:`PROBES`); the results become
``nrt_spdk_probes.h``.  ``spdk/config.h``, which SPDK's ``configure`` would generate, is
written by hand into the build directory.

The build directory is ``$NRT_SPDK_CACHE`` (default ``<project>/build/spdk``) / a key hashed
from the content of every input file and the flags: a second build of the same tree is a
cache hit and compiles nothing.

The drop-in variant (``build(src, dropin=DIR)``, ``--dropin DIR``) carries no simverbs of
its own: it links against the drop-in ``libibverbs.so.1`` / ``librdmacm.so.1`` in ``DIR``
(``impl/dropin``), so the process's one fabric is shared with an unmodified host, and adds
the in-process serving glue (``impl/dropin/serve.c``).  The variant and the drop-in
libraries' stamp are part of the cache key.  ``NRT_SPDK_CFLAGS`` adds compiler flags (e.g. the sanitizer
build: ``-fsanitize=address,undefined -g -O1``), and is part of the key.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent            # impl/spdk
IMPL = HERE.parent
ROOT = IMPL.parent
CSRC = IMPL / "csrc"
SIMVERBS = IMPL / "simverbs"

LIB_NAME = "libnrt_spdk.so"

# Files of the tree's libraries that are not compiled: other CPU architectures, the
# trace RPCs (need the JSON-RPC server), and the mlx5 direct-verbs providers (need mlx5dv).
EXCLUDED = {"base64_neon.c", "base64_sve.c", "trace_rpc.c", "rdma_mlx5_dv.c",
            "rdma_provider_mlx5_dv.c", "iobuf.c"}
# iobuf.c is not compiled on its own: the adapter #includes it (its pools and caches are
# statics the introspection reads), in place of SPDK's test double test_iobuf.c, whose
# wait queue is one global list that it never aborts from (spdk_iobuf_entry_abort and
# spdk_iobuf_for_each_entry are stubs) - a request torn down while waiting for a buffer
# stays queued and is later handed a buffer (docs/spdk-findings.md, "Ours, fixed").

#: Where the iobuf API comes from, in order of preference (the adapter includes one of them).
IOBUF_SOURCES = ("lib/thread/iobuf.c", "test/common/lib/test_iobuf.c")

COMMON_LIBS = ("json", "thread", "trace", "util", "log", "dma")

SPDK_CFLAGS = ["-std=gnu11", "-D_GNU_SOURCE", "-DDEBUG", "-DSPDK_UNIT_TEST=1", "-O2", "-g",
               "-fPIC", "-fno-strict-aliasing", "-w"]
OUR_CFLAGS = ["-std=gnu11", "-O2", "-g", "-fPIC", "-Wall", "-Wextra", "-Werror",
              "-fno-strict-aliasing"]
LIBS = ["-luuid", "-lcrypto", "-lpthread", "-lm"]   # libuuid, OpenSSL (util/md5.c)

# spdk/config.h as configure would write it for: RDMA with the verbs provider, send with
# invalidate, libuuid with generate_sha1, no ISA-L, no USDT, debug.
CONFIG_H = """\
#ifndef SPDK_CONFIG_H
#define SPDK_CONFIG_H
/* written by nvmf-rdma-conformance's SPDK build in place of configure */
#define SPDK_CONFIG_RDMA 1
#define SPDK_CONFIG_RDMA_PROV verbs
#define SPDK_CONFIG_RDMA_SEND_WITH_INVAL 1
#define SPDK_CONFIG_HAVE_LIBUUID 1
#define SPDK_CONFIG_HAVE_UUID_GENERATE_SHA1 1
#define SPDK_CONFIG_MAX_NUMA_NODES 1
#define SPDK_CONFIG_DEBUG 1
#endif
"""

# The CUnit calls SPDK's test doubles make (test_iobuf.c checks its allocations).
CUNIT_H = """\
#ifndef NRT_CUNIT_SHIM_H
#define NRT_CUNIT_SHIM_H
/* SPDK's test doubles assert with CUnit; here a failed check is an abort the suite's
 * crash containment reports (CRASH-1). */
#include <assert.h>
#define CU_ASSERT(x) assert(x)
#define CU_ASSERT_FATAL(x) assert(x)
#define CU_ASSERT_TRUE(x) assert(x)
#define CU_ASSERT_EQUAL(a, b) assert((a) == (b))
#endif
"""


@dataclass(frozen=True)
class Probe:
    """One feature test: ``code`` is compiled (syntax only) after ``headers``."""

    name: str
    headers: tuple[str, ...]
    code: str


_NVMF = ("spdk/stdinc.h", "spdk/nvmf.h", "spdk/nvmf_transport.h")
_INTERNAL = _NVMF + ("nvmf/nvmf_internal.h",)

#: The API differences between SPDK releases the adapter absorbs, each a compile probe.
PROBES: tuple[Probe, ...] = (
    # v24.05: qpair states CONNECTING / AUTHENTICATING / ENABLED replace ACTIVE
    Probe("HAVE_QPAIR_ENABLED", _NVMF, "int x = SPDK_NVMF_QPAIR_ENABLED;"),
    # v24.05: spdk_nvmf_qpair_disconnect loses its callback
    Probe("HAVE_QPAIR_DISCONNECT_CB", _NVMF,
          "int (*f)(struct spdk_nvmf_qpair *, nvmf_qpair_disconnect_cb, void *) = "
          "spdk_nvmf_qpair_disconnect; (void)f;"),
    # 7dab13c0e0: a configurable data-WR pool size
    Probe("HAVE_DATA_WR_POOL_SIZE", _NVMF,
          "size_t x = offsetof(struct spdk_nvmf_transport_opts, data_wr_pool_size);"),
    # v26.01: the transport's req_complete returns void
    Probe("HAVE_REQ_COMPLETE_VOID", _NVMF,
          "_Static_assert(__builtin_types_compatible_p(__typeof__(((struct "
          "spdk_nvmf_transport_ops *)0)->req_complete), void (*)(struct spdk_nvmf_request *)),"
          " \"\");"),
    # v25.01 drops the poll group's own poller
    Probe("HAVE_POLL_GROUP_POLLER", _INTERNAL,
          "size_t x = offsetof(struct spdk_nvmf_poll_group, poller);"),
    # the user log callback: spdk_log_open_ext (v24.01+) or spdk_log_open
    Probe("HAVE_LOG_OPEN_EXT", ("spdk/stdinc.h", "spdk/log.h"),
          "void (*f)(struct spdk_log_opts *) = spdk_log_open_ext; (void)f;"),
    # the listen opts carry a transport-specific JSON object (pre-24.09 trees have it too)
    Probe("HAVE_TRANSPORT_OPTS_SIZE", _NVMF,
          "size_t x = offsetof(struct spdk_nvmf_transport_opts, opts_size);"),
    # nvmf_ctrlr_abort_request's signature
    Probe("HAVE_NVMF_REQ_ZCOPY", _NVMF,
          "size_t x = offsetof(struct spdk_nvmf_request, zcopy_phase);"),
    # v24.09+: the poll group keeps its transport poll groups' stats callback
    Probe("HAVE_RDMA_PROVIDER_H", ("spdk/stdinc.h", "spdk_internal/rdma_provider.h"),
          "struct spdk_rdma_provider_qp *q = 0; (void)q;"),
    Probe("HAVE_IOBUF_NUMA", ("spdk/stdinc.h", "spdk/thread.h"),
          "size_t x = offsetof(struct spdk_iobuf_channel, cache);"),
    Probe("HAVE_IOBUF_OPTS_SIZE", ("spdk/stdinc.h", "spdk/thread.h"),
          "size_t x = offsetof(struct spdk_iobuf_opts, opts_size);"),
    # spdk_iobuf_get_opts takes the caller's struct size
    Probe("HAVE_IOBUF_GET_OPTS_SIZE", ("spdk/stdinc.h", "spdk/thread.h"),
          "void (*f)(struct spdk_iobuf_opts *, size_t) = spdk_iobuf_get_opts; (void)f;"),
    # v25.01+: each transport poll group registers its own poller
    Probe("HAVE_TGROUP_POLLER", _NVMF,
          "size_t x = offsetof(struct spdk_nvmf_transport_poll_group, poller);"),
    # later trees keep requests waiting for iobuf buffers on a qpair queue
    Probe("HAVE_PENDING_IOBUF_QUEUE", ("nvmf/rdma.c",),
          "size_t x = offsetof(struct spdk_nvmf_rdma_qpair, pending_iobuf_queue);"),
    # SPDK's own iobuf (lib/thread/iobuf.c) is in the tree: the adapter runs on it
    Probe("HAVE_IOBUF_C", ("thread/iobuf.c",), "(void)&g_iobuf;"),
    # later iobufs keep their rings per NUMA node (g_iobuf.node[i].small_pool)
    Probe("HAVE_IOBUF_NODE", ("thread/iobuf.c",),
          "size_t x = offsetof(struct iobuf, node);"),
    Probe("HAVE_SUBSYSTEM_GET_FIRST_IN_NVMF_H", _NVMF,
          "struct spdk_nvmf_subsystem *(*f)(struct spdk_nvmf_tgt *) = "
          "spdk_nvmf_subsystem_get_first; (void)f;"),
)


class BuildError(RuntimeError):
    """The tree cannot be built: the message names the file and the compiler's words."""


@dataclass(frozen=True)
class Tree:
    root: Path
    libs: tuple[Path, ...]        # library directories compiled from the tree

    @property
    def includes(self) -> list[str]:
        return [f"-I{self.root / d}" for d in ("include", "lib", "module", "test")]


def inspect_tree(src: str | os.PathLike[str]) -> Tree:
    """Which libraries the tree at ``src`` needs, with a clear error if it is no SPDK tree."""
    root = Path(src).resolve()
    if not (root / "lib" / "nvmf" / "rdma.c").is_file():
        raise BuildError(f"{root}: not an SPDK source tree (no lib/nvmf/rdma.c)")
    for need in ("include/spdk/nvmf_transport.h", "test/common/lib/test_env.c",
                 "lib/nvmf/transport.c"):
        if not (root / need).is_file():
            raise BuildError(f"{root}: {need} is missing")
    if not any((root / p).is_file() for p in IOBUF_SOURCES):
        raise BuildError(f"{root}: neither {' nor '.join(IOBUF_SOURCES)} (the iobuf API)")
    names = list(COMMON_LIBS)
    if (root / "lib" / "rdma_provider").is_dir():
        names += ["rdma_provider", "rdma_utils"]
    elif (root / "lib" / "rdma").is_dir():
        names += ["rdma"]
    else:
        raise BuildError(f"{root}: neither lib/rdma nor lib/rdma_provider")
    libs = tuple(root / "lib" / n for n in names if (root / "lib" / n).is_dir())
    return Tree(root, libs)


def tree_commit(src: str | os.PathLike[str]) -> str | None:
    """The commit the tree is at: its ``COMMIT`` file's first word, else its git HEAD."""
    root = Path(src)
    commit_file = root / "COMMIT"
    if commit_file.is_file():
        words = commit_file.read_text(errors="replace").split()
        return words[0] if words else None
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                             text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


DROPIN_GLUE = IMPL / "dropin" / "serve.c"


def _our_sources(dropin: Path | None = None) -> list[Path]:
    if dropin is not None:       # simverbs comes from the drop-in libibverbs.so.1
        return [CSRC / "ctrlr.c", CSRC / "rig.c", DROPIN_GLUE]
    ours = [CSRC / "ctrlr.c", CSRC / "rig.c", *sorted(SIMVERBS.glob("*.c"))]
    return ours


def _dropin_libs(dropin: Path) -> list[str]:
    return [f"-L{dropin}", "-l:libibverbs.so.1", "-l:librdmacm.so.1", f"-Wl,-rpath,{dropin}"]


def _spdk_sources(tree: Tree) -> list[Path]:
    files: list[Path] = []
    for lib in tree.libs:
        files += sorted(p for p in lib.glob("*.c") if p.name not in EXCLUDED)
    return files


def _extra_flags() -> list[str]:
    return os.environ.get("NRT_SPDK_CFLAGS", "").split()


def cache_key(tree: Tree, dropin: Path | None = None) -> str:
    """A hash of everything the build reads: the tree's headers and sources, ours, flags,
    and for the drop-in variant the drop-in libraries' own stamp."""
    h = hashlib.sha256()
    if dropin is not None:
        stamp = dropin / "STAMP"
        h.update(b"dropin\0" + (stamp.read_bytes() if stamp.is_file() else b"?"))
    inputs: list[Path] = []
    for d in ("include", "lib/nvmf", "test/common/lib"):
        inputs += sorted(p for p in (tree.root / d).rglob("*") if p.is_file())
    for lib in tree.libs:
        inputs += sorted(p for p in lib.glob("*") if p.is_file())
    inputs += sorted(HERE.glob("*.c")) + sorted(HERE.glob("*.h")) + sorted(HERE.glob("*.py"))
    inputs += _our_sources(dropin) + sorted(CSRC.glob("*.h")) + sorted(SIMVERBS.glob("*.h"))
    for p in inputs:
        h.update(str(p.relative_to(tree.root) if p.is_relative_to(tree.root) else
                     p.relative_to(ROOT)).encode())
        h.update(b"\0")
        h.update(p.read_bytes())
    h.update(" ".join(SPDK_CFLAGS + OUR_CFLAGS + _extra_flags()).encode())
    return h.hexdigest()[:20]


def cache_root() -> Path:
    return Path(os.environ.get("NRT_SPDK_CACHE") or ROOT / "build" / "spdk")


def _run(cmd: list[str], what: str) -> None:
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        tail = (out.stderr or out.stdout).strip().splitlines()[-25:]
        raise BuildError(f"compiling {what} failed:\n  " + "\n  ".join(tail) +
                         f"\n  command: {' '.join(cmd)}")


def run_probes(tree: Tree, gen: Path, cc: str = "gcc") -> dict[str, bool]:
    """Compile each probe (syntax only); True where the tree has the feature."""
    flags = [f"-I{gen}", *tree.includes, "-std=gnu11", "-D_GNU_SOURCE", "-DDEBUG",
             "-DSPDK_UNIT_TEST=1", "-fsyntax-only",
             # a probe of a signature must fail on a mismatch, not warn
             "-Werror=incompatible-pointer-types", "-Werror=implicit-function-declaration",
             "-Werror=int-conversion"]

    def one(p: Probe) -> tuple[str, bool]:
        with tempfile.NamedTemporaryFile("w", suffix=".c", dir=gen, delete=False) as f:
            f.write("".join(f'#include "{h}"\n' for h in p.headers))
            f.write(f"void nrt_probe(void);\nvoid nrt_probe(void) {{ {p.code} }}\n")
            path = f.name
        try:
            r = subprocess.run([cc, *flags, path], capture_output=True, text=True, check=False)
            return p.name, r.returncode == 0
        finally:
            os.unlink(path)

    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as ex:
        return dict(ex.map(one, PROBES))


def build(src: str | os.PathLike[str], *, force: bool = False, verbose: bool = False,
          cc: str = "gcc", dropin: str | os.PathLike[str] | None = None) -> Path:
    """The shared object for the tree at ``src``, built if the cache does not have it;
    ``dropin``: the drop-in variant, linked against the libraries in that directory."""
    tree = inspect_tree(src)
    dropin_dir = Path(dropin).resolve() if dropin is not None else None
    key = cache_key(tree, dropin_dir)
    out_dir = cache_root() / key
    so = out_dir / LIB_NAME
    if so.is_file() and not force:
        if verbose:
            print(f"spdk build: cached {so}", file=sys.stderr)
        return so
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix=f"{key}.", dir=_ensure(cache_root())))
    try:
        gen = work / "gen"
        (gen / "spdk").mkdir(parents=True)
        (gen / "CUnit").mkdir()
        (gen / "spdk" / "config.h").write_text(CONFIG_H)
        (gen / "CUnit" / "Basic.h").write_text(CUNIT_H)
        probes = run_probes(tree, gen, cc)
        (gen / "nrt_spdk_probes.h").write_text(
            "/* compile probes of the SPDK tree (impl/spdk/build.py) */\n" +
            "".join(f"#define {k} {int(v)}\n" for k, v in sorted(probes.items())))
        extra = _extra_flags()
        spdk_flags = [f"-I{gen}", *tree.includes, *SPDK_CFLAGS, *extra]
        our_flags = [f"-I{CSRC}", f"-I{SIMVERBS}", *OUR_CFLAGS, *extra]
        jobs: list[tuple[list[str], str]] = []
        objs: list[Path] = []
        for i, c in enumerate(_spdk_sources(tree)):
            o = work / f"spdk{i}_{c.stem}.o"
            objs.append(o)
            jobs.append(([cc, *spdk_flags, "-c", str(c), "-o", str(o)], str(c)))
        for c in _our_sources(dropin_dir):
            o = work / f"nrt_{c.parent.name}_{c.stem}.o"
            objs.append(o)
            jobs.append(([cc, *our_flags, "-c", str(c), "-o", str(o)], str(c)))
        adapter = HERE / "adapter.c"
        o = work / "adapter.o"
        objs.append(o)
        commit = (tree_commit(tree.root) or "unknown")[:40]
        jobs.append(([cc, *spdk_flags, f"-I{CSRC}", f"-I{SIMVERBS}", f"-I{HERE}",
                      f'-DNRT_SPDK_COMMIT="{commit}"',
                      "-Wall", "-Wno-unused-function", "-c", str(adapter), "-o", str(o)],
                     str(adapter)))
        with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as ex:
            for f in [ex.submit(_run, cmd, what) for cmd, what in jobs]:
                f.result()
        tmp_so = work / LIB_NAME
        libs = [*LIBS, *(_dropin_libs(dropin_dir) if dropin_dir is not None else [])]
        _run([cc, "-shared", "-Wl,-Bsymbolic", "-Wl,--no-undefined", *extra,
              *map(str, objs), "-o", str(tmp_so), *libs], "the shared object (link)")
        (work / "probes.txt").write_text("".join(f"{k}={int(v)}\n" for k, v in
                                                 sorted(probes.items())))
        (work / "SOURCE").write_text(f"{tree.root}\n{tree_commit(tree.root) or ''}\n")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        work.rename(out_dir)      # atomic: a concurrent builder sees all or nothing
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    if verbose:
        print(f"spdk build: {tree.root} -> {so} in {time.monotonic() - started:.1f} s",
              file=sys.stderr)
    return so


def _ensure(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m impl.spdk.build", description=__doc__.split(
        "\n\n")[0])
    ap.add_argument("src", help="an SPDK source tree (a full checkout or the subset it needs)")
    ap.add_argument("--force", action="store_true", help="rebuild even if cached")
    ap.add_argument("--dropin", metavar="DIR",
                    help="the drop-in variant, linked against DIR's libibverbs.so.1 / "
                         "librdmacm.so.1 (python -m impl.dropin build prints DIR)")
    args = ap.parse_args(argv)
    started = time.monotonic()
    try:
        so = build(args.src, force=args.force, verbose=True, dropin=args.dropin)
    except BuildError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{so}  ({time.monotonic() - started:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
